package registrytest

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestPrivateDirIsMadeTheUsersOwn(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "portfor-x")
	if err := privateDir(dir); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o700 {
		t.Errorf("mode %#o, want 0700", fi.Mode().Perm())
	}
	if err := privateDir(dir); err != nil {
		t.Errorf("the second time: %v", err)
	}
}

func TestPrivateDirRefusesWhatOthersCouldControl(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no owners or permission bits to check here")
	}
	base := t.TempDir()
	open := filepath.Join(base, "open")
	if err := os.Mkdir(open, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := privateDir(open); err == nil || !strings.Contains(err.Error(), "may be written by others") {
		t.Errorf("a directory everyone may write: %v", err)
	}
	link := filepath.Join(base, "link")
	if err := os.Symlink(t.TempDir(), link); err != nil {
		t.Fatal(err)
	}
	if err := privateDir(link); err == nil {
		t.Error("a symbolic link to a directory was taken")
	}
	if os.Geteuid() != 0 {
		return
	}
	theirs := filepath.Join(base, "theirs")
	if err := os.Mkdir(theirs, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(theirs, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if err := privateDir(theirs); err == nil || !strings.Contains(err.Error(), "belongs to uid 65534") {
		t.Errorf("another user's directory: %v", err)
	}
}
