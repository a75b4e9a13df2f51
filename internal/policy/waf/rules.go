package waf

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
	"weak"

	"github.com/corazawaf/coraza/v3"
	"github.com/corazawaf/coraza/v3/types"
)

// testHooks are set by tests only (export_test.go), before any policy is
// built; production code never sets them. pre is SecLang loaded before
// the CRS set-up (the CRS regression suite's settings and log-marker
// rule); onMatch receives every rule match that logs (Coraza's error log,
// which the suite's runner reads).
var testHooks struct {
	pre     string
	onMatch func(types.MatchedRule)
}

// exclusionBaseID numbers the rules that apply path-scoped exclusions
// (docs/policies.md reserves 9400000-9400999 for them).
const exclusionBaseID = 9400000

// settings are what a Coraza WAF instance is built from: two policies (or
// two configs) with equal settings share one instance.
type settings struct {
	paranoia, threshold int
	detect, bodies      bool
	maxBody             int64
	exclusions          []Exclusion
	directives          string
}

// seclang returns the whole rule set: Coraza's recommended engine
// settings (with ours), the CRS set-up, the exclusions that must run
// before the CRS, the CRS itself, then the exclusions that edit loaded
// rules and the operator's directives.
func (s settings) seclang() string {
	var b strings.Builder
	engine := "On"
	if s.detect {
		engine = "DetectionOnly"
	}
	bodies := "Off"
	if s.bodies {
		bodies = "On"
	}
	fmt.Fprintf(&b, "SecRuleEngine %s\nSecRequestBodyAccess %s\n", engine, bodies)
	// The policy never hands Coraza more than max_body_bytes (it refuses
	// or cuts a larger body itself), so Coraza's own limit is never hit.
	fmt.Fprintf(&b, "SecRequestBodyLimit %d\nSecRequestBodyInMemoryLimit %d\nSecRequestBodyLimitAction ProcessPartial\n", s.maxBody+1, s.maxBody+1)
	b.WriteString(`SecRequestBodyJsonDepthLimit 1024
SecResponseBodyAccess Off
SecRule REQUEST_HEADERS:Content-Type "^(?:application(?:/soap\+|/)|text/)xml" "id:200000,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML"
SecRule REQUEST_HEADERS:Content-Type "^application/json" "id:200001,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"
SecRule REQUEST_HEADERS:Content-Type "^application/[a-z0-9.-]+[+]json" "id:200006,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"
SecRule REQBODY_ERROR "!@eq 0" "id:200002,phase:2,t:none,log,deny,status:400,msg:'Failed to parse request body.',severity:2"
SecRule MULTIPART_STRICT_ERROR "!@eq 0" "id:200003,phase:2,t:none,log,deny,status:400,msg:'Multipart request body failed strict validation.'"
`)
	b.WriteString(testHooks.pre)
	b.WriteString("Include @crs-setup.conf.example\n")
	fmt.Fprintf(&b, "SecAction \"id:900000,phase:1,pass,t:none,nolog,setvar:tx.blocking_paranoia_level=%d\"\n", s.paranoia)
	fmt.Fprintf(&b, "SecAction \"id:900110,phase:1,pass,t:none,nolog,setvar:tx.inbound_anomaly_score_threshold=%d,setvar:tx.outbound_anomaly_score_threshold=4\"\n", s.threshold)
	// Exclusions for a path prefix switch rules off per request (ctl),
	// before the CRS runs; the others edit the loaded rules after it.
	var after strings.Builder
	for i, e := range s.exclusions {
		if e.PathPrefix != "" {
			var ctl []string
			for _, id := range e.IDs {
				if len(e.Args) == 0 {
					ctl = append(ctl, "ctl:ruleRemoveById="+strconv.Itoa(id))
				}
				for _, a := range e.Args {
					ctl = append(ctl, "ctl:ruleRemoveTargetById="+strconv.Itoa(id)+";ARGS:"+a)
				}
			}
			for _, t := range e.Tags {
				if len(e.Args) == 0 {
					ctl = append(ctl, "ctl:ruleRemoveByTag="+t)
				}
				for _, a := range e.Args {
					ctl = append(ctl, "ctl:ruleRemoveTargetByTag="+t+";ARGS:"+a)
				}
			}
			fmt.Fprintf(&b, "SecRule REQUEST_FILENAME \"@beginsWith %s\" \"id:%d,phase:1,pass,t:none,nolog,%s\"\n", e.PathPrefix, exclusionBaseID+i, strings.Join(ctl, ","))
			continue
		}
		for _, id := range e.IDs {
			if len(e.Args) == 0 {
				fmt.Fprintf(&after, "SecRuleRemoveById %d\n", id)
			}
			for _, a := range e.Args {
				fmt.Fprintf(&after, "SecRuleUpdateTargetById %d \"!ARGS:%s\"\n", id, a)
			}
		}
		for _, t := range e.Tags {
			if len(e.Args) == 0 {
				fmt.Fprintf(&after, "SecRuleRemoveByTag %s\n", t)
			}
			for _, a := range e.Args {
				fmt.Fprintf(&after, "SecRuleUpdateTargetByTag %s \"!ARGS:%s\"\n", t, a)
			}
		}
	}
	b.WriteString("Include @owasp_crs/*.conf\n")
	b.WriteString(after.String())
	return b.String()
}

// instance is one built Coraza WAF.
type instance struct {
	waf coraza.WAF
	// rules is the SecLang it was built from (ours, then the operator's
	// directives), for the benchmark against stock Coraza.
	rules string
}

// cache holds the instances the live configs use, by their rule set: a
// reload whose waf settings are unchanged finds the active config's
// instance and reuses it (building the CRS takes about a second of CPU).
// Entries are weak: an instance goes when no compiled policy holds it.
var cache = struct {
	sync.Mutex
	m map[string]weak.Pointer[instance]
}{m: map[string]weak.Pointer[instance]{}}

// builds counts instances built (for tests of the reuse).
var builds struct {
	sync.Mutex
	n int
}

// errDirectives marks an error in the operator's directives.
type errDirectives struct{ err error }

func (e *errDirectives) Error() string { return e.err.Error() }

// get returns the instance for s, building it when no live one exists.
// built reports whether it was built now, and took how long.
func get(s settings) (inst *instance, built time.Duration, err error) {
	key := s.seclang() + "\x00" + s.directives
	cache.Lock()
	defer cache.Unlock()
	if p, ok := cache.m[key]; ok {
		if inst := p.Value(); inst != nil {
			return inst, 0, nil
		}
	}
	start := time.Now()
	cfg := coraza.NewWAFConfig().WithRootFS(crsFS).WithDirectives(s.seclang())
	if testHooks.onMatch != nil {
		cfg = cfg.WithErrorCallback(testHooks.onMatch)
	}
	w, err := coraza.NewWAF(cfg.WithDirectives(s.directives))
	if err != nil {
		if s.directives != "" {
			if _, err2 := coraza.NewWAF(cfg); err2 == nil {
				return nil, 0, &errDirectives{err} // ours alone build: theirs are wrong
			}
		}
		return nil, 0, err
	}
	inst = &instance{waf: w, rules: s.seclang() + "\n" + s.directives}
	cache.m[key] = weak.Make(inst)
	builds.Lock()
	builds.n++
	builds.Unlock()
	// Drop the entry once the instance is gone (unless a new one took it).
	wp := cache.m[key]
	runtime.AddCleanup(inst, func(k string) {
		cache.Lock()
		if cache.m[k] == wp {
			delete(cache.m, k)
		}
		cache.Unlock()
	}, key)
	return inst, max(time.Since(start), 1), nil // never 0: 0 means reused
}
