package dotenv

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Two `portfor env --write .env` at once (a Makefile with -j, two
// services' start scripts) keep each other's variables: Updates of one
// directory take turns.
func TestConcurrentUpdatesKeepEveryVariable(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".env")
	for round := range 10 {
		require.NoError(t, os.WriteFile(path, []byte("KEEP=1\n"), 0o644))
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := Update(path, []Var{{Name: fmt.Sprintf("V%d_PORT", i), Value: "1"}})
				assert.NoError(t, err)
			}()
		}
		wg.Wait()
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		got := map[string]bool{}
		for _, bd := range Parse(b) {
			got[bd.Key] = true
		}
		for i := range 8 {
			if !assert.True(t, got[fmt.Sprintf("V%d_PORT", i)], "round %d: V%d_PORT lost:\n%s", round, i, b) {
				return
			}
		}
	}
}
