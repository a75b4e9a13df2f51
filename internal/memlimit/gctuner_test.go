package memlimit

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	const MiB = 1 << 20
	cases := []struct {
		live uint64
		want int
	}{
		{0, 100},
		{1 * MiB, 100},  // floor 8 MiB: GOGC 800, capped at 100
		{8 * MiB, 100},  // exactly the floor
		{12 * MiB, 66},  // 8 MiB over 12
		{16 * MiB, 50},  // floor = half
		{40 * MiB, 50},  // half of live
		{400 * MiB, 50}, // never under TunePercent
	}
	for _, c := range cases {
		if got := Percent(c.live, TuneFloor, TunePercent); got != c.want {
			t.Errorf("Percent(%d MiB) = %d, want %d", c.live/MiB, got, c.want)
		}
	}
}

var sink [][]byte

// TestTunerSetsGOGC runs a tuner with a 1 MiB floor over a 16 MiB live heap:
// after a collection it must set GOGC to 50, and Stop must give back 100.
func TestTunerSetsGOGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	set := make(chan int, 16)
	tu := startTuner(1<<20, 50, func(g int) { set <- g })
	defer tu.Stop()
	for range 16 {
		sink = append(sink, make([]byte, 1<<20))
	}
	defer func() { sink = nil }()
	deadline := time.After(10 * time.Second)
	for {
		runtime.GC()
		select {
		case g := <-set:
			if g != 50 {
				continue // an earlier, smaller live heap
			}
			if tu.GOGC() != 50 {
				t.Fatalf("GOGC() = %d", tu.GOGC())
			}
			if cur := debug.SetGCPercent(50); cur != 50 {
				t.Fatalf("runtime GOGC = %d, want 50", cur)
			}
			tu.Stop()
			if cur := debug.SetGCPercent(100); cur != 100 {
				t.Fatalf("after Stop GOGC = %d, want 100", cur)
			}
			return
		case <-deadline:
			t.Fatal("the tuner never set GOGC=50")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func TestTuneRespectsOperator(t *testing.T) {
	t.Setenv("RAMPART_GC_TUNER", "50")
	t.Setenv("GOGC", "200")
	if tu := Tune(); tu != nil {
		tu.Stop()
		t.Fatal("Tune started although GOGC is set")
	}
	t.Setenv("GOGC", "")
	t.Setenv("RAMPART_GC_TUNER", "off")
	if tu := Tune(); tu != nil {
		tu.Stop()
		t.Fatal("Tune started although RAMPART_GC_TUNER=off")
	}
	t.Setenv("RAMPART_GC_TUNER", "")
	if tu := Tune(); tu != nil {
		tu.Stop()
		t.Fatal("Tune started by default")
	}
	t.Setenv("RAMPART_GC_TUNER", "60")
	tu := Tune()
	if tu == nil {
		t.Fatal("RAMPART_GC_TUNER=60 did not start the tuner")
	}
	tu.Stop()
	if tu.pct != 60 {
		t.Fatalf("pct = %d", tu.pct)
	}
}

func TestParseSetting(t *testing.T) {
	for _, c := range []struct {
		v  string
		ok bool
	}{{"", true}, {"off", true}, {"50", true}, {"100", true}, {"10", true},
		{"9", false}, {"101", false}, {"on", false}, {"-5", false}, {"50%", false}} {
		if err := ParseSetting(c.v); (err == nil) != c.ok {
			t.Errorf("ParseSetting(%q) = %v, want ok=%v", c.v, err, c.ok)
		}
	}
}
