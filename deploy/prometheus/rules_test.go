// Package prometheus holds the Prometheus alerting and recording rules
// (alerts.yaml) and their promtool unit tests (alerts_test.yaml); this Go
// test runs promtool on them and checks that they name only metrics the
// gateway exports.
package prometheus

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// Promtool returns promtool's path, or skips the test; on CI, where
// scripts/test-deps.sh installs it (Debian package prometheus), it fails.
func promtool(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("promtool"); err == nil {
		return p
	}
	if ci := os.Getenv("CI"); ci != "" && ci != "false" {
		t.Fatal("promtool is not installed (scripts/test-deps.sh installs the prometheus package); CI needs the rule tests")
	}
	t.Skip("promtool is not installed; run scripts/test-deps.sh")
	return ""
}

func run(t *testing.T, bin string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("promtool %s:\n%s", strings.Join(args, " "), out)
}

// TestRulesCheck runs promtool check rules: the file parses, every
// expression is valid PromQL, and no rule is duplicated.
func TestRulesCheck(t *testing.T) {
	run(t, promtool(t), "check", "rules", "alerts.yaml")
}

// TestRulesUnit runs the rule unit tests of alerts_test.yaml.
func TestRulesUnit(t *testing.T) {
	run(t, promtool(t), "test", "rules", "alerts_test.yaml")
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Record string            `yaml:"record"`
			Alert  string            `yaml:"alert"`
			Expr   string            `yaml:"expr"`
			Labels map[string]string `yaml:"labels"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

type testFile struct {
	Tests []struct {
		AlertRuleTest []struct {
			Alertname string `yaml:"alertname"`
			ExpAlerts []any  `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// metricName matches a metric name in PromQL: the gateway's, or up.
// Recording rule names (level:metric:operations) hold colons and are
// removed first.
var (
	recordedName = regexp.MustCompile(`[a-zA-Z_]*:[a-zA-Z0-9_:]+`)
	metricName   = regexp.MustCompile(`\brampart_[a-z0-9_]+`)
)

// TestRulesMetricsExported holds every metric the rules name to the
// metrics table of docs/operations.md, which internal/app's
// TestMetricsDocumented holds to what the gateway registers.
func TestRulesMetricsExported(t *testing.T) {
	var rf ruleFile
	readYAML(t, "alerts.yaml", &rf)
	documented := documentedMetrics(t)
	n := 0
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			expr := recordedName.ReplaceAllString(r.Expr, "")
			for _, name := range metricName.FindAllString(expr, -1) {
				n++
				base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
				if !documented[name] && !documented[base] {
					t.Errorf("rule %s%s names %s, which the gateway does not export", r.Alert, r.Record, name)
				}
			}
		}
	}
	if n < 10 {
		t.Fatalf("found only %d metric names in the rules", n)
	}
}

// TestEveryAlertTested: each alert has an alert_rule_test that expects it
// to fire and one that expects it not to.
func TestEveryAlertTested(t *testing.T) {
	var rf ruleFile
	readYAML(t, "alerts.yaml", &rf)
	var tf testFile
	readYAML(t, "alerts_test.yaml", &tf)
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tf.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}
	alerts := 0
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts++
			if !fires[r.Alert] {
				t.Errorf("alert %s has no test in which it fires", r.Alert)
			}
			if !quiet[r.Alert] {
				t.Errorf("alert %s has no test in which it stays quiet", r.Alert)
			}
			if r.Labels["severity"] == "" {
				t.Errorf("alert %s has no severity label", r.Alert)
			}
		}
	}
	if alerts < 10 {
		t.Fatalf("only %d alerts", alerts)
	}
}

// documentedMetrics reads the metric names of the docs/operations.md table.
func documentedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	i := strings.Index(text, "\n## Metrics\n")
	if i < 0 {
		t.Fatal("docs/operations.md has no Metrics section")
	}
	text = text[i+1:]
	if j := strings.Index(text[3:], "\n## "); j >= 0 {
		text = text[:j+3]
	}
	out := map[string]bool{}
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		first := strings.SplitN(line, "|", 3)[1]
		for _, m := range regexp.MustCompile("`([a-z0-9_]+)`").FindAllStringSubmatch(first, -1) {
			out[m[1]] = true
		}
	}
	return out
}
