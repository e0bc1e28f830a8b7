package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestOccupiedSaysWho runs check, a failing bind and a forward whose port
// is taken against a real listener in a child process: each says on
// stderr which program, pid and directory hold the port.
func TestOccupiedSaysWho(t *testing.T) {
	skipUnlessLinux(t)
	db := newDB(t)
	l, ok := startListener(t, "", nil, "", "tcp4", "127.0.0.1:0")
	require.True(t, ok)
	port := strconv.Itoa(l.port)
	holder := fmt.Sprintf("%s (pid %d) in %s", program(), l.pid, l.dir)

	o := portfor(t, db, "check", port)
	assert.Equal(t, outcome{"occupied\n", fmt.Sprintf("portfor: localhost:%s: occupied by %s\n", port, holder), 1}, o)

	require.Equal(t, 0, portfor(t, db, "bind", "web", port).code)
	o = portfor(t, db, "bind", "api", port)
	assert.Equal(t, 1, o.code)
	assert.Equal(t, fmt.Sprintf("portfor: bind \"api\": port %s: already assigned to \"web\"; occupied now by %s\n", port, holder), o.stderr)

	o = portfor(t, db, "forward", "db", port)
	require.Equal(t, 0, o.code, o.stderr)
	got := strings.TrimSpace(o.stdout)
	assert.NotEqual(t, port, got)
	assert.Equal(t, fmt.Sprintf("portfor: db got %s: %s is occupied by %s\n", got, port, holder), o.stderr)

	// UDP: check --udp names the UDP socket's holder, and a TCP check of
	// the same port number says nothing of it.
	u, ok := startListener(t, "", nil, "", "udp4", "127.0.0.1:0")
	require.True(t, ok)
	o = portfor(t, db, "check", "--udp", strconv.Itoa(u.port))
	assert.Equal(t, outcome{"occupied\n", fmt.Sprintf("portfor: localhost:%d: occupied by %s (pid %d) in %s\n", u.port, program(), u.pid, u.dir), 1}, o)

	// A port of another host is not looked up here.
	o = portfor(t, db, "check", "192.0.2.1:"+port)
	assert.NotContains(t, o.stderr, "occupied by")
}

// TestListUp checks list's UP column, --up and the JSON listeners against
// real listeners, one of them shared by two processes.
func TestListUp(t *testing.T) {
	skipUnlessLinux(t)
	db := newDB(t)
	o := portfor(t, db, "forward", "down", "web", "both")
	require.Equal(t, 0, o.code, o.stderr)
	ports := strings.Fields(o.stdout)
	web, ok := startListener(t, "", nil, "", "tcp4", "127.0.0.1:"+ports[1])
	require.True(t, ok)
	b1, ok := startListener(t, "", nil, "", "tcp4", "127.0.0.1:"+ports[2])
	require.True(t, ok)
	b2, ok := startListener(t, "", nil, "", "udp4", "127.0.0.1:"+ports[2])
	require.True(t, ok)

	o = portfor(t, db, "list")
	require.Equal(t, 0, o.code, o.stderr)
	assert.Empty(t, o.stderr)
	rows := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(o.stdout), "\n") {
		f := strings.Fields(line)
		rows[f[0]] = f
	}
	require.Equal(t, []string{"NAME", "SCOPE", "PORT", "KIND", "UP", "CREATED", "DIR"}, rows["NAME"])
	assert.Equal(t, "-", rows["down"][4])
	assert.Equal(t, fmt.Sprintf("%d/%s", web.pid, program()), rows["web"][4])
	// Holders come by port, then TCP before UDP: b1 first, b2 counted.
	assert.Equal(t, fmt.Sprintf("%d/%s,+1", b1.pid, program()), rows["both"][4])
	assert.NotEqual(t, b1.pid, b2.pid)

	o = portfor(t, db, "list", "--up")
	require.Equal(t, 0, o.code, o.stderr)
	assert.NotContains(t, o.stdout, "down")
	assert.Contains(t, o.stdout, "web")
	assert.Contains(t, o.stdout, "both")

	o = portfor(t, db, "list", "--json")
	require.Equal(t, 0, o.code, o.stderr)
	var got []struct {
		Name      string     `json:"name"`
		Up        *bool      `json:"up"`
		Listeners []whoEntry `json:"listeners"`
	}
	require.NoError(t, json.Unmarshal([]byte(o.stdout), &got), o.stdout)
	require.Len(t, got, 3)
	byName := map[string]int{}
	for i, e := range got {
		byName[e.Name] = i
		require.NotNil(t, e.Up, e.Name)
	}
	assert.False(t, *got[byName["down"]].Up)
	assert.Empty(t, got[byName["down"]].Listeners)
	w := got[byName["web"]]
	assert.True(t, *w.Up)
	require.Len(t, w.Listeners, 1)
	assert.Equal(t, "tcp", w.Listeners[0].Proto)
	assert.Equal(t, web.pid, w.Listeners[0].Processes[0].PID)
	assert.Equal(t, web.dir, w.Listeners[0].Processes[0].Dir)
	assert.Len(t, got[byName["both"]].Listeners, 2)
}

// TestListFlagsAServerInAnotherWorktree starts the server of the main
// worktree's name from inside a linked worktree: list flags the row and
// says whose directory the process runs in, and doctor notes it. The
// worktree's own server on its own port is not flagged.
func TestListFlagsAServerInAnotherWorktree(t *testing.T) {
	skipUnlessLinux(t)
	db := newDB(t)
	root, wts := gitRepo(t, "feature")
	feature := wts[0]
	o := inDir(t, root, db, nil, "web")
	require.Equal(t, 0, o.code, o.stderr)
	mainPort := strings.TrimSpace(o.stdout)
	o = inDir(t, feature, db, nil, "--scope", "auto", "web")
	require.Equal(t, 0, o.code, o.stderr)
	featPort := strings.TrimSpace(o.stdout)

	realFeature, err := filepath.EvalSymlinks(feature)
	require.NoError(t, err)
	// The feature worktree's server, by mistake on main's port, and on
	// its own port: only the first is flagged.
	wrong, ok := startListener(t, "", nil, feature, "tcp4", "127.0.0.1:"+mainPort)
	require.True(t, ok)
	right, ok := startListener(t, "", nil, feature, "tcp4", "127.0.0.1:"+featPort)
	require.True(t, ok)

	o = inDir(t, root, db, nil, "list")
	require.Equal(t, 0, o.code, o.stderr)
	var rowMain, rowFeat string
	for _, line := range strings.Split(o.stdout, "\n") {
		switch f := strings.Fields(line); {
		case len(f) > 3 && f[2] == mainPort:
			rowMain = f[4]
		case len(f) > 3 && f[2] == featPort:
			rowFeat = f[4]
		}
	}
	assert.Equal(t, fmt.Sprintf("%d/%s!", wrong.pid, program()), rowMain, o.stdout)
	assert.Equal(t, fmt.Sprintf("%d/%s", right.pid, program()), rowFeat, o.stdout)
	note := regexp.MustCompile(fmt.Sprintf(`^portfor: web's port %s is held by %s \(pid %d\) running in %s, the directory of scope app-feature-[0-9a-f]+ \(web\)\n$`,
		mainPort, regexp.QuoteMeta(program()), wrong.pid, regexp.QuoteMeta(realFeature)))
	assert.Regexp(t, note, o.stderr)

	o = inDir(t, root, db, nil, "who", "--json", mainPort)
	require.Equal(t, 0, o.code, o.stderr)
	assert.Contains(t, o.stdout, `"elsewhere": {`)
	assert.Contains(t, o.stdout, `"dir": "`+realFeature+`"`)

	o = inDir(t, root, db, nil, "doctor")
	assert.Contains(t, o.stdout, fmt.Sprintf("web: port %s is held by pid %d (%s) running in %s, the directory of scope app-feature-", mainPort, wrong.pid, program(), realFeature), o.stdout)
}

// TestQuickWhoAnswersAsTheFullPath runs who command lines with and without
// the quick path, against a listener of this process on a registered
// name's port: the same output, errors and status.
func TestQuickWhoAnswersAsTheFullPath(t *testing.T) {
	skipUnlessLinux(t)
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	held := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	free := strconv.Itoa(freePort(t))
	setup := func(t *testing.T) string {
		db := filepath.Join(t.TempDir(), "registry.db")
		var out, errOut strings.Builder
		require.Equal(t, 0, runApp(context.Background(), []string{"portfor", "--db", db, "bind", "web", held}, &out, &errOut), errOut.String())
		require.Equal(t, 0, runApp(context.Background(), []string{"portfor", "--db", db, "--scope", "s", "bind", "api", free}, &out, &errOut), errOut.String())
		return db
	}
	for _, args := range [][]string{
		{"who", held}, {"who", "web"}, {"who", "--json", "web"}, {"who", held, "--json"}, {"--db", "DB", "who", "web"},
		{"who", free}, {"who", "--json", free}, {"who", "nosuch"}, {"who", "0"}, {"who", "065535"}, {"who", "70000"},
		{"who"}, {"who", "web", "api"}, {"who", "-x", "web"}, {"who", "--json=false", "web"}, {"who", "api"},
		{"--scope", "s", "who", "api"}, {"--scope=s", "who", "--json", "api"}, {"who", ""}, {"who", "--", "web"},
		{"--lock-timeout", "soon", "who", "web"}, {"who", "-h"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Setenv("PORTFOR_DB", "")
			assert.Equal(t, runOn(t, runApp, setup, nil, args...), runOn(t, run, setup, nil, args...))
		})
	}
	var code int
	t.Setenv("PORTFOR_DB", filepath.Join(t.TempDir(), "registry.db"))
	assert.True(t, quickWho(context.Background(), []string{"portfor", "who", held}, io.Discard, io.Discard, &code))
	assert.Equal(t, 0, code)
}
