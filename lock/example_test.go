package lock_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/portfor/portfor/lock"
)

// Take a sidecar lock exclusively, waiting at most a second for it; a
// second holder is refused while the first keeps it.
func ExampleAcquire() {
	dir, _ := os.MkdirTemp("", "lock-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "data.lock")

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l, err := lock.Acquire(ctx, path, lock.Exclusive, lock.Perm(0o600))
	if err != nil {
		fmt.Println(err)
		return
	}
	_, ok, _ := lock.TryAcquire(path, lock.Shared)
	fmt.Println("shared while held exclusively:", ok)
	fmt.Println(l.Check()) // still the file at the path
	fmt.Println(l.Unlock())
	// Output:
	// shared while held exclusively: false
	// <nil>
	// <nil>
}
