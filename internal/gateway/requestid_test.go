package gateway

import (
	"strings"
	"testing"
)

func TestSaneRequestID(t *testing.T) {
	tests := []struct {
		id   string
		want bool
	}{
		{"abc-123", true},
		{"a.b_c:d/e+f=g@h", true},
		{strings.Repeat("a", 128), true},
		{strings.Repeat("a", 129), false},
		{"", false},
		{"has space", false},
		{"quote\"", false},
		{"new\nline", false},
		{"ünïcode", false},
	}
	for _, tc := range tests {
		t.Run(tc.id, func(t *testing.T) {
			if got := saneRequestID(tc.id); got != tc.want {
				t.Fatalf("saneRequestID(%q) = %v", tc.id, got)
			}
		})
	}
}

func TestNewRequestID(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		id := newRequestID()
		if len(id) != 32 || !saneRequestID(id) || strings.Trim(id, "0123456789abcdef") != "" {
			t.Fatalf("bad id %q", id)
		}
		if seen[id] {
			t.Fatalf("duplicate id %q", id)
		}
		seen[id] = true
	}
}

func TestTraceparent(t *testing.T) {
	const valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	tests := []struct {
		name      string
		in        string
		keepTrace bool
	}{
		{"valid keeps trace id and flags", valid, true},
		{"missing starts a trace", "", false},
		{"zero trace id", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", false},
		{"zero parent id", "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", false},
		{"uppercase hex", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", false},
		{"version ff", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false},
		{"too short", "00-4bf92f35-00f067aa0ba902b7-01", false},
		{"version 00 with extra", valid + "-extra", false},
		{"future version with extra", "01" + valid[2:] + "-extra", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := new(idBuf).child(tc.in)
			if !validTraceparent(out) || len(out) != 55 || out[:3] != "00-" {
				t.Fatalf("child %q is not a valid version-00 traceparent", out)
			}
			if tc.keepTrace {
				if out[3:35] != tc.in[3:35] || out[53:] != tc.in[53:55] {
					t.Fatalf("child %q lost the trace id or flags of %q", out, tc.in)
				}
				if out[36:52] == tc.in[36:52] {
					t.Fatalf("child %q kept the parent id", out)
				}
			} else if tc.in != "" && len(tc.in) >= 35 && out[3:35] == tc.in[3:35] {
				t.Fatalf("invalid parent %q was continued", tc.in)
			}
		})
	}
}

func TestNewIDs(t *testing.T) {
	const valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	var b idBuf
	rid, child := b.newIDs(valid)
	if len(rid) != 32 || strings.Trim(rid, "0123456789abcdef") != "" {
		t.Fatalf("bad id %q", rid)
	}
	if !validTraceparent(child) || child[3:35] != valid[3:35] || child[36:52] == valid[36:52] {
		t.Fatalf("child %q of %q", child, valid)
	}
	if rid2, _ := new(idBuf).newIDs(""); rid2 == rid {
		t.Fatalf("duplicate id %q", rid)
	}
}
