package tracing

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

func TestB3Extract(t *testing.T) {
	const tid, sid = "80f198ee56343ba864fe8b2a57d3eff7", "e457b5a2e4d86bd1"
	tests := []struct {
		name     string
		hdr      map[string]string
		ok       bool
		traceID  string
		sampled  bool
		deferred bool
	}{
		{"single sampled", map[string]string{"b3": tid + "-" + sid + "-1"}, true, tid, true, false},
		{"single with parent", map[string]string{"b3": tid + "-" + sid + "-1-05e3ac9a4f6e3b90"}, true, tid, true, false},
		{"single debug", map[string]string{"b3": tid + "-" + sid + "-d"}, true, tid, true, false},
		{"single not sampled", map[string]string{"b3": tid + "-" + sid + "-0"}, true, tid, false, false},
		{"single deferred", map[string]string{"b3": tid + "-" + sid}, true, tid, false, true},
		{"single 64-bit", map[string]string{"b3": "64fe8b2a57d3eff7-" + sid + "-1"}, true, "000000000000000064fe8b2a57d3eff7", true, false},
		{"single decision only", map[string]string{"b3": "1"}, false, "", false, false},
		{"single bad sampled", map[string]string{"b3": tid + "-" + sid + "-x"}, false, "", false, false},
		{"single empty sampled", map[string]string{"b3": tid + "-" + sid + "--05e3ac9a4f6e3b90"}, false, "", false, false},
		{"single bad parent", map[string]string{"b3": tid + "-" + sid + "-1-zz"}, false, "", false, false},
		{"single upper case", map[string]string{"b3": strings.ToUpper(tid) + "-" + sid + "-1"}, false, "", false, false},
		{"single short span", map[string]string{"b3": tid + "-e457b5a2-1"}, false, "", false, false},
		{"single zero trace", map[string]string{"b3": strings.Repeat("0", 32) + "-" + sid + "-1"}, false, "", false, false},
		{"single zero span", map[string]string{"b3": tid + "-" + strings.Repeat("0", 16) + "-1"}, false, "", false, false},
		{"multi sampled", map[string]string{"X-B3-TraceId": tid, "X-B3-SpanId": sid, "X-B3-Sampled": "1"}, true, tid, true, false},
		{"multi true", map[string]string{"X-B3-TraceId": tid, "X-B3-SpanId": sid, "X-B3-Sampled": "true"}, true, tid, true, false},
		{"multi not sampled", map[string]string{"X-B3-TraceId": tid, "X-B3-SpanId": sid, "X-B3-Sampled": "0"}, true, tid, false, false},
		{"multi debug", map[string]string{"X-B3-TraceId": tid, "X-B3-SpanId": sid, "X-B3-Flags": "1"}, true, tid, true, false},
		{"multi deferred", map[string]string{"X-B3-TraceId": tid, "X-B3-SpanId": sid}, true, tid, false, true},
		{"multi 64-bit", map[string]string{"X-B3-TraceId": "64fe8b2a57d3eff7", "X-B3-SpanId": sid, "X-B3-Sampled": "1"}, true, "000000000000000064fe8b2a57d3eff7", true, false},
		{"multi no span", map[string]string{"X-B3-TraceId": tid, "X-B3-Sampled": "1"}, false, "", false, false},
		{"multi bad flags", map[string]string{"X-B3-TraceId": tid, "X-B3-SpanId": sid, "X-B3-Flags": "2"}, false, "", false, false},
		{"multi bad sampled", map[string]string{"X-B3-TraceId": tid, "X-B3-SpanId": sid, "X-B3-Sampled": "yes"}, false, "", false, false},
		{"single wins", map[string]string{"b3": tid + "-" + sid + "-1", "X-B3-TraceId": "64fe8b2a57d3eff7", "X-B3-SpanId": sid}, true, tid, true, false},
		{"none", map[string]string{}, false, "", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tc.hdr {
				h.Set(k, v)
			}
			ctx := B3{}.Extract(context.Background(), propagation.HeaderCarrier(h))
			sc := trace.SpanContextFromContext(ctx)
			if sc.IsValid() != tc.ok {
				t.Fatalf("valid = %v, want %v (%v)", sc.IsValid(), tc.ok, sc)
			}
			if !tc.ok {
				return
			}
			if sc.TraceID().String() != tc.traceID || sc.SpanID().String() != sid || !sc.IsRemote() {
				t.Errorf("trace %s span %s remote %v, want %s %s true", sc.TraceID(), sc.SpanID(), sc.IsRemote(), tc.traceID, sid)
			}
			if sc.IsSampled() != tc.sampled {
				t.Errorf("sampled = %v, want %v", sc.IsSampled(), tc.sampled)
			}
			if got := ctx.Value(deferredKey{}) != nil; got != tc.deferred {
				t.Errorf("deferred = %v, want %v", got, tc.deferred)
			}
		})
	}
}

// TestB3InjectsNothing: B3 is input only.
func TestB3InjectsNothing(t *testing.T) {
	h := http.Header{}
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled})
	B3{}.Inject(trace.ContextWithSpanContext(context.Background(), sc), propagation.HeaderCarrier(h))
	if len(h) != 0 {
		t.Errorf("Inject wrote %v", h)
	}
}

// FuzzB3 feeds arbitrary header values: Extract never panics, and a
// context it returns is valid, remote, and has the ids of the input.
func FuzzB3(f *testing.F) {
	f.Add("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90", "", "", "", "")
	f.Add("64fe8b2a57d3eff7-e457b5a2e4d86bd1", "", "", "", "")
	f.Add("d", "", "", "", "")
	f.Add("", "80f198ee56343ba864fe8b2a57d3eff7", "e457b5a2e4d86bd1", "1", "")
	f.Add("", "64fe8b2a57d3eff7", "e457b5a2e4d86bd1", "", "1")
	f.Add("", "--", "-", "true", "0")
	f.Fuzz(func(t *testing.T, single, tid, sid, sampled, flags string) {
		h := http.Header{}
		for k, v := range map[string]string{"B3": single, "X-B3-Traceid": tid, "X-B3-Spanid": sid, "X-B3-Sampled": sampled, "X-B3-Flags": flags} {
			if v != "" {
				h[k] = []string{v}
			}
		}
		sc := trace.SpanContextFromContext(B3{}.Extract(context.Background(), propagation.HeaderCarrier(h)))
		if !sc.IsValid() {
			return
		}
		if !sc.IsRemote() {
			t.Errorf("extracted context not remote: %v", sc)
		}
		in := tid
		if single != "" {
			in = single
		}
		if !strings.Contains(in, strings.TrimLeft(sc.TraceID().String(), "0")) {
			t.Errorf("trace id %s not from the input %q", sc.TraceID(), in)
		}
		if !strings.Contains(single+sid, sc.SpanID().String()) {
			t.Errorf("span id %s not from the input", sc.SpanID())
		}
	})
}
