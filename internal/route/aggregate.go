package route

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/rampart-gw/rampart/internal/capture"
	"github.com/rampart-gw/rampart/internal/cluster"
	"github.com/rampart-gw/rampart/internal/exchange"
	"github.com/rampart-gw/rampart/internal/telemetry"
)

// Aggregate answers a request by calling all its backends in parallel,
// each through its upstream's Upstream.Do (balancer, health, breaker,
// retry, per-try timeout), and merging their JSON objects, each under its
// group or at the top level. A failing optional backend is left out and
// the answer carries X-Rampart-Completed: false; a failing required one
// fails the request with 502 bad_upstream_response (or the route's
// fallback, through Errors).
type Aggregate struct {
	Route string
	// Timeout bounds the whole fan-out, body reads included; 0 = none.
	Timeout  time.Duration
	Backends []*Backend
	Metrics  *telemetry.Metrics
	Log      *slog.Logger
}

// Backend is one branch of an Aggregate.
type Backend struct {
	Upstream *cluster.Upstream
	// Path and Query are the backend's path and query, with placeholders
	// ({id}, {query.NAME}); Query is nil without one.
	Path, Query *capture.Subst
	Group       string
	Optional    bool
	// Timeout bounds this call inside the aggregate's; 0 = that one.
	Timeout time.Duration
	// Allow keeps only these dotted paths (split); nil keeps all.
	Allow [][]string
	// Rename renames top-level fields, old to new.
	Rename map[string]string
	// MaxBodyBytes bounds the answer's body.
	MaxBodyBytes int64
	// Policy is the call's retry and timeout policy (the route's).
	Policy cluster.Policy
	// After are the earlier backends whose answers this one's path uses
	// ({resp.GROUP.field}), by index: it starts once they have answered.
	After []int
}

// ErrNotJSON is a backend answer that is not JSON (or, without a group,
// not a JSON object).
var ErrNotJSON = errors.New("answer is not JSON")

// errTooLarge is a backend answer over its max_body_bytes.
var errTooLarge = errors.New("answer exceeds max_body_bytes")

// errStatus is a backend answer with a status other than 2xx.
type errStatus int

func (e errStatus) Error() string { return fmt.Sprintf("answered status %d", int(e)) }

// result is what one backend gave.
type result struct {
	val     any // shaped (allow, rename)
	raw     any // as decoded, for later steps
	err     error
	outcome string
}

// errStep is a backend not called because one it depends on failed.
var errStep = errors.New("an earlier backend it uses failed")

func (a *Aggregate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if a.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, a.Timeout)
		defer cancel()
	}
	// A required backend failing ends the others' calls: the answer is
	// the error already.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ex := exchange.From(r.Context())
	results := make([]result, len(a.Backends))
	done := make([]chan struct{}, len(a.Backends))
	for i := range done {
		done[i] = make(chan struct{})
	}
	var wg sync.WaitGroup
	for i, b := range a.Backends {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done[i])
			var resp func(string) string
			for _, j := range b.After {
				<-done[j] // closed after results[j] is written
				if results[j].err != nil {
					results[i] = result{err: fmt.Errorf("%w (backend %d)", errStep, j), outcome: "skipped"}
					if !b.Optional {
						cancel()
					}
					if m := a.Metrics; m != nil {
						m.AggregateBackend.WithLabelValues(a.Route, b.Upstream.Name, "skipped").Inc()
					}
					return
				}
			}
			if len(b.After) > 0 {
				resp = a.stepValue(results)
			}
			start := time.Now()
			results[i] = a.call(ctx, r, ex, b, resp)
			if results[i].err != nil && !b.Optional {
				cancel()
			}
			if m := a.Metrics; m != nil {
				m.AggregateBackend.WithLabelValues(a.Route, b.Upstream.Name, results[i].outcome).Inc()
				m.AggregateDuration.WithLabelValues(a.Route, b.Upstream.Name).Observe(time.Since(start).Seconds())
			}
		}()
	}
	wg.Wait()
	if r.Context().Err() != nil {
		Fail(w, r, &Refusal{Status: cluster.StatusClientClosed, Code: "client_closed_request", Msg: "the client went away", Err: r.Context().Err()})
		return
	}
	// The first required backend that failed by itself (not canceled
	// or skipped because another one failed) names the failure.
	bad := -1
	secondary := func(i int) bool { return results[i].outcome == "canceled" || results[i].outcome == "skipped" }
	for i, b := range a.Backends {
		if res := results[i]; res.err != nil && !b.Optional && (bad < 0 || secondary(bad) && !secondary(i)) {
			bad = i
		}
	}
	if bad >= 0 {
		b, res := a.Backends[bad], results[bad]
		a.log().Warn("aggregate backend failed", "route", a.Route, "backend", bad, "upstream", b.Upstream.Name,
			"path", b.Path.String(), "error", res.err)
		msg := fmt.Sprintf("aggregate backend %d (upstream %s) failed: %v", bad, b.Upstream.Name, res.err)
		Fail(w, r, &cluster.Error{Kind: cluster.BadResponse, Status: http.StatusBadGateway, Code: "bad_upstream_response",
			Msg: msg, Upstream: b.Upstream.Name, Err: res.err})
		return
	}
	out := map[string]any{}
	complete := true
	for i, b := range a.Backends {
		res := results[i]
		if res.err != nil {
			a.log().Info("optional aggregate backend failed", "route", a.Route, "backend", i, "upstream", b.Upstream.Name,
				"path", b.Path.String(), "error", res.err)
			complete = false
			continue
		}
		if b.Group != "" {
			out[b.Group] = res.val
			continue
		}
		for k, v := range res.val.(map[string]any) {
			out[k] = v
		}
	}
	body, err := json.Marshal(out)
	if err != nil {
		Fail(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", fmt.Sprint(len(body)))
	if complete {
		h.Set("X-Rampart-Completed", "true")
	} else {
		h.Set("X-Rampart-Completed", "false")
	}
	if ex != nil {
		ex.Upstream = "aggregate"
	}
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

func (a *Aggregate) log() *slog.Logger {
	if a.Log != nil {
		return a.Log
	}
	return slog.Default()
}

// hopHeaders are not copied from the client's request to a backend's,
// with the body's framing: a backend call is a GET without a body.
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding",
	"Upgrade", "Content-Length", "Content-Type", "Content-Encoding", "Expect", "Accept-Encoding"}

// call makes one backend's request and decodes its answer.
// stepValue returns the lookup of {resp.GROUP.path} in the answers of
// finished backends: a scalar's text, "" for anything else or a field that
// is not there.
func (a *Aggregate) stepValue(results []result) func(string) string {
	return func(path string) string {
		group, rest, _ := strings.Cut(path, ".")
		for j, b := range a.Backends {
			if b.Group != group {
				continue
			}
			var v any = results[j].raw
			for rest != "" {
				var key string
				key, rest, _ = strings.Cut(rest, ".")
				m, ok := v.(map[string]any)
				if !ok {
					return ""
				}
				v = m[key]
			}
			switch t := v.(type) {
			case string:
				return t
			case json.Number:
				return t.String()
			case bool:
				return fmt.Sprint(t)
			}
			return ""
		}
		return ""
	}
}

func (a *Aggregate) call(ctx context.Context, r *http.Request, ex *exchange.Exchange, b *Backend, step func(string) string) result {
	if b.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.Timeout)
		defer cancel()
	}
	// Each call has an Exchange of its own, so that Do's records
	// (upstream, target, attempts) do not race; it keeps what the
	// balancer keys on (client address, captures).
	var own exchange.Exchange
	var params []exchange.Param
	if ex != nil {
		own = exchange.Exchange{RequestID: ex.RequestID, Start: ex.Start, Route: ex.Route, ClientIP: ex.ClientIP,
			PeerTrusted: ex.PeerTrusted, Consumer: ex.Consumer, Roles: ex.Roles, Claims: ex.Claims, Params: ex.Params,
			Trace: ex.Trace}
		params = ex.Params
	}
	ctx = exchange.With(ctx, &own)
	esc := string(b.Path.ExpandSteps(nil, params, r.URL.RawQuery, capture.Path, step))
	u := &url.URL{Path: esc}
	if dec, err := url.PathUnescape(esc); err == nil {
		u.Path = dec
		if dec != esc {
			u.RawPath = esc
		}
	}
	if b.Query != nil {
		u.RawQuery = string(b.Query.ExpandSteps(nil, params, r.URL.RawQuery, capture.Query, step))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "/", nil)
	if err != nil {
		return result{err: err, outcome: "error"}
	}
	req.URL = u
	req.Host = ""
	req.Header = r.Header.Clone()
	for _, k := range hopHeaders {
		delete(req.Header, k)
	}
	req.Header.Set("Accept", "application/json")
	p := b.Policy
	if dl, ok := ctx.Deadline(); ok {
		if d := time.Until(dl); p.Timeout == 0 || d < p.Timeout {
			p.Timeout = max(d, time.Millisecond)
		}
	}
	// An upstream without a healthy target, or whose circuit is open,
	// hands the call to its failover chain, as a proxied route does.
	up := b.Upstream
	for hops := 0; up.Failover != nil && hops < 4 && (up.NoHealthy() || up.CircuitOpen()); hops++ {
		up = up.Failover
	}
	resp, err := up.Do(req, &p)
	if err != nil {
		return failed(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return result{err: errStatus(resp.StatusCode), outcome: "status"}
	}
	limit := b.MaxBodyBytes
	if resp.ContentLength > limit {
		return result{err: fmt.Errorf("%w (%d bytes, Content-Length %d)", errTooLarge, limit, resp.ContentLength), outcome: "too_large"}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return failed(ctx, fmt.Errorf("reading the answer: %w", err))
	}
	if int64(len(data)) > limit {
		return result{err: fmt.Errorf("%w (%d bytes)", errTooLarge, limit), outcome: "too_large"}
	}
	v, err := decodeJSON(data, b.Group == "")
	if err != nil {
		return result{err: err, outcome: "invalid_json"}
	}
	raw := v
	if b.Rename != nil && b.Allow == nil {
		raw = clone(v) // shape renames in place
	}
	return result{val: shape(v, b.Allow, b.Rename), raw: raw, outcome: "ok"}
}

// failed classifies a call's failure: a deadline (the aggregate's or the
// backend's timeout) is a timeout.
func failed(ctx context.Context, err error) result {
	var ce *cluster.Error
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return result{err: fmt.Errorf("timed out: %w", err), outcome: "timeout"}
	case errors.As(err, &ce) && ce.Kind == cluster.Timeout:
		return result{err: fmt.Errorf("timed out: %w", err), outcome: "timeout"}
	case ctx.Err() != nil:
		return result{err: err, outcome: "canceled"}
	case ce != nil && (ce.Code == "circuit_open" || ce.Code == "no_healthy_upstream"):
		// Refused before any attempt: the upstream's breaker or health.
		return result{err: err, outcome: ce.Code}
	}
	return result{err: err, outcome: "error"}
}

// decodeJSON decodes one JSON value, numbers kept as written; object
// requires a JSON object (a backend merged at the top level).
func decodeJSON(data []byte, object bool) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotJSON, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the value", ErrNotJSON)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the value", ErrNotJSON)
	}
	if _, ok := v.(map[string]any); object && !ok {
		return nil, fmt.Errorf("%w object (a backend without group must answer an object)", ErrNotJSON)
	}
	return v, nil
}

// clone copies the top level of an object (what rename changes).
func clone(v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	out := make(map[string]any, len(m))
	for k, x := range m {
		out[k] = x
	}
	return out
}

// shape applies allow and rename to an answer: objects are filtered, and
// an array's elements each.
func shape(v any, allow [][]string, rename map[string]string) any {
	switch t := v.(type) {
	case []any:
		for i, e := range t {
			t[i] = shape(e, allow, rename)
		}
		return t
	case map[string]any:
		if allow != nil {
			out := map[string]any{}
			for _, path := range allow {
				pick(out, t, path)
			}
			t = out
		}
		for from, to := range rename {
			if x, ok := t[from]; ok {
				delete(t, from)
				t[to] = x
			}
		}
		return t
	}
	return v
}

// pick copies the field at path from src into dst, making the objects on
// the way; a path that is not there copies nothing. An array on the way
// is filtered element by element.
func pick(dst, src map[string]any, path []string) {
	x, ok := src[path[0]]
	if !ok {
		return
	}
	if len(path) == 1 {
		dst[path[0]] = x
		return
	}
	switch t := x.(type) {
	case map[string]any:
		sub, _ := dst[path[0]].(map[string]any)
		if sub == nil {
			sub = map[string]any{}
			dst[path[0]] = sub
		}
		pick(sub, t, path[1:])
	case []any:
		prev, _ := dst[path[0]].([]any)
		if len(prev) != len(t) {
			prev = make([]any, len(t))
			dst[path[0]] = prev
		}
		for i, e := range t {
			if m, ok := e.(map[string]any); ok {
				sub, _ := prev[i].(map[string]any)
				if sub == nil {
					sub = map[string]any{}
					prev[i] = sub
				}
				pick(sub, m, path[1:])
			}
		}
	}
}

// SplitAllow splits allow paths at their dots.
func SplitAllow(allow []string) [][]string {
	if allow == nil {
		return nil
	}
	out := make([][]string, len(allow))
	for i, f := range allow {
		out[i] = strings.Split(f, ".")
	}
	return out
}
