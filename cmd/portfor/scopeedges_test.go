package main

import (
	"context"
	"maps"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// `release` with no NAME frees a whole scope only when --scope is typed:
// with $PORTFOR_SCOPE exported for a worktree, `portfor release $NAMES`
// with an empty $NAMES must be a usage error, not the end of the scope.
func TestReleaseWithoutNamesUnderPORTFORSCOPE(t *testing.T) {
	db := filepath.Join(t.TempDir(), "registry.db")
	t.Setenv("PORTFOR_DB", db)
	t.Setenv("PORTFOR_SCOPE", "feat")
	var out, errOut strings.Builder
	require.Equal(t, 0, runApp(context.Background(), []string{"portfor", "forward", "web", "api"}, &out, &errOut), errOut.String())
	out.Reset()
	errOut.Reset()
	code := runApp(context.Background(), []string{"portfor", "release"}, &out, &errOut)
	assert.Equal(t, exitUsage, code, "stdout %q stderr %q", out.String(), errOut.String())
	out.Reset()
	require.Equal(t, 0, runApp(context.Background(), []string{"portfor", "list"}, &out, &errOut))
	assert.Contains(t, out.String(), "web", "the scope's names were freed")
}

// --compose promises "parallel Compose projects share no containers":
// scopes that lower-casing or other characters would merge ("App" and
// "app", "a.b" and "a-b", "_x" and "x", all-non-ASCII ones) get the
// scope's hash after the name.
func TestComposeProjectIsOnePerScope(t *testing.T) {
	for _, pair := range [][2]string{{"App", "app"}, {"a.b", "a-b"}, {"_x", "x"}, {"功能", "测试"}} {
		assert.NotEqual(t, composeProject(pair[0]), composeProject(pair[1]), "scopes %q and %q share a Compose project", pair[0], pair[1])
	}
}

// The quick path with scopes, against the full path.
func TestQuickHitScopes(t *testing.T) {
	setup := func(t *testing.T) string {
		db := filepath.Join(t.TempDir(), "registry.db")
		var out, errOut strings.Builder
		for _, args := range [][]string{{"forward", "web"}, {"--scope", "s1", "forward", "web", "s1"}, {"--scope", "s2", "forward", "api"}} {
			require.Equal(t, 0, runApp(context.Background(), append([]string{"portfor", "--db", db}, args...), &out, &errOut), errOut.String())
		}
		return db
	}
	for _, c := range []struct {
		env  map[string]string
		args []string
	}{
		{map[string]string{"PORTFOR_SCOPE": "s1"}, []string{"web"}},
		{map[string]string{"PORTFOR_SCOPE": "s1"}, []string{"--scope=", "web"}},
		{map[string]string{"PORTFOR_SCOPE": "s1"}, []string{"--scope", "", "web"}},
		{map[string]string{"PORTFOR_SCOPE": "s1"}, []string{"--scope", "s2", "api"}},
		{map[string]string{"PORTFOR_SCOPE": ""}, []string{"--scope", "s1", "web"}},
		{map[string]string{"PORTFOR_SCOPE": " s1"}, []string{"web"}},
		{map[string]string{"PORTFOR_SCOPE": "lease"}, []string{"web"}},
		{map[string]string{"PORTFOR_SCOPE": "auto"}, []string{"web"}},
		{nil, []string{"web", "--scope", "s1"}},
		{nil, []string{"--scope", "s1", "--scope", "s2", "api"}},
		{nil, []string{"--scope", "s1", "s1"}},
		{nil, []string{"--scope=s1=x", "web"}},
		{nil, []string{"-scope", "s1", "web"}},
		{nil, []string{"--scope", "--db", "web"}},
		{nil, []string{"--scope"}},
		{nil, []string{"web", "--scope"}},
		{nil, []string{"s1:web"}},
		{nil, []string{"--scope", "s1:x", "web"}},
		{nil, []string{"--scope", "AUTO", "web"}},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			t.Chdir(t.TempDir())
			env := map[string]string{"PORTFOR_LOCK_TIMEOUT": "5s", "PORTFOR_SCOPE": ""}
			maps.Copy(env, c.env)
			assert.Equal(t, runOn(t, runApp, setup, env, c.args...), runOn(t, run, setup, env, c.args...))
		})
	}
}

// Name completion offers the current scope's names only (PORTFOR_SCOPE or
// --scope on the line): another scope's names would be created here by
// the shorthand, and "web" would be offered once per scope.
func TestCompletionOffersTheCurrentScopesNames(t *testing.T) {
	db := filepath.Join(t.TempDir(), "registry.db")
	t.Setenv("PORTFOR_DB", db)
	var out, errOut strings.Builder
	require.Equal(t, 0, runApp(context.Background(), []string{"portfor", "--scope", "s1", "forward", "onlyins1", "web"}, &out, &errOut), errOut.String())
	require.Equal(t, 0, runApp(context.Background(), []string{"portfor", "forward", "web"}, &out, &errOut), errOut.String())
	t.Setenv("PORTFOR_SCOPE", "s2")
	out.Reset()
	require.Equal(t, 0, runApp(context.Background(), []string{"portfor", "completion", completeArg, "--", "get", ""}, &out, &errOut), errOut.String())
	assert.NotContains(t, out.String(), "onlyins1", "a name of scope s1 offered in scope s2")
	assert.LessOrEqual(t, strings.Count(out.String(), "web\t"), 1, "one name offered twice:\n%s", out.String())
}
