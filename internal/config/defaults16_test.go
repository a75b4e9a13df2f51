package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func mustLoad(t *testing.T, doc string) *Config {
	t.Helper()
	c, err := LoadBytes("t.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// retry.on defaults to [connect_failure, reset] only when the key is
// absent; an explicit empty list is kept and retries nothing.
func TestRetryOnDefaultOnlyWhenAbsent(t *testing.T) {
	absent := mustLoad(t, strings.Replace(base, "upstream: app", "upstream: app\n    retry: {attempts: 3}", 1))
	if got := absent.Routes[0].Retry.On; !slices.Equal(got, []string{"connect_failure", "reset"}) {
		t.Errorf("retry.on absent: got %v, want [connect_failure reset]", got)
	}
	empty := mustLoad(t, strings.Replace(base, "upstream: app", "upstream: app\n    retry: {attempts: 3, on: []}", 1))
	if got := empty.Routes[0].Retry.On; len(got) != 0 {
		t.Errorf("retry.on: []: got %v, want it kept empty", got)
	}
}

// retry.backoff defaults only when absent; an explicit zero is kept.
func TestRetryBackoffZeroKept(t *testing.T) {
	absent := mustLoad(t, strings.Replace(base, "upstream: app", "upstream: app\n    retry: {attempts: 3}", 1))
	if b := absent.Routes[0].Retry.Backoff; b.Base.D() != 25*time.Millisecond || b.Max.D() != 250*time.Millisecond {
		t.Errorf("backoff absent: got %v/%v, want 25ms/250ms", b.Base, b.Max)
	}
	zero := mustLoad(t, strings.Replace(base, "upstream: app", "upstream: app\n    retry: {attempts: 3, backoff: {base: 0s, max: 0s}}", 1))
	if b := zero.Routes[0].Retry.Backoff; b.Base != 0 || b.Max != 0 {
		t.Errorf("backoff {0s, 0s}: got %v/%v, want both kept 0", b.Base, b.Max)
	}
}
