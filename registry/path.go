package registry

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
)

// EnvDB names the environment variable that overrides [DefaultPath].
const EnvDB = "PORTFOR_DB"

// DefaultPath returns where the registry lives when no path is given:
// $PORTFOR_DB when set; else, on Linux and other Unix systems,
// $XDG_STATE_HOME/portfor/registry.db, falling back to
// ~/.local/state/portfor/registry.db; on macOS
// ~/Library/Application Support/portfor/registry.db; on Windows
// %LocalAppData%\portfor\registry.db.
func DefaultPath() (string, error) {
	if p := os.Getenv(EnvDB); p != "" {
		return p, nil
	}
	return defaultPath(runtime.GOOS, os.Getenv, os.UserHomeDir)
}

func defaultPath(goos string, getenv func(string) string, home func() (string, error)) (string, error) {
	const name = "registry.db"
	switch goos {
	case "windows":
		if d := getenv("LocalAppData"); d != "" {
			return filepath.Join(d, "portfor", name), nil
		}
	case "darwin", "ios":
		h, err := home()
		if err == nil && h != "" {
			return filepath.Join(h, "Library", "Application Support", "portfor", name), nil
		}
	default:
		if d := getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
			return filepath.Join(d, "portfor", name), nil
		}
		h, err := home()
		if err == nil && h != "" {
			return filepath.Join(h, ".local", "state", "portfor", name), nil
		}
	}
	return "", fmt.Errorf("no default registry path: set %s or HOME: %w", EnvDB, errors.ErrUnsupported)
}
