package waf

import (
	"slices"
	"strconv"
	"strings"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/policy"
)

// Defaults.
const (
	DefaultParanoiaLevel    = 1
	DefaultAnomalyThreshold = 5      // the CRS default: one critical match
	DefaultMaxBodyBytes     = 131072 // 128 KiB, Coraza's in-memory default
)

var (
	modes      = []string{"block", "detect"}
	overLimits = []string{"reject", "inspect_partial"}
)

// Config is the `waf` policy's settings.
type Config struct {
	// ParanoiaLevel is the CRS paranoia level, 1 to 4: higher levels add
	// rules that catch more attacks and flag more legitimate traffic.
	// Default 1.
	ParanoiaLevel int `yaml:"paranoia_level" json:"paranoia_level,omitempty"`
	// Mode is block (refuse with 403 waf_blocked) or detect (log, count and
	// forward). Default block.
	Mode string `yaml:"mode" json:"mode,omitempty"`
	// AnomalyThreshold is the inbound anomaly score at which a request is
	// blocked (CRS scores: critical 5, error 4, warning 3, notice 2).
	// Default 5.
	AnomalyThreshold int `yaml:"anomaly_threshold" json:"anomaly_threshold,omitempty"`
	// RuleExclusions remove rules (by id or tag), everywhere or for a path
	// prefix, for all of a request or for named arguments only: the
	// tuning of false positives.
	RuleExclusions []Exclusion `yaml:"rule_exclusions" json:"rule_exclusions,omitempty"`
	// InspectBodies has the request body inspected (form, multipart, JSON,
	// XML). Default true.
	InspectBodies *bool `yaml:"inspect_bodies" json:"inspect_bodies,omitempty"`
	// MaxBodyBytes is how much of a request body is inspected. Default
	// 131072 bytes (128 KiB).
	MaxBodyBytes int64 `yaml:"max_body_bytes" json:"max_body_bytes,omitempty"`
	// BodyOverLimit is what a larger body gets: reject (413 body_too_large,
	// the default) or inspect_partial (the first max_body_bytes are
	// inspected, the whole body is forwarded).
	BodyOverLimit string `yaml:"body_over_limit" json:"body_over_limit,omitempty"`
	// Directives are the operator's own SecLang lines, loaded after the
	// CRS (SecRule, SecRuleRemoveById, SecRuleUpdateTargetById...).
	// Default none.
	Directives string `yaml:"directives" json:"directives,omitempty"`
}

// Exclusion removes CRS rules from consideration. At least one of ids or
// tags is set; path_prefix and args narrow where.
type Exclusion struct {
	// IDs are rule ids (942100).
	IDs []int `yaml:"ids" json:"ids,omitempty"`
	// Tags remove every rule with one of these tags (attack-sqli,
	// paranoia-level/2, ...).
	Tags []string `yaml:"tags" json:"tags,omitempty"`
	// PathPrefix limits the exclusion to requests whose path starts with
	// it. Default: every request.
	PathPrefix string `yaml:"path_prefix" json:"path_prefix,omitempty"`
	// Args limits the exclusion to these arguments (query or body field
	// names): the rules still inspect everything else. Default: the whole
	// request.
	Args []string `yaml:"args" json:"args,omitempty"`
}

// Validate checks the vocabularies and bounds, and applies defaults.
func (c *Config) Validate(s policy.Spec) config.Errors {
	var errs config.Errors
	if c.ParanoiaLevel == 0 {
		c.ParanoiaLevel = DefaultParanoiaLevel
	} else if c.ParanoiaLevel < 1 || c.ParanoiaLevel > 4 {
		errs = append(errs, s.Errorf("paranoia_level", "must be between 1 and 4, not %d", c.ParanoiaLevel))
	}
	if c.Mode == "" {
		c.Mode = "block"
	} else if !slices.Contains(modes, c.Mode) {
		errs = append(errs, s.Errorf("mode", "invalid mode %q (want block or detect)", c.Mode))
	}
	if c.AnomalyThreshold == 0 {
		c.AnomalyThreshold = DefaultAnomalyThreshold
	} else if c.AnomalyThreshold < 1 || c.AnomalyThreshold > 10000 {
		errs = append(errs, s.Errorf("anomaly_threshold", "must be between 1 and 10000, not %d", c.AnomalyThreshold))
	}
	if c.InspectBodies == nil {
		t := true
		c.InspectBodies = &t
	}
	if c.MaxBodyBytes < 0 {
		errs = append(errs, s.Errorf("max_body_bytes", "must not be negative"))
	} else if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	} else if c.MaxBodyBytes > 1<<30 {
		errs = append(errs, s.Errorf("max_body_bytes", "must be at most 1073741824 (1 GiB)"))
	}
	if c.BodyOverLimit == "" {
		c.BodyOverLimit = "reject"
	} else if !slices.Contains(overLimits, c.BodyOverLimit) {
		errs = append(errs, s.Errorf("body_over_limit", "invalid body_over_limit %q (want reject or inspect_partial)", c.BodyOverLimit))
	}
	for i, e := range c.RuleExclusions {
		at := "rule_exclusions[" + strconv.Itoa(i) + "]"
		if len(e.IDs) == 0 && len(e.Tags) == 0 {
			errs = append(errs, s.Errorf(at, "needs ids or tags"))
		}
		for j, id := range e.IDs {
			if id < 1 || id > 9999999 {
				errs = append(errs, s.Errorf(at+".ids["+strconv.Itoa(j)+"]", "invalid rule id %d", id))
			}
		}
		for j, t := range e.Tags {
			if !token(t, "/-_.:") {
				errs = append(errs, s.Errorf(at+".tags["+strconv.Itoa(j)+"]", "invalid tag %q (letters, digits and /-_.: only)", t))
			}
		}
		if e.PathPrefix != "" && (e.PathPrefix[0] != '/' || !token(e.PathPrefix, "/-_.~%!$&()*+=@:")) {
			errs = append(errs, s.Errorf(at+".path_prefix", "invalid path prefix %q (starts with /; no spaces, quotes, commas or semicolons)", e.PathPrefix))
		}
		for j, a := range e.Args {
			if !token(a, "-_.[]") {
				errs = append(errs, s.Errorf(at+".args["+strconv.Itoa(j)+"]", "invalid argument name %q (letters, digits and -_.[] only)", a))
			}
		}
	}
	return errs
}

// token reports whether v is non-empty and made of ASCII letters, digits
// and the bytes of extra only: nothing that could end a SecLang string or
// action list.
func token(v, extra string) bool {
	if v == "" || len(v) > 256 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(extra, c) >= 0) {
			return false
		}
	}
	return true
}
