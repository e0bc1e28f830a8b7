package registry_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/portfor/portfor/registry"
)

// WaitHTTP returns once the URL answers below 400 (or with a status of
// WaitOptions.Status); the timeout goes in the context.
func ExampleWaitHTTP() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	status, err := registry.ParseStatus("200-299")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(registry.WaitHTTP(ctx, srv.URL+"/health", registry.WaitOptions{Status: status}))
	// Output: <nil>
}

// A target may be an address, an http(s) URL or a Unix socket;
// Registry.ResolveTarget reads registered names (and NAME/path) too.
func ExampleParseTarget() {
	for _, s := range []string{"localhost:5432", "https://localhost:8443/health", "unix:/run/app.sock", "0"} {
		t, err := registry.ParseTarget(s)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(t.Kind, t)
	}
	// Output:
	// tcp localhost:5432
	// http https://localhost:8443/health
	// unix unix:/run/app.sock
	// invalid port "0": want a number from 1 to 65535
}
