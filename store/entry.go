package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// Kind says how a port is held.
type Kind uint8

const (
	// Stable is a name→port assignment that lasts until released.
	Stable Kind = 1
	// Lease is a port held for an owner process, reclaimable once it is gone.
	Lease Kind = 2
)

// String returns "stable" or "lease".
func (k Kind) String() string {
	switch k {
	case Stable:
		return "stable"
	case Lease:
		return "lease"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Entry is one assignment in the registry.
type Entry struct {
	ID      string    // the name the port is held under
	Port    int       // 1-65535
	Kind    Kind      // Stable or Lease
	Created time.Time // when the assignment was made
	Updated time.Time // when it last changed
	// OwnerPID and OwnerStart identify a lease's owner process: its pid and
	// its start time in the OS's own units (clock ticks since boot on Linux),
	// so that a reused pid is not taken for the owner.
	OwnerPID   int
	OwnerStart uint64
	Dir        string // working directory of the process that asked, if known
	Command    string // command line of the owner, if known
	// OwnerNS is the pid namespace OwnerPID is numbered in (on Linux, the
	// namespace's inode number, procinfo.Identity.NS); 0 where unknown,
	// as in every entry written before it was recorded.
	OwnerNS uint64
	// Request names the queued request a lease was made for (the queue's
	// file name), so that a batch that finds the request again, its first
	// holder having died between the commit and the answer, answers it
	// from here instead of leasing twice. Empty for everything else.
	Request string
}

// entryVersion is the first byte of every encoded entry. Fields appended at
// the end do not change it: older readers ignore them and newer ones read
// their zero value from entries that lack them. Only a change older readers
// would misread (a field changing meaning or moving) may bump it.
const entryVersion = 1

// ErrBadEntry is returned when a stored entry cannot be decoded.
var ErrBadEntry = errors.New("bad registry entry")

// maxEntryString bounds Dir, Command and Request: longer strings are not
// decoded, so a longer Command is cut when encoding and a longer Dir or
// Request refused.
const maxEntryString = 1 << 16

// MarshalBinary encodes e (without its ID, which is the key) as a version
// byte, the kind, then varints and length-prefixed strings, then the fields
// added since, in the order they were added: OwnerNS.
func (e Entry) MarshalBinary() ([]byte, error) {
	if e.Port < 1 || e.Port > 65535 {
		return nil, fmt.Errorf("encode entry %q: port %d out of range", e.ID, e.Port)
	}
	if len(e.Dir) > maxEntryString || len(e.Request) > maxEntryString {
		return nil, fmt.Errorf("encode entry %q: a string of more than %d bytes", e.ID, maxEntryString)
	}
	// A command line is only shown, and can be as long as the OS allows
	// (2 MiB on Linux): cut, it still decodes.
	if len(e.Command) > maxEntryString {
		cut := maxEntryString
		for cut > 0 && !utf8.RuneStart(e.Command[cut]) {
			cut--
		}
		e.Command = e.Command[:cut]
	}
	b := make([]byte, 0, 48+len(e.Dir)+len(e.Command))
	b = append(b, entryVersion, byte(e.Kind))
	b = binary.AppendUvarint(b, uint64(e.Port))
	b = binary.AppendVarint(b, e.Created.UnixNano())
	b = binary.AppendVarint(b, e.Updated.UnixNano())
	b = binary.AppendVarint(b, int64(e.OwnerPID))
	b = binary.AppendUvarint(b, e.OwnerStart)
	b = appendString(b, e.Dir)
	b = appendString(b, e.Command)
	b = binary.AppendUvarint(b, e.OwnerNS) // appended: see entryVersion
	if e.Request != "" {
		b = appendString(b, e.Request) // appended likewise
	}
	return b, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// UnmarshalBinary decodes what MarshalBinary wrote; ID is left as it is.
// An appended field missing at the end (an entry written before the field
// was added) decodes as zero; unknown trailing bytes are ignored, so later
// writers can append more.
func (e *Entry) UnmarshalBinary(b []byte) error {
	d := decoder{b: b}
	if v := d.byte(); v != entryVersion {
		return fmt.Errorf("%w: version %d", ErrBadEntry, v)
	}
	e.Kind = Kind(d.byte())
	port := d.uvarint()
	e.Created = unixNano(d.varint())
	e.Updated = unixNano(d.varint())
	pid := d.varint()
	e.OwnerStart = d.uvarint()
	e.Dir = d.string()
	e.Command = d.string()
	e.OwnerNS, e.Request = 0, ""
	if d.err == nil && len(d.b) > 0 {
		e.OwnerNS = d.uvarint()
	}
	if d.err == nil && len(d.b) > 0 {
		e.Request = d.string()
	}
	switch {
	case d.err != nil:
		return d.err
	case port < 1 || port > 65535:
		return fmt.Errorf("%w: port %d", ErrBadEntry, port)
	case e.Kind != Stable && e.Kind != Lease:
		return fmt.Errorf("%w: kind %d", ErrBadEntry, e.Kind)
	case pid < 0 || pid > 1<<31-1:
		return fmt.Errorf("%w: pid %d", ErrBadEntry, pid)
	}
	e.Port = int(port)
	e.OwnerPID = int(pid)
	return nil
}

func unixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: truncated at %s", ErrBadEntry, what)
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail("header")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 { return number(d, binary.Uvarint) }

func (d *decoder) varint() int64 { return number(d, binary.Varint) }

// number reads one varint with read (binary.Uvarint or binary.Varint).
func number[T uint64 | int64](d *decoder, read func([]byte) (T, int)) T {
	v, n := read(d.b)
	if n <= 0 {
		d.fail("number")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > maxEntryString || n > uint64(len(d.b)) {
		d.fail("string")
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}
