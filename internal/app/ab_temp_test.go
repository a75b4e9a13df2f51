package app

import (
	"os"
	"testing"
)

// Temporary A/B of issue 14's park reductions (not for merge): A without,
// B with the switch RAMPART_X_AB_KEY=RAMPART_X_AB_VAL, interleaved by -count.
func BenchmarkAB(b *testing.B) {
	backend := startRawBackend(b, 100)
	key, val := os.Getenv("RAMPART_X_AB_KEY"), os.Getenv("RAMPART_X_AB_VAL")
	for _, v := range []string{"A", "B"} {
		b.Run(v, func(b *testing.B) {
			if v == "B" {
				b.Setenv(key, val)
			}
			benchRoundTrips(b, startBenchGateway(b, backend))
		})
	}
}
