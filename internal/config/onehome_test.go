package config

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// noLiteralDefaults fails when a non-test Go file under one of dirs
// (relative to internal/) matches re: a default of this package written
// out again elsewhere. config is the only home of defaults (issue 16);
// other packages read the config value, or config's exported constant in
// a documented zero-value guard.
func noLiteralDefaults(t *testing.T, re *regexp.Regexp, dirs ...string) {
	t.Helper()
	for _, dir := range dirs {
		files, _ := filepath.Glob(filepath.Join("..", dir, "*.go"))
		if len(files) == 0 {
			t.Fatalf("no Go files in internal/%s", dir)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for i, line := range strings.Split(string(b), "\n") {
				if code, _, _ := strings.Cut(line, "//"); re.MatchString(code) {
					t.Errorf("%s:%d: a default of package config repeated: %s", f, i+1, strings.TrimSpace(line))
				}
			}
		}
	}
}

// The request ID header default lives in DefaultRequestIDHeader only.
func TestRequestIDHeaderDefaultOneHome(t *testing.T) {
	noLiteralDefaults(t, regexp.MustCompile(`(?i)"x-request-id"`), "compile", "gateway", "app", "proxy")
}

// Drain timeout, connect timeout and idle-pool defaults live in
// DefaultDrainTimeout, DefaultConnectTimeout and DefaultMaxIdlePerTarget.
func TestTimeoutAndIdleDefaultsOneHome(t *testing.T) {
	noLiteralDefaults(t, regexp.MustCompile(`(?i)(drain\w*|timeout)\s*:?=\s*30\s*\*\s*time\.Second`), "app")
	noLiteralDefaults(t, regexp.MustCompile(`(?i)connect\w*\s*:?=\s*5\s*\*\s*time\.Second|maxidle\w*\s*:?=\s*64\b`), "app", "cluster")
}

// Outlier-detection (passive health), active health and circuit
// breaker defaults live in this package's constants; those packages alias
// them for their zero-value guards.
func TestOutlierDefaultsOneHome(t *testing.T) {
	noLiteralDefaults(t, regexp.MustCompile(`Default\w*\s*=\s*[0-9]`), "cluster/outlier", "cluster/health", "cluster/breaker")
}
