package portrange

import (
	"fmt"
	"os"
)

const (
	ephemeralFile = "/proc/sys/net/ipv4/ip_local_port_range"
	reservedFile  = "/proc/sys/net/ipv4/ip_local_reserved_ports"
)

func ephemeral() (Range, error) {
	b, err := os.ReadFile(ephemeralFile)
	if err != nil {
		return fallbackEphemeral(), fmt.Errorf("read ephemeral port range: %w", err)
	}
	r, err := parseKernelRange(string(b))
	if err != nil {
		return fallbackEphemeral(), fmt.Errorf("read %s: %w", ephemeralFile, err)
	}
	return r, nil
}

func reserved() (List, error) {
	b, err := os.ReadFile(reservedFile)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read reserved ports: %w", err)
	}
	l, err := parseKernelList(string(b))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", reservedFile, err)
	}
	return l, nil
}
