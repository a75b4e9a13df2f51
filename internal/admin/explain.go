package admin

import (
	"net/http"
	"net/textproto"
	"net/url"
	"strings"

	"github.com/rampart-gw/rampart/internal/pathnorm"
)

// explain answers GET /api/v1/explain?method=GET&host=H&path=P&header=Name:Value&query=k=v:
// the route the active config gives that request and why, where it goes
// and what runs on it (gateway.Explanation). header and query repeat;
// each query is one raw pair of the request's query string, and path may
// carry a query string of its own. No route is still 200, with "route":
// null and the nearest routes.
func (a *api) explain(w http.ResponseWriter, r *http.Request) {
	s := a.snapshot(w)
	if s == nil {
		return
	}
	q := r.URL.Query()
	method := q.Get("method")
	if method == "" {
		method = http.MethodGet
	}
	path := q.Get("path")
	if path == "" {
		path = "/"
	}
	u, err := url.ParseRequestURI(path)
	if err != nil || u.Host != "" || u.Scheme != "" {
		apiError(w, http.StatusBadRequest, "bad_request", "path: want an absolute path such as /users/42", nil)
		return
	}
	var pairs []string
	if u.RawQuery != "" {
		pairs = append(pairs, u.RawQuery)
	}
	pairs = append(pairs, q["query"]...)
	u.RawQuery = strings.Join(pairs, "&")
	h := http.Header{}
	for _, hv := range q["header"] {
		name, value, ok := strings.Cut(hv, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			apiError(w, http.StatusBadRequest, "bad_request", "header: want Name:Value, got "+hv, nil)
			return
		}
		h.Add(textproto.CanonicalMIMEHeaderKey(name), strings.TrimSpace(value))
	}
	req := &http.Request{Method: method, Host: q.Get("host"), URL: u, Header: h}
	if err := pathnorm.Request(req); err != nil {
		apiError(w, http.StatusBadRequest, "bad_request", "path: the gateway refuses it with 400 (malformed request path)", nil)
		return
	}
	e := s.Explain(req)
	if len(h) > 0 {
		e.Request.Header = h
	}
	writeJSON(w, http.StatusOK, e)
}
