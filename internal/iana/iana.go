package iana

import "sort"

// portRange is an inclusive range of TCP port numbers.
type portRange struct{ lo, hi uint16 }

// Registered reports whether port is registered by IANA for a named service
// on TCP. Ports outside 0..65535 are never registered, nor is port 0.
func Registered(port int) bool {
	if port < 0 || port > 65535 {
		return false
	}
	p := uint16(port)
	i := sort.Search(len(registeredTCP), func(i int) bool { return registeredTCP[i].hi >= p })
	return i < len(registeredTCP) && registeredTCP[i].lo <= p
}

// Source returns a one-line description of the data source and its date.
func Source() string { return source }

// Count returns the number of registered TCP ports.
func Count() int { return registeredCount }
