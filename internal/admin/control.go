package admin

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/rampart-gw/rampart/internal/config"
)

// Sentinels the Control implementation returns for the admin API to branch on.
var (
	// ErrVersionMismatch: If-Match named a version that is not active.
	ErrVersionMismatch = errors.New("the active config version does not match If-Match")
	// ErrNoCandidate: there is no staged candidate config.
	ErrNoCandidate = errors.New("no candidate config is staged")
	// ErrReadOnly: the config comes from a source that the API must not
	// override (not used yet; every source accepts API changes).
	ErrReadOnly = errors.New("config is read-only")
)

// maxConfigBody bounds a config sent to the admin API.
const maxConfigBody = 32 << 20

// Document is a config document received by the admin API.
type Document struct {
	// Name is used in error positions ("api.yaml" or "api.json"); its
	// extension selects strict JSON parsing.
	Name string
	Data []byte
	// IfMatch is the version the client expects to replace ("" = any).
	IfMatch string
}

// CandidateSpec stages a candidate config.
type CandidateSpec struct {
	Document
	// Percent of clients sent to the candidate (0..100).
	Percent float64
	// Hash is how clients are told apart: "ip" (default), "request_id" or
	// "header:NAME".
	Hash string
	// MaxErrorRateIncrease triggers automatic rollback when the
	// candidate's 5xx rate exceeds the active one's by more than this
	// fraction (0.05 = 5 points). Zero means the default; negative disables.
	MaxErrorRateIncrease float64
	// MinRequests is how many candidate requests are needed before the
	// automatic rollback judges. Zero means the default.
	MinRequests int64
}

// Control is what the admin API changes: implemented by package app.
type Control interface {
	// ApplyConfig validates, compiles and activates doc atomically and
	// returns the new version. A refused document returns config.Errors.
	ApplyConfig(doc Document) (version string, err error)
	// Status describes the last reload and the config sources (JSON).
	Status() any
	// StageCandidate stages a candidate beside the active config.
	StageCandidate(spec CandidateSpec) (version string, err error)
	// Candidate describes the staged candidate and the comparison of the
	// two versions, or returns ErrNoCandidate.
	Candidate() (any, error)
	// PromoteCandidate makes the candidate the active config.
	PromoteCandidate() (version string, err error)
	// RollbackCandidate drops the candidate.
	RollbackCandidate(reason string) error
}

func (a *api) mountControl(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/config/status", a.status)
	if a.deps.Control == nil {
		return
	}
	mux.HandleFunc("PUT /api/v1/config", a.mutating(a.putConfig))
	mux.HandleFunc("POST /api/v1/config", a.mutating(a.putConfig))
	mux.HandleFunc("GET /api/v1/config/candidate", a.getCandidate)
	mux.HandleFunc("PUT /api/v1/config/candidate", a.mutating(a.putCandidate))
	mux.HandleFunc("DELETE /api/v1/config/candidate", a.mutating(a.rollback))
	mux.HandleFunc("POST /api/v1/config/candidate/promote", a.mutating(a.promote))
	mux.HandleFunc("POST /api/v1/config/candidate/rollback", a.mutating(a.rollback))
}

func (a *api) status(w http.ResponseWriter, r *http.Request) {
	if a.deps.Control == nil {
		writeJSON(w, http.StatusOK, map[string]any{})
		return
	}
	writeJSON(w, http.StatusOK, a.deps.Control.Status())
}

// apiError writes the gateway's JSON error shape, plus extra fields.
func apiError(w http.ResponseWriter, status int, code, msg string, extra map[string]any) {
	body := map[string]any{"error": map[string]any{"status": status, "code": code, "message": msg}}
	for k, v := range extra {
		body[k] = v
	}
	writeJSON(w, status, body)
}

// mutating guards a handler that changes state: with admin.token_file set
// it needs "Authorization: Bearer <token>"; without one, only loopback
// clients may call it.
func (a *api) mutating(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tokenFile := ""
		if s := a.deps.Store.Load(); s != nil {
			tokenFile = s.Config.Admin.TokenFile
		}
		if tokenFile == "" {
			host, _, err := net.SplitHostPort(r.RemoteAddr)
			ip := net.ParseIP(host)
			if err != nil || ip == nil || !ip.IsLoopback() {
				apiError(w, http.StatusForbidden, "forbidden", "mutating admin calls need admin.token_file, or a loopback client", nil)
				return
			}
			h(w, r)
			return
		}
		b, err := os.ReadFile(tokenFile)
		want := strings.TrimSpace(string(b))
		if err != nil || want == "" {
			// Fail closed: a token file that cannot be read locks the API.
			apiError(w, http.StatusServiceUnavailable, "token_unavailable", "admin.token_file cannot be read", nil)
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(want)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="rampart-admin"`)
			apiError(w, http.StatusUnauthorized, "unauthenticated", "missing or invalid bearer token", nil)
			return
		}
		h(w, r)
	}
}

// readDocument reads a config body; its format comes from Content-Type,
// else from sniffing ('{' starts JSON, anything else is YAML).
func readDocument(w http.ResponseWriter, r *http.Request) (Document, bool) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxConfigBody))
	if err != nil {
		apiError(w, http.StatusRequestEntityTooLarge, "body_too_large", "config body over 32 MiB or unreadable", nil)
		return Document{}, false
	}
	return Document{Name: documentName(r.Header.Get("Content-Type"), data), Data: data, IfMatch: ifMatch(r)}, true
}

func documentName(contentType string, data []byte) string {
	mt, _, _ := mime.ParseMediaType(contentType)
	switch {
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		return "api.json"
	case strings.Contains(mt, "yaml"):
		return "api.yaml"
	}
	trimmed := strings.TrimLeft(string(data[:min(len(data), 512)]), " \t\r\n\ufeff")
	if strings.HasPrefix(trimmed, "{") {
		return "api.json"
	}
	return "api.yaml"
}

// ifMatch returns the version in If-Match without quotes or W/ ("" for none or *).
func ifMatch(r *http.Request) string {
	v := strings.TrimSpace(r.Header.Get("If-Match"))
	v = strings.TrimPrefix(v, "W/")
	v = strings.Trim(v, `"`)
	if v == "*" {
		return ""
	}
	return v
}

// Problem is one config problem as the admin API reports it.
type Problem struct {
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`
	Col     int    `json:"col,omitempty"`
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
	// Text is the problem as `rampart validate` prints it.
	Text string `json:"text"`
}

// Problems lists err as Problems: one per config.Error, or one for any
// other error.
func Problems(err error) []Problem {
	var ce config.Errors
	if errors.As(err, &ce) {
		out := make([]Problem, 0, len(ce))
		for _, e := range ce {
			out = append(out, Problem{File: e.Pos.File, Line: e.Pos.Line, Col: e.Pos.Col, Path: e.Path, Message: e.Msg, Text: e.Error()})
		}
		return out
	}
	return []Problem{{Message: err.Error(), Text: err.Error()}}
}

func (a *api) refuse(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrVersionMismatch):
		cur := ""
		if s := a.deps.Store.Load(); s != nil {
			cur = s.Version
			w.Header().Set("ETag", `"`+cur+`"`)
		}
		apiError(w, http.StatusPreconditionFailed, "version_mismatch", err.Error(), map[string]any{"version": cur})
	case errors.Is(err, ErrNoCandidate):
		apiError(w, http.StatusNotFound, "no_candidate", err.Error(), nil)
	default:
		ps := Problems(err)
		apiError(w, http.StatusBadRequest, "invalid_config",
			fmt.Sprintf("config refused with %d problem(s); the active config keeps serving", len(ps)),
			map[string]any{"problems": ps})
	}
}

func (a *api) putConfig(w http.ResponseWriter, r *http.Request) {
	doc, ok := readDocument(w, r)
	if !ok {
		return
	}
	prev := ""
	if s := a.deps.Store.Load(); s != nil {
		prev = s.Version
	}
	v, err := a.deps.Control.ApplyConfig(doc)
	if err != nil {
		a.refuse(w, err)
		return
	}
	w.Header().Set("ETag", `"`+v+`"`)
	writeJSON(w, http.StatusOK, map[string]any{"version": v, "previous_version": prev})
}

func (a *api) getCandidate(w http.ResponseWriter, r *http.Request) {
	c, err := a.deps.Control.Candidate()
	if err != nil {
		a.refuse(w, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// putCandidate stages a candidate. The body is the config itself, with the
// settings in the query (?percent=10&hash=request_id), or a JSON envelope
// {"percent": 10, "hash": "ip", "config": {...} or "config": "yaml text"}.
func (a *api) putCandidate(w http.ResponseWriter, r *http.Request) {
	doc, ok := readDocument(w, r)
	if !ok {
		return
	}
	spec := CandidateSpec{Document: doc, Percent: -1}
	if doc.Name == "api.json" {
		var env struct {
			Percent              *float64        `json:"percent"`
			Hash                 string          `json:"hash"`
			MaxErrorRateIncrease float64         `json:"max_error_rate_increase"`
			MinRequests          int64           `json:"min_requests"`
			Config               json.RawMessage `json:"config"`
		}
		if json.Unmarshal(doc.Data, &env) == nil && len(env.Config) > 0 {
			var text string
			if json.Unmarshal(env.Config, &text) == nil {
				spec.Data = []byte(text)
				spec.Name = documentName("", spec.Data)
			} else {
				spec.Data = env.Config
			}
			if env.Percent != nil {
				spec.Percent = *env.Percent
			}
			spec.Hash, spec.MaxErrorRateIncrease, spec.MinRequests = env.Hash, env.MaxErrorRateIncrease, env.MinRequests
		}
	}
	q := r.URL.Query()
	for name, dst := range map[string]*float64{"percent": &spec.Percent, "max_error_rate_increase": &spec.MaxErrorRateIncrease} {
		if s := q.Get(name); s != "" {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil {
				apiError(w, http.StatusBadRequest, "bad_request", name+" must be a number", nil)
				return
			}
			*dst = f
		}
	}
	if s := q.Get("min_requests"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			apiError(w, http.StatusBadRequest, "bad_request", "min_requests must be an integer", nil)
			return
		}
		spec.MinRequests = n
	}
	if s := q.Get("hash"); s != "" {
		spec.Hash = s
	}
	if spec.Percent < 0 || spec.Percent > 100 {
		apiError(w, http.StatusBadRequest, "bad_request", "percent (0..100) is required, as ?percent= or a JSON field", nil)
		return
	}
	if h := spec.Hash; h != "" && h != "ip" && h != "request_id" && !strings.HasPrefix(h, "header:") {
		apiError(w, http.StatusBadRequest, "bad_request", `hash must be ip, request_id or header:NAME`, nil)
		return
	}
	v, err := a.deps.Control.StageCandidate(spec)
	if err != nil {
		a.refuse(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"candidate_version": v, "percent": spec.Percent})
}

func (a *api) promote(w http.ResponseWriter, r *http.Request) {
	v, err := a.deps.Control.PromoteCandidate()
	if err != nil {
		a.refuse(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"version": v})
}

func (a *api) rollback(w http.ResponseWriter, r *http.Request) {
	if err := a.deps.Control.RollbackCandidate("admin API"); err != nil {
		a.refuse(w, err)
		return
	}
	v := ""
	if s := a.deps.Store.Load(); s != nil {
		v = s.Version
	}
	writeJSON(w, http.StatusOK, map[string]any{"version": v, "rolled_back": true})
}
