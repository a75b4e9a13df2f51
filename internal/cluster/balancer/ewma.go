package balancer

import (
	"math"
	"net/http"
	"time"
)

// ewmaTau is the decay time constant of the latency estimate: a sample's
// influence halves in about 7 s (τ·ln 2), and an idle target's estimate
// falls to a tenth in about 23 s, after which it is probed again.
const ewmaTau = 10 * time.Second

// epoch anchors the millisecond clock of the latency estimates on the
// monotonic clock.
var epoch = time.Now()

// nowMillis is milliseconds since epoch, modulo 2³² (49.7 days); estimates
// only ever look at differences, which wrap correctly.
func nowMillis() uint32 {
	return uint32(time.Since(epoch) / time.Millisecond)
}

// Observe records the response time of one request to t in its peak-EWMA
// latency estimate (Finagle's and Linkerd's "peak EWMA"): a sample above the
// estimate replaces it at once, so a target that slows down is avoided
// immediately; a sample below it pulls the estimate down exponentially,
// weighted by the time since the previous sample (time constant 10 s). It is
// lock-free and does not allocate; the proxy calls it after every exchange.
func (t *Target) Observe(rtt time.Duration) {
	t.observeAt(rtt, nowMillis())
}

// Latency returns t's current latency estimate, or 0 before the first
// sample. Between samples the estimate decays towards zero, so that a target
// that was avoided for being slow is eventually tried again.
func (t *Target) Latency() time.Duration {
	ns, ok := t.latencyAt(nowMillis())
	if !ok {
		return 0
	}
	return time.Duration(ns)
}

// The estimate lives in one atomic word: the high 32 bits are the time of
// the last sample in milliseconds since epoch, the low 32 bits the estimate
// in nanoseconds as a float32. Zero means "no sample yet"; samples are at
// least 1 ns so a real estimate is never zero.

func packRTT(ns float64, at uint32) uint64 {
	return uint64(at)<<32 | uint64(math.Float32bits(float32(ns)))
}

func unpackRTT(v uint64) (ns float64, at uint32) {
	return float64(math.Float32frombits(uint32(v))), uint32(v >> 32)
}

// decay returns exp(-Δt/τ) for the milliseconds from at to now; 1 if at is
// later (a concurrent update stamped after now was read). Busy targets are
// read within milliseconds of their last sample, so the short cases avoid
// math.Exp.
func decay(at, now uint32) float64 {
	d := int32(now - at)
	switch {
	case d <= 0:
		return 1
	case d < 100:
		// Taylor series; x < 0.01, so the error is below x⁴/24 < 5e-10.
		x := float64(d) / float64(ewmaTau/time.Millisecond)
		return 1 - x*(1-x*(0.5-x/6))
	}
	return expNeg(float64(d) / float64(ewmaTau/time.Millisecond))
}

// expNeg returns e^-x for x ≥ 0 to a relative error below 1e-7, cheaper
// than math.Exp: e^-x = 2^-n · e^-r with r = x - n·ln 2 in [0, ln 2), the
// second factor by its Taylor polynomial.
func expNeg(x float64) float64 {
	if x > 700 {
		return 0 // below 1e-304: no estimate survives that
	}
	n := math.Floor(x * math.Log2E)
	r := x - n*math.Ln2
	// Σ (-r)^k/k! for k ≤ 9 in Horner form; r < 0.7, so the first omitted
	// term is below 0.7¹⁰/10! < 1e-8.
	p := 1 - r*(1-r*(1.0/2-r*(1.0/6-r*(1.0/24-r*(1.0/120-r*(1.0/720-r*(1.0/5040-r*(1.0/40320-r*(1.0/362880)))))))))
	// p is in (0.5, 1]: scale by 2^-n through the exponent bits.
	return math.Float64frombits(math.Float64bits(p) - uint64(n)<<52)
}

func (t *Target) observeAt(rtt time.Duration, now uint32) {
	x := float64(max(rtt, 1))
	for {
		old := t.rtt.Load()
		est := x
		if old != 0 {
			prev, at := unpackRTT(old)
			if x < prev {
				w := decay(at, now)
				est = prev*w + x*(1-w)
			}
		}
		if t.rtt.CompareAndSwap(old, packRTT(max(est, 1), now)) {
			return
		}
	}
}

func (t *Target) latencyAt(now uint32) (float64, bool) {
	v := t.rtt.Load()
	if v == 0 {
		return 0, false
	}
	ns, at := unpackRTT(v)
	return ns * decay(at, now), true
}

// EWMA is the latency-aware balancer: power of two choices (by weight) on
// the cost latency × (in-flight/weight + 1), where latency is the target's
// peak-EWMA estimate (see Target.Observe). A target slower than its peers,
// or one queueing requests, loses nearly every comparison. A target without
// samples yet is charged its rival's latency, so new targets get a fair
// share of traffic until they have a record of their own.
type EWMA struct {
	p2c
	now func() uint32 // milliseconds; a parameter for tests
}

var _ Balancer = (*EWMA)(nil)

// NewEWMA returns a peak-EWMA balancer over targets.
func NewEWMA(targets []*Target) *EWMA {
	return &EWMA{p2c: newP2C(targets), now: nowMillis}
}

// Pick returns the cheaper of two random targets.
func (e *EWMA) Pick(*http.Request) *Target {
	switch len(e.targets) {
	case 0:
		return nil
	case 1:
		return e.targets[0]
	}
	i, j := e.two()
	a, b := e.targets[i], e.targets[j]
	now := e.now()
	la, oka := a.latencyAt(now)
	lb, okb := b.latencyAt(now)
	switch {
	case !oka && !okb:
		la, lb = 1, 1
	case !oka:
		la = lb
	case !okb:
		lb = la
	}
	// cost = latency × (in-flight/weight + 1), compared without dividing.
	// At rest the costs tie and the first candidate, drawn by weight,
	// wins: the weights set the proportions until latency or queueing
	// tells the targets apart.
	wa, wb := float64(e.weight[i]), float64(e.weight[j])
	ca := la * (float64(a.InFlight.Load()) + wa) * wb
	cb := lb * (float64(b.InFlight.Load()) + wb) * wa
	if cb < ca {
		return b
	}
	return a
}
