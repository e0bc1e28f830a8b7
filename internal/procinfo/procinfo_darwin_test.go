package procinfo

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestProgramCommandDarwin checks what kern.proc.pid and kern.procargs2
// tell of this process: p_comm is the executable's name, cut at 16 bytes,
// and the command line starts with the path the test binary was run by.
func TestProgramCommandDarwin(t *testing.T) {
	exe := filepath.Base(os.Args[0])
	assert.Equal(t, exe[:min(len(exe), 16)], Program(os.Getpid()))
	assert.True(t, strings.HasPrefix(Command(os.Getpid()), os.Args[0]), Command(os.Getpid()))
	assert.Empty(t, Program(-1))
}
