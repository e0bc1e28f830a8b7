// Package registry is portfor's public API: a persistent name→port registry
// shared by every process on a host.
//
// A registry lives in one bbolt file (see [DefaultPath]) guarded by a sidecar
// lock file, "<path>.lock". Every operation takes the lock (shared to read,
// exclusive to write), opens the file, runs one transaction, closes the file
// and lets the lock go. No file stays open between calls, except while a
// [Held] registry is held (a port server holds it for a few milliseconds),
// so dozens of processes can share one registry, and a write is on disk
// when its call returns. docs/design.md in the repository describes the
// lock protocol, the group commit and the files.
//
//	path, err := registry.DefaultPath()
//	...
//	reg, err := registry.Open(path, registry.Options{})
//	...
//	port, err := reg.ForwardPort(ctx, "my-service", 8000) // the same port from now on (ForwardPort: "the port for this name")
//	...
//	_, err = reg.Release(ctx, "my-service")
//
// # Guarantees
//
//   - One id, one port: concurrent ForwardPort calls for a new id, in any
//     processes, all return the same port.
//   - One port, one id: no two ids are ever assigned the same port.
//   - Nothing acknowledged is lost: a call that returned a port has committed
//     and synced it.
//
// # Caveats
//
// A port that is free when portfor hands it out can be taken by any other
// program a moment later; portfor only keeps its own users from colliding.
// Lock waits end after [Options.LockTimeout] (default [DefaultLockTimeout])
// or when the context ends, with an error wrapping [ErrLocked] that names
// the lock file. The registry assumes a local file system: flock on NFS is
// only as good as the server's emulation.
package registry
