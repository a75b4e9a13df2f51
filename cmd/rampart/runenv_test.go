package main

import (
	"bytes"
	"strings"
	"testing"
)

// A bad RAMPART_GC_TUNER stops `rampart run` before anything starts.
func TestRunRefusesBadGCTuner(t *testing.T) {
	t.Setenv("RAMPART_GC_TUNER", "fast")
	var stderr bytes.Buffer
	if rc := cmdRun([]string{"-c", "does-not-matter.yaml"}, &stderr); rc != 2 {
		t.Fatalf("rc = %d, want 2; stderr: %s", rc, stderr.String())
	}
	if !strings.Contains(stderr.String(), `RAMPART_GC_TUNER: "fast"`) {
		t.Fatalf("stderr = %q", stderr.String())
	}
}
