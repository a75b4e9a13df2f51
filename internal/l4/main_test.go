package l4_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine of the listener, its connections and the gateway around
// it ends with the test.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
