package ratelimit

import (
	"context"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/redis/redistest"
)

// evalCalls is how many scripts Redis has run (EVALSHA and EVAL): the
// decisions' round trips.
func evalCalls(t *testing.T, rs *redistest.Server) int {
	t.Helper()
	out, err := rs.Do("INFO", "commandstats")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range regexp.MustCompile(`cmdstat_(?:evalsha|eval):calls=(\d+)`).FindAllStringSubmatch(out, -1) {
		c, _ := strconv.Atoi(m[1])
		n += c
	}
	return n
}

// ahead reads a key's TAT - now from Redis, in microseconds (0: no key).
func ahead(t *testing.T, rs *redistest.Server, key string) int64 {
	t.Helper()
	v, err := rs.Do("GET", key)
	if err != nil || v == "" {
		return 0
	}
	tat, _ := strconv.ParseInt(v, 10, 64)
	tm, err := rs.Do("TIME")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(strings.Trim(tm, "[]"))
	s, _ := strconv.ParseInt(f[0], 10, 64)
	us, _ := strconv.ParseInt(f[1], 10, 64)
	return tat - (s*1_000_000 + us)
}

const hour = int64(3600 * 1_000_000) // the interval of 1/h, µs

// The lease script against a real Redis: it grants as many of the tokens
// asked for as fit in the burst, moves the TAT by that many intervals,
// writes nothing when it grants nothing, and a give-back moves the TAT
// back, never below now.
func TestLeaseScript(t *testing.T) {
	rs := redistest.Start(t)
	g := start(t, redisDoc(rs.Addr(), "", keyed+"rate: 1/h\n    burst: 10\n    sync: lease"))
	g.waitUp(t, true)
	rm := g.lim.base.remote
	ctx := context.Background()
	type step struct {
		want, give     int64
		granted        int64
		tokensAhead    int64 // the key's TAT - now afterwards, in intervals (rounded up)
		retryAfterSome bool
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"grant within burst", []step{{want: 4, granted: 4, tokensAhead: 4}, {want: 1, granted: 1, tokensAhead: 5}}},
		{"grant fewer when fewer fit", []step{{want: 7, granted: 7, tokensAhead: 7}, {want: 7, granted: 3, tokensAhead: 10}, {want: 5, granted: 0, tokensAhead: 10, retryAfterSome: true}}},
		{"give back then take", []step{{want: 10, granted: 10, tokensAhead: 10}, {want: 2, give: 4, granted: 2, tokensAhead: 8}}},
		{"pure give-back", []step{{want: 6, granted: 6, tokensAhead: 6}, {give: 2, tokensAhead: 4, retryAfterSome: false}}},
		{"give-back never below now", []step{{want: 3, granted: 3, tokensAhead: 3}, {give: 50, tokensAhead: 0}, {want: 10, granted: 10, tokensAhead: 10}}},
		{"give-back on a missing key writes nothing", []step{{give: 5, tokensAhead: 0}}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rkey := rm.redisKey([]byte("script-" + strconv.Itoa(i)))
			for j, st := range tc.steps {
				before, _ := rs.Do("GET", rkey)
				granted, ah, retry, ok := rm.lease(ctx, rkey, st.want, st.give, true)
				if !ok {
					t.Fatalf("step %d: not decided", j)
				}
				if granted != st.granted {
					t.Errorf("step %d: granted %d of %d, want %d", j, granted, st.want, st.granted)
				}
				got := ahead(t, rs, rkey)
				if n := (got + hour - 1) / hour; n != st.tokensAhead {
					t.Errorf("step %d: TAT %d µs ahead (%d intervals), want %d intervals", j, got, n, st.tokensAhead)
				}
				if (ah+hour-1)/hour != st.tokensAhead {
					t.Errorf("step %d: reply ahead %d µs, want %d intervals", j, ah, st.tokensAhead)
				}
				if st.retryAfterSome != (retry > 0) {
					t.Errorf("step %d: retry after %d µs", j, retry)
				}
				if granted == 0 && st.give == 0 {
					if after, _ := rs.Do("GET", rkey); after != before {
						t.Errorf("step %d: granting nothing wrote %q over %q", j, after, before)
					}
				}
				if got > 0 {
					pttl, _ := rs.Do("PTTL", rkey)
					if n, _ := strconv.ParseInt(pttl, 10, 64); n <= 0 || n > got/1000+1 {
						t.Errorf("step %d: PTTL %s ms, want the time to refill (%d ms)", j, pttl, got/1000)
					}
				}
			}
		})
	}
	if out, _ := rs.Do("EXISTS", rm.redisKey([]byte("script-5"))); out != "0" {
		t.Error("a give-back on a missing key created it")
	}
	t.Run("not a number", func(t *testing.T) {
		rkey := rm.redisKey([]byte("nan"))
		rs.Do("SET", rkey, "hello")
		if _, _, _, ok := rm.lease(ctx, rkey, 3, 0, true); ok {
			t.Error("a key holding text was decided")
		}
		if g.storeErrors("error") != 1 {
			t.Errorf("store errors{reason=error} = %v, want 1", g.storeErrors("error"))
		}
	})
}

func TestMaxLease(t *testing.T) {
	for _, tc := range []struct{ burst, want int }{{1, 1}, {19, 1}, {40, 2}, {600, 30}, {1_000_000, 1000}} {
		if got := maxLease(tc.burst); got != int64(tc.want) {
			t.Errorf("maxLease(%d) = %d, want %d", tc.burst, got, tc.want)
		}
	}
}

// A hot key pays a round trip every few requests, a cold key one per
// request; both admit exactly what plain mode would.
func TestLeaseRoundTrips(t *testing.T) {
	rs := redistest.Start(t)
	tests := []struct {
		name     string
		sync     string
		requests int
		gap      time.Duration
		// round trips at most (the sweeper's give-backs included, and one
		// NOSCRIPT answer, EVALSHA then EVAL, when a script is first used)
		maxTrips int
		minTrips int
	}{
		{"plain hot", "plain", 300, 0, 301, 300},
		{"lease hot", "lease", 300, 0, 60, 5},
		{"lease cold", "lease", 6, 300 * time.Millisecond, 7, 6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := start(t, redisDoc(rs.Addr(), "", keyed+"rate: 1/h\n    burst: 1000\n    sync: "+tc.sync))
			g.waitUp(t, true)
			before := evalCalls(t, rs)
			key := "trips-" + tc.name
			for i := range tc.requests {
				if code, h := g.get(t, key); code != 200 {
					t.Fatalf("request %d: %d", i, code)
				} else if r := h.Get("RateLimit-Remaining"); r != strconv.Itoa(1000-i-1) {
					// One instance: the lease's unspent tokens count as
					// remaining, so the header counts down as in plain.
					t.Fatalf("request %d: RateLimit-Remaining %s, want %d", i, r, 1000-i-1)
				}
				if ls := g.lim.base.lease; ls != nil && ls.outstanding() >= maxLease(1000) {
					t.Fatalf("request %d: %d tokens leased, want under maxLease %d", i, ls.outstanding(), maxLease(1000))
				}
				time.Sleep(tc.gap)
			}
			time.Sleep(leasePeriod + 4*sweepEvery) // leases expire, the sweeper gives back
			trips := evalCalls(t, rs) - before
			t.Logf("%s: %d round trips for %d requests (%.3f per request)", tc.name, trips, tc.requests, float64(trips)/float64(tc.requests))
			if trips > tc.maxTrips || trips < tc.minTrips {
				t.Errorf("%d round trips for %d requests, want %d-%d", trips, tc.requests, tc.minTrips, tc.maxTrips)
			}
			// What Redis counts is what was admitted: unspent tokens came back.
			if got := ahead(t, rs, g.lim.base.remote.redisKey([]byte(key))); (got+hour/2)/hour != int64(tc.requests) {
				t.Errorf("Redis counts %.2f tokens taken, want %d", float64(got)/float64(hour), tc.requests)
			}
			if n := g.lim.base.lease; n != nil && n.outstanding() != 0 {
				t.Errorf("%d tokens still leased after expiry", n.outstanding())
			}
		})
	}
}

// Two instances in lease mode against one burst: never more than the
// burst, and once the leases are given back the rest of the burst is
// admitted too, so in all exactly the burst.
func TestLeaseSharedExact(t *testing.T) {
	rs := redistest.Start(t)
	doc := redisDoc(rs.Addr(), "", keyed+"rate: 1/h\n    burst: 200\n    sync: lease")
	a, b := start(t, doc), start(t, doc)
	a.waitUp(t, true)
	b.waitUp(t, true)
	var ok, other atomic.Int64
	round := func(requests int) {
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				g := []*gateway{a, b}[w%2]
				for range requests / 8 {
					req, _ := http.NewRequest("GET", g.srv.URL, nil)
					req.Header.Set("X-Key", "shared")
					resp, err := g.srv.Client().Do(req)
					if err != nil {
						other.Add(1)
						continue
					}
					resp.Body.Close()
					switch resp.StatusCode {
					case 200:
						ok.Add(1)
					case 429:
					default:
						other.Add(1)
					}
				}
			}()
		}
		wg.Wait()
	}
	round(800)
	first := ok.Load()
	// Outstanding at most 2 instances × maxLease(200) = 20.
	if first > 200 || first < 200-2*maxLease(200) {
		t.Errorf("first round admitted %d, want 180-200", first)
	}
	time.Sleep(leasePeriod + 4*sweepEvery)
	round(160)
	if ok.Load() != 200 || other.Load() != 0 {
		t.Errorf("admitted %d in all (%d in the first round), %d other answers; want exactly 200", ok.Load(), first, other.Load())
	}
	if a.hits.Load() == 0 || b.hits.Load() == 0 {
		t.Errorf("each instance must admit some: %d and %d", a.hits.Load(), b.hits.Load())
	}
}

// In lease mode too, a client hammering far over its limit is admitted
// again as soon as its tokens refill.
func TestLeaseRejectedDoNotConsume(t *testing.T) {
	rs := redistest.Start(t)
	g := start(t, redisDoc(rs.Addr(), "", keyed+"rate: 40/s\n    burst: 40\n    sync: lease"))
	g.waitUp(t, true)
	// About 400 requests a second (10×) for 1.5s: 40 + 60 refilled.
	begin := time.Now()
	admitted, sent := 0, 0
	for time.Since(begin) < 1500*time.Millisecond && sent < 2000 {
		if code, _ := g.get(t, "hammer"); code == 200 {
			admitted++
		}
		sent++
		time.Sleep(2500 * time.Microsecond)
	}
	el := time.Since(begin).Seconds()
	want := 40 + el*40
	if float64(admitted) < want*0.9 || float64(admitted) > want*1.05+2 {
		t.Errorf("admitted %d of %d in %.2fs at 40/s, want about %.0f", admitted, sent, el, want)
	}
	time.Sleep(50 * time.Millisecond) // two tokens refill
	if code, _ := g.get(t, "hammer"); code != 200 {
		t.Errorf("after the hammering stopped: %d, want 200 as soon as a token refilled", code)
	}
}

// Redis killed while a key holds a lease: the lease's tokens are spent,
// then on_failure decides; never a 5xx.
func TestLeaseOnFailure(t *testing.T) {
	rs := redistest.Start(t)
	g := start(t, redisDoc(rs.Addr(), ", on_failure: deny", keyed+"rate: 1/h\n    burst: 1000\n    sync: lease"))
	g.waitUp(t, true)
	for range 50 {
		g.get(t, "f")
	}
	rs.Kill()
	codes := map[int]int{}
	for range 100 {
		code, h := g.get(t, "f")
		codes[code]++
		if code == 429 && h.Get("Retry-After") != "1" {
			t.Errorf("Retry-After %q, want 1 (deny)", h.Get("Retry-After"))
		}
	}
	if codes[200]+codes[429] != 100 || codes[429] < 100-int(maxLease(1000)) {
		t.Errorf("answers while Redis is down: %v; want 429 (deny) after at most one lease of 200s", codes)
	}
	rs.Restart()
	g.waitUp(t, true)
	if code, _ := g.get(t, "after"); code != 200 {
		t.Errorf("after the restart: %d", code)
	}
}

// Releasing the last config that uses the leases gives back what they
// hold.
func TestLeaseCloseGivesBack(t *testing.T) {
	rs := redistest.Start(t)
	g := start(t, redisDoc(rs.Addr(), "", keyed+"rate: 1/h\n    burst: 1000\n    sync: lease"))
	g.waitUp(t, true)
	// Until a burst of 100 requests ends with tokens leased (the sweeper
	// gives them back 200ms after the fetch; a busy machine may be slower).
	var rkey string
	var held int64
	for try := 0; held == 0; try++ {
		if try == 5 {
			t.Fatal("no tokens leased at the end of five bursts of 100 requests")
		}
		key := "close-" + strconv.Itoa(try)
		for range 100 {
			g.get(t, key)
		}
		rkey = g.lim.base.remote.redisKey([]byte(key))
		held = g.lim.base.lease.outstanding()
	}
	g.lim.base.lease.Close()
	if got := ahead(t, rs, rkey); (got+hour/2)/hour != 100 {
		t.Errorf("after Close Redis counts %.2f tokens, want 100 (%d given back)", float64(got)/float64(hour), held)
	}
}
