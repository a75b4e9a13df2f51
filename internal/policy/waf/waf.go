package waf

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"github.com/corazawaf/coraza/v3/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/exchange"
	"github.com/rampart-gw/rampart/internal/policy"
	"github.com/rampart-gw/rampart/internal/spool"
)

// Firewall is a compiled `waf` policy.
type Firewall struct {
	name    string
	inst    *instance
	detect  bool
	bodies  bool
	maxBody int64
	partial bool // body_over_limit: inspect_partial
	// threshold is anomaly_threshold, for the XXE check's score.
	threshold int
	// xxe is whether XML bodies are checked for XXE (rule 200007 not
	// excluded everywhere); xxeSkip are the path prefixes it is excluded
	// for.
	xxe      bool
	xxeSkip  []string
	log      *slog.Logger
	blocked  *prometheus.CounterVec // route
	detected *prometheus.CounterVec // route
}

var _ policy.Policy = (*Firewall)(nil)

// New compiles a `waf` policy: the CRS with its settings, built once and
// shared with every policy (of this config or the one before) whose
// settings are the same.
func New(s policy.Spec) (policy.Policy, error) {
	var c Config
	if err := policy.Load(s, &c); err != nil {
		return nil, err
	}
	st := settings{
		paranoia:   c.ParanoiaLevel,
		threshold:  c.AnomalyThreshold,
		detect:     c.Mode == "detect",
		bodies:     *c.InspectBodies,
		maxBody:    c.MaxBodyBytes,
		exclusions: c.RuleExclusions,
		directives: c.Directives,
	}
	inst, took, err := get(st)
	if err != nil {
		var de *errDirectives
		if errors.As(err, &de) {
			return nil, config.Errors{s.Errorf("directives", "invalid directives: %v", de.err)}
		}
		return nil, config.Errors{s.Errorf("", "build the rule set: %v", err)}
	}
	f := &Firewall{
		name:    s.Name,
		inst:    inst,
		detect:  st.detect,
		bodies:  st.bodies,
		maxBody: st.maxBody,
		partial: c.BodyOverLimit == "inspect_partial",
		log:     s.Log,

		threshold: st.threshold,
		xxe:       true,
	}
	for _, e := range c.RuleExclusions {
		if len(e.Args) > 0 || !slices.Contains(e.IDs, xxeRule) && !slices.Contains(e.Tags, "attack-xxe") {
			continue
		}
		if e.PathPrefix == "" {
			f.xxe = false
		} else {
			f.xxeSkip = append(f.xxeSkip, e.PathPrefix)
		}
	}
	if f.log == nil {
		f.log = slog.Default()
	}
	if took > 0 {
		f.log.Info("waf: rule set built", "policy", s.Name, "paranoia_level", st.paranoia, "took", took.Round(1e6).String())
		if s.Metrics != nil {
			s.Metrics.WAFBuilds.Inc()
		}
	}
	if s.Metrics != nil {
		f.blocked = s.Metrics.WAFBlocked
		f.detected = s.Metrics.WAFDetected
	}
	return f, nil
}

// Wrap inspects the request (headers, arguments and, when it has one and
// inspect_bodies is on, its body) before next sees it.
func (f *Firewall) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ex := exchange.From(r.Context())
		var tx types.Transaction
		if ex != nil && ex.RequestID != "" {
			tx = f.inst.waf.NewTransactionWithID(ex.RequestID)
		} else {
			tx = f.inst.waf.NewTransaction()
		}
		defer tx.Close()
		// Phases 3 to 5 (response, logging) are never run: responses are
		// not inspected and the policy logs for itself.
		it, body, xxe, err := f.request(tx, r, ex)
		if body != nil {
			defer body.Close()
		}
		if err != nil {
			f.bodyError(w, r, ex, err)
			return
		}
		rules, score, wouldBlock := f.matches(tx, it)
		if xxe {
			rules = append(rules, xxeRule)
			score += xxeScore
			wouldBlock = wouldBlock || score >= f.threshold
		}
		if ex != nil && len(rules) > 0 {
			ex.WAFRules, ex.WAFScore = rules, score
		}
		if !wouldBlock {
			next.ServeHTTP(w, r)
			return
		}
		route, rid := "", ""
		if ex != nil {
			route, rid = ex.Route, ex.RequestID
		}
		if f.detect {
			if f.detected != nil {
				f.detected.WithLabelValues(route).Inc()
			}
			f.log.Warn("waf: detected", "policy", f.name, "route", route, "rules", rules, "score", score, "request_id", rid)
			next.ServeHTTP(w, r)
			return
		}
		if f.blocked != nil {
			f.blocked.WithLabelValues(route).Inc()
		}
		f.log.Warn("waf: blocked", "policy", f.name, "route", route, "rules", rules, "score", score, "request_id", rid)
		switch {
		case it != nil && it.Status == http.StatusBadRequest:
			exchange.Error(w, r, http.StatusBadRequest, "bad_request", "the request body is malformed (policy "+f.name+")")
		default:
			exchange.Error(w, r, http.StatusForbidden, "waf_blocked", "request refused by policy "+f.name)
		}
	})
}

// errTooLarge is a body over max_body_bytes with body_over_limit reject.
var errTooLarge = errors.New("request body over the waf policy's max_body_bytes")

// xxeRule is the id reported for an XML body that declares an entity or
// an external DTD: what XML external entity (XXE) attacks need, which
// legitimate API clients do not send, and which neither the CRS looks for
// nor Coraza's XML parser keeps (it drops directives). Rampart checks for
// it itself, as a critical finding (score 5) that rule_exclusions can
// remove like a CRS rule (id 200007 or tag attack-xxe).
const (
	xxeRule  = 200007
	xxeScore = 5
)

var (
	xxePattern = regexp.MustCompile(`(?i)<!(?:ENTITY\b|DOCTYPE\b[^>\[]*\b(?:SYSTEM|PUBLIC)\b)`)
	// xmlType is the Content-Type rule 200000 gives the XML body processor.
	xmlType = regexp.MustCompile(`^(?:application(?:/soap\+|/)|text/)xml`)
)

// checksXXE reports whether r's body is to be checked for XXE.
func (f *Firewall) checksXXE(r *http.Request) bool {
	if !f.xxe || !xmlType.MatchString(strings.ToLower(r.Header.Get("Content-Type"))) {
		return false
	}
	for _, p := range f.xxeSkip {
		if strings.HasPrefix(r.URL.Path, p) {
			return false
		}
	}
	return true
}

// request runs phases 1 and 2 over r. A body it read is returned to be
// closed once the request is done (r reads it, buffered); xxe reports an
// XML body with an entity or external DTD declaration.
func (f *Firewall) request(tx types.Transaction, r *http.Request, ex *exchange.Exchange) (_ *types.Interruption, _ *spool.Body, xxe bool, _ error) {
	client := ""
	if ex != nil && ex.ClientIP != "" {
		client = ex.ClientIP
	} else if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		client = h
	}
	tx.ProcessConnection(client, 0, "", 0)
	uri := r.RequestURI
	if uri == "" {
		uri = r.URL.RequestURI()
	}
	tx.ProcessURI(uri, r.Method, r.Proto)
	for k, vv := range r.Header {
		for _, v := range vv {
			tx.AddRequestHeader(k, v)
		}
	}
	if r.Host != "" {
		tx.AddRequestHeader("Host", r.Host)
		tx.SetServerName(r.Host)
	}
	for _, te := range r.TransferEncoding {
		tx.AddRequestHeader("Transfer-Encoding", te)
	}
	if it := tx.ProcessRequestHeaders(); it != nil {
		return it, nil, false, nil
	}
	var held *spool.Body
	if f.bodies && r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		b, found, err := f.readBody(tx, r, ex)
		if err != nil {
			return nil, nil, false, err
		}
		held, xxe = b, found
	}
	it, err := tx.ProcessRequestBody()
	if err != nil {
		return nil, held, false, err
	}
	return it, held, xxe, nil
}

// readBody reads up to max_body_bytes of r's body into the listener's
// spool (or memory, outside a listener), hands it to Coraza and puts it
// back on r: a complete body as the spool's reader, of known length, which
// the route's request_buffering then forwards as it is (never buffered
// twice); a body cut at the limit (inspect_partial) as the buffered part
// followed by the unread rest.
func (f *Firewall) readBody(tx types.Transaction, r *http.Request, ex *exchange.Exchange) (_ *spool.Body, xxe bool, _ error) {
	if r.ContentLength > f.maxBody && !f.partial {
		return nil, false, errTooLarge
	}
	checkXXE := f.checksXXE(r)
	src := io.LimitReader(r.Body, f.maxBody+1)
	var sp *spool.Spool
	if ex != nil {
		sp = ex.Spool
	}
	if sp == nil {
		// No listener: a plain memory buffer.
		data, err := io.ReadAll(src)
		if err != nil {
			return nil, false, err
		}
		over := int64(len(data)) > f.maxBody
		if over && !f.partial {
			return nil, false, errTooLarge
		}
		inspected := data[:min(int64(len(data)), f.maxBody)]
		if _, _, err := tx.WriteRequestBody(inspected); err != nil {
			return nil, false, err
		}
		xxe = checkXXE && xxePattern.Match(inspected)
		if over {
			r.Body = &joined{Reader: io.MultiReader(bytes.NewReader(data), r.Body), c: r.Body}
			return nil, xxe, nil
		}
		r.Body = io.NopCloser(bytes.NewReader(data))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
		f.known(r, int64(len(data)))
		return nil, xxe, nil
	}
	b, err := sp.Read(src, true)
	if err != nil {
		return nil, false, err
	}
	over := b.Len() > f.maxBody
	if over && !f.partial {
		b.Close()
		return nil, false, errTooLarge
	}
	rd, _ := b.Open()
	var inspect io.Reader = io.LimitReader(rd, f.maxBody)
	var xml bytes.Buffer
	if checkXXE {
		inspect = io.TeeReader(inspect, &xml) // at most max_body_bytes
	}
	if _, _, err := tx.ReadRequestBodyFrom(inspect); err != nil {
		b.Close()
		return nil, false, err
	}
	xxe = checkXXE && xxePattern.Match(xml.Bytes())
	if over {
		rd, _ = b.Open()
		r.Body = &joined{Reader: io.MultiReader(rd, r.Body), c: r.Body}
		return b, xxe, nil
	}
	r.Body, _ = b.Open()
	r.GetBody = b.Open
	f.known(r, b.Len())
	return b, xxe, nil
}

// known gives r the length of its now complete body.
func (f *Firewall) known(r *http.Request, n int64) {
	if len(r.Trailer) == 0 {
		r.ContentLength = n
		r.TransferEncoding = nil
	}
}

// joined is a body read from a buffered start and the rest of the original.
type joined struct {
	io.Reader
	c io.Closer
}

func (j *joined) Close() error { return j.c.Close() }

// bodyError answers a body that could not be read or inspected.
func (f *Firewall) bodyError(w http.ResponseWriter, r *http.Request, ex *exchange.Exchange, err error) {
	switch {
	case errors.Is(err, errTooLarge), errors.Is(err, exchange.ErrBodyTooLarge):
		exchange.Error(w, r, http.StatusRequestEntityTooLarge, "body_too_large", "request body too large")
	case errors.Is(err, spool.ErrSpill):
		f.log.Warn("waf: request body not buffered", "policy", f.name, "err", err)
		exchange.Error(w, r, http.StatusServiceUnavailable, "overloaded", "the request body could not be buffered")
	case r.Context().Err() != nil:
		if ex != nil {
			ex.Unanswered = 499 // the client went away mid-body
		}
	default:
		exchange.Error(w, r, http.StatusBadRequest, "bad_request", "the request body could not be read")
	}
}

// matches returns the ids of the rules that matched and logged (the
// anomaly scoring and reporting rules left out), the inbound anomaly
// score, and whether the request is (or, in detect mode, would be)
// refused.
func (f *Firewall) matches(tx types.Transaction, it *types.Interruption) (ids []int, score int, block bool) {
	block = it != nil
	for _, m := range tx.MatchedRules() {
		if m.Message() == "" {
			continue // set-up and flow control rules
		}
		id := m.Rule().ID()
		if id == 949110 || id == 200002 || id == 200003 {
			block = true // refused, or would be in detect mode
		}
		if id >= 901000 && id < 902000 || id >= 949000 && id < 950000 || id >= 980000 && id < 981000 {
			continue // set-up and evaluation, not findings
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 && !block {
		return nil, 0, false
	}
	if st, ok := tx.(plugintypes.TransactionState); ok {
		if v := st.Variables().TX().Get("blocking_inbound_anomaly_score"); len(v) > 0 {
			score, _ = strconv.Atoi(strings.TrimSpace(v[0]))
		}
	}
	return ids, score, block
}
