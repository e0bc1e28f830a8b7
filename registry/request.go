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
}

// Only stable requests travel through the cross-process queue (see
// docs/design.md, "Group commit"): a stable assignment is idempotent, so a
// queued caller needs no answer, it reads its id back from the registry.
// The payload is "key value" lines after a header that carries the format's
// version; free text is quoted. Version 1 (with leases, answers and FIFOs)
// used other file names, which this version never reads.
const requestHeader = "portfor-request 2"

// errBadRequest marks a queued payload that is not a valid request.
var errBadRequest = errors.New("malformed queued request")

// marshal encodes a stable request as a queue payload.
func (q request) marshal() []byte {
	return fmt.Appendf(nil, "%s\nid %s\nport %d\ndir %s\n", requestHeader, q.ID, q.Suggested, strconv.Quote(q.Dir))
}

// parseRequest reads what marshal wrote and validates it.
func parseRequest(b []byte) (request, error) {
	if len(b) == 0 || b[len(b)-1] != '\n' {
		return request{}, errBadRequest
	}
	lines := strings.Split(string(b[:len(b)-1]), "\n")
	if lines[0] != requestHeader || len(lines) != 4 {
		return request{}, errBadRequest
	}
	q := request{Kind: store.Stable}
	var err error
	for i, key := range []string{"id", "port", "dir"} {
		val, ok := strings.CutPrefix(lines[i+1], key+" ")
		if !ok {
			return request{}, errBadRequest
		}
		switch key {
		case "id":
			q.ID = val
		case "port":
			q.Suggested, err = strconv.Atoi(val)
		case "dir":
			q.Dir, err = strconv.Unquote(val)
		}
		if err != nil {
			return request{}, errBadRequest
		}
	}
	if ValidateID(q.ID) != nil || q.Suggested < 0 || q.Suggested > portrange.MaxPort {
		return request{}, errBadRequest
	}
	return q, nil
}
