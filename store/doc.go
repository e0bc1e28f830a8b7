// Package store keeps the portfor registry in a bbolt file: who holds which
// port, with both directions indexed and changed together.
//
// # Layout
//
// Three buckets:
//
//   - "ids":   id → encoded [Entry] (see [Entry.MarshalBinary])
//   - "ports": 2-byte big-endian port → id, the uniqueness index
//   - "meta":  "schema" → 4-byte big-endian schema version, "app" → "portfor"
//
// [Tx.Put] and [Tx.Delete] change "ids" and "ports" in the same bbolt
// transaction, so the two indexes never disagree on disk.
//
// # Files
//
// A new registry is written to a temporary file in the same directory
// (created 0700 if missing), filled with the buckets, synced and renamed
// into place: a registry path never holds a half-made file. An existing file
// is checked before bbolt maps it: an empty file, a file that is not a bbolt
// database, one whose meta pages point past its end (truncated), a bbolt
// database of another program, or one with a newer schema is refused with an
// error naming the path, and is left byte-for-byte as it was.
//
// # Caveats
//
// Package store does no locking of its own beyond bbolt's: callers (package
// registry) hold the sidecar lock from package lock around every Open/Close,
// shared for [Open] with ReadOnly and exclusive otherwise. A DB is meant to be
// opened for one transaction and closed, so that no process keeps the file.
package store
