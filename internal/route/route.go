// Package route holds the small handlers that compile composes into a
// route, Traefik-style, around the proxy of each upstream:
//
//	policies → Errors → Cache → Split → Failover → proxy
//
// Errors renders failures (the one place that turns a typed error into the
// JSON error, the route's fallback or a stale cache entry); Cache answers
// fresh hits and stores cacheable responses; Split chooses a branch by
// weight; Failover hands traffic to the next upstream while one has no
// healthy target. A handler that gives up hands its typed error to Fail,
// and writes nothing.
package route

import (
	"errors"
	"math/rand/v2"
	"net/http"
	"strconv"

	"github.com/rampart-gw/rampart/internal/cluster"
	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/exchange"
)

// Fail hands err, the reason a handler gives up on r, to the route's
// Errors handler, which renders it once the handler has returned. The
// handler must write nothing after. Without an Exchange (a handler used on
// its own) err is rendered at once.
func Fail(w http.ResponseWriter, r *http.Request, err error) {
	if ex := exchange.From(r.Context()); ex != nil {
		ex.Err = err
		return
	}
	Render(w, r, err, nil, nil)
}

// Errors renders the failure its route's handlers hand to Fail.
type Errors struct {
	Next http.Handler
	// Fallback, when set, answers 502/503/504 failures.
	Fallback *config.Fallback
	// Cache, when set, answers 502/503/504 failures with a stale entry.
	Cache *Cache
}

func (h *Errors) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.Next.ServeHTTP(w, r)
	if ex := exchange.From(r.Context()); ex != nil && ex.Err != nil {
		err := ex.Err
		ex.Err = nil
		Render(w, r, err, h.Fallback, h.Cache)
	}
}

// Refusal is a request the gateway answers itself before any upstream
// attempt, such as a body that could not be buffered (request_buffering):
// it is answered with its JSON error, never the fallback or a stale cache
// entry. Status cluster.StatusClientClosed (the client went away) is only
// logged, and nothing is written.
type Refusal struct {
	Status int
	Code   string
	Msg    string
	Err    error // the cause, if any
}

func (e *Refusal) Error() string {
	if e.Err != nil {
		return e.Code + ": " + e.Msg + ": " + e.Err.Error()
	}
	return e.Code + ": " + e.Msg
}

func (e *Refusal) Unwrap() error { return e.Err }

// Render answers err for r: nothing for a client that went away (the
// status 499 is only logged), 413 for a request body over the listener's
// limit, a Refusal's own error, a stale cache entry or the fallback for
// 502/503/504 (not for a gRPC call), else the JSON error (CONTRACT.md), or
// the gRPC status for a gRPC call (exchange.Error).
func Render(w http.ResponseWriter, r *http.Request, err error, fb *config.Fallback, c *Cache) {
	ex := exchange.From(r.Context())
	if exchange.BodyTooLarge(r) || errors.Is(err, exchange.ErrBodyTooLarge) {
		exchange.Error(w, r, http.StatusRequestEntityTooLarge, "body_too_large", "request body exceeds the limit")
		return
	}
	var rf *Refusal
	if errors.As(err, &rf) {
		if rf.Status == cluster.StatusClientClosed {
			if ex != nil {
				ex.Code, ex.Unanswered = rf.Code, rf.Status
			}
			return
		}
		exchange.Error(w, r, rf.Status, rf.Code, rf.Msg)
		return
	}
	var e *cluster.Error
	if !errors.As(err, &e) {
		e = &cluster.Error{Status: http.StatusBadGateway, Code: "bad_upstream_response", Msg: "invalid response from upstream", Err: err}
	}
	if e.Kind == cluster.Canceled {
		// Nobody reads an answer, and net/http closes the connection
		// after the handler. Nothing is written, so the framing guard can
		// still answer 400 when the "going away" was a malformed request
		// body (internal/listener/guard).
		if ex != nil {
			ex.Code = e.Code
			ex.Unanswered = e.Status
		}
		return
	}
	if e.Answerable() {
		if c != nil && c.serveStale(w, r) {
			if ex != nil {
				ex.Code = e.Code
			}
			return
		}
		if fb != nil && !exchange.IsGRPC(r) { // a gRPC client could not read the fallback body: it gets the gRPC status
			if ex != nil {
				ex.Code = e.Code
			}
			h := w.Header()
			if fb.ContentType != "" {
				h.Set("Content-Type", fb.ContentType)
			}
			h.Set("X-Rampart-Fallback", e.Code)
			h.Set("Content-Length", strconv.Itoa(len(fb.Body)))
			status := fb.Status
			if status == 0 {
				status = e.Status
			}
			w.WriteHeader(status)
			w.Write([]byte(fb.Body))
			return
		}
	}
	if e.RetryAfter != "" {
		w.Header().Set("Retry-After", e.RetryAfter)
	}
	exchange.Error(w, r, e.Status, e.Code, e.Msg)
}

// Branch is one weighted branch of a Split.
type Branch struct {
	Handler http.Handler
	Weight  int
}

// Split sends each request to one of its branches, at random by weight.
type Split struct {
	Branches []Branch
	total    int
}

// NewSplit returns a Split over branches; every weight must be positive.
func NewSplit(branches []Branch) (*Split, error) {
	s := &Split{Branches: branches}
	for _, b := range branches {
		if b.Weight <= 0 {
			return nil, errors.New("weight must be positive")
		}
		s.total += b.Weight
	}
	if s.total == 0 {
		return nil, errors.New("route has no upstream")
	}
	return s, nil
}

func (s *Split) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	x := rand.IntN(s.total)
	for _, b := range s.Branches {
		if x < b.Weight {
			b.Handler.ServeHTTP(w, r)
			return
		}
		x -= b.Weight
	}
	s.Branches[len(s.Branches)-1].Handler.ServeHTTP(w, r)
}

// Failover serves with Primary while Upstream has a healthy target and its
// failure-tripped circuit is not open, and with Next (the failover
// upstream's handler) otherwise. Once the open period ends, Primary gets
// traffic again, so that its half-open probes can close the circuit.
type Failover struct {
	Upstream *cluster.Upstream
	Primary  http.Handler
	Next     http.Handler
}

func (f *Failover) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.Upstream.NoHealthy() || f.Upstream.CircuitOpen() {
		f.Next.ServeHTTP(w, r)
		return
	}
	f.Primary.ServeHTTP(w, r)
}
