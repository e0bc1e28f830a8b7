//go:build linux

package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
)

// mountTmpfs mounts a small tmpfs at a new directory, or skips the test
// with the reason when this process may not mount.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v): run as root (CI does) to test disk faults", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

func listOf(t *testing.T, db string) string {
	t.Helper()
	o := portfor(t, db, "list", "--json")
	require.Equal(t, 0, o.code, o.stderr)
	return o.stdout
}

func TestFullFilesystem(t *testing.T) {
	dir := mountTmpfs(t, "512k")
	db := filepath.Join(dir, "registry.db")
	require.Equal(t, 0, portfor(t, db, "first").code)
	before := listOf(t, db)

	// Fill the file system to the last byte.
	filler, err := os.Create(filepath.Join(dir, "filler"))
	require.NoError(t, err)
	chunk := bytes.Repeat([]byte{1}, 4096)
	for {
		if _, err := filler.Write(chunk); err != nil {
			require.ErrorIs(t, err, syscall.ENOSPC)
			break
		}
	}
	require.NoError(t, filler.Close())

	failed, added := 0, 0
	for i := 0; i < 50 && failed == 0; i++ { // bbolt may have room left in its pages for a few
		o := portfor(t, db, fmt.Sprintf("svc-%d", i))
		if o.code == 0 {
			added++
		} else {
			failed++
			assert.Equal(t, 1, o.code)
			assert.Empty(t, o.stdout)
			assert.Contains(t, o.stderr, "no space left on device")
			assert.Equal(t, 1, strings.Count(o.stderr, "\n"), o.stderr)
		}
	}
	require.Equal(t, 1, failed, "a full disk must fail a write")
	after := listOf(t, db)
	assert.Contains(t, after, `"name": "first"`, "what was there is still there")
	assert.Equal(t, strings.Count(before, `"name"`)+added, strings.Count(after, `"name"`), "exactly the acknowledged names are new")

	// Room again: it works again, and the registry is consistent.
	require.NoError(t, os.Remove(filepath.Join(dir, "filler")))
	o := portfor(t, db, "after-full")
	require.Equal(t, 0, o.code, o.stderr)
	assert.Contains(t, listOf(t, db), `"name": "after-full"`)
}

func TestReadOnlyRegistryDirectory(t *testing.T) {
	dir := mountTmpfs(t, "1m")
	db := filepath.Join(dir, "registry.db")
	o := portfor(t, db, "known")
	require.Equal(t, 0, o.code)
	port := o.stdout
	require.NoError(t, syscall.Mount("", dir, "", syscall.MS_REMOUNT|syscall.MS_RDONLY, ""))
	before, err := os.ReadFile(db)
	require.NoError(t, err)

	assert.Equal(t, outcome{port, "", 0}, portfor(t, db, "known"), "reading still works")
	assert.Equal(t, outcome{port, "", 0}, portfor(t, db, "get", "known"))
	for _, args := range [][]string{{"new-one"}, {"bind", "x", "9999"}, {"release", "known"}} {
		o := portfor(t, db, args...)
		assert.Equal(t, 1, o.code, "%v", args)
		assert.Contains(t, o.stderr, "read-only file system", "%v", args)
		assert.Equal(t, 1, strings.Count(o.stderr, "\n"))
	}
	after, err := os.ReadFile(db)
	require.NoError(t, err)
	assert.Equal(t, before, after)
}

func TestBadRegistryFilesExit1AndStayAsTheyWere(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.db")
	require.Equal(t, 0, portfor(t, good, "a").code)
	data, err := os.ReadFile(good)
	require.NoError(t, err)

	newer := filepath.Join(dir, "newer.db")
	require.NoError(t, os.WriteFile(newer, data, 0o600))
	raw, err := bolt.Open(newer, 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, raw.Update(func(tx *bolt.Tx) error {
		v := make([]byte, 4)
		binary.BigEndian.PutUint32(v, 99)
		return tx.Bucket([]byte("meta")).Put([]byte("schema"), v)
	}))
	require.NoError(t, raw.Close())

	cases := map[string]string{
		"garbage.db":   "not a portfor registry",
		"truncated.db": "registry file is truncated",
		"newer.db":     "registry written by a newer portfor: schema 99",
		"dir.db":       "is a directory",
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "garbage.db"), []byte("[ports]\nweb=1\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "truncated.db"), data[:len(data)/2], 0o600))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "dir.db"), 0o700))
	for name, want := range cases {
		path := filepath.Join(dir, name)
		before, _ := os.ReadFile(path)
		for _, args := range [][]string{{"web"}, {"get", "a"}, {"list"}, {"release", "a"}, {"pick", fmt.Sprint(os.Getpid())}} {
			o := portfor(t, path, args...)
			assert.Equal(t, 1, o.code, "%s %v: %s", name, args, o.stderr)
			assert.Contains(t, o.stderr, want, "%s %v", name, args)
			assert.Contains(t, o.stderr, path, "the error names the file")
			assert.Equal(t, 1, strings.Count(o.stderr, "\n"))
		}
		after, _ := os.ReadFile(path)
		assert.Equal(t, before, after, "%s left as it was", name)
	}
}

// Every command, gc included, refuses a registry path that holds something
// else: garbage, a FIFO, a directory, a device.
func TestEveryCommandRefusesWhatIsNotARegistry(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	require.NoError(t, os.WriteFile(garbage, []byte("not a registry\n"), 0o600))
	fifo := filepath.Join(dir, "fifo.db")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	directory := filepath.Join(dir, "dir.db")
	require.NoError(t, os.Mkdir(directory, 0o700))
	for _, db := range []string{garbage, fifo, directory, "/dev/null"} {
		for _, args := range [][]string{{"gc"}, {"list"}, {"get", "web"}, {"web"}, {"release", "web"}, {"pick"}} {
			o := portfor(t, db, args...)
			assert.Equal(t, 1, o.code, "%s %v: %+v", db, args, o)
			assert.Empty(t, o.stdout, "%s %v", db, args)
			assert.Regexp(t, `^portfor: .*not a portfor registry.*\n$`, o.stderr, "%s %v", db, args)
		}
	}
}
