// Package lsoftest holds what the tests of lsof's users share.
package lsoftest

import (
	"os"
	"testing"

	"github.com/portfor/portfor/internal/lsof"
)

// Need skips the test where lsof is not installed, except under CI (the
// CI variable set), where .ci/run installs it and the test fails instead.
func Need(t testing.TB) {
	t.Helper()
	if _, err := lsof.Path(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("lsof is not installed (.ci/run installs it): %v", err)
		}
		t.Skipf("needs lsof (apt-get install lsof): %v", err)
	}
}
