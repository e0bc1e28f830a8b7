package store_test

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/portfor/portfor/store"
)

// Open (creating) a registry file and keep one assignment in it; the
// caller holds the registry's lock around all of this.
func ExampleOpen() {
	dir, _ := os.MkdirTemp("", "store-example")
	defer os.RemoveAll(dir)
	db, err := store.Open(filepath.Join(dir, "registry.db"), store.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	now := time.Now()
	err = db.Update(func(tx *store.Tx) error {
		return tx.Put(store.Entry{ID: "web", Port: 8080, Kind: store.Stable, Created: now, Updated: now})
	})
	fmt.Println(err)
	_ = db.View(func(tx *store.Tx) error {
		owner, _ := tx.PortOwner(8080)
		fmt.Println(owner, tx.Check())
		return nil
	})
	// Output:
	// <nil>
	// web <nil>
}
