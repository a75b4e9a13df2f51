package waf

import (
	"bytes"
	"io/fs"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	coreruleset "github.com/corazawaf/coraza-coreruleset/v4"
	"github.com/corazawaf/coraza/v3/experimental/plugins"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"rsc.io/binaryregexp"
)

// rxName is the operator the embedded CRS's @rx rules are given (see
// crsFS): Coraza's rx with a literal prefilter in front. Coraza keeps
// operators in one process-wide table, so replacing "rx" itself would
// change every Coraza WAF of the process (the benchmark's stock one
// too); a name of its own changes only the CRS rules of this policy.
// Rules of the policy's own and the operator's directives keep Coraza's
// @rx.
const rxName = "rampart_rx"

func init() {
	plugins.RegisterOperator(rxName, newRX)
}

// rx is Coraza's @rx operator (internal/operators/rx.go of v3.8.1, its
// default build: (?sm) in front of the pattern, the binary matcher for a
// pattern that matches non-UTF-8 bytes, captures into TX:0-9 when the
// rule captures, compiled patterns memoized per WAF) with a prefilter
// in front: an input the prefilter rejects cannot match, so the regexp
// is not run. Without a prefilter it behaves exactly like Coraza's.
type rx struct {
	re *regexp.Regexp
	pf *prefilter
}

// compiled is what is memoized per pattern.
type compiled struct {
	re *regexp.Regexp
	pf *prefilter
}

// rxPatterns records the operator arguments compiled (set by tests; nil
// otherwise).
var rxPatterns struct {
	sync.Mutex
	m map[string]bool
}

func newRX(o plugintypes.OperatorOptions) (plugintypes.Operator, error) {
	data := "(?sm)" + o.Arguments
	if matchesArbitraryBytes(data) {
		return newBinaryRX(o)
	}
	compile := func() (any, error) {
		re, err := regexp.Compile(data)
		if err != nil {
			return nil, err
		}
		return &compiled{re: re, pf: newPrefilter(data)}, nil
	}
	var v any
	var err error
	if o.Memoizer != nil {
		v, err = o.Memoizer.Do("rampart_rx:"+data, compile)
	} else {
		v, err = compile()
	}
	if err != nil {
		return nil, err
	}
	c := v.(*compiled)
	rxPatterns.Lock()
	if rxPatterns.m != nil {
		rxPatterns.m[o.Arguments] = true
	}
	rxPatterns.Unlock()
	return &rx{re: c.re, pf: c.pf}, nil
}

func (o *rx) Evaluate(tx plugintypes.TransactionState, value string) bool {
	if o.pf != nil && !o.pf.may(value) {
		return false
	}
	if tx.Capturing() {
		// Most values do not match: find that out without the cost of
		// tracking submatches (Go's NFA copies them per thread).
		if !o.re.MatchString(value) {
			return false
		}
		match := o.re.FindStringSubmatchIndex(value)
		if match == nil {
			return false
		}
		for i := 0; i < len(match)/2; i++ {
			if i == 9 {
				return true
			}
			if match[2*i] >= 0 {
				tx.CaptureField(i, value[match[2*i]:match[2*i+1]])
			} else {
				tx.CaptureField(i, "")
			}
		}
		return true
	}
	return o.re.MatchString(value)
}

// binaryRX is Coraza's, for patterns that match arbitrary bytes (no
// prefilter: regexp/syntax cannot parse them as the binary matcher does).
type binaryRX struct {
	re *binaryregexp.Regexp
}

func newBinaryRX(o plugintypes.OperatorOptions) (plugintypes.Operator, error) {
	compile := func() (any, error) { return binaryregexp.Compile(o.Arguments) }
	var v any
	var err error
	if o.Memoizer != nil {
		v, err = o.Memoizer.Do("rampart_rx_binary:"+o.Arguments, compile)
	} else {
		v, err = compile()
	}
	if err != nil {
		return nil, err
	}
	return &binaryRX{re: v.(*binaryregexp.Regexp)}, nil
}

func (o *binaryRX) Evaluate(tx plugintypes.TransactionState, value string) bool {
	if tx.Capturing() {
		match := o.re.FindStringSubmatch(value)
		if len(match) == 0 {
			return false
		}
		for i, c := range match {
			if i == 9 {
				return true
			}
			tx.CaptureField(i, c)
		}
		return true
	}
	return o.re.MatchString(value)
}

// matchesArbitraryBytes reports whether expr has byte escapes that are not
// valid UTF-8 (Coraza's function of the same name, the same decision).
func matchesArbitraryBytes(expr string) bool {
	decoded := make([]byte, 0, len(expr))
	for i := 0; i < len(expr); i++ {
		c := expr[i]
		if c != '\\' {
			decoded = append(decoded, c)
			continue
		}
		if i+3 >= len(expr) {
			decoded = append(decoded, expr[i:]...)
			break
		}
		if expr[i+1] != 'x' {
			decoded = append(decoded, expr[i])
			continue
		}
		sub := expr[i:]
		advance := 3
		if len(sub) >= 6 && sub[2] == '{' {
			if end := strings.IndexByte(sub, '}'); end != -1 {
				sub = `\x` + sub[3:end]
				advance = end
			}
		}
		v, mb, _, err := strconv.UnquoteChar(sub, 0)
		if err != nil || mb {
			decoded = append(decoded, expr[i])
			continue
		}
		decoded = append(decoded, byte(v))
		i += advance
	}
	return !utf8.Valid(decoded)
}

// crsFS is the embedded CRS with its rules' @rx operators renamed to
// rxName ("@rx " and "!@rx " at the start of an operator string; the CRS
// always names its operator).
var crsFS fs.FS = rewriteFS{coreruleset.FS}

type rewriteFS struct{ fs.FS }

// ReadFile reads name, with the operators of a CRS rule file renamed (a
// few hundred KiB, rewritten in about a millisecond when a WAF is built;
// not kept).
func (r rewriteFS) ReadFile(name string) ([]byte, error) {
	b, err := fs.ReadFile(r.FS, name)
	if err != nil || !strings.HasSuffix(name, ".conf") || !strings.Contains(name, "owasp_crs") {
		return b, err
	}
	b = bytes.ReplaceAll(b, []byte(`"@rx `), []byte(`"@`+rxName+` `))
	return bytes.ReplaceAll(b, []byte(`"!@rx `), []byte(`"!@`+rxName+` `)), nil
}

func (r rewriteFS) Glob(pattern string) ([]string, error) { return fs.Glob(r.FS, pattern) }

func (r rewriteFS) ReadDir(name string) ([]fs.DirEntry, error) { return fs.ReadDir(r.FS, name) }
