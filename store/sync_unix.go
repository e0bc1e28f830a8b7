//go:build unix

package store

import (
	"os"
	"syscall"
)

const noFollow = syscall.O_NOFOLLOW

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
