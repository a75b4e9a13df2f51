package e2e

import (
	"testing"

	"github.com/rampart-gw/rampart/test/gwtest"
)

// rampartBin is the gateway binary built once by TestMain for the CLI tests.
var rampartBin string

func TestMain(m *testing.M) { gwtest.MainWithBinary(m, &rampartBin) }
