package registry

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/portfor/portfor/internal/portrange"
	"github.com/portfor/portfor/internal/procinfo"
	"github.com/portfor/portfor/store"
)

// request is one unit of work for a batch: a port for a new stable id, or
// Count leased ports for an owner process.
type request struct {
	Kind      store.Kind
	ID        string            // Stable: the id
	Suggested int               // Stable: the suggested port; Lease: the port to start near
	Count     int               // Lease: how many ports
	Ports     PortList          // Lease: where to look (nil: anywhere suitable)
	Owner     procinfo.Identity // Lease: the lease's owner
	Dir       string            // working directory of the asking process
	Command   string            // Lease: the owner's command line
	Token     string            // Lease, queued: the queue's name for it, recorded with the lease
	// bind, for a caller's own request only (it never travels through the
	// queue), makes the socket of Listen on the port as it is chosen or
	// found, under the exclusive lock (see listen.go).
	bind *binder
}

// Requests travel through the cross-process queue (docs/design.md, "Group
// commit") as "key value" lines after a header that carries the format's
// version; free text is quoted. Version 1 (with FIFOs) used other file
// names, which this version never reads. A stable request:
//
//	portfor-request 2
//	id web
//	port 8000
//	dir "/home/me/src/app"
//
// and a lease:
//
//	portfor-request 2
//	lease 2
//	near 0
//	ports 15000-15999        ("-": anywhere)
//	owner 4242 123456 4026531836
//	dir "/home/me"
//	cmd "go test ./..."
const requestHeader = "portfor-request 2"

// errBadRequest marks a queued payload that is not a valid request.
var errBadRequest = errors.New("malformed queued request")

// marshal encodes a request as a queue payload.
func (q request) marshal() []byte {
	if q.Kind == store.Lease {
		ports := "-"
		if len(q.Ports) > 0 {
			ports = q.Ports.String()
		}
		return fmt.Appendf(nil, "%s\nlease %d\nnear %d\nports %s\nowner %d %d %d\ndir %s\ncmd %s\n", requestHeader,
			q.Count, q.Suggested, ports, q.Owner.PID, q.Owner.Start, q.Owner.NS, strconv.Quote(q.Dir), strconv.Quote(q.Command))
	}
	return fmt.Appendf(nil, "%s\nid %s\nport %d\ndir %s\n", requestHeader, q.ID, q.Suggested, strconv.Quote(q.Dir))
}

// parseRequest reads what marshal wrote and validates it.
func parseRequest(b []byte) (request, error) {
	if len(b) == 0 || b[len(b)-1] != '\n' {
		return request{}, errBadRequest
	}
	lines := strings.Split(string(b[:len(b)-1]), "\n")
	if lines[0] != requestHeader || len(lines) < 2 {
		return request{}, errBadRequest
	}
	keys := []string{"id", "port", "dir"}
	q := request{Kind: store.Stable}
	if strings.HasPrefix(lines[1], "lease ") {
		keys = []string{"lease", "near", "ports", "owner", "dir", "cmd"}
		q.Kind = store.Lease
	}
	if len(lines) != len(keys)+1 {
		return request{}, errBadRequest
	}
	for i, key := range keys {
		val, ok := strings.CutPrefix(lines[i+1], key+" ")
		if !ok || parseField(&q, key, val) != nil {
			return request{}, errBadRequest
		}
	}
	if q.Suggested < 0 || q.Suggested > portrange.MaxPort {
		return request{}, errBadRequest
	}
	if q.Kind == store.Stable && validateKey(q.ID) != nil {
		return request{}, errBadRequest
	}
	if q.Kind == store.Lease && (q.Count < 1 || q.Count > MaxLeaseN || q.Owner.PID <= 0) {
		return request{}, errBadRequest
	}
	return q, nil
}

// parseField sets one field of q from its line.
func parseField(q *request, key, val string) (err error) {
	switch key {
	case "id":
		q.ID = val
	case "port", "near":
		q.Suggested, err = strconv.Atoi(val)
	case "lease":
		q.Count, err = strconv.Atoi(val)
	case "ports":
		if val != "-" {
			q.Ports, err = ParsePorts(val)
		}
	case "owner":
		f := strings.Fields(val)
		if len(f) != 3 {
			return errBadRequest
		}
		var pid int
		var start, ns uint64
		pid, err = strconv.Atoi(f[0])
		if err == nil {
			start, err = strconv.ParseUint(f[1], 10, 64)
		}
		if err == nil {
			ns, err = strconv.ParseUint(f[2], 10, 64)
		}
		q.Owner = procinfo.Identity{PID: pid, Start: start, NS: ns}
	case "dir":
		q.Dir, err = strconv.Unquote(val)
	case "cmd":
		q.Command, err = strconv.Unquote(val)
	}
	return err
}
