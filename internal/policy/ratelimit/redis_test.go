package ratelimit

import (
	"bytes"
	"crypto/sha1"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/rampart-gw/rampart/internal/exchange"
	"github.com/rampart-gw/rampart/internal/policy/policytest"
	"github.com/rampart-gw/rampart/internal/redis/redistest"
	"github.com/rampart-gw/rampart/internal/registry"
	"github.com/rampart-gw/rampart/internal/telemetry"
)

// gateway is one instance of a store redis policy: its own registry (so
// its own Redis client, as a separate process would have), metrics and
// log, served on a real socket.
type gateway struct {
	lim  *Limit
	reg  *registry.Registry
	m    *telemetry.Metrics
	log  *syncBuffer
	srv  *httptest.Server
	hits atomic.Int64
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) count(sub string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Count(s.b.String(), sub)
}

// redisDoc is a config with cluster.redis at addr and policy l. Unless
// cluster sets one, the timeout is a generous 2s: most tests are about
// counting, on a machine that may be busy.
func redisDoc(addr, cluster, policy string) string {
	if !strings.Contains(cluster, "timeout:") {
		cluster += ", timeout: 2s"
	}
	return fmt.Sprintf("cluster:\n  redis: {address: %q%s}\npolicies:\n  l:\n    type: rate_limit\n    store: redis\n    %s\n", addr, cluster, policy)
}

// start compiles the policy of doc, acquires its claims and serves it:
// the key is the X-Key header, the route r1.
func start(t *testing.T, doc string) *gateway {
	t.Helper()
	g := &gateway{reg: registry.New(), m: telemetry.NewMetrics(), log: &syncBuffer{}}
	s := policytest.Spec(t, doc, "l")
	s.Claims = &registry.Claims{}
	s.Metrics = g.m
	s.Log = slog.New(slog.NewTextHandler(g.log, nil))
	p, err := New(s)
	if err != nil {
		t.Fatal(err)
	}
	s.Claims.Acquire(g.reg)
	t.Cleanup(g.reg.Close)
	g.lim = p.(*Limit)
	h := g.lim.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { g.hits.Add(1) }))
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ex := &exchange.Exchange{RequestID: "rid", Route: "r1", Start: time.Now()}
		h.ServeHTTP(w, r.WithContext(exchange.With(r.Context(), ex)))
	}))
	t.Cleanup(g.srv.Close)
	return g
}

// waitUp waits (bounded) until the instance's Redis circuit is closed.
func (g *gateway) waitUp(t *testing.T, up bool) {
	t.Helper()
	for range 500 {
		if g.lim.base.remote.client.Up() == up {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("redis circuit up=%v not reached within 5s", !up)
}

// get sends one request with key k and returns the status and headers.
func (g *gateway) get(t *testing.T, k string) (int, http.Header) {
	t.Helper()
	req, _ := http.NewRequest("GET", g.srv.URL, nil)
	req.Header.Set("X-Key", k)
	resp, err := g.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

func (g *gateway) storeErrors(reason string) float64 {
	return counter(g.m.RateLimitStoreErrs.WithLabelValues("l", reason))
}

const keyed = "key: header:X-Key\n    "

// Two instances sharing one Redis admit the burst exactly, whichever
// instance each request reaches, and the RateLimit headers count down
// across them.
func TestRedisSharedExact(t *testing.T) {
	rs := redistest.Start(t)
	tests := []struct {
		name     string
		burst    int
		requests int
	}{
		{"burst 50 of 400", 50, 400},
		{"burst 1 of 96", 1, 96},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// A slow refill (1/h) so that the burst is the whole limit
			// during the test.
			// A generous timeout: this is about counting, on a machine
			// that may be busy.
			doc := redisDoc(rs.Addr(), ", timeout: 2s", keyed+"rate: 1/h\n    burst: "+strconv.Itoa(tc.burst))
			a, b := start(t, doc), start(t, doc)
			a.waitUp(t, true)
			b.waitUp(t, true)
			key := "exact-" + strconv.Itoa(tc.burst)
			var ok, limited, other atomic.Int64
			var wg sync.WaitGroup
			for w := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					g := a
					if w%2 == 1 {
						g = b
					}
					for range tc.requests / 8 {
						req, _ := http.NewRequest("GET", g.srv.URL, nil)
						req.Header.Set("X-Key", key)
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
							limited.Add(1)
						default:
							other.Add(1)
						}
					}
				}()
			}
			wg.Wait()
			if d := ok.Load() - int64(tc.burst); d < -1 || d > 1 {
				t.Errorf("admitted %d of %d, want %d ± 1", ok.Load(), tc.requests, tc.burst)
			}
			if other.Load() != 0 || ok.Load()+limited.Load() != int64(tc.requests) {
				t.Errorf("%d answers neither 200 nor 429", other.Load())
			}
			if tc.burst > 1 && (a.hits.Load() == 0 || b.hits.Load() == 0) {
				t.Errorf("each instance must admit some: %d and %d", a.hits.Load(), b.hits.Load())
			}
			for _, g := range []*gateway{a, b} {
				for _, reason := range []string{"timeout", "down", "error"} {
					if n := g.storeErrors(reason); n != 0 {
						t.Errorf("store errors{reason=%s} = %v, want 0", reason, n)
					}
				}
			}
		})
	}
	t.Run("headers count down across instances", func(t *testing.T) {
		doc := redisDoc(rs.Addr(), ", timeout: 2s", keyed+"rate: 1/h\n    burst: 3")
		a, b := start(t, doc), start(t, doc)
		a.waitUp(t, true)
		b.waitUp(t, true)
		for i, g := range []*gateway{a, b, a, b} {
			code, h := g.get(t, "headers")
			wantCode, wantRemaining := 200, strconv.Itoa(2-i)
			if i == 3 {
				wantCode, wantRemaining = 429, "0"
			}
			if code != wantCode || h.Get("RateLimit-Remaining") != wantRemaining || h.Get("RateLimit-Limit") != "3" {
				t.Errorf("request %d: %d remaining=%s limit=%s, want %d remaining=%s limit=3", i, code, h.Get("RateLimit-Remaining"), h.Get("RateLimit-Limit"), wantCode, wantRemaining)
			}
			if i == 3 {
				// One token every hour: the next comes in 1200s (a full
				// bucket of 3 is 3h away; 1h has one token).
				if ra, _ := strconv.Atoi(h.Get("Retry-After")); ra < 3590 || ra > 3600 {
					t.Errorf("Retry-After %q, want about 3600", h.Get("Retry-After"))
				}
			}
		}
	})
}

// A client hammering far over its limit is admitted again as soon as its
// tokens refill: rejected requests write nothing.
func TestRedisRejectedDoNotConsume(t *testing.T) {
	rs := redistest.Start(t)
	g := start(t, redisDoc(rs.Addr(), "", keyed+"rate: 4/s\n    burst: 1"))
	g.waitUp(t, true)
	// 1.5s at about 40 requests a second (10× the limit): 1 + 6 refills
	// are admitted; a limiter that counted rejections would admit 1.
	begin := time.Now()
	admitted, sent := 0, 0
	for time.Since(begin) < 1500*time.Millisecond && sent < 1000 {
		if code, _ := g.get(t, "hammer"); code == 200 {
			admitted++
		}
		sent++
		time.Sleep(25 * time.Millisecond)
	}
	if admitted < 5 || admitted > 8 {
		t.Errorf("admitted %d of %d in 1.5s at 4/s, want 7 (5-8)", admitted, sent)
	}
	// The stored arrival time is at most one interval ahead: rejections
	// never pushed it.
	pttl, err := rs.Do("PTTL", g.lim.base.remote.redisKey([]byte("hammer")))
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := strconv.Atoi(pttl); n > 250 {
		t.Errorf("PTTL %s ms, want at most one interval (250)", pttl)
	}
}

// Keys are prefix + 32 hex characters whatever the client sent (long,
// binary), with a TTL of at most the time to refill.
func TestRedisKeys(t *testing.T) { forModes(t, testRedisKeys) }

func testRedisKeys(t *testing.T, sync string) {
	rs := redistest.Start(t)
	g := start(t, redisDoc(rs.Addr(), ", prefix: \"t:rl:\"", keyed+"rate: 1/s\n    burst: 10"+"\n    sync: "+sync))
	g.waitUp(t, true)
	values := []string{"", "a", strings.Repeat("x", 60000), "bin\t\xff\xfe\x80", "é ünïcode"}
	for _, v := range values {
		if code, _ := g.get(t, v); code != 200 {
			t.Fatalf("key of %d bytes: status %d", len(v), code)
		}
	}
	out, err := rs.Do("KEYS", "*")
	if err != nil {
		t.Fatal(err)
	}
	keys := strings.Fields(strings.Trim(out, "[]"))
	if len(keys) != len(values) {
		t.Fatalf("%d keys in Redis, want %d: %v", len(keys), len(values), keys)
	}
	for _, k := range keys {
		if len(k) != len("t:rl:")+32 || !strings.HasPrefix(k, "t:rl:") || strings.Trim(k[5:], "0123456789abcdef") != "" {
			t.Errorf("key %q, want t:rl: and 32 hex digits", k)
		}
		pttl, _ := rs.Do("PTTL", k)
		if n, _ := strconv.Atoi(pttl); n <= 0 || n > 1000 {
			t.Errorf("key %s PTTL %s, want 1-1000 ms (one token of 1/s)", k, pttl)
		}
	}
}

// Redis killed mid-test: each on_failure mode answers as configured and
// never 5xx; the state change is logged once and shown in metrics; when
// Redis comes back, shared limiting resumes by itself.
func TestRedisOnFailure(t *testing.T) {
	tests := []struct {
		mode      string
		instances string // cluster.instances
		cluster   string // extra cluster.redis keys
		policy    string // extra policy keys
		// While Redis is down, of 10 requests on a fresh key:
		admitted int
		retry    string
	}{
		// burst 4 over 2 instances: each instance's share is 2.
		{"local", "2", ", on_failure: local", "", 2, "7200"},
		{"allow", "1", ", on_failure: allow", "", 10, ""},
		{"deny", "1", ", on_failure: deny", "", 0, "1"},
		{"policy override", "1", ", on_failure: allow", "\n    on_failure: deny", 0, "1"},
	}
	for _, tc := range tests {
		t.Run(tc.mode, func(t *testing.T) {
			rs := redistest.Start(t)
			doc := "cluster:\n  instances: " + tc.instances + "\n" + strings.TrimPrefix(redisDoc(rs.Addr(), tc.cluster, keyed+"rate: 1/h\n    burst: 4"+tc.policy), "cluster:\n")
			g := start(t, doc)
			g.waitUp(t, true)
			if code, _ := g.get(t, "before"); code != 200 {
				t.Fatalf("before the kill: %d", code)
			}
			rs.Kill()
			admitted := 0
			for i := range 10 {
				code, h := g.get(t, "down")
				switch {
				case code >= 500:
					t.Fatalf("request %d: %d while Redis is down", i, code)
				case code == 200:
					admitted++
				case code == 429:
					if h.Get("Retry-After") != tc.retry {
						t.Errorf("request %d: Retry-After %q, want %q", i, h.Get("Retry-After"), tc.retry)
					}
				default:
					t.Errorf("request %d: status %d", i, code)
				}
				if h.Get("RateLimit-Limit") != "4" {
					t.Errorf("request %d: RateLimit-Limit %q, want 4", i, h.Get("RateLimit-Limit"))
				}
			}
			if admitted != tc.admitted {
				t.Errorf("admitted %d of 10 while Redis is down, want %d", admitted, tc.admitted)
			}
			if n := g.storeErrors("down"); n < 10 {
				t.Errorf("store errors{reason=down} = %v, want at least 10", n)
			}
			if got := gauge(g.m.RedisUp); got != 0 {
				t.Errorf("rampart_redis_up %v while down, want 0", got)
			}
			if n := g.log.count("redis unavailable"); n != 1 {
				t.Errorf("%d 'redis unavailable' log lines, want 1 (one per state change)", n)
			}
			rs.Restart()
			g.waitUp(t, true)
			if code, _ := g.get(t, "after"); code != 200 {
				t.Fatalf("after the restart: %d", code)
			}
			if out, _ := rs.Do("DBSIZE"); out != "1" {
				t.Errorf("after the restart Redis holds %s keys, want 1: decisions are shared again", out)
			}
			if got := gauge(g.m.RedisUp); got != 1 {
				t.Errorf("rampart_redis_up %v after the restart, want 1", got)
			}
			if n := g.log.count("redis available"); n != 2 {
				t.Errorf("%d 'redis available' log lines, want 2 (start, recovery)", n)
			}
		})
	}
}

// A Redis that stalls (DEBUG SLEEP) costs the timeout once: the circuit
// opens and the other requests are decided by on_failure at once, until
// Redis answers a probe again.
func TestRedisSlow(t *testing.T) { forModes(t, testRedisSlow) }

func testRedisSlow(t *testing.T, sync string) {
	rs := redistest.Start(t)
	g := start(t, redisDoc(rs.Addr(), ", timeout: 200ms, on_failure: allow", keyed+"rate: 1/h\n    burst: 1"+"\n    sync: "+sync))
	g.waitUp(t, true)
	go rs.Do("DEBUG", "SLEEP", "3")
	time.Sleep(100 * time.Millisecond) // let the sleep begin
	begin := time.Now()
	for i := range 20 {
		if code, _ := g.get(t, "slow"); code != 200 {
			t.Fatalf("request %d: %d, want 200 (allow)", i, code)
		}
	}
	// Without the circuit, 20 requests would take 20 × 200ms.
	if el := time.Since(begin); el > 2500*time.Millisecond {
		t.Errorf("20 requests took %v while Redis stalled; the circuit should bound it to about one timeout", el)
	}
	if n := g.storeErrors("timeout"); n < 1 || n > 3 {
		t.Errorf("store errors{reason=timeout} = %v, want 1 (then the circuit is open)", n)
	}
	g.waitUp(t, true) // after the sleep, a probe closes the circuit
	if code, _ := g.get(t, "slow-after"); code != 200 {
		t.Fatal("after the stall: not admitted")
	}
	if code, _ := g.get(t, "slow-after"); code != 429 {
		t.Fatal("after the stall: shared limiting did not resume")
	}
}

// SCRIPT FLUSH (or a restarted Redis) makes EVALSHA answer NOSCRIPT: the
// decision loads the script again with EVAL and counts as usual.
func TestRedisNoScript(t *testing.T) {
	rs := redistest.Start(t)
	g := start(t, redisDoc(rs.Addr(), "", keyed+"rate: 1/h\n    burst: 2"))
	g.waitUp(t, true)
	if code, _ := g.get(t, "ns"); code != 200 {
		t.Fatal("first request not admitted")
	}
	if _, err := rs.Do("SCRIPT", "FLUSH"); err != nil {
		t.Fatal(err)
	}
	if out, _ := rs.Do("SCRIPT", "EXISTS", gcraSHA()); out != "[0]" {
		t.Fatalf("SCRIPT EXISTS after flush: %s", out)
	}
	codes := []int{}
	for range 2 {
		code, _ := g.get(t, "ns")
		codes = append(codes, code)
	}
	if codes[0] != 200 || codes[1] != 429 {
		t.Errorf("after SCRIPT FLUSH: %v, want [200 429] (the bucket kept counting)", codes)
	}
	if out, _ := rs.Do("SCRIPT", "EXISTS", gcraSHA()); out != "[1]" {
		t.Errorf("SCRIPT EXISTS after the next decision: %s, want [1]", out)
	}
	for _, reason := range []string{"timeout", "down", "error"} {
		if n := g.storeErrors(reason); n != 0 {
			t.Errorf("store errors{reason=%s} = %v, want 0", reason, n)
		}
	}
}

// A key holding something else (another program's list, or a string that
// is not a number) is an error reply: counted, decided by on_failure,
// never a crash or a 5xx.
func TestRedisUnexpectedValue(t *testing.T) { forModes(t, testRedisUnexpectedValue) }

func testRedisUnexpectedValue(t *testing.T, sync string) {
	rs := redistest.Start(t)
	g := start(t, redisDoc(rs.Addr(), ", on_failure: deny", keyed+"rate: 1/h\n    burst: 5"+"\n    sync: "+sync))
	g.waitUp(t, true)
	tests := []struct {
		name, key string
		cmd       []string
	}{
		{"list", "list", []string{"RPUSH", "", "x"}},
		{"not a number", "text", []string{"SET", "", "hello"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := g.storeErrors("error")
			tc.cmd[1] = g.lim.base.remote.redisKey([]byte(tc.key))
			if _, err := rs.Do(tc.cmd...); err != nil {
				t.Fatal(err)
			}
			code, h := g.get(t, tc.key)
			if code != 429 || h.Get("Retry-After") != "1" {
				t.Errorf("status %d Retry-After %q, want 429 and 1 (deny)", code, h.Get("Retry-After"))
			}
			if g.storeErrors("error") != before+1 {
				t.Errorf("store errors{reason=error} = %v, want %v", g.storeErrors("error"), before+1)
			}
			if !g.lim.base.remote.client.Up() {
				t.Error("an error reply must not open the circuit")
			}
		})
	}
}

// Snapshots with the same cluster.redis share one client; a changed
// setting gets its own, and the last release closes it.
func TestRedisClientSharedAcrossReloads(t *testing.T) {
	rs := redistest.Start(t)
	reg := registry.New()
	defer reg.Close()
	build := func(doc string) (*Limit, *registry.Claims) {
		s := policytest.Spec(t, doc, "l")
		s.Claims = &registry.Claims{}
		s.Log = slog.New(slog.DiscardHandler)
		p, err := New(s)
		if err != nil {
			t.Fatal(err)
		}
		s.Claims.Acquire(reg)
		return p.(*Limit), s.Claims
	}
	a, ca := build(redisDoc(rs.Addr(), "", "rate: 5/s"))
	b, cb := build(redisDoc(rs.Addr(), ", on_failure: deny", "rate: 6/s"))
	c, cc := build(redisDoc(rs.Addr(), ", timeout: 70ms", "rate: 5/s"))
	if a.base.remote.client != b.base.remote.client {
		t.Error("the same Redis settings must share the client (on_failure and rates do not shape it)")
	}
	if a.base.remote.client == c.base.remote.client {
		t.Error("a changed timeout must get its own client")
	}
	redisKeys := func() int {
		n := 0
		for _, k := range reg.Keys() {
			if strings.HasPrefix(k, "redis|") {
				n++
			}
		}
		return n
	}
	if n := redisKeys(); n != 2 {
		t.Errorf("%d redis clients in the registry, want 2", n)
	}
	ca.Release()
	if n := redisKeys(); n != 2 {
		t.Errorf("after releasing one of two holders: %d redis clients, want 2", n)
	}
	(&gateway{lim: b}).waitUp(t, true)
	cb.Release()
	if n := redisKeys(); n != 1 {
		t.Errorf("after releasing both holders: %d redis clients, want 1", n)
	}
	if b.base.remote.client.Up() {
		t.Error("the released client must be closed")
	}
	cc.Release()
	if keys := reg.Keys(); len(keys) != 0 {
		t.Errorf("registry holds %v after every release", keys)
	}
}

// forModes runs test in sync plain and in sync lease.
func forModes(t *testing.T, test func(t *testing.T, sync string)) {
	for _, mode := range []string{"plain", "lease"} {
		t.Run(mode, func(t *testing.T) { test(t, mode) })
	}
}

// gauge reads a gauge's value.
func gauge(g interface{ Write(*dto.Metric) error }) float64 {
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		return -1
	}
	return m.GetGauge().GetValue()
}

// gcraSHA is the SHA-1 of the script, which EVALSHA names.
func gcraSHA() string { return fmt.Sprintf("%x", sha1.Sum([]byte(gcraSource))) }

func TestRedisConfigErrors(t *testing.T) {
	tests := []struct{ name, cluster, policy, want string }{
		{"bad on_failure", "", "rate: 1/s\n    on_failure: open", `test.yaml:8:17: policies.l.on_failure: invalid on_failure "open" (want local, allow or deny)`},
		{"bad sync", "", "rate: 1/s\n    sync: batch", `test.yaml:8:11: policies.l.sync: invalid sync "batch" (want plain or lease)`},
		{"rate too high", "", "rate: 2000000/s", "test.yaml:7:11: policies.l.rate: rate too high for store redis (at most 1000000/s: Redis keeps time in microseconds)"},
		{"role rate too high", "", "rate: 1/s\n    by_role: {fast: 2000000/s}", "policies.l.rate: rate too high for store redis"},
		{"missing password file", ", password_file: /nonexistent/redis.pw", "rate: 1/s", "test.yaml:2:50: cluster.redis.password_file: read password_file: open /nonexistent/redis.pw: no such file or directory"},
		{"missing ca file", ", tls: {ca_file: /nonexistent/ca.pem}", "rate: 1/s", "cluster.redis.tls.ca_file: read ca_file: open /nonexistent/ca.pem"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(policytest.Spec(t, redisDoc("127.0.0.1:1", tc.cluster, tc.policy), "l"))
			policytest.WantError(t, err, tc.want)
		})
	}
}

// On a three-node Redis Cluster, two instances admit each key's burst
// exactly; the keys spread over the nodes (one key per decision, so no
// cross-slot script).
func TestRedisClusterShared(t *testing.T) {
	rc := redistest.StartCluster(t, 3)
	addrs := make([]string, 0, 3)
	for _, a := range rc.Addrs() {
		addrs = append(addrs, strconv.Quote(a))
	}
	doc := "cluster:\n  redis: {addresses: [" + strings.Join(addrs, ", ") + "], timeout: 2s}\npolicies:\n  l:\n    type: rate_limit\n    store: redis\n    " + keyed + "rate: 1/h\n    burst: 10\n"
	a, b := start(t, doc), start(t, doc)
	a.waitUp(t, true)
	b.waitUp(t, true)
	const tenants = 12
	var ok [tenants]atomic.Int64
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := []*gateway{a, b}[w%2]
			for i := range tenants * 4 {
				tenant := (i + w) % tenants
				req, _ := http.NewRequest("GET", g.srv.URL, nil)
				req.Header.Set("X-Key", "tenant-"+strconv.Itoa(tenant))
				resp, err := g.srv.Client().Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode == 200 {
					ok[tenant].Add(1)
				} else if resp.StatusCode != 429 {
					t.Errorf("status %d", resp.StatusCode)
				}
			}
		}()
	}
	wg.Wait()
	// 6 workers × 4 rounds: 24 requests per tenant against a burst of 10.
	for i := range ok {
		if n := ok[i].Load(); n < 9 || n > 11 {
			t.Errorf("tenant %d: admitted %d of 24, want 10 ± 1", i, n)
		}
	}
	nodes := 0
	for _, n := range rc.Nodes {
		if out, _ := n.Do("DBSIZE"); out != "0" {
			nodes++
		}
	}
	if nodes < 2 {
		t.Errorf("keys on %d of 3 nodes, want them spread", nodes)
	}
	for _, g := range []*gateway{a, b} {
		for _, reason := range []string{"timeout", "down", "error"} {
			if n := g.storeErrors(reason); n != 0 {
				t.Errorf("store errors{reason=%s} = %v, want 0", reason, n)
			}
		}
	}
}
