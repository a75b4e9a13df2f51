package retry

import (
	"sync"
	"time"
)

// DefaultWindow is the budget's sliding window when none is given.
const DefaultWindow = 10 * time.Second

// buckets is the number of slices the window is cut into; the window slides
// by window/buckets at a time.
const buckets = 10

type bucket struct {
	slot     int64 // which slice of time this bucket currently counts
	requests int64
	retries  int64
}

// Budget limits retries to a share of the requests seen over a sliding
// window. It is safe for concurrent use; both methods take a short mutex
// and do not allocate.
type Budget struct {
	ratio    float64 // percent / 100
	reserve  float64 // minPerSecond × window seconds
	width    int64   // nanoseconds per bucket
	now      func() time.Time
	mu       sync.Mutex
	b        [buckets]bucket
	cur      int64 // newest slot seen
	requests int64 // sum over the window
	retries  int64 // sum over the window
}

// NewBudget returns a budget allowing retries of up to percent % of the
// requests in the window, plus minPerSecond retries per second of window.
// A non-positive window means DefaultWindow; a nil clock means time.Now.
func NewBudget(percent, minPerSecond float64, window time.Duration, clock func() time.Time) *Budget {
	if window <= 0 {
		window = DefaultWindow
	}
	if clock == nil {
		clock = time.Now
	}
	width := int64(window) / buckets
	if width < 1 {
		width = 1
	}
	return &Budget{
		ratio:   max(percent, 0) / 100,
		reserve: max(minPerSecond, 0) * window.Seconds(),
		width:   width,
		now:     clock,
	}
}

// slot reads the clock; call it before taking b.mu to keep the critical
// section short.
func (b *Budget) slot() int64 { return b.now().UnixNano() / b.width }

// advance moves the window to slot, forgetting buckets that fell out of it.
// b.mu must be held.
func (b *Budget) advance(slot int64) *bucket {
	if slot > b.cur {
		n := slot - b.cur
		if n > buckets {
			n = buckets
		}
		for s := slot - n + 1; s <= slot; s++ {
			bk := &b.b[index(s)]
			b.requests -= bk.requests
			b.retries -= bk.retries
			*bk = bucket{slot: s}
		}
		b.cur = slot
	}
	bk := &b.b[index(b.cur)]
	if bk.slot != b.cur { // first use, or the clock went backwards
		*bk = bucket{slot: b.cur}
	}
	return bk
}

// RecordRequest counts one original request (not a retry).
func (b *Budget) RecordRequest() {
	slot := b.slot()
	b.mu.Lock()
	b.advance(slot).requests++
	b.requests++
	b.mu.Unlock()
}

// TryRetry reports whether one more retry fits in the budget and, if so,
// counts it. A retry is allowed while the retries in the window stay within
// percent % of the requests in the window plus the per-second reserve.
func (b *Budget) TryRetry() bool {
	slot := b.slot()
	b.mu.Lock()
	defer b.mu.Unlock()
	bk := b.advance(slot)
	if float64(b.retries+1) > b.ratio*float64(b.requests)+b.reserve {
		return false
	}
	bk.retries++
	b.retries++
	return true
}

// Stats returns the requests and retries counted in the current window.
func (b *Budget) Stats() (requests, retries int64) {
	slot := b.slot()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.advance(slot)
	return b.requests, b.retries
}

// index maps a slot to its bucket, also for slots before 1970.
func index(slot int64) int { return int((slot%buckets + buckets) % buckets) }
