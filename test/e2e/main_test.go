package e2e

import (
	"fmt"
	"os"
	"testing"

	"github.com/rampart-gw/rampart/test/gwtest"
)

// rampartBin is the gateway binary built once by TestMain for the CLI tests.
var rampartBin string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "rampart-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: create temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if rampartBin, err = gwtest.BuildBinary(dir); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	return m.Run()
}
