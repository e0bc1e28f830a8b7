package registry

import (
	"hash/fnv"

	"github.com/portfor/portfor/internal/iana"
	"github.com/portfor/portfor/internal/portrange"
)

// MinPort is the lowest port portfor assigns on its own: below it, binding
// needs privileges.
const MinPort = 1024

// osRanges reads the OS's ephemeral and reserved ports once per handle.
// A failure to read them leaves the documented fallbacks in place.
func (r *Registry) osRanges() (portrange.Range, portrange.List) {
	r.rangesOnce.Do(func() {
		r.ephemeral, _ = portrange.Ephemeral()
		r.reserved, _ = portrange.Reserved()
	})
	return r.ephemeral, r.reserved
}

// IsEphemeral reports whether port lies in the OS's ephemeral range, from
// which the kernel picks ports for outgoing connections: a service there may
// find its port taken by a client connection.
func (r *Registry) IsEphemeral(port int) bool {
	eph, _ := r.osRanges()
	return eph.Contains(port)
}

// goodForAuto reports whether port may be picked without being asked for by
// number: not privileged, not ephemeral, not reserved, not IANA-registered.
func (r *Registry) goodForAuto(port int) bool {
	eph, reserved := r.osRanges()
	return port >= MinPort && port <= portrange.MaxPort && !eph.Contains(port) &&
		!reserved.Contains(port) && !iana.Registered(port)
}

// autoStart maps id onto the ports outside the ephemeral range, so that one
// name starts its search at the same port on hosts with the same range.
func (r *Registry) autoStart(id string) int {
	eph, _ := r.osRanges()
	h := fnv.New32a()
	h.Write([]byte(id))
	below := max(0, min(eph.First, portrange.MaxPort+1)-MinPort) // ports MinPort..eph.First-1
	above := max(0, portrange.MaxPort-max(eph.Last, MinPort-1))  // ports eph.Last+1..MaxPort
	n := below + above
	if n == 0 {
		return MinPort
	}
	i := int(h.Sum32() % uint32(n))
	if i < below {
		return MinPort + i
	}
	return max(eph.Last, MinPort-1) + 1 + (i - below)
}

// scan returns the first port from start upward, wrapping once from MaxPort
// to MinPort, that is good for automatic use and passes usable.
func (r *Registry) scan(start int, usable func(int) (bool, error)) (int, error) {
	start = max(start, MinPort)
	span := portrange.MaxPort - MinPort + 1
	for i := 0; i < span; i++ {
		port := MinPort + (start-MinPort+i)%span
		if !r.goodForAuto(port) {
			continue
		}
		ok, err := usable(port)
		if err != nil {
			return 0, err
		}
		if ok {
			return port, nil
		}
	}
	return 0, ErrNoPortAvailable
}
