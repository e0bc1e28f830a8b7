package registrytest_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/portfor/portfor/registry"
	"github.com/portfor/portfor/registry/registrytest"
)

// These examples run under go test. An example gets no *testing.T, so
// each hands its body to testing.Benchmark, which gives it a real one of
// the kinds of testing.TB (a *testing.B; its cleanups run when the body
// returns), and stops after one run with SkipNow. In a test file the body
// is the test function's: func TestServer(t *testing.T) { ... }.

// Port is for a server that binds its port itself, such as an http.Server
// or another program given the port on its command line.
func ExamplePort() {
	testing.Benchmark(func(t *testing.B) {
		port := registrytest.Port(t)
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		srv := &http.Server{Addr: addr, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, "hello")
		})}
		go srv.ListenAndServe()
		t.Cleanup(func() { srv.Close() })

		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		if err := registry.WaitHTTP(ctx, "http://"+addr+"/", registry.WaitOptions{}); err != nil {
			t.Fatal(err)
		}
		fmt.Println(get(t, "http://"+addr+"/"))
		t.SkipNow() // one run is enough
	})
	// Output: hello
}

// Listener is already bound when it is returned: the test can connect at
// once, and no one can take the port in between.
func ExampleListener() {
	testing.Benchmark(func(t *testing.B) {
		l := registrytest.Listener(t) // closed, and its port given back, when the test ends
		go http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, "hello")
		}))
		fmt.Println(get(t, "http://"+l.Addr().String()+"/"))
		t.SkipNow() // one run is enough
	})
	// Output: hello
}

// Registry is for testing code that uses portfor itself: a registry of the
// test's own, empty, gone with the test's temporary directory.
func ExampleRegistry() {
	testing.Benchmark(func(t *testing.B) {
		ctx := t.Context()
		reg := registrytest.Registry(t)
		if err := reg.Bind(ctx, "web", 18080); err != nil {
			t.Fatal(err)
		}
		a, err := reg.Lookup(ctx, "web")
		if err != nil {
			t.Fatal(err)
		}
		fmt.Println(a.ID, a.Port)
		t.SkipNow() // one run is enough
	})
	// Output: web 18080
}

// get returns the body at url, or fails the test.
func get(t testing.TB, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
