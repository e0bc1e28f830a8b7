package registry_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/portfor/portfor/registry"
)

// A lease holds a port for the calling process until it is released or the
// process exits; ReleaseLease gives it back only if it is still this lease.
func ExampleRegistry_Lease() {
	reg, done, err := exampleRegistry()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer done()
	ctx := context.Background()
	a, err := reg.Lease(ctx, registry.LeaseOptions{Ports: registry.PortList{{First: 15000, Last: 15999}}})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(a.Port >= 15000 && a.Port <= 15999, a.Kind, a.OwnerPID == os.Getpid())
	fmt.Println(reg.ReleaseLease(ctx, a))
	// Output:
	// true lease true
	// <nil>
}

// Listen binds a name's port, assigning one the first time: a server
// started twice gets the same port. In a process that `portfor run
// --listen my-service -- CMD` started, the same call returns the socket portfor
// bound for it.
func ExampleRegistry_Listen() {
	reg, done, err := exampleRegistry()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer done()
	ctx := context.Background()
	l, err := reg.Listen(ctx, "my-service", registry.ListenOptions{}) // 127.0.0.1; Address sets another
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close() // or: http.Serve(l, handler)
	port, err := reg.ForwardPort(ctx, "my-service", 0)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(l.Addr().(*net.TCPAddr).Port == port)
	// Another listener on the port fails while this one is open, and says who holds it.
	_, err = reg.Listen(ctx, "my-service", registry.ListenOptions{})
	fmt.Println(errors.Is(err, registry.ErrPortInUse))
	// Output:
	// true
	// true
}

// ListenLease binds a port leased for the calling process: closing the
// listener ends the lease (so does the process's exit).
func ExampleRegistry_ListenLease() {
	reg, done, err := exampleRegistry()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer done()
	ctx := context.Background()
	l, err := reg.ListenLease(ctx, registry.ListenOptions{Ports: registry.PortList{{First: 15000, Last: 15999}}})
	if err != nil {
		fmt.Println(err)
		return
	}
	port := l.Addr().(*net.TCPAddr).Port
	leased := func() bool {
		list, err := reg.List(ctx)
		return err == nil && slices.ContainsFunc(list, func(a registry.Assignment) bool { return a.Kind == registry.Lease && a.Port == port })
	}
	fmt.Println(port >= 15000 && port <= 15999, leased())
	fmt.Println(l.Close(), leased())
	// Output:
	// true true
	// <nil> false
}

// Doctor's report: what it checked, and how many problems need a person or
// DoctorOptions{Fix: true}. A health check passes when Problems is 0.
func ExampleRegistry_Doctor() {
	reg, done, err := exampleRegistry()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer done()
	ctx := context.Background()
	if err := reg.Bind(ctx, "web", 18080); err != nil {
		fmt.Println(err)
		return
	}
	rep, err := reg.Doctor(ctx, registry.DoctorOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(rep.Problems())
	// Output: 0
}

// Port lists are read as the CLI writes them, and keep their order.
func ExampleParsePorts() {
	list, err := registry.ParsePorts("9000,8000-8002")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(list, list.Len(), list.At(1), list.Contains(8001))
	var ports []int
	for p := range list.Ports {
		ports = append(ports, p)
	}
	fmt.Println(ports)
	_, err = registry.ParsePorts("8000-70000")
	fmt.Println(err)
	// Output:
	// 9000,8000-8002 4 8000 true
	// [9000 8000 8001 8002]
	// invalid port: invalid port list "8000-70000": "70000" is not a port (1-65535)
}

// exampleRegistry opens a fresh registry in a temporary directory, which
// done removes.
func exampleRegistry() (reg *registry.Registry, done func(), err error) {
	dir, err := os.MkdirTemp("", "portfor-example")
	if err != nil {
		return nil, nil, err
	}
	reg, err = registry.Open(filepath.Join(dir, "registry.db"), registry.Options{})
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return reg, func() { os.RemoveAll(dir) }, nil
}

// Lookup answers for a known name and never assigns: an unknown name is an
// error wrapping ErrNotFound, which a caller can test with errors.Is.
func ExampleRegistry_Lookup() {
	reg, done, err := exampleRegistry()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer done()
	ctx := context.Background()
	if err := reg.Bind(ctx, "nginx", 18080); err != nil {
		fmt.Println(err)
		return
	}
	a, err := reg.Lookup(ctx, "nginx")
	fmt.Println(a.ID, a.Port, a.Kind, err)
	_, err = reg.Lookup(ctx, "redis")
	fmt.Println(errors.Is(err, registry.ErrNotFound))
	// Output:
	// nginx 18080 stable <nil>
	// true
}

// WaitOccupied returns once something accepts connections on the address;
// the context holds the timeout.
func ExampleWaitOccupied() {
	l, err := net.Listen("tcp4", "127.0.0.1:0") // a server that is already up
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close()
	addr := registry.HostPort{Host: "127.0.0.1", Port: l.Addr().(*net.TCPAddr).Port}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fmt.Println(registry.WaitOccupied(ctx, addr))
	// Output:
	// <nil>
}
