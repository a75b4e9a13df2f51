package cluster

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rampart-gw/rampart/internal/config"
)

// The retry loop and the h1 client decide idempotency with one function,
// http1.Idempotent (issue 16): a request with an Idempotency-Key may be
// sent again, by the client replaying it on a stale connection and by
// the retry loop after a listed failure alike. Before, the retry loop
// looked at the method only, so a keyed POST was never retried.
func TestRetryIdempotency(t *testing.T) {
	tests := []struct {
		name          string
		method        string
		header        http.Header
		nonIdempotent bool
		want          int64 // upstream attempts
	}{
		{"get", http.MethodGet, nil, false, 2},
		{"put", http.MethodPut, nil, false, 2},
		{"post", http.MethodPost, nil, false, 1},
		{"patch", http.MethodPatch, nil, false, 1},
		{"post with Idempotency-Key", http.MethodPost, http.Header{"Idempotency-Key": {"k1"}}, false, 2},
		{"patch with X-Idempotency-Key", http.MethodPatch, http.Header{"X-Idempotency-Key": {"k2"}}, false, 2},
		{"post with non_idempotent", http.MethodPost, nil, true, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, hits := countingServer(t, http.StatusServiceUnavailable)
			u := buildUp(t, &config.Upstream{Targets: []config.Target{{Address: srv.Listener.Addr().String(), Weight: 1}}})
			rt := retryOn(t, 2, "503")
			rt.NonIdempotent = tc.nonIdempotent
			req := httptest.NewRequest(tc.method, "/", strings.NewReader("body"))
			for k, v := range tc.header {
				req.Header[k] = v
			}
			resp, err := u.Do(req, &Policy{Retry: rt})
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if got := hits.Load(); got != tc.want {
				t.Fatalf("%d upstream attempts, want %d", got, tc.want)
			}
		})
	}
}
