package grafana

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/test/gwtest"
)

// prometheusBin returns the prometheus binary's path, or skips the test;
// on CI, where scripts/test-deps.sh installs it (Debian package
// prometheus), it fails instead.
func prometheusBin(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("prometheus"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/bin/prometheus"); err == nil {
		return "/usr/bin/prometheus"
	}
	if ci := os.Getenv("CI"); ci != "" && ci != "false" {
		t.Fatal("prometheus is not installed (scripts/test-deps.sh installs the prometheus package); CI needs the dashboard test")
	}
	t.Skip("prometheus is not installed; run scripts/test-deps.sh (Debian package prometheus)")
	return ""
}

// promServer is a Prometheus process started by the test.
type promServer struct {
	url    string
	client *http.Client
}

// lockedBuffer collects a process's output for the failure log.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startPrometheus runs Prometheus on a free port with a temporary storage
// directory, scraping the gateway's admin /metrics every second as job
// "rampart"; it is stopped (SIGTERM, then SIGKILL after 10s) when the test
// ends.
func startPrometheus(t *testing.T, bin, admin string) *promServer {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	doc := fmt.Sprintf(`global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: rampart
    static_configs: [{targets: [%q]}]
`, admin)
	if err := os.WriteFile(cfg, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &promServer{client: gwtest.Client(t, 5*time.Second)}
start:
	for attempt := 0; ; attempt++ { // the free port may be taken before Prometheus binds it
		addr := gwtest.FreeAddr(t)
		var out lockedBuffer
		cmd := exec.Command(bin, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, fmt.Sprint("data", attempt)),
			"--web.listen-address="+addr, "--log.level=warn",
			// Apply the static target at once, not after the 5s default.
			"--scrape.discovery-reload-interval=100ms")
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		t.Cleanup(func() {
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				<-exited
			}
			if t.Failed() {
				t.Logf("prometheus output:\n%s", out.String())
			}
		})
		p.url = "http://" + addr
		deadline := time.Now().Add(20 * time.Second)
		for {
			select {
			case <-exited:
				if attempt < 2 && strings.Contains(out.String(), "address already in use") {
					continue start
				}
				t.Fatalf("prometheus exited:\n%s", out.String())
			default:
			}
			if resp, err := p.client.Get(p.url + "/-/ready"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return p
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("prometheus not ready within 20s:\n%s", out.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// apiResponse is the envelope of Prometheus's HTTP API.
type apiResponse struct {
	Status    string          `json:"status"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Data      json.RawMessage `json:"data"`
}

// get calls the HTTP API and returns its data, or the error it answered.
func (p *promServer) get(t *testing.T, path string, params url.Values) (json.RawMessage, error) {
	t.Helper()
	resp, err := p.client.Get(p.url + path + "?" + params.Encode())
	if err != nil {
		t.Fatalf("prometheus %s: %v", path, err)
	}
	defer resp.Body.Close()
	var r apiResponse
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("prometheus %s: %d, %v", path, resp.StatusCode, err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("%s: %s", r.ErrorType, r.Error)
	}
	return r.Data, nil
}

// sample is one series of an instant query's answer.
type sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

func (s sample) float() float64 {
	str, _ := s.Value[1].(string)
	v, err := strconv.ParseFloat(str, 64)
	if err != nil {
		return math.NaN()
	}
	return v
}

// query runs an instant query and returns its series (a scalar as one).
func (p *promServer) query(t *testing.T, expr string) ([]sample, error) {
	t.Helper()
	data, err := p.get(t, "/api/v1/query", url.Values{"query": {expr}})
	if err != nil {
		return nil, err
	}
	var r struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	switch r.ResultType {
	case "vector":
		var out []sample
		err := json.Unmarshal(r.Result, &out)
		return out, err
	case "scalar":
		var s sample
		err := json.Unmarshal(r.Result, &s.Value)
		return []sample{s}, err
	}
	return nil, fmt.Errorf("result type %s, want vector or scalar", r.ResultType)
}

// positive counts the series with a value above 0 (and finite).
func positive(res []sample) int {
	n := 0
	for _, s := range res {
		if v := s.float(); v > 0 && !math.IsInf(v, 0) {
			n++
		}
	}
	return n
}

// scrapedSince reports whether Prometheus has a sample of up for the
// gateway at or after when.
func (p *promServer) scrapedSince(t *testing.T, when time.Time) bool {
	s, err := p.query(t, `timestamp(up{job="rampart"})`)
	return err == nil && len(s) == 1 && s[0].float() >= float64(when.UnixNano())/1e9
}

// legendLabel matches a label in a legend template: {{route}}.
var legendLabel = regexp.MustCompile(`\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}`)

// Grafana's built-in intervals as the test substitutes them: the traffic,
// the scrapes and the queries all fall within a minute (well within, even
// on a loaded machine), and the range covers the whole test.
var builtins = strings.NewReplacer("$__rate_interval", "1m", "${__rate_interval}", "1m",
	"$__range", "5m", "${__range}", "5m", "$__interval", "1s", "${__interval}", "1s")

// substitute replaces the dashboard variables in expr by their values.
func substitute(expr string, values map[string]string) string {
	expr = builtins.Replace(expr)
	return regexp.MustCompile(`\$\{([a-zA-Z_]+)(:[a-z]+)?\}|\$([a-zA-Z_]+)`).ReplaceAllStringFunc(expr, func(m string) string {
		name := strings.Trim(m, "${}")
		name, _, _ = strings.Cut(name, ":")
		if v, ok := values[name]; ok {
			return v
		}
		return m
	})
}

// TestDashboardQueriesInPrometheus runs a real Prometheus that scrapes a
// real gateway every second while the traffic of TestDashboardMetricsExported
// runs, then evaluates every query of the dashboard as Grafana would send
// it (variables resolved through their own label_values queries, "All"
// for route and upstream): each must parse, and return at least one series
// with a number (not NaN). Prometheus's own list of metric names must hold
// every name the dashboard uses.
func TestDashboardQueriesInPrometheus(t *testing.T) {
	bin := prometheusBin(t)
	d, _ := loadDashboard(t)
	begin := time.Now()
	g := startGateway(t)
	p := startPrometheus(t, bin, strings.TrimPrefix(g.Admin, "http://"))
	t.Logf("gateway and prometheus up in %s", time.Since(begin).Round(time.Millisecond))
	started := time.Now()
	gwtest.WaitFor(t, 15*time.Second, "prometheus's first scrape of the gateway", func() bool { return p.scrapedSince(t, started) })
	t.Logf("first scrape %s after the start", time.Since(begin).Round(time.Millisecond))
	g.traffic(t, func() {
		// A scrape between the rounds: the series exist before they grow.
		now := time.Now()
		gwtest.WaitFor(t, 15*time.Second, "a scrape after the first round", func() bool { return p.scrapedSince(t, now) })
	})
	t.Logf("traffic done %s after the start", time.Since(begin).Round(time.Millisecond))
	// Three scrapes after the traffic, so that the rates see it all.
	after := time.Now().Add(2 * time.Second)
	gwtest.WaitFor(t, 15*time.Second, "three scrapes after the traffic", func() bool { return p.scrapedSince(t, after) })
	t.Logf("traffic scraped %s after the start", time.Since(begin).Round(time.Millisecond))

	// Variables, in dashboard order (each may use the ones before it).
	values := map[string]string{"datasource": "n/a"}
	vq := d.variableQueries(t)
	for _, v := range d.Templating.List {
		sel, ok := vq[v.Name]
		if !ok {
			continue
		}
		match := substitute(sel[0], values)
		data, err := p.get(t, "/api/v1/label/"+sel[1]+"/values", url.Values{"match[]": {match}})
		if err != nil {
			t.Fatalf("variable %s: label_values(%s, %s): %v", v.Name, match, sel[1], err)
		}
		var got []string
		if err := json.Unmarshal(data, &got); err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 {
			t.Fatalf("variable %s: label_values(%s, %s) found no value", v.Name, match, sel[1])
		}
		t.Logf("variable %s: %q", v.Name, got)
		if v.Name == "job" || v.Name == "instance" {
			// Selected values, formatted for =~ as Grafana does.
			for i := range got {
				got[i] = strings.ReplaceAll(regexp.QuoteMeta(got[i]), `\`, `\\`)
			}
			values[v.Name] = "(" + strings.Join(got, "|") + ")"
		} else {
			values[v.Name] = v.AllValue // All
		}
	}

	for _, q := range d.queries() {
		expr := substitute(q.expr, values)
		if strings.Contains(expr, "$") {
			t.Errorf("%s: a variable left after substitution: %s", q.where, expr)
			continue
		}
		res, err := p.query(t, expr)
		if err != nil {
			t.Errorf("%s: Prometheus refused %s: %v", q.where, expr, err)
			continue
		}
		// The traffic gives every query something to show: a value that
		// is a number above 0 (a rate the window sees, a ratio with 5xx
		// answers, a gauge that is set).
		if positive(res) == 0 {
			t.Errorf("%s: no data (%d series, none above 0): %s -> %v", q.where, len(res), expr, res)
		}
		// The tokenizer missed no metric: with every name it found replaced
		// by one nobody exports, Prometheus finds nothing to show.
		names, err := metricNames(expr)
		if err != nil {
			t.Fatalf("%s: %v", q.where, err)
		}
		blind := expr
		for _, n := range names {
			blind = regexp.MustCompile(`\b`+regexp.QuoteMeta(n)+`\b`).ReplaceAllString(blind, "rampart_test_absent_metric")
		}
		if res, err := p.query(t, blind); err != nil || positive(res) > 0 {
			t.Errorf("%s: with the metrics %v the tokenizer found replaced, %s still shows %v (%v): it missed a metric", q.where, names, blind, res, err)
		}
		// Every label the legend shows is on the series.
		for _, m := range legendLabel.FindAllStringSubmatch(q.legend, -1) {
			found := false
			for _, s := range res {
				_, ok := s.Metric[m[1]]
				found = found || ok
			}
			if !found {
				t.Errorf("%s: legend %q shows {{%s}}, a label no series has: %s -> %v", q.where, q.legend, m[1], expr, res)
			}
		}
	}

	// Prometheus's own list of names holds every name the dashboard uses.
	data, err := p.get(t, "/api/v1/label/__name__/values", url.Values{"match[]": {`{job="rampart"}`}})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	json.Unmarshal(data, &names)
	have := map[string]bool{}
	for _, n := range names {
		have[n] = true
	}
	if missing := missingMetrics(dashboardMetrics(t, d), have); len(missing) > 0 {
		t.Errorf("Prometheus has no series for:\n%s", strings.Join(missing, "\n"))
	}

	// A query naming a made-up metric returns nothing, and a broken one is
	// refused: the checks above can fail.
	if res, err := p.query(t, substitute(`sum(rate(rampart_no_such_total{job=~"$job"}[$__rate_interval]))`, values)); err != nil || len(res) != 0 {
		t.Errorf("made-up metric: %v %v, want no series", res, err)
	}
	if _, err := p.query(t, `sum by (route (rate(x[1m]))`); err == nil {
		t.Error("a broken query was not refused")
	}
	t.Logf("%d queries checked in %s", len(d.queries()), time.Since(begin).Round(time.Millisecond))
}
