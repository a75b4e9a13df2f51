package memlimit

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"sync"
	"sync/atomic"
)

// Headroom sizing of the adaptive collector (see Tune).
const (
	// TuneFloor is the least headroom the heap gets over its live size:
	// a small heap (an idle gateway, a few dozen busy connections) keeps
	// Go's default GOGC=100 until its live size passes twice this.
	TuneFloor = 8 << 20
	// TunePercent is the recommended RAMPART_GC_TUNER: the headroom of a
	// larger heap, as a percentage of its live size (GOGC=50 once the live
	// heap is over 16 MiB).
	TunePercent = 50
)

// Tuner adapts GOGC after every collection so that the heap may grow by
// max(TuneFloor, live×TunePercent/100) over its live size, and never by
// more than Go's default (GOGC=100). Go's fixed GOGC=100 lets a heap of
// 15 MiB live reach 30 MiB between collections; under many requests in
// flight (500 HTTP/2 streams, 1,000 busy connections) that headroom is
// most of the gateway's resident memory. A small heap, where a lower GOGC
// would mostly mean more frequent collections of little garbage, is left
// at GOGC=100. This is the "GC tuner" of TiDB and ByteDance's gopkg,
// bounded the other way: it only ever lowers GOGC.
type Tuner struct {
	floor, pct uint64
	stopped    atomic.Bool
	mu         sync.Mutex
	gogc       int // last set; 0 before the first collection
	sample     []metrics.Sample
	// onSet, for tests, is called with each GOGC the tuner sets.
	onSet func(int)
}

// Tune starts the tuner when RAMPART_GC_TUNER is a percentage (the least
// GOGC it sets, TunePercent is the recommended one), unless the operator
// set GOGC (their value wins). It is off by default: on 500 HTTP/2 streams
// in flight it saved 5 MiB of 51 (10 %) for 8 % more CPU per request
// (docs/performance.md), a trade for deployments that count memory first.
// It returns nil when it did not start.
func Tune() *Tuner {
	if v, ok := os.LookupEnv("GOGC"); ok && v != "" {
		return nil
	}
	v := os.Getenv("RAMPART_GC_TUNER")
	if v == "" || v == "off" {
		return nil
	}
	n, err := strconv.ParseUint(v, 10, 8)
	if err != nil || n < 10 || n > 100 {
		return nil
	}
	return startTuner(TuneFloor, n, nil)
}

// ParseSetting checks a RAMPART_GC_TUNER value: "", "off" or a percentage
// from 10 to 100 (the least GOGC the tuner sets).
func ParseSetting(v string) error {
	switch v {
	case "", "off":
		return nil
	}
	if n, err := strconv.ParseUint(v, 10, 8); err != nil || n < 10 || n > 100 {
		return fmt.Errorf("RAMPART_GC_TUNER: %q is neither off nor a percentage from 10 to 100", v)
	}
	return nil
}

func startTuner(floor, pct uint64, onSet func(int)) *Tuner {
	t := &Tuner{floor: floor, pct: pct, onSet: onSet,
		sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	t.arm()
	return t
}

// Stop ends the tuner and gives GOGC back its default (100).
func (t *Tuner) Stop() {
	if t == nil || t.stopped.Swap(true) {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.gogc != 0 && t.gogc != 100 {
		debug.SetGCPercent(100)
	}
	t.gogc = 100
}

// sentinel is garbage whose finalizer runs once per collection cycle.
type sentinel struct{ t *Tuner }

func (t *Tuner) arm() {
	runtime.SetFinalizer(&sentinel{t: t}, func(s *sentinel) {
		if s.t.stopped.Load() {
			return
		}
		s.t.afterGC()
		s.t.arm()
	})
}

// Percent returns the GOGC for a live heap of live bytes.
func Percent(live, floor, pct uint64) int {
	if live == 0 {
		return 100
	}
	head := max(floor, live*pct/100)
	g := head * 100 / live
	return int(min(100, max(pct, g)))
}

func (t *Tuner) afterGC() {
	metrics.Read(t.sample)
	if t.sample[0].Value.Kind() != metrics.KindUint64 {
		return
	}
	g := Percent(t.sample[0].Value.Uint64(), t.floor, t.pct)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped.Load() {
		return
	}
	// Move only by 5 points or more: a live heap that wobbles does not
	// re-commit the pacer after every cycle.
	if t.gogc != 0 && abs(g-t.gogc) < 5 && g != 100 {
		return
	}
	if g != t.gogc {
		debug.SetGCPercent(g)
		t.gogc = g
		if t.onSet != nil {
			t.onSet(g)
		}
	}
}

// GOGC returns the GOGC the tuner set last (0 before the first collection).
func (t *Tuner) GOGC() int {
	if t == nil {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.gogc
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
