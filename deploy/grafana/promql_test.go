package grafana

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// PromQL's aggregation operators, functions (Prometheus 2.42, the Debian
// package's, and later ones) and keywords: identifiers that are never
// metric names.
var (
	promAggregations = set("sum", "min", "max", "avg", "group", "stddev", "stdvar", "count",
		"count_values", "bottomk", "topk", "quantile", "limitk", "limit_ratio")
	promFunctions = set("abs", "absent", "absent_over_time", "acos", "acosh", "asin", "asinh", "atan",
		"atanh", "avg_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min", "cos", "cosh",
		"count_over_time", "days_in_month", "day_of_month", "day_of_week", "day_of_year", "deg",
		"delta", "deriv", "exp", "floor", "histogram_count", "histogram_fraction",
		"histogram_quantile", "histogram_sum", "histogram_avg", "histogram_stddev",
		"histogram_stdvar", "holt_winters", "double_exponential_smoothing", "hour", "idelta",
		"increase", "irate", "label_replace", "label_join", "last_over_time", "ln", "log10", "log2",
		"mad_over_time", "max_over_time", "min_over_time", "minute", "month", "pi",
		"predict_linear", "present_over_time", "quantile_over_time", "rad", "rate", "resets",
		"round", "scalar", "sgn", "sin", "sinh", "sort", "sort_desc", "sort_by_label",
		"sort_by_label_desc", "sqrt", "stddev_over_time", "stdvar_over_time", "sum_over_time",
		"tan", "tanh", "time", "timestamp", "vector", "year")
	// promGrouping keywords take a parenthesised list of label names.
	promGrouping = set("by", "without", "on", "ignoring", "group_left", "group_right")
	promKeywords = set("and", "or", "unless", "atan2", "bool", "offset", "start", "end")
)

func set(names ...string) map[string]bool {
	m := map[string]bool{}
	for _, n := range names {
		m[n] = true
	}
	return m
}

// metricNames returns the metric names an expression selects, in order of
// appearance without repeats: bare names before a selector
// (`rate(x_total{a="b"}[5m])`) and `__name__="x"` matchers. It tokenizes
// PromQL: strings, numbers and durations, label matchers in braces, ranges
// and subqueries in brackets, the label lists of by, without, on, ignoring,
// group_left and group_right, and Grafana's $variables; an identifier
// followed by "(" must be a known function or aggregation, or it is an
// error (Prometheus would refuse it too).
func metricNames(expr string) ([]string, error) {
	var names []string
	add := func(n string) {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	s := expr
	i := 0
	skipSpace := func() {
		for i < len(s) && strings.ContainsRune(" \t\r\n", rune(s[i])) {
			i++
		}
	}
	for i < len(s) {
		c := s[i]
		switch {
		case strings.ContainsRune(" \t\r\n", rune(c)):
			i++
		case c == '#': // a comment to the end of the line
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '"' || c == '\'' || c == '`':
			j, err := skipString(s, i)
			if err != nil {
				return nil, err
			}
			i = j
		case c == '{':
			j, name, err := matchers(s, i)
			if err != nil {
				return nil, err
			}
			if name != "" {
				add(name)
			}
			i = j
		case c == '[':
			j := strings.IndexByte(s[i:], ']')
			if j < 0 {
				return nil, fmt.Errorf("unclosed [ at %d", i)
			}
			i += j + 1
		case c == '$': // a Grafana variable: $name, ${name} or ${name:format}
			i++
			if i < len(s) && s[i] == '{' {
				j := strings.IndexByte(s[i:], '}')
				if j < 0 {
					return nil, fmt.Errorf("unclosed ${ at %d", i)
				}
				i += j + 1
			} else {
				for i < len(s) && isIdent(s[i], false) {
					i++
				}
			}
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
			// A number (1, 0.99, 1e3, 0x1f) or a duration (5m, 1h30m).
			for i < len(s) && (isIdent(s[i], false) || s[i] == '.' ||
				(s[i] == '+' || s[i] == '-') && (s[i-1] == 'e' || s[i-1] == 'E')) {
				i++
			}
		case isIdent(c, true):
			j := i
			for j < len(s) && isIdent(s[j], false) {
				j++
			}
			word := s[i:j]
			lower := strings.ToLower(word)
			i = j
			skipSpace()
			next := byte(0)
			if i < len(s) {
				next = s[i]
			}
			switch {
			case promGrouping[lower]:
				if next == '(' { // group_left and group_right may have no list
					k := strings.IndexByte(s[i:], ')')
					if k < 0 {
						return nil, fmt.Errorf("unclosed %s( at %d", word, i)
					}
					i += k + 1
				}
			case promAggregations[lower] || promKeywords[lower] || lower == "inf" || lower == "nan":
			case next == '(':
				if !promFunctions[word] {
					return nil, fmt.Errorf("unknown function %s", word)
				}
			default:
				add(word)
			}
		default: // operators, parentheses, commas, @
			i++
		}
	}
	return names, nil
}

func isIdent(c byte, first bool) bool {
	return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || !first && c >= '0' && c <= '9'
}

// skipString returns the index after the string literal that starts at i.
func skipString(s string, i int) (int, error) {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		switch {
		case s[j] == '\\' && q != '`':
			j++
		case s[j] == q:
			return j + 1, nil
		}
	}
	return 0, fmt.Errorf("unclosed string at %d", i)
}

// matchers reads the label matchers in braces at i and returns the index
// after them and the metric name of a __name__="x" matcher, if any.
func matchers(s string, i int) (int, string, error) {
	name := ""
	j := i + 1
	for {
		for j < len(s) && strings.ContainsRune(" \t\r\n,", rune(s[j])) {
			j++
		}
		if j >= len(s) {
			return 0, "", fmt.Errorf("unclosed { at %d", i)
		}
		if s[j] == '}' {
			return j + 1, name, nil
		}
		k := j
		for k < len(s) && isIdent(s[k], false) {
			k++
		}
		label := s[j:k]
		if label == "" {
			if s[j] != '"' { // Prometheus 3 allows a quoted name: {"x.y"}
				return 0, "", fmt.Errorf("bad label matcher at %d", j)
			}
		}
		for k < len(s) && s[k] == ' ' {
			k++
		}
		op := k
		for k < len(s) && strings.ContainsRune("=!~", rune(s[k])) {
			k++
		}
		ops := s[op:k]
		for k < len(s) && s[k] == ' ' {
			k++
		}
		if k >= len(s) || !strings.ContainsRune("\"'`", rune(s[k])) {
			if label == "" && ops == "" { // {"name"}: the quoted name alone
				end, err := skipString(s, j)
				if err != nil {
					return 0, "", err
				}
				name = s[j+1 : end-1]
				j = end
				continue
			}
			return 0, "", fmt.Errorf("label %q at %d has no quoted value", label, j)
		}
		end, err := skipString(s, k)
		if err != nil {
			return 0, "", err
		}
		if label == "__name__" && ops == "=" {
			name = s[k+1 : end-1]
		}
		j = end
	}
}

func TestMetricNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
		err  bool
	}{
		{expr: `up`, want: []string{"up"}},
		{expr: `sum by (route) (rate(rampart_http_requests_total{route=~"$route", code=~"5.."}[$__rate_interval]))`,
			want: []string{"rampart_http_requests_total"}},
		{expr: `histogram_quantile(0.99, sum by (route, le) (rate(rampart_http_request_duration_seconds_bucket{job=~"$job"}[5m])))`,
			want: []string{"rampart_http_request_duration_seconds_bucket"}},
		{expr: `sum(rate(a_total[1m])) by (instance) / on (instance) group_left (version) b_info`,
			want: []string{"a_total", "b_info"}},
		{expr: `count without (target) (x) - sum without(target)(x) > bool 0 unless y offset 5m`,
			want: []string{"x", "y"}},
		{expr: `{__name__="go_goroutines", job="rampart"} + ignoring(le) z @ 1609746000`,
			want: []string{"go_goroutines", "z"}},
		{expr: `label_replace(m, "dst", "$1", "src", "(.*)") * 1e3 + Inf - NaN`, want: []string{"m"}},
		{expr: `max_over_time(timestamp(rampart_config_info{instance=~"${instance:regex}"})[$__range:$__interval])`,
			want: []string{"rampart_config_info"}},
		{expr: `time() - process_start_time_seconds # uptime`, want: []string{"process_start_time_seconds"}},
		{expr: `topk(5, rec:rule:rate5m) and rec:rule:rate5m`, want: []string{"rec:rule:rate5m"}},
		{expr: `rate(x{a="unclosed`, err: true},
		{expr: `rate(x{a=b})`, err: true},
		{expr: `rats(x_total[5m])`, err: true},
	} {
		got, err := metricNames(tc.expr)
		if tc.err {
			if err == nil {
				t.Errorf("%s: no error, got %v", tc.expr, got)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s:\n got %v %v\nwant %v", tc.expr, got, err, tc.want)
		}
	}
}

// TestMetricNamesAlertRules runs the tokenizer over every expression of
// the alert rules (deploy/prometheus/alerts.yaml, which promtool parses):
// no error, and the names it finds are those a plain search for metric
// and recording rule names finds.
func TestMetricNamesAlertRules(t *testing.T) {
	b, err := os.ReadFile("../prometheus/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var rf struct {
		Groups []struct {
			Rules []struct{ Expr string }
		}
	}
	if err := yaml.Unmarshal(b, &rf); err != nil {
		t.Fatal(err)
	}
	word := regexp.MustCompile(`\b(rampart_[a-z0-9_]+|up|[a-z]+:[a-z0-9_]+:[a-z0-9_]+)\b`)
	n := 0
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			got, err := metricNames(r.Expr)
			if err != nil {
				t.Errorf("%s: %v", r.Expr, err)
				continue
			}
			var want []string
			for _, w := range word.FindAllString(r.Expr, -1) {
				if !slices.Contains(want, w) {
					want = append(want, w)
				}
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("%s:\n got %v\nwant %v", r.Expr, got, want)
			}
			n++
		}
	}
	if n < 10 {
		t.Fatalf("only %d rules", n)
	}
}

// FuzzMetricNames: the tokenizer ends on any input, without panicking,
// and never returns an empty name.
func FuzzMetricNames(f *testing.F) {
	for _, s := range []string{`sum by (a) (rate(x{b="c"}[5m]))`, `{__name__="x"}`, `a / on() group_left b`, `"\`, `{a=~'x'}`, `$__range 1e-3`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		names, err := metricNames(expr)
		if err != nil {
			return
		}
		for _, n := range names {
			if n == "" {
				t.Fatalf("%q: an empty name", expr)
			}
		}
	})
}
