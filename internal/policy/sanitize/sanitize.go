package sanitize

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/corazawaf/libinjection-go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rampart-gw/rampart/internal/exchange"
	"github.com/rampart-gw/rampart/internal/policy"
)

// Sanitizer is a compiled `sanitize` policy.
type Sanitizer struct {
	name                 string
	detect               bool
	sqli, xss            bool
	path, query, cookies bool
	body                 bool
	headers              []string
	exclude              map[string]bool
	maxValue             int
	maxBody              int64
	maxDepth             int
	log                  *slog.Logger
	findings             *prometheus.CounterVec // policy, check, action
}

var _ policy.Policy = (*Sanitizer)(nil)

// New compiles a `sanitize` policy.
func New(s policy.Spec) (policy.Policy, error) {
	var c Config
	if err := policy.Load(s, &c); err != nil {
		return nil, err
	}
	z := &Sanitizer{
		name:     s.Name,
		detect:   c.Mode == "detect",
		sqli:     slices.Contains(c.Checks, "sqli"),
		xss:      slices.Contains(c.Checks, "xss"),
		path:     slices.Contains(c.Inspect, "path"),
		query:    slices.Contains(c.Inspect, "query"),
		cookies:  slices.Contains(c.Inspect, "cookies"),
		body:     slices.Contains(c.Inspect, "body"),
		exclude:  map[string]bool{},
		maxValue: c.MaxValueBytes,
		maxBody:  c.MaxBodyBytes,
		maxDepth: c.MaxJSONDepth,
		log:      s.Log,
	}
	for _, h := range c.Headers {
		z.headers = append(z.headers, http.CanonicalHeaderKey(h))
	}
	for _, e := range c.Exclude {
		z.exclude[e] = true
	}
	if z.log == nil {
		z.log = slog.Default()
	}
	if s.Metrics != nil {
		z.findings = s.Metrics.SanitizeFindings
	}
	return z, nil
}

// Finding is what a check found: which check, and where (never the value).
type Finding struct {
	Check string // sqli, xss, utf8, nul, too_long, json, json_depth, body_too_large
	Where string // e.g. "query parameter id", "JSON key", "path"
}

func (f *Finding) Error() string { return f.Check + " in " + f.Where }

// Wrap inspects the request before next sees it.
func (z *Sanitizer) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := z.Inspect(r)
		if err != nil {
			if errors.Is(err, exchange.ErrBodyTooLarge) {
				exchange.Error(w, r, http.StatusRequestEntityTooLarge, "body_too_large", "request body too large")
				return
			}
			if r.Context().Err() != nil {
				return // the client went away mid-body
			}
			exchange.Error(w, r, http.StatusBadRequest, "bad_request", "the request body could not be read")
			return
		}
		if f != nil {
			action := "blocked"
			if z.detect {
				action = "detected"
			}
			if z.findings != nil {
				z.findings.WithLabelValues(z.name, f.Check, action).Inc()
			}
			rid := ""
			if ex := exchange.From(r.Context()); ex != nil {
				rid = ex.RequestID
			}
			z.log.Warn("sanitize: "+action, "policy", z.name, "check", f.Check, "where", f.Where, "request_id", rid)
			if !z.detect {
				exchange.Error(w, r, http.StatusForbidden, "waf_blocked", "request refused by policy "+z.name+": "+f.Error())
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// Inspect checks r and returns the first finding, or nil. A JSON or form
// body is read (up to max_body_bytes + 1) and put back, with its length,
// so that the upstream gets it unchanged. err is a failure to read the
// body.
func (z *Sanitizer) Inspect(r *http.Request) (*Finding, error) {
	if z.path {
		if f := z.value(r.URL.Path, "path", ""); f != nil {
			return f, nil
		}
	}
	if z.query && r.URL.RawQuery != "" {
		if f := z.form(r.URL.RawQuery, "query parameter"); f != nil {
			return f, nil
		}
	}
	if z.cookies {
		for _, line := range r.Header["Cookie"] {
			for _, c := range strings.Split(line, ";") {
				name, val, _ := strings.Cut(strings.TrimSpace(c), "=")
				if f := z.value(val, "cookie", name); f != nil {
					return f, nil
				}
			}
		}
	}
	for _, h := range z.headers {
		for _, v := range r.Header[h] {
			if f := z.value(v, "header", h); f != nil {
				return f, nil
			}
		}
	}
	if z.body && r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		return z.inspectBody(r)
	}
	return nil, nil
}

func (z *Sanitizer) inspectBody(r *http.Request) (*Finding, error) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	isJSON := mt == "application/json" || strings.HasSuffix(mt, "+json")
	isForm := mt == "application/x-www-form-urlencoded"
	if !isJSON && !isForm {
		return nil, nil // other bodies pass unread
	}
	if r.ContentLength > z.maxBody {
		return &Finding{Check: "body_too_large", Where: "body"}, nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, z.maxBody+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > z.maxBody {
		return &Finding{Check: "body_too_large", Where: "body"}, nil
	}
	// Put the body back, now of known length.
	r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	if len(r.Trailer) == 0 {
		r.ContentLength = int64(len(b))
		r.TransferEncoding = nil
	}
	if isForm {
		return z.form(string(b), "form field"), nil
	}
	return z.json(b), nil
}

// bytesString views b as a string without copying; the string must not
// outlive b's next change.
func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// form checks each name and value of an application/x-www-form-urlencoded
// string (a query or a form body).
func (z *Sanitizer) form(s, where string) *Finding {
	for s != "" {
		var pair string
		pair, s, _ = strings.Cut(s, "&")
		if pair == "" {
			continue
		}
		rawName, rawVal, _ := strings.Cut(pair, "=")
		name, err := url.QueryUnescape(rawName)
		if err != nil {
			name = rawName
		}
		if f := z.value(name, where+" name", ""); f != nil {
			return f
		}
		val, err := url.QueryUnescape(rawVal)
		if err != nil {
			val = rawVal
		}
		if f := z.value(val, where, name); f != nil {
			return f
		}
	}
	return nil
}

// json walks a JSON body.
func (z *Sanitizer) json(b []byte) *Finding {
	var found *Finding
	w := &jsonWalker{b: b, max: z.maxDepth, visit: func(s []byte, isKey bool, key []byte) error {
		// The checks only read the value during the call (a finding keeps
		// only a copy of the name), so no copy of each string is made.
		if isKey {
			found = z.value(bytesString(s), "JSON key", "")
		} else {
			found = z.value(bytesString(s), "JSON value", bytesString(key))
		}
		if found != nil {
			return found
		}
		return nil
	}}
	switch err := w.walk(); {
	case found != nil:
		return found
	case errors.Is(err, errJSONDepth):
		return &Finding{Check: "json_depth", Where: "body"}
	case err != nil:
		return &Finding{Check: "json", Where: "body"}
	}
	return nil
}

// value checks one value: structure always, injections unless its name is
// excluded. Where it was found is only spelled out for a finding.
func (z *Sanitizer) value(v, where, name string) *Finding {
	check := ""
	switch {
	case len(v) > z.maxValue:
		check = "too_long"
	case strings.IndexByte(v, 0) >= 0:
		check = "nul"
	case !utf8.ValidString(v):
		check = "utf8"
	case len(v) < 2 || plain(v) || (name != "" && z.exclude[name]):
		return nil
	case z.sqli && isSQLi(v):
		check = "sqli"
	case z.xss && libinjection.IsXSS(v):
		check = "xss"
	default:
		return nil
	}
	at := where
	if name != "" {
		at = where + " " + quoteName(name)
	}
	return &Finding{Check: check, Where: at}
}

func isSQLi(v string) bool {
	is, _ := libinjection.IsSQLi(v)
	return is
}

// plain reports whether v is one word of letters, digits and a few
// harmless characters (no space, quote, dash, operator or bracket), which
// no injection can be made of: most values skip libinjection entirely.
func plain(v string) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '/') {
			return false
		}
	}
	return true
}

// quoteName shows a name in a message, cut and stripped of anything odd.
func quoteName(n string) string {
	if len(n) > 64 {
		n = n[:64]
	}
	b := make([]byte, 0, len(n)+2)
	b = append(b, '"')
	for i := 0; i < len(n); i++ {
		if c := n[i]; c >= 0x20 && c < 0x7f && c != '"' && c != '\\' {
			b = append(b, c)
		} else {
			b = append(b, '?')
		}
	}
	return string(append(b, '"'))
}
