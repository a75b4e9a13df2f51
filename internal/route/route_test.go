package route

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/cluster"
	"github.com/rampart-gw/rampart/internal/cluster/cache"
	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/exchange"
)

// withExchange returns r carrying an Exchange, as the gateway's are.
func withExchange(r *http.Request) (*http.Request, *exchange.Exchange) {
	c := &exchange.Context{Context: r.Context()}
	return r.WithContext(c), &c.Exchange
}

// failing is a handler that gives up with err.
func failing(err error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { Fail(w, r, err) })
}

var unreachable = &cluster.Error{Kind: cluster.Unreachable, Status: 502, Code: "upstream_unreachable", Msg: "upstream closed the connection"}

func TestErrorsRender(t *testing.T) {
	t.Run("json", func(t *testing.T) {
		r, ex := withExchange(httptest.NewRequest("GET", "/", nil))
		rec := httptest.NewRecorder()
		(&Errors{Next: failing(&cluster.Error{Kind: cluster.NoHealthy, Status: 503, Code: "no_healthy_upstream", Msg: "m", RetryAfter: "1"})}).ServeHTTP(rec, r)
		if rec.Code != 503 || rec.Header().Get("Retry-After") != "1" || !strings.Contains(rec.Body.String(), `"code":"no_healthy_upstream"`) {
			t.Fatalf("got %d %v %s", rec.Code, rec.Header(), rec.Body)
		}
		if ex.Code != "no_healthy_upstream" || ex.Err != nil {
			t.Fatalf("exchange code %q err %v", ex.Code, ex.Err)
		}
	})
	t.Run("client gone writes nothing", func(t *testing.T) {
		r, ex := withExchange(httptest.NewRequest("GET", "/", nil))
		rec := httptest.NewRecorder()
		(&Errors{Next: failing(&cluster.Error{Kind: cluster.Canceled, Status: cluster.StatusClientClosed, Code: "client_closed_request"}),
			Fallback: &config.Fallback{Status: 200, Body: "fb"}}).ServeHTTP(rec, r)
		if rec.Flushed || rec.Body.Len() != 0 || len(rec.Header()) != 0 {
			t.Fatalf("wrote %d %v %q", rec.Code, rec.Header(), rec.Body)
		}
		if ex.Unanswered != 499 || ex.Code != "client_closed_request" {
			t.Fatalf("exchange unanswered %d code %q", ex.Unanswered, ex.Code)
		}
	})
	t.Run("fallback", func(t *testing.T) {
		r, ex := withExchange(httptest.NewRequest("GET", "/", nil))
		rec := httptest.NewRecorder()
		(&Errors{Next: failing(unreachable), Fallback: &config.Fallback{ContentType: "text/plain", Body: "later"}}).ServeHTTP(rec, r)
		if rec.Code != 502 || rec.Body.String() != "later" || rec.Header().Get("X-Rampart-Fallback") != "upstream_unreachable" {
			t.Fatalf("got %d %v %q", rec.Code, rec.Header(), rec.Body)
		}
		if ex.Code != "upstream_unreachable" {
			t.Fatalf("code %q", ex.Code)
		}
	})
	t.Run("body too large", func(t *testing.T) {
		r, _ := withExchange(httptest.NewRequest("POST", "/", nil))
		r.Body = tooLarge{}
		rec := httptest.NewRecorder()
		(&Errors{Next: failing(unreachable), Fallback: &config.Fallback{Body: "later"}}).ServeHTTP(rec, r)
		if rec.Code != 413 || !strings.Contains(rec.Body.String(), "body_too_large") {
			t.Fatalf("got %d %q", rec.Code, rec.Body)
		}
	})
	t.Run("without an exchange", func(t *testing.T) {
		rec := httptest.NewRecorder()
		failing(unreachable).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		if rec.Code != 502 {
			t.Fatalf("got %d", rec.Code)
		}
	})
}

type tooLarge struct{}

func (tooLarge) Read([]byte) (int, error) { return 0, exchange.ErrBodyTooLarge }
func (tooLarge) Close() error             { return nil }
func (tooLarge) TooLarge() bool           { return true }

func TestCacheStale(t *testing.T) {
	store := cache.New(cache.Config{})
	status := 200
	upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-From", "upstream")
		w.WriteHeader(status)
		io.WriteString(w, "body "+http.StatusText(status))
	})
	c := &Cache{Next: upstream, Route: "r", Store: store, TTL: time.Nanosecond, StaleIfError: time.Hour}
	h := &Errors{Next: c, Cache: c}
	serve := func() *httptest.ResponseRecorder {
		r, _ := withExchange(httptest.NewRequest("GET", "/x", nil))
		r.Header.Set("X-Request-Id", "rid")
		rec := httptest.NewRecorder()
		rec.Header().Set("X-Request-Id", "rid") // set by the gateway
		h.ServeHTTP(rec, r)
		return rec
	}
	if rec := serve(); rec.Code != 200 || rec.Header().Get("X-Cache") != "MISS" {
		t.Fatalf("first: %d %v", rec.Code, rec.Header())
	}
	time.Sleep(time.Millisecond)
	status = 503
	rec := serve()
	if rec.Code != 200 || rec.Header().Get("X-Cache") != "STALE" || rec.Body.String() != "body OK" || rec.Header().Get("X-From") != "upstream" {
		t.Fatalf("5xx: %d %v %q", rec.Code, rec.Header(), rec.Body)
	}
	if got := rec.Header()["X-Request-Id"]; len(got) != 1 {
		t.Fatalf("request id %q: the entry must not carry the first request's", got)
	}
	c.Next = failing(unreachable)
	if rec := serve(); rec.Code != 200 || rec.Header().Get("X-Cache") != "STALE" {
		t.Fatalf("failure: %d %v", rec.Code, rec.Header())
	}
}
