package route

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/rampart-gw/rampart/internal/cluster/cache"
)

// Cache answers GET and HEAD requests without credentials from the
// response cache while an entry is fresh, stores cacheable responses, and
// answers an upstream 5xx (other than 501) with a stale entry within
// stale_if_error. Errors answers failed calls with a stale entry too.
type Cache struct {
	Next  http.Handler
	Route string
	Store *cache.Cache
	TTL   time.Duration
	// StaleIfError is how long after TTL an entry may still answer a
	// failure.
	StaleIfError time.Duration
}

func (c *Cache) key(r *http.Request) string {
	if (r.Method != http.MethodGet && r.Method != http.MethodHead) || r.Header.Get("Authorization") != "" {
		return ""
	}
	return cache.Key(c.Route, r)
}

func (c *Cache) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key := c.key(r)
	if key == "" {
		c.Next.ServeHTTP(w, r)
		return
	}
	now := time.Now()
	if e, fresh, ok := c.Store.Get(key, now); ok && fresh {
		w.Header().Set("X-Cache", "HIT")
		e.Serve(w, now)
		return
	}
	cw := &cacheWriter{ResponseWriter: w, c: c, r: r, key: key, before: w.Header().Clone()}
	c.Next.ServeHTTP(cw, r)
	cw.store()
}

// serveStale answers from a cached copy, fresh or stale, if there is one.
func (c *Cache) serveStale(w http.ResponseWriter, r *http.Request) bool {
	key := c.key(r)
	if key == "" {
		return false
	}
	now := time.Now()
	e, fresh, ok := c.Store.Get(key, now)
	if !ok {
		return false
	}
	serveEntry(w, e, fresh, now)
	return true
}

func serveEntry(w http.ResponseWriter, e *cache.Entry, fresh bool, now time.Time) {
	if fresh {
		w.Header().Set("X-Cache", "HIT")
	} else {
		w.Header().Set("X-Cache", "STALE")
		w.Header().Set("Warning", `110 - "Response is Stale"`)
	}
	e.Serve(w, now)
}

// cacheWriter watches the response the route's upstream gives: it answers
// a 5xx with a stale entry instead, and records a cacheable response.
type cacheWriter struct {
	http.ResponseWriter
	c      *Cache
	r      *http.Request
	key    string
	before http.Header // the header before the upstream's fields were added
	status int
	// stale is set once a stale entry replaced the upstream's answer: the
	// rest of that answer goes nowhere.
	stale     bool
	recording bool
	fields    http.Header // the upstream's fields, when recording
	over      bool
	buf       []byte
}

func (w *cacheWriter) WriteHeader(code int) {
	if w.status != 0 || w.stale {
		return
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	w.status = code
	h := w.ResponseWriter.Header()
	if code >= 500 && code != http.StatusNotImplemented {
		now := time.Now()
		if e, fresh, ok := w.c.Store.Get(w.key, now); ok {
			// The upstream's fields go; the route's own stay.
			clear(h)
			for k, v := range w.before {
				h[k] = v
			}
			serveEntry(w.ResponseWriter, e, fresh, now)
			w.stale = true
			return
		}
	}
	if up := w.upstreamFields(); cacheable(w.r, code, up) {
		w.recording, w.fields = true, up
		h.Set("X-Cache", "MISS")
	}
	w.ResponseWriter.WriteHeader(code)
}

// upstreamFields returns the header fields the upstream's response added:
// those the route's own handlers had not set before.
func (w *cacheWriter) upstreamFields() http.Header {
	h := w.ResponseWriter.Header()
	up := make(http.Header, len(h))
	for k, vv := range h {
		prior := w.before[k]
		if len(prior) > 0 && len(vv) >= len(prior) && slices.Equal(vv[:len(prior)], prior) {
			vv = vv[len(prior):]
		}
		if len(vv) > 0 {
			up[k] = slices.Clone(vv)
		}
	}
	return up
}

func (w *cacheWriter) Write(b []byte) (int, error) {
	if w.status == 0 && !w.stale {
		w.WriteHeader(http.StatusOK)
	}
	if w.stale {
		return len(b), nil
	}
	if w.recording && !w.over {
		if len(w.buf)+len(b) > cache.DefaultMaxEntryBytes {
			w.over, w.buf = true, nil
		} else {
			w.buf = append(w.buf, b...)
		}
	}
	return w.ResponseWriter.Write(b)
}

func (w *cacheWriter) Flush() {
	if w.stale {
		return
	}
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *cacheWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// store keeps a complete, cacheable response: the upstream's header
// fields (those the route's own handlers did not set) and the body.
func (w *cacheWriter) store() {
	if !w.recording || w.over {
		return
	}
	h := w.ResponseWriter.Header()
	if len(h["Trailer"]) > 0 {
		return
	}
	for k := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			return
		}
	}
	hdr := w.fields
	delete(hdr, "X-Cache")
	w.c.Store.Put(w.key, &cache.Entry{Status: w.status, Header: hdr, Body: w.buf,
		StoredAt: time.Now(), TTL: w.c.TTL, StaleIfError: w.c.StaleIfError})
}

// cacheable reports whether a response may be stored for all clients.
func cacheable(r *http.Request, status int, h http.Header) bool {
	if r.Method != http.MethodGet || status != http.StatusOK {
		return false
	}
	if len(h["Set-Cookie"]) > 0 || len(h["Vary"]) > 0 {
		return false
	}
	cc := h["Cache-Control"]
	return !hasToken(cc, "no-store") && !hasToken(cc, "private") && !hasToken(cc, "no-cache")
}

func hasToken(values []string, token string) bool {
	for _, v := range values {
		for _, p := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(p), token) {
				return true
			}
		}
	}
	return false
}
