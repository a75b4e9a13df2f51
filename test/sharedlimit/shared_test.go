// Package sharedlimit runs three real gateway processes (the built
// binary) against one real redis-server and checks the cluster-wide rate
// limit of issue 12: the total admitted across the instances, and the
// behaviour while Redis is killed and after it is restarted.
package sharedlimit

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/redis/redistest"
	"github.com/rampart-gw/rampart/test/gwtest"
)

var rampartBin string

func TestMain(m *testing.M) { gwtest.MainWithBinary(m, &rampartBin) }

// instance is one gateway process.
type instance struct {
	proc  *gwtest.Proc
	url   string
	admin string
}

// single is the cluster.redis location of one server.
func single(addr string) string { return fmt.Sprintf("address: %q", addr) }

// startInstances runs n gateways with where (the keys saying where Redis
// is) in cluster.redis, and policy: the rate_limit policy's settings
// after its type and key (defaultPolicy when empty).
func startInstances(t *testing.T, n int, where, upstream, policy string) []*instance {
	if policy == "" {
		policy = defaultPolicy
	}
	t.Helper()
	var out []*instance
	for i := range n {
		addr, admin := gwtest.FreeAddr(t), gwtest.FreeAddr(t)
		doc := fmt.Sprintf(`listeners:
  - {name: public, address: %q}
admin: {address: %q}
drain_timeout: 2s
observability: {access_log: {path: "off"}}
upstreams:
  echo: {targets: [{address: %q}]}
routes:
  - {name: api, match: {path: {prefix: /}}, upstream: echo, policies: [shared]}
policies:
  shared: {type: rate_limit, key: "header:X-Tenant", %s}
cluster:
  instances: %d
  redis: {%s, timeout: 1s, on_failure: local}
`, addr, admin, upstream, policy, n, where)
		file := filepath.Join(t.TempDir(), fmt.Sprintf("rampart-%d.yaml", i))
		if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		in := &instance{url: "http://" + addr, admin: "http://" + admin}
		in.proc = gwtest.StartProc(t, rampartBin, io.Discard, "run", "-c", file)
		out = append(out, in)
	}
	c := gwtest.Client(t, 5*time.Second)
	for _, in := range out {
		gwtest.WaitFor(t, 20*time.Second, "instance ready with redis up", func() bool {
			return in.metric(c, "rampart_redis_up") == "1"
		})
	}
	return out
}

// defaultPolicy is the limit of the accuracy and outage tests.
const defaultPolicy = "rate: 600/m, burst: 600, store: redis"

// metric returns the value of the sample line starting with prefix, or "".
func (in *instance) metric(c *http.Client, prefix string) string {
	resp, err := c.Get(in.admin + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, prefix+" ") {
			return strings.TrimPrefix(line, prefix+" ")
		}
	}
	return ""
}

// redisStatus is the redis part of GET /api/v1/config/status.
func (in *instance) redisStatus(t *testing.T, c *http.Client) []struct {
	Addresses []string `json:"addresses"`
	Up        bool     `json:"up"`
	LastError string   `json:"last_error"`
} {
	t.Helper()
	resp, err := c.Get(in.admin + "/api/v1/config/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		Redis []struct {
			Addresses []string `json:"addresses"`
			Up        bool     `json:"up"`
			LastError string   `json:"last_error"`
		} `json:"redis"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st.Redis
}

// tally counts answers by status and keeps latencies.
type tally struct {
	mu      sync.Mutex
	codes   map[int]int
	errs    int
	latency []time.Duration
}

func (ta *tally) add(code int, err error, d time.Duration) {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	if ta.codes == nil {
		ta.codes = map[int]int{}
	}
	if err != nil {
		ta.errs++
		return
	}
	ta.codes[code]++
	ta.latency = append(ta.latency, d)
}

func (ta *tally) p99() time.Duration {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	l := slices.Clone(ta.latency)
	slices.Sort(l)
	if len(l) == 0 {
		return 0
	}
	return l[len(l)*99/100]
}

// load sends total requests with tenant over the instances, from workers
// spread evenly, and returns the tally and how long it took.
func load(t *testing.T, ins []*instance, tenant string, total, workers int, during func(sent int64)) (*tally, time.Duration) {
	t.Helper()
	c := gwtest.Client(t, 10*time.Second)
	ta := &tally{}
	var sent atomic.Int64
	var wg sync.WaitGroup
	begin := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in := ins[w%len(ins)]
			for sent.Add(1) <= int64(total) {
				if during != nil && w == 0 {
					during(sent.Load())
				}
				req, _ := http.NewRequest("GET", in.url+"/x", nil)
				req.Header.Set("X-Tenant", tenant)
				s := time.Now()
				resp, err := c.Do(req)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					ta.add(resp.StatusCode, nil, time.Since(s))
				} else {
					ta.add(0, err, 0)
				}
			}
		}()
	}
	wg.Wait()
	return ta, time.Since(begin)
}

// Three gateway processes, one limit of 600/m with a burst of 600,
// concurrent load spread over all three: together they admit the burst
// plus what refilled during the load (10/s), within 2 %.
//
// In sync lease mode too: the instances lease batches of tokens, and
// once the burst is spent Redis grants only what refilled, so the total
// stays within the same 2 %. The test reports the Redis round trips per
// request (script calls counted by INFO commandstats on every node).
func TestThreeGatewaysShareOneLimit(t *testing.T) {
	oneServer := func(t *testing.T) (string, []*redistest.Server) {
		rs := redistest.Start(t)
		return single(rs.Addr()), []*redistest.Server{rs}
	}
	cluster := func(t *testing.T) (string, []*redistest.Server) {
		rc := redistest.StartCluster(t, 3)
		var q []string
		for _, a := range rc.Addrs() {
			q = append(q, fmt.Sprintf("%q", a))
		}
		return "addresses: [" + strings.Join(q, ", ") + "]", rc.Nodes
	}
	tests := []struct {
		name  string
		where func(t *testing.T) (string, []*redistest.Server)
		sync  string
	}{
		{"one server", oneServer, "plain"},
		{"redis cluster", cluster, "plain"},
		{"one server lease", oneServer, "lease"},
		{"redis cluster lease", cluster, "lease"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up := gwtest.Upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
			where, nodes := tc.where(t)
			ins := startInstances(t, 3, where, up, defaultPolicy+", sync: "+tc.sync)

			before := scriptCalls(t, nodes)
			ta, elapsed := load(t, ins, "accuracy", 1800, 12, nil)
			admitted := ta.codes[200]
			// Refill during the load: 10 tokens a second.
			want := 600 + int(elapsed.Seconds()*10)
			if admitted < 600 || float64(admitted) > float64(want)*1.02+1 {
				t.Errorf("admitted %d of 1800 in %v across 3 instances, want %d (600 + refill) within 2%%", admitted, elapsed, want)
			}
			if ta.errs != 0 || ta.codes[200]+ta.codes[429] != 1800 {
				t.Errorf("answers %v, %d transport errors; want only 200 and 429", ta.codes, ta.errs)
			}
			time.Sleep(time.Second) // the sweepers give back what leases did not spend
			trips := scriptCalls(t, nodes) - before
			t.Logf("sync %s: admitted %d of 1800 in %v (600 + %.1f refilled, %+.2f %%); %d Redis round trips (%.3f per request); p99 %v",
				tc.sync, admitted, elapsed, elapsed.Seconds()*10, 100*(float64(admitted)/float64(want)-1), trips, float64(trips)/1800, ta.p99())
			if tc.sync == "lease" && trips >= 1800 {
				t.Errorf("lease mode made %d round trips for 1800 requests, want fewer than one per request", trips)
			}
			c := gwtest.Client(t, 5*time.Second)
			for _, in := range ins {
				for _, reason := range []string{"timeout", "down", "error"} {
					if v := in.metric(c, `rampart_rate_limit_store_errors_total{policy="shared",reason="`+reason+`"}`); v != "" && v != "0" {
						t.Errorf("store errors %s = %s, want 0", reason, v)
					}
				}
			}
		})
	}
}

// Redis killed mid-load (SIGKILL): no 5xx, every instance falls back to
// its share (on_failure local, 600 ÷ 3 each) without waiting for the
// timeout; one log line per instance says so. Restarted, shared limiting
// resumes within a couple of seconds. The same in sync lease: leased
// tokens are spent, then on_failure decides.
func TestRedisKilledMidLoad(t *testing.T) {
	for _, mode := range []string{"plain", "lease"} {
		t.Run(mode, func(t *testing.T) { redisKilledMidLoad(t, mode) })
	}
}

func redisKilledMidLoad(t *testing.T, mode string) {
	rs := redistest.Start(t)
	up := gwtest.Upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	ins := startInstances(t, 3, single(rs.Addr()), up, defaultPolicy+", sync: "+mode)

	var killed atomic.Bool
	ta, _ := load(t, ins, "outage", 1500, 12, func(sent int64) {
		if sent >= 300 && killed.CompareAndSwap(false, true) {
			rs.Kill()
		}
	})
	if n := ta.codes[500] + ta.codes[502] + ta.codes[503] + ta.codes[504]; n != 0 || ta.errs != 0 {
		t.Fatalf("answers while Redis was killed: %v, %d transport errors; want no 5xx", ta.codes, ta.errs)
	}
	// Before the kill the shared burst of 600 was being used; after it,
	// each instance's fresh local buckets allow 200: at most 600 + 3 × 200
	// in all (plus refill).
	if ok := ta.codes[200]; ok < 300 || ok > 1250 {
		t.Errorf("admitted %d of 1500 around the kill, want between 300 and 1250", ok)
	}
	// The circuit: requests after the kill do not wait for the 1s timeout.
	if p := ta.p99(); p >= time.Second {
		t.Errorf("p99 latency %v around the kill: pinned at the timeout", p)
	}
	c := gwtest.Client(t, 5*time.Second)
	for i, in := range ins {
		if st := in.redisStatus(t, c); len(st) != 1 || st[0].Up || st[0].LastError == "" {
			t.Errorf("instance %d: status redis %+v while Redis is down, want one client, down, with its error", i, st)
		}
		if v := in.metric(c, "rampart_redis_up"); v != "0" {
			t.Errorf("instance %d: rampart_redis_up %q while Redis is down, want 0", i, v)
		}
		if n := strings.Count(in.proc.Stderr(), "redis unavailable"); n != 1 {
			t.Errorf("instance %d: %d 'redis unavailable' log lines, want 1", i, n)
		}
	}

	rs.Restart()
	begin := time.Now()
	for _, in := range ins {
		gwtest.WaitFor(t, 5*time.Second, "redis up again", func() bool { return in.metric(c, "rampart_redis_up") == "1" })
	}
	t.Logf("shared limiting resumed %v after the restart", time.Since(begin))
	for i, in := range ins {
		if st := in.redisStatus(t, c); len(st) != 1 || !st[0].Up || st[0].Addresses[0] != rs.Addr() {
			t.Errorf("instance %d: status redis %+v after the restart, want %s up", i, st, rs.Addr())
		}
	}
	// Shared again: a fresh tenant gets exactly the burst across the three.
	ta, elapsed := load(t, ins, "after-restart", 900, 12, nil)
	if ok := ta.codes[200]; ok < 600 || float64(ok) > (600+elapsed.Seconds()*10)*1.02+1 {
		t.Errorf("after the restart: admitted %d of 900 in %v, want 600 + refill", ok, elapsed)
	}
	if v, _ := rs.Do("DBSIZE"); v == "0" {
		t.Error("after the restart Redis holds no key: decisions are not shared")
	}
	for i, in := range ins {
		if n := strings.Count(in.proc.Stderr(), "redis available"); n != 2 {
			t.Errorf("instance %d: %d 'redis available' log lines, want 2 (start, recovery)", i, n)
		}
	}
}

// scriptCalls is how many scripts (EVALSHA, EVAL) the nodes have run:
// the rate limit's round trips.
func scriptCalls(t *testing.T, nodes []*redistest.Server) int {
	t.Helper()
	n := 0
	for _, rs := range nodes {
		out, err := rs.Do("INFO", "commandstats")
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range scriptStat.FindAllStringSubmatch(out, -1) {
			c, _ := strconv.Atoi(m[1])
			n += c
		}
	}
	return n
}

var scriptStat = regexp.MustCompile(`cmdstat_(?:evalsha|eval):calls=(\d+)`)

// Rejected requests don't count, in either mode: a client hammering the
// three instances at 10× its limit (50/s) for two seconds gets the burst
// plus what refilled, and is admitted again as soon as a token refills
// after it stops. A limiter counting rejections would admit the burst
// only.
func TestRejectedDoNotCount(t *testing.T) {
	rs := redistest.Start(t)
	for _, mode := range []string{"plain", "lease"} {
		t.Run(mode, func(t *testing.T) {
			up := gwtest.Upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
			ins := startInstances(t, 3, single(rs.Addr()), up, "rate: 50/s, burst: 50, store: redis, sync: "+mode)
			c := gwtest.Client(t, 10*time.Second)
			tenant := "hammer-" + mode
			get := func(in *instance) int {
				req, _ := http.NewRequest("GET", in.url+"/x", nil)
				req.Header.Set("X-Tenant", tenant)
				resp, err := c.Do(req)
				if err != nil {
					return 0
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				return resp.StatusCode
			}
			var ok, limited, other atomic.Int64
			var wg sync.WaitGroup
			before := scriptCalls(t, []*redistest.Server{rs})
			begin := time.Now()
			for w := range 10 { // each about 50 requests a second: 500/s, 10× the limit
				wg.Add(1)
				go func() {
					defer wg.Done()
					for n := 0; n < 200 && time.Since(begin) < 2*time.Second; n++ {
						switch get(ins[w%3]) {
						case 200:
							ok.Add(1)
						case 429:
							limited.Add(1)
						default:
							other.Add(1)
						}
						time.Sleep(20 * time.Millisecond)
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(begin)
			trips := scriptCalls(t, []*redistest.Server{rs}) - before
			sent := ok.Load() + limited.Load() + other.Load()
			want := 50 + 50*elapsed.Seconds()
			t.Logf("sync %s: admitted %d of %d in %v (want %.0f); %d round trips (%.3f per request)", mode, ok.Load(), sent, elapsed, want, trips, float64(trips)/float64(sent))
			if other.Load() != 0 {
				t.Errorf("%d answers neither 200 nor 429", other.Load())
			}
			if float64(sent) < 4*want {
				t.Errorf("sent only %d requests in %v: not hammering (want at least 4× the %.0f allowed)", sent, elapsed, want)
			}
			if a := float64(ok.Load()); a < want*0.95 || a > want*1.02+1 {
				t.Errorf("admitted %d, want %.0f (burst + refill) within -5/+2 %%", ok.Load(), want)
			}
			time.Sleep(60 * time.Millisecond) // three tokens refill
			if code := get(ins[0]); code != 200 {
				t.Errorf("after the hammering stopped: %d, want 200 as soon as a token refilled", code)
			}
		})
	}
}
