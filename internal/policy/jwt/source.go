package jwt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// keySource gives the policy its current keys.
type keySource interface {
	// current returns the keys now in use (nil before a first load).
	current() *keySet
	// demand is called for a token whose kid the current keys lack: it
	// re-reads the key set at once unless that happened less than
	// DemandInterval ago, waits for the answer (bounded by FetchTimeout
	// and ctx) and returns the keys then in use.
	demand(ctx context.Context, kid string) *keySet
}

// static is a key set that never changes (keys, secret, secret_file).
type static struct{ set *keySet }

func (s static) current() *keySet                       { return s.set }
func (s static) demand(context.Context, string) *keySet { return s.set }

// clock is the time source of a Keys, replaced in tests to drive refresh
// and the demand rate limit without sleeping.
type clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

// newClock makes the clock of a new Keys (tests replace it).
var newClock = func() clock { return realClock{} }

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// loader reads a key set once. It returns set nil and err nil when the
// set is unchanged (HTTP 304, a file with the same size and time), and
// maxAge != 0 when the source says how long its answer stays fresh (see
// maxAge).
type loader func(ctx context.Context) (set *keySet, maxAge time.Duration, skipped []string, err error)

// Keys is a key set read from a JWKS URL or file and kept fresh: loaded
// when a config that uses it starts serving, re-read in the background,
// and re-read at once (rate limited) on a token with an unknown kid. A
// failed read keeps the last good set. A Keys is shared through the
// registry by every policy of every config with the same source, so it
// survives reloads; one goroutine, started by start and stopped by Close,
// does every read.
type Keys struct {
	name     string // the URL or path, for logs and metrics
	load     loader
	interval func(maxAge time.Duration) time.Duration
	clock    clock
	log      *slog.Logger
	loads    *prometheus.CounterVec // jwks, result; nil in tests
	// closeIdle, when set, closes the fetch client's idle connections.
	closeIdle func()

	set atomic.Pointer[keySet]

	mu sync.Mutex
	// inflight is closed when the running (or requested) read ends; nil
	// while no read is running or requested.
	inflight   chan struct{}
	lastDemand time.Time
	kick       chan struct{} // wakes the goroutine for a requested read
	started    bool
	closed     bool
	cancel     context.CancelFunc
	done       chan struct{}

	// Counters for tests and the log.
	demands, limited atomic.Int64
}

var _ keySource = (*Keys)(nil)

// newKeys returns an unstarted Keys holding seed (nil: none yet).
func newKeys(name string, load loader, interval func(time.Duration) time.Duration, seed *keySet, log *slog.Logger, loads *prometheus.CounterVec) *Keys {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	k := &Keys{name: name, load: load, interval: interval, clock: newClock(), log: log, loads: loads, kick: make(chan struct{}, 1)}
	if seed != nil {
		k.set.Store(seed)
	}
	return k
}

func (k *Keys) current() *keySet { return k.set.Load() }

// start begins reading: the first read at once, then in the background.
// Requests arriving before the first read ends wait for it (demand). It
// is a no-op when already started or closed.
func (k *Keys) start() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.started || k.closed {
		return
	}
	k.started = true
	if k.inflight == nil {
		k.inflight = make(chan struct{})
	}
	ctx, cancel := context.WithCancel(context.Background())
	k.cancel, k.done = cancel, make(chan struct{})
	go k.run(ctx)
}

// Close stops the background reads and waits for the goroutine; the last
// set stays readable. The registry calls it when no config uses the set.
func (k *Keys) Close() {
	k.mu.Lock()
	k.closed = true
	cancel, done := k.cancel, k.done
	k.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	if k.closeIdle != nil {
		k.closeIdle()
	}
}

// run is the one goroutine that reads the key set.
func (k *Keys) run(ctx context.Context) {
	defer close(k.done)
	defer func() {
		if r := recover(); r != nil {
			k.log.Error("jwks refresher panicked; the key set will not refresh until the config changes", "jwks", k.name, "panic", fmt.Sprint(r))
			k.release() // wake any waiter
		}
	}()
	var maxAge time.Duration
	fails := 0
	for {
		ma, err := k.read(ctx)
		if ctx.Err() != nil {
			return
		}
		next := k.interval(maxAge)
		if err != nil {
			fails++
			// Retry sooner than the refresh interval while failing: 5s,
			// 10s, 20s... up to the interval. The last good set serves
			// meanwhile.
			next = min(next, 5*time.Second<<min(fails-1, 6))
		} else {
			fails = 0
			maxAge = ma
			next = k.interval(maxAge)
		}
		select {
		case <-ctx.Done():
			return
		case <-k.clock.After(next):
		case <-k.kick:
		}
	}
}

// read performs one read, publishing a new set on success, and wakes
// every request waiting for it.
func (k *Keys) read(ctx context.Context) (maxAge time.Duration, err error) {
	k.mu.Lock()
	if k.inflight == nil {
		k.inflight = make(chan struct{})
	}
	// A pending kick asked for this very read.
	select {
	case <-k.kick:
	default:
	}
	k.mu.Unlock()
	defer k.release()

	rctx, cancel := context.WithTimeout(ctx, FetchTimeout)
	defer cancel()
	set, maxAge, skipped, err := k.load(rctx)
	switch {
	case err != nil:
		k.count("error")
		if ctx.Err() == nil {
			if k.set.Load() != nil {
				k.log.Warn("jwks read failed; the last good key set stays in use", "jwks", k.name, "error", err)
			} else {
				k.log.Error("jwks read failed; tokens cannot be verified until it succeeds", "jwks", k.name, "error", err)
			}
		}
		return 0, err
	case set == nil, k.set.Load() != nil && k.set.Load().digest == set.digest:
		k.count("unchanged")
	default:
		k.count("ok")
		old := k.set.Swap(set)
		if !sameKIDs(old, set) {
			k.log.Info("jwks loaded", "jwks", k.name, "keys", len(set.all), "kids", kids(set))
		}
		if len(skipped) > 0 {
			k.log.Warn("jwks keys skipped", "jwks", k.name, "skipped", strings.Join(skipped, "; "))
		}
	}
	return maxAge, nil
}

// release ends the current read for its waiters.
func (k *Keys) release() {
	k.mu.Lock()
	w := k.inflight
	k.inflight = nil
	k.mu.Unlock()
	if w != nil {
		close(w)
	}
}

func (k *Keys) count(result string) {
	if k.loads != nil {
		k.loads.WithLabelValues(k.name, result).Inc()
	}
}

// demand asks for a read because of an unknown kid (see keySource). A
// read already running is waited for without using up the rate limit; if
// it did not bring the kid, one more read may be requested.
func (k *Keys) demand(ctx context.Context, kid string) *keySet {
	k.demands.Add(1)
	for attempt := 0; attempt < 2; attempt++ {
		k.mu.Lock()
		if !k.started || k.closed {
			k.mu.Unlock()
			break
		}
		w, own := k.inflight, false
		if w == nil {
			now := k.clock.Now()
			if !k.lastDemand.IsZero() && now.Sub(k.lastDemand) < DemandInterval {
				k.mu.Unlock()
				k.limited.Add(1)
				break
			}
			k.lastDemand, own = now, true
			w = make(chan struct{})
			k.inflight = w
			select {
			case k.kick <- struct{}{}:
			default:
			}
		}
		k.mu.Unlock()
		select {
		case <-w:
		case <-ctx.Done():
			return k.set.Load()
		}
		if own || k.set.Load().known(kid) {
			break
		}
	}
	return k.set.Load()
}

// urlInterval is the background refresh interval of a JWKS URL: refresh
// when set, else the answer's max-age clamped to MinMaxAge..MaxMaxAge, else
// DefaultURLRefresh.
func urlInterval(refresh time.Duration) func(time.Duration) time.Duration {
	return func(maxAge time.Duration) time.Duration {
		switch {
		case refresh > 0:
			return refresh
		case maxAge != 0: // negative: no-cache or no-store
			return min(max(maxAge, MinMaxAge), MaxMaxAge)
		}
		return DefaultURLRefresh
	}
}

// fileInterval is the check interval of a JWKS file.
func fileInterval(refresh time.Duration) func(time.Duration) time.Duration {
	if refresh <= 0 {
		refresh = DefaultFileRefresh
	}
	return func(time.Duration) time.Duration { return refresh }
}

// maxAge returns the max-age of a Cache-Control value (RFC 9111, section
// 5.2.2.1), 0 when absent or invalid, and -1 for no-cache or no-store (the
// refresh is then clamped up to MinMaxAge).
func maxAge(cc string) time.Duration {
	var age time.Duration
	for part := range strings.SplitSeq(cc, ",") {
		name, val, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch strings.ToLower(name) {
		case "no-cache", "no-store":
			return -1
		case "max-age":
			n, err := strconv.ParseInt(strings.Trim(val, `"`), 10, 64)
			if err != nil || n <= 0 {
				return 0
			}
			age = time.Duration(min(n, int64(MaxMaxAge/time.Second))) * time.Second
		}
	}
	return age
}

// httpLoader fetches a JWKS URL. It sends the previous answer's ETag so
// an unchanged set costs a 304.
func httpLoader(url string, client *http.Client) loader {
	var etag string // owned by the Keys goroutine
	return func(ctx context.Context) (*keySet, time.Duration, []string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, 0, nil, err
		}
		req.Header.Set("Accept", "application/jwk-set+json, application/json")
		req.Header.Set("User-Agent", "rampart-jwks")
		if etag != "" {
			req.Header.Set("If-None-Match", etag)
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, 0, nil, fmt.Errorf("fetch: %w", err)
		}
		defer resp.Body.Close()
		age := maxAge(resp.Header.Get("Cache-Control"))
		if resp.StatusCode == http.StatusNotModified && etag != "" {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
			return nil, age, nil, nil
		}
		if resp.StatusCode != http.StatusOK {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
			return nil, 0, nil, fmt.Errorf("fetch: status %d", resp.StatusCode)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "" {
			if mt, _, _ := mime.ParseMediaType(ct); mt == "text/html" {
				return nil, 0, nil, errors.New("fetch: answered HTML, not a JSON Web Key Set")
			}
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, MaxJWKSBytes+1))
		if err != nil {
			return nil, 0, nil, fmt.Errorf("fetch: %w", err)
		}
		if len(b) > MaxJWKSBytes {
			return nil, 0, nil, fmt.Errorf("fetch: key set larger than %d bytes", MaxJWKSBytes)
		}
		set, skipped, err := parseJWKS(b)
		if err != nil {
			return nil, 0, skipped, err
		}
		etag = resp.Header.Get("ETag")
		return set, age, skipped, nil
	}
}

// fileStamp identifies a version of a file.
type fileStamp struct {
	size int64
	mod  time.Time
}

func stampOf(fi os.FileInfo) fileStamp { return fileStamp{fi.Size(), fi.ModTime()} }

// readJWKSFile reads and parses a JWKS file.
func readJWKSFile(path string) (*keySet, fileStamp, []string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fileStamp{}, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fileStamp{}, nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxJWKSBytes+1))
	if err != nil {
		return nil, fileStamp{}, nil, err
	}
	if len(b) > MaxJWKSBytes {
		return nil, fileStamp{}, nil, fmt.Errorf("key set larger than %d bytes", MaxJWKSBytes)
	}
	set, skipped, err := parseJWKS(b)
	return set, stampOf(fi), skipped, err
}

// fileLoader re-reads a JWKS file when its size or time changed since
// seen (the version the config was compiled with).
func fileLoader(path string, seen fileStamp) loader {
	return func(context.Context) (*keySet, time.Duration, []string, error) {
		fi, err := os.Stat(path)
		if err != nil {
			return nil, 0, nil, err
		}
		if stampOf(fi) == seen {
			return nil, 0, nil, nil
		}
		set, st, skipped, err := readJWKSFile(path)
		if err != nil {
			return nil, 0, skipped, err
		}
		seen = st
		return set, 0, skipped, nil
	}
}

// sameKIDs reports whether two sets hold the same kids in the same order.
func sameKIDs(a, b *keySet) bool {
	if a == nil || b == nil || len(a.all) != len(b.all) {
		return false
	}
	for i := range a.all {
		if a.all[i].kid != b.all[i].kid {
			return false
		}
	}
	return true
}

func kids(s *keySet) []string {
	out := make([]string, len(s.all))
	for i, k := range s.all {
		out[i] = k.kid
	}
	return out
}
