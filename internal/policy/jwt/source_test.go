package jwt

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/rampart-gw/rampart/internal/policy/policytest"
	"github.com/rampart-gw/rampart/internal/registry"
)

// fakeClock drives a Keys' refresh timer and demand rate limit: time moves
// only when the test advances it.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []fakeTimer
	armed  chan time.Duration // the duration of every After call
}

type fakeTimer struct {
	at time.Time
	c  chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Unix(1_700_000_000, 0), armed: make(chan time.Duration, 100)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	c.timers = append(c.timers, fakeTimer{c.now.Add(d), ch})
	c.armed <- d
	return ch
}

// advance moves time on by d, firing the timers due.
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.timers[:0]
	for _, t := range c.timers {
		if !t.at.After(c.now) {
			t.c <- c.now
			continue
		}
		kept = append(kept, t)
	}
	c.timers = kept
}

// useFakeClock makes the Keys created during the test use a fake clock.
func useFakeClock(t *testing.T) *fakeClock {
	c := newFakeClock()
	old := newClock
	newClock = func() clock { return c }
	t.Cleanup(func() { newClock = old })
	return c
}

// waitArmed waits until the refresher goroutine has set its next timer
// (it has finished a read) and returns the timer's duration.
func waitArmed(t *testing.T, c *fakeClock) time.Duration {
	t.Helper()
	select {
	case d := <-c.armed:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("the key set refresher never set its timer")
		return 0
	}
}

// waitHits waits until the JWKS server has received n requests in all.
func waitHits(t *testing.T, s *jwksServer, n int) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for s.count() < n {
		select {
		case <-deadline:
			t.Fatalf("JWKS server answered %d requests, want %d", s.count(), n)
		case <-time.After(time.Millisecond):
		}
	}
}

// TestRotation: the IdP rotates to a new key and issues tokens with it at
// once; the first token with the new kid makes the policy re-fetch, and
// that request (and every one after) passes.
func TestRotation(t *testing.T) {
	clk := useFakeClock(t)
	old := newSigner(t, "RS256", "old")
	srv := newJWKSServer(t, jwks(t, old))
	p := build(t, "jwks_url: "+srv.URL)
	waitArmed(t, clk) // the fetch at start is done
	if res := call(p, old.sign(t, claimsFor(testIss, testAud, nil))); !res.passed() {
		t.Fatalf("old key refused: %s", res.rec.Body)
	}
	// Rotation: the set now holds only the new key (an EC key, kid "new").
	fresh := newSigner(t, "ES256", "new")
	srv.set(serveDoc(jwks(t, fresh)))
	for i := range 3 {
		if res := call(p, fresh.sign(t, claimsFor(testIss, testAud, nil))); !res.passed() {
			t.Fatalf("request %d with the rotated key refused: %s", i, res.rec.Body)
		}
	}
	if n := srv.count(); n != 2 {
		t.Fatalf("JWKS fetched %d times, want 2 (start + one re-fetch)", n)
	}
	if res := call(p, old.sign(t, claimsFor(testIss, testAud, nil))); res.passed() {
		t.Fatal("a token of the removed key still passes")
	}
}

// TestKidFlood: tokens with random kids cause at most one re-fetch per
// DemandInterval, however many arrive, and are all refused.
func TestKidFlood(t *testing.T) {
	clk := useFakeClock(t)
	s := newSigner(t, "ES256", "k1")
	srv := newJWKSServer(t, jwks(t, s))
	p := build(t, "jwks_url: "+srv.URL)
	waitArmed(t, clk)
	flood := func(n int) {
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				forged := &signer{kid: fmt.Sprintf("random-%d-%d", i, time.Now().UnixNano()), alg: s.alg, priv: s.priv, method: s.method}
				if res := call(p, forged.sign(t, claimsFor(testIss, testAud, nil))); res.passed() || message(t, res.rec) != "token signed by an unknown key" {
					t.Errorf("forged kid: %d %s", res.rec.Code, res.rec.Body)
				}
			}()
		}
		wg.Wait()
	}
	flood(200)
	if n := srv.count(); n != 2 {
		t.Fatalf("after a flood: %d fetches, want 2 (start + one rate-limited re-fetch)", n)
	}
	clk.advance(DemandInterval - time.Second)
	flood(50)
	if n := srv.count(); n != 2 {
		t.Fatalf("within the interval: %d fetches, want still 2", n)
	}
	clk.advance(time.Second)
	flood(50)
	if n := srv.count(); n != 3 {
		t.Fatalf("after the interval: %d fetches, want 3", n)
	}
	if res := call(p, s.sign(t, claimsFor(testIss, testAud, nil))); !res.passed() {
		t.Fatalf("the real key refused after the flood: %s", res.rec.Body)
	}
}

// TestIdPDown: once a key set was fetched, an IdP that fails (errors,
// garbage, HTML, an empty set, gone) never takes it away: background
// refreshes and unknown-kid re-fetches fail and the cached keys keep
// verifying.
func TestIdPDown(t *testing.T) {
	clk := useFakeClock(t)
	s := newSigner(t, "EdDSA", "ed")
	srv := newJWKSServer(t, jwks(t, s))
	p := build(t, "jwks_url: "+srv.URL+"\nrefresh: 1m")
	waitArmed(t, clk)
	tok := s.sign(t, claimsFor(testIss, testAud, nil))
	p.cache = nil // every request verifies against the current set
	answers := []struct {
		name string
		f    func(http.ResponseWriter)
	}{
		{"503", serveStatus(503, "application/json", `{"error":"down"}`)},
		{"garbage", serveStatus(200, "application/json", `{"keys": [`)},
		{"html", serveStatus(200, "text/html", `<html><body>maintenance</body></html>`)},
		{"empty set", serveStatus(200, "application/json", `{"keys": []}`)},
		{"not a set", serveStatus(200, "application/json", `{"hello": "world"}`)},
		{"only unusable keys", serveStatus(200, "application/json", `{"keys": [{"kty":"oct","k":"c2VjcmV0"}, {"kty":"RSA","n":"AQAB","e":"AQAB"}]}`)},
	}
	hits := srv.count()
	for _, a := range answers {
		t.Run(a.name, func(t *testing.T) {
			srv.set(a.f)
			clk.advance(time.Minute) // the background refresh
			waitHits(t, srv, hits+1)
			d := waitArmed(t, clk)
			hits++
			if d > time.Minute {
				t.Errorf("retry in %v after a failure, want at most the refresh interval", d)
			}
			if res := call(p, tok); !res.passed() {
				t.Fatalf("cached key refused after a failed refresh: %s", res.rec.Body)
			}
		})
	}
	srv.Close() // the IdP is gone
	clk.advance(time.Hour)
	waitArmed(t, clk)
	clk.advance(DemandInterval)
	unknown := &signer{kid: "other", alg: s.alg, priv: s.priv, method: s.method}
	if res := call(p, unknown.sign(t, claimsFor(testIss, testAud, nil))); res.passed() {
		t.Fatal("unknown kid passed")
	}
	if res := call(p, tok); !res.passed() {
		t.Fatalf("cached key refused with the IdP gone: %s", res.rec.Body)
	}
}

// TestIdPDownAtStart: with no key set ever fetched, tokens are refused
// with 401 (never a 500), and the first fetch that works lets them in.
func TestIdPDownAtStart(t *testing.T) {
	clk := useFakeClock(t)
	s := newSigner(t, "ES384", "e")
	srv := newJWKSServer(t, jwks(t, s))
	srv.set(serveStatus(500, "text/plain", "oops"))
	p := build(t, "jwks_url: "+srv.URL)
	waitArmed(t, clk)
	tok := s.sign(t, claimsFor(testIss, testAud, nil))
	res := call(p, tok)
	if res.passed() || res.rec.Code != 401 || message(t, res.rec) != "signing keys unavailable: the key set could not be read yet" {
		t.Fatalf("without keys: %d %s", res.rec.Code, res.rec.Body)
	}
	srv.set(serveDoc(jwks(t, s)))
	clk.advance(DemandInterval) // the demand above used the rate limit
	if res := call(p, tok); !res.passed() {
		t.Fatalf("after the IdP recovered: %s", res.rec.Body)
	}
}

// TestRefreshInterval: the background refresh follows Cache-Control
// max-age (clamped), or refresh when set, or the default.
func TestRefreshInterval(t *testing.T) {
	s := newSigner(t, "ES256", "k")
	tests := []struct {
		name, cc, refresh string
		want              time.Duration
	}{
		{"max-age", "public, max-age=600", "", 10 * time.Minute},
		{"max-age clamped up", "max-age=5", "", MinMaxAge},
		{"max-age clamped down", "max-age=9999999", "", MaxMaxAge},
		{"no-store", "no-store, max-age=600", "", MinMaxAge},
		{"none", "", "", DefaultURLRefresh},
		{"refresh wins", "max-age=600", "90s", 90 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := useFakeClock(t)
			var hdr []string
			if tc.cc != "" {
				hdr = []string{"Cache-Control", tc.cc}
			}
			srv := newJWKSServer(t, jwks(t, s), hdr...)
			body := "jwks_url: " + srv.URL
			if tc.refresh != "" {
				body += "\nrefresh: " + tc.refresh
			}
			build(t, body)
			if d := waitArmed(t, clk); d != tc.want {
				t.Fatalf("next refresh in %v, want %v", d, tc.want)
			}
			clk.advance(tc.want)
			waitHits(t, srv, 2)
		})
	}
}

// TestMaxAgeParse covers the Cache-Control parser on its own.
func TestMaxAgeParse(t *testing.T) {
	for cc, want := range map[string]time.Duration{
		"max-age=60":            time.Minute,
		`max-age="60"`:          time.Minute,
		"Max-Age=60, public":    time.Minute,
		"no-cache":              -1,
		"max-age=-1":            0,
		"max-age=abc":           0,
		"":                      0,
		"private, max-age=3600": time.Hour,
	} {
		if got := maxAge(cc); got != want {
			t.Errorf("maxAge(%q) = %v, want %v", cc, got, want)
		}
	}
}

// TestJWKSFile: a jwks_file is read at compile and re-read when it
// changes, in the background and at once on an unknown kid.
func TestJWKSFile(t *testing.T) {
	clk := useFakeClock(t)
	a := newSigner(t, "RS256", "a")
	b := newSigner(t, "ES256", "b")
	path := filepath.Join(t.TempDir(), "jwks.json")
	os.WriteFile(path, jwks(t, a), 0o600)
	p := build(t, "jwks_file: "+path)
	if d := waitArmed(t, clk); d != DefaultFileRefresh {
		t.Fatalf("file checked every %v, want %v", d, DefaultFileRefresh)
	}
	if res := call(p, a.sign(t, claimsFor(testIss, testAud, nil))); !res.passed() {
		t.Fatalf("key a refused: %s", res.rec.Body)
	}
	// Rewritten with key b; a token of b triggers the re-read.
	os.WriteFile(path, jwks(t, b), 0o600)
	os.Chtimes(path, time.Now().Add(time.Minute), time.Now().Add(time.Minute))
	if res := call(p, b.sign(t, claimsFor(testIss, testAud, nil))); !res.passed() {
		t.Fatalf("key b refused after the file changed: %s", res.rec.Body)
	}
	waitArmed(t, clk)
	// Broken file: the background check keeps the last good set.
	os.WriteFile(path, []byte("{broken"), 0o600)
	os.Chtimes(path, time.Now().Add(2*time.Minute), time.Now().Add(2*time.Minute))
	clk.advance(DefaultFileRefresh)
	waitArmed(t, clk)
	if res := call(p, b.sign(t, claimsFor(testIss, testAud, nil))); !res.passed() {
		t.Fatalf("key b refused after the file broke: %s", res.rec.Body)
	}
}

// TestKeysOutliveReload: two compiles of the same policy (a reload) share
// one key set through the registry: no second fetch, and the set is
// closed (its goroutine stopped) only when the last config lets go.
func TestKeysOutliveReload(t *testing.T) {
	s := newSigner(t, "ES256", "k")
	srv := newJWKSServer(t, jwks(t, s))
	doc := "policies:\n  a:\n    type: jwt\n    jwks_url: " + srv.URL + "\n"
	reg := registry.New()
	defer reg.Close()
	compile := func() (*JWT, *registry.Claims) {
		sp := policytest.Spec(t, doc, "a")
		sp.Claims = &registry.Claims{}
		p, err := New(sp)
		if err != nil {
			t.Fatal(err)
		}
		return p.(*JWT), sp.Claims
	}
	p1, c1 := compile()
	if srv.count() != 0 {
		t.Fatal("compile fetched the key set")
	}
	c1.Acquire(reg)
	tok := s.sign(t, claimsFor(testIss, testAud, nil))
	if res := call(p1, tok); !res.passed() {
		t.Fatalf("refused: %s", res.rec.Body)
	}
	p2, c2 := compile() // the reload
	c2.Acquire(reg)
	c1.Release()
	if res := call(p2, tok); !res.passed() {
		t.Fatalf("refused after reload: %s", res.rec.Body)
	}
	if n := srv.count(); n != 1 {
		t.Fatalf("%d fetches across the reload, want 1", n)
	}
	k := p2.keys.(*Keys)
	if p1.keys != p2.keys {
		t.Fatal("the reload got a key set of its own")
	}
	c2.Release()
	select {
	case <-k.done:
	default:
		t.Fatal("the key set still runs after the last config released it")
	}
	if keys := reg.Keys(); len(keys) != 0 {
		t.Fatalf("registry still holds %v", keys)
	}
}

// TestIdPHangs: a key set read that hangs (the IdP accepts and never
// answers) delays no request whose key is known.
func TestIdPHangs(t *testing.T) {
	clk := useFakeClock(t)
	s := newSigner(t, "ES256", "k")
	srv := newJWKSServer(t, jwks(t, s))
	release := make(chan struct{})
	defer close(release)
	p := build(t, "jwks_url: "+srv.URL+"\nrefresh: 1m\ncache_size: 0")
	waitArmed(t, clk)
	srv.set(func(w http.ResponseWriter) { <-release })
	clk.advance(time.Minute) // the background read starts and hangs
	waitHits(t, srv, 2)
	for i := range 20 {
		if res := call(p, s.sign(t, claimsFor(testIss, testAud, gojwt.MapClaims{"jti": i}))); !res.passed() {
			t.Fatalf("request %d refused while the IdP hangs: %s", i, res.rec.Body)
		}
	}
	if n := p.keys.(*Keys).demands.Load(); n != 0 {
		t.Fatalf("%d requests waited for the hanging read", n)
	}
}

// TestSameSetKept: a background read that finds the same document keeps
// the set in use (and so the verified-token cache); a changed one
// replaces it.
func TestSameSetKept(t *testing.T) {
	clk := useFakeClock(t)
	s := newSigner(t, "ES256", "k")
	srv := newJWKSServer(t, jwks(t, s)) // no ETag: every read is a 200
	p := build(t, "jwks_url: "+srv.URL+"\nrefresh: 1m")
	waitArmed(t, clk)
	before := p.keys.current()
	clk.advance(time.Minute)
	waitArmed(t, clk)
	if srv.count() != 2 || p.keys.current() != before {
		t.Fatalf("reads %d; set replaced by an identical document: %v", srv.count(), p.keys.current() != before)
	}
	srv.set(serveDoc(jwks(t, s, newSigner(t, "ES384", "k2"))))
	clk.advance(time.Minute)
	waitArmed(t, clk)
	if p.keys.current() == before || !p.keys.current().known("k2") {
		t.Fatal("a changed document did not replace the set")
	}
}
