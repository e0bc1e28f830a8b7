package registry

import (
	"fmt"
	"unicode"
	"unicode/utf8"

	"github.com/portfor/portfor/internal/portrange"
)

// MaxIDLen is the longest id accepted, in bytes.
const MaxIDLen = 200

// ValidateID reports whether id can name an assignment: 1 to [MaxIDLen]
// bytes of valid UTF-8, printable, with no whitespace, no ':' (it separates
// host and port in addresses) and no leading '-' (it would read as a flag).
// Ids are case-sensitive. The error is an [*IDError] wrapping [ErrInvalidID].
func ValidateID(id string) error {
	reason := ""
	switch {
	case id == "":
		reason = "empty"
	case len(id) > MaxIDLen:
		reason = fmt.Sprintf("longer than %d bytes", MaxIDLen)
	case !utf8.ValidString(id):
		reason = "not valid UTF-8"
	case id[0] == '-':
		reason = "starts with '-'"
	default:
		for _, r := range id {
			switch {
			case r == ':':
				reason = "contains ':'"
			case unicode.IsSpace(r):
				reason = "contains whitespace"
			case !unicode.IsPrint(r):
				reason = fmt.Sprintf("contains unprintable %U", r)
			}
			if reason != "" {
				break
			}
		}
	}
	if reason != "" {
		return &IDError{ID: id, Reason: reason}
	}
	return nil
}

func validatePort(id string, port int) error {
	if port < 1 || port > portrange.MaxPort {
		return &PortError{ID: id, Port: port, Err: ErrInvalidPort}
	}
	return nil
}
