package reload

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/app"
	"github.com/rampart-gw/rampart/test/gwtest"
)

func routeTo(listen, adminAddr, up string) string {
	return head(listen, adminAddr) + fmt.Sprintf(`
upstreams:
  svc: {targets: [{address: %q}]}
routes:
  - {name: r, match: {path: {prefix: /}}, upstream: svc}
`, up)
}

// TestCandidate stages a candidate for 20% of requests (hashed by request
// ID), checks the share, the comparison, both versions in the admin API
// and the metrics, and promotes it.
func TestCandidate(t *testing.T) {
	stable, canary := named(t, "stable", 0), named(t, "canary", 0)
	listen, adminAddr := gwtest.FreeAddr(t), gwtest.FreeAddr(t)
	path := filepath.Join(t.TempDir(), "rampart.yaml")
	os.WriteFile(path, []byte(routeTo(listen, adminAddr, stable)), 0o600)
	g := gwtest.Run(t, app.Options{ConfigPath: path})
	c := newClient(t)
	active := version(t, c, g.Admin)

	code, body := send(t, c, "PUT", g.Admin+"/api/v1/config/candidate?percent=20&hash=request_id", "application/yaml",
		[]byte(routeTo(listen, adminAddr, canary)))
	var staged struct {
		Version string `json:"candidate_version"`
	}
	if json.Unmarshal(body, &staged) != nil || code != 200 || staged.Version == "" || staged.Version == active {
		t.Fatalf("stage: %d %s", code, body)
	}

	const n = 2000
	hits := 0
	for i := range n {
		code, b, _ := get(c, g.URL+"/", "X-Request-ID", fmt.Sprintf("req-%d-%d", i, time.Now().UnixNano()))
		if code != 200 {
			t.Fatalf("request %d: %d %q", i, code, b)
		}
		if b == "canary" {
			hits++
		}
	}
	share := float64(hits) * 100 / n
	t.Logf("candidate at 20%%: %d of %d requests (%.1f%%)", hits, n, share)
	if share < 15 || share > 25 {
		t.Errorf("candidate got %.1f%% of requests, want 20 ± 5", share)
	}

	// The same client (no request ID: hashed by IP) always lands on one side.
	first := ""
	for range 50 {
		_, b, _ := get(c, g.URL+"/")
		if first == "" {
			first = b
		}
		if b != first {
			t.Fatalf("one client got both %q and %q", first, b)
		}
	}

	_, cfgBody, _ := get(c, g.Admin+"/api/v1/config")
	var cfgView struct {
		Version   string `json:"version"`
		Candidate struct {
			Version string  `json:"version"`
			Percent float64 `json:"percent"`
		} `json:"candidate"`
	}
	json.Unmarshal([]byte(cfgBody), &cfgView)
	if cfgView.Version != active || cfgView.Candidate.Version != staged.Version || cfgView.Candidate.Percent != 20 {
		t.Errorf("GET /api/v1/config = %+v, want both versions", cfgView)
	}
	_, cand, _ := get(c, g.Admin+"/api/v1/config/candidate")
	var cv app.CandidateView
	json.Unmarshal([]byte(cand), &cv)
	if cv.Compare.Candidate.Requests != int64(hits) || cv.Compare.Active.Requests < int64(n-hits) || cv.Compare.Candidate.P99ms <= 0 {
		t.Errorf("comparison %+v, want %d candidate requests", cv.Compare, hits)
	}
	_, metrics, _ := get(c, g.Admin+"/metrics")
	for _, v := range []string{active, staged.Version} {
		re := regexp.MustCompile(`rampart_config_version_requests_total\{class="2xx",version="` + v + `"\} [1-9]`)
		if !re.MatchString(metrics) {
			t.Errorf("metrics lack the 2xx count of version %s", v)
		}
	}
	if !strings.Contains(metrics, `rampart_config_candidate_percent{version="`+staged.Version+`"} 20`) {
		t.Errorf("metrics lack rampart_config_candidate_percent")
	}

	code, body = send(t, c, "POST", g.Admin+"/api/v1/config/candidate/promote", "", nil)
	if code != 200 {
		t.Fatalf("promote: %d %s", code, body)
	}
	if v := version(t, c, g.Admin); v != staged.Version {
		t.Errorf("active version after promote %s, want %s", v, staged.Version)
	}
	for range 20 {
		if _, b, _ := get(c, g.URL+"/", "X-Request-ID", fmt.Sprint(time.Now().UnixNano())); b != "canary" {
			t.Fatalf("after promote got %q", b)
		}
	}
	if code, _ := send(t, c, "POST", g.Admin+"/api/v1/config/candidate/rollback", "", nil); code != 404 {
		t.Errorf("rollback without a candidate: %d, want 404", code)
	}
}

// TestCandidateAutoRollback stages a candidate whose upstream answers 500;
// it is rolled back on its own, and every client is back on the active
// config.
func TestCandidateAutoRollback(t *testing.T) {
	stable, broken := named(t, "stable", 0), named(t, "broken", 500)
	listen, adminAddr := gwtest.FreeAddr(t), gwtest.FreeAddr(t)
	path := filepath.Join(t.TempDir(), "rampart.yaml")
	os.WriteFile(path, []byte(routeTo(listen, adminAddr, stable)), 0o600)
	g := gwtest.Run(t, app.Options{ConfigPath: path, AutoRollbackInterval: 50 * time.Millisecond})
	c := newClient(t)
	env, _ := json.Marshal(map[string]any{"percent": 50, "hash": "request_id", "min_requests": 20,
		"max_error_rate_increase": 0.1, "config": routeTo(listen, adminAddr, broken)})
	if code, body := send(t, c, "PUT", g.Admin+"/api/v1/config/candidate", "application/json", env); code != 200 {
		t.Fatalf("stage: %d %s", code, body)
	}
	deadline := time.Now().Add(10 * time.Second)
	sent := 0
	for {
		st := getStatus(t, c, g.Admin)
		if st.LastCandidate != nil {
			if !strings.Contains(st.LastCandidate.Outcome, "automatic") {
				t.Fatalf("candidate ended with %q", st.LastCandidate.Outcome)
			}
			t.Logf("rolled back after %d requests: %s", sent, st.LastCandidate.Outcome)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no automatic rollback after %d requests", sent)
		}
		for range 10 {
			get(c, g.URL+"/", "X-Request-ID", fmt.Sprint(time.Now().UnixNano()))
			sent++
		}
	}
	for range 50 {
		if code, b, _ := get(c, g.URL+"/", "X-Request-ID", fmt.Sprint(time.Now().UnixNano())); code != 200 || b != "stable" {
			t.Fatalf("after rollback: %d %q", code, b)
		}
	}
	if code, _, _ := get(c, g.Admin+"/api/v1/config/candidate"); code != 404 {
		t.Errorf("GET candidate after rollback: %d, want 404", code)
	}
}

// TestCandidateByClientIP checks that without request-ID hashing, distinct
// client addresses spread over both sides and each stays on its side.
func TestCandidateByClientIP(t *testing.T) {
	stable, canary := named(t, "stable", 0), named(t, "canary", 0)
	listen, adminAddr := gwtest.FreeAddr(t), gwtest.FreeAddr(t)
	path := filepath.Join(t.TempDir(), "rampart.yaml")
	os.WriteFile(path, []byte(routeTo(listen, adminAddr, stable)), 0o600)
	g := gwtest.Run(t, app.Options{ConfigPath: path})
	c := newClient(t)
	if code, body := send(t, c, "PUT", g.Admin+"/api/v1/config/candidate?percent=50", "", []byte(routeTo(listen, adminAddr, canary))); code != 200 {
		t.Fatalf("stage: %d %s", code, body)
	}
	sides := map[string]int{}
	for i := 2; i < 42; i++ {
		ip := net.IPv4(127, 0, 0, byte(i))
		tr := &http.Transport{Proxy: nil, DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}}).DialContext}
		cc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
		_, first, _ := get(cc, g.URL+"/")
		for range 3 {
			tr.CloseIdleConnections() // a new connection, a new source port
			if _, b, _ := get(cc, g.URL+"/"); b != first {
				t.Fatalf("client %s got %q then %q", ip, first, b)
			}
		}
		tr.CloseIdleConnections()
		sides[first]++
	}
	if sides["stable"] == 0 || sides["canary"] == 0 {
		t.Errorf("40 clients at 50%%: %v, want both sides used", sides)
	}
}
