package gateway

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rampart-gw/rampart/internal/cluster"
	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/route"
	"github.com/rampart-gw/rampart/internal/router"
	"github.com/rampart-gw/rampart/internal/telemetry"
)

// TestClientGoneUnanswered checks that a request whose client went away is
// answered with nothing (no status written to the server's writer, so the
// framing guard can still answer a malformed body) and logged as 499.
func TestClientGoneUnanswered(t *testing.T) {
	rt, err := router.New([]router.Rule{{Match: config.Match{Path: config.PathMatch{Prefix: "/"}}}})
	if err != nil {
		t.Fatal(err)
	}
	gone := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		route.Fail(w, r, &cluster.Error{Kind: cluster.Canceled, Status: cluster.StatusClientClosed, Code: "client_closed_request", Msg: "client closed the request"})
	})
	store := &Store{}
	store.Swap(&Snapshot{Router: rt, RequestIDHeader: "X-Request-Id",
		Routes: []*Route{{Name: "r", Handler: &route.Errors{Next: gone}}}})
	var logs bytes.Buffer
	al := telemetry.NewAccessLog(&logs, nil)
	h := NewHandler(HandlerConfig{Listener: "l"}, HandlerDeps{Store: store, AccessLog: func() *telemetry.AccessLog { return al }})
	w := &headerSpy{ResponseRecorder: httptest.NewRecorder()}
	h.ServeHTTP(w, httptest.NewRequest("GET", "/x", nil))
	if w.wrote != 0 || w.Body.Len() != 0 {
		t.Fatalf("wrote status %d, body %q", w.wrote, w.Body)
	}
	al.Close()
	if line := logs.String(); !strings.Contains(line, "499") || !strings.Contains(line, "client_closed_request") {
		t.Fatalf("access log %q, want status 499 and the code", line)
	}
}

type headerSpy struct {
	*httptest.ResponseRecorder
	wrote int
}

func (w *headerSpy) WriteHeader(code int) { w.wrote = code; w.ResponseRecorder.WriteHeader(code) }
