package registry

import (
	"errors"
	"fmt"

	"github.com/portfor/portfor/internal/activation"
	"github.com/portfor/portfor/lock"
	"github.com/portfor/portfor/store"
)

var (
	// ErrNotFound is returned when an id has no assignment.
	ErrNotFound = errors.New("not found")
	// ErrInvalidID is returned (in an [*IDError]) for an id that is not a valid name.
	ErrInvalidID = errors.New("invalid id")
	// ErrInvalidPort is returned (in a [*PortError]) for a port outside 1-65535.
	ErrInvalidPort = errors.New("invalid port")
	// ErrPortTaken is returned (in a [*PortError]) when a port belongs to another id.
	ErrPortTaken = errors.New("port taken")
	// ErrIDBound is returned (in a [*PortError]) by [Registry.Bind] when the
	// id already holds a different port.
	ErrIDBound = errors.New("id already holds another port")
	// ErrNoPortAvailable is returned when no suitable free port is left.
	ErrNoPortAvailable = errors.New("no port available")
	// ErrLocked is returned when the registry's lock could not be had before
	// the context or the lock timeout ended; the error names the lock file.
	ErrLocked = lock.ErrLocked
	// ErrNotRegistry is returned when the registry path holds something else.
	ErrNotRegistry = store.ErrNotRegistry
	// ErrTruncated is returned when the registry file is shorter than it says.
	ErrTruncated = store.ErrTruncated
	// ErrNewerSchema is returned when the registry was written by a newer portfor.
	ErrNewerSchema = store.ErrNewerSchema
	// ErrActivationEnv is wrapped by the error of [Registry.Listen] and
	// [Registry.ListenPacket] for a name LISTEN_FDNAMES lists when the
	// socket-activation environment breaks the protocol (a LISTEN_PID that
	// is not a pid; or this process's, with a LISTEN_FDS that is not a
	// count or names that do not match it): which socket is the name's
	// cannot be told, so none is taken and none is bound. (On Unix only:
	// elsewhere sockets are not handed over, and LISTEN_* is not read.)
	ErrActivationEnv = activation.ErrEnv
)

// IDError describes an id that was rejected.
type IDError struct {
	ID     string
	Reason string // e.g. "contains whitespace"
}

// Error returns e.g. `invalid id "my service": contains whitespace`.
func (e *IDError) Error() string {
	if len(e.ID) > 64 { // a pasted file is not echoed whole
		return fmt.Sprintf("invalid id %q… (%d bytes): %s", e.ID[:64], len(e.ID), e.Reason)
	}
	return fmt.Sprintf("invalid id %q: %s", e.ID, e.Reason)
}

// Unwrap returns ErrInvalidID.
func (e *IDError) Unwrap() error { return ErrInvalidID }

// PortError describes a port that could not be used for an id.
type PortError struct {
	ID    string // the id asked for, if any
	Port  int    // the port asked for
	Owner string // the id holding Port (ErrPortTaken), if known
	Held  int    // the port ID already holds (ErrIDBound), if any
	Err   error  // ErrInvalidPort, ErrPortTaken or ErrIDBound
}

// Error returns a one-line message naming the id, the port and the conflict.
func (e *PortError) Error() string {
	switch {
	case errors.Is(e.Err, ErrPortTaken) && IsLeaseID(e.Owner):
		return fmt.Sprintf("port %d: leased (held until its owner process exits)", e.Port)
	case errors.Is(e.Err, ErrPortTaken) && e.Owner != "":
		return fmt.Sprintf("port %d: already assigned to %q", e.Port, e.Owner)
	case errors.Is(e.Err, ErrIDBound):
		return fmt.Sprintf("%q already holds port %d, not %d (release it first)", e.ID, e.Held, e.Port)
	case errors.Is(e.Err, ErrInvalidPort):
		return fmt.Sprintf("invalid port %d: want 1-65535", e.Port)
	}
	return fmt.Sprintf("port %d: %v", e.Port, e.Err)
}

// Unwrap returns e.Err.
func (e *PortError) Unwrap() error { return e.Err }
