// Package policytest helps policy packages test themselves: it builds a
// policy.Spec from a config document and runs requests through a policy.
package policytest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/exchange"
	"github.com/rampart-gw/rampart/internal/policy"
)

// Spec parses doc, a config document with at least a policies section (and
// consumers, when the policy needs them), and returns the Spec of the
// policy named name, as compile would build it (without metrics).
func Spec(t testing.TB, doc, name string) policy.Spec {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(doc))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, doc)
	}
	pc := cfg.Policies[name]
	if pc == nil {
		t.Fatalf("no policy %q in\n%s", name, doc)
	}
	return policy.Spec{Name: name, Node: pc, File: cfg.File(), Path: "policies." + name, Config: cfg}
}

// Upstream is a handler that records that it was reached and answers 200
// with the request headers it saw echoed as X-Seen-<Name>.
type Upstream struct {
	Calls int
	Last  *http.Request
}

func (u *Upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.Calls++
	u.Last = r
	w.Header().Set("X-Upstream", "yes")
	w.WriteHeader(http.StatusOK)
	w.Write([]byte("ok"))
}

// Serve runs r through h with an Exchange on its context (as the gateway
// sets up) and returns the recorded response and the Exchange.
func Serve(h http.Handler, r *http.Request) (*httptest.ResponseRecorder, *exchange.Exchange) {
	ex := &exchange.Exchange{RequestID: "test-rid", Route: "r1"}
	r = r.WithContext(exchange.With(r.Context(), ex))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec, ex
}

// ServeAs is Serve with the Exchange prepared by the caller (consumer,
// roles).
func ServeAs(h http.Handler, r *http.Request, ex *exchange.Exchange) *httptest.ResponseRecorder {
	r = r.WithContext(exchange.With(r.Context(), ex))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

// Code returns the "code" of a gateway JSON error body, or "".
func Code(rec *httptest.ResponseRecorder) string {
	b := rec.Body.String()
	const k = `"code":"`
	for i := 0; i+len(k) <= len(b); i++ {
		if b[i:i+len(k)] == k {
			rest := b[i+len(k):]
			for j := 0; j < len(rest); j++ {
				if rest[j] == '"' {
					return rest[:j]
				}
			}
		}
	}
	return ""
}

// WantError checks the error of building a policy: want "" means it must
// build; otherwise the error must contain want.
func WantError(t testing.TB, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v, want %q", err, want)
	}
}
