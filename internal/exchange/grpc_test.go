package exchange

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestIsGRPC(t *testing.T) {
	for _, tc := range []struct {
		ct   string
		want bool
	}{
		{"application/grpc", true},
		{"application/grpc+proto", true},
		{"Application/GRPC+json", true},
		{"application/grpc-web", true},
		{"application/grpc-web-text+proto", true},
		{"application/grpc;charset=utf-8", true},
		{"application/grpcx", false},
		{"application/json", false},
		{"application/grp", false},
		{"", false},
	} {
		t.Run(tc.ct, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/x", nil)
			if tc.ct != "" {
				r.Header.Set("Content-Type", tc.ct)
			}
			if got := IsGRPC(r); got != tc.want {
				t.Fatalf("IsGRPC(%q) = %v", tc.ct, got)
			}
		})
	}
}

func TestGRPCCode(t *testing.T) {
	for _, tc := range []struct {
		status int
		want   int
	}{
		{400, GRPCInternal}, {401, GRPCUnauthenticated}, {403, GRPCPermissionDenied},
		{404, GRPCUnimplemented}, {413, GRPCResourceExhausted}, {431, GRPCResourceExhausted},
		{429, GRPCResourceExhausted}, {500, GRPCInternal}, {502, GRPCUnavailable},
		{503, GRPCUnavailable}, {504, GRPCDeadlineExceeded}, {418, GRPCUnknown},
	} {
		if got := GRPCCode(tc.status, ""); got != tc.want {
			t.Errorf("GRPCCode(%d) = %d, want %d", tc.status, got, tc.want)
		}
	}
}

// TestErrorGRPC checks the trailers-only answer Error gives a gRPC call,
// and that the JSON answer is unchanged for any other request.
func TestErrorGRPC(t *testing.T) {
	r := httptest.NewRequest("POST", "/pkg.Svc/M", nil)
	r.Header.Set("Content-Type", "application/grpc+proto")
	ex := &Exchange{RequestID: "rid"}
	r = r.WithContext(With(r.Context(), ex))
	w := httptest.NewRecorder()
	w.Header().Set("Content-Length", "12")
	Error(w, r, http.StatusServiceUnavailable, "circuit_open", "100% open\nnow é")
	h := w.Result().Header
	if w.Code != 200 || w.Body.Len() != 0 {
		t.Fatalf("status %d body %q, want 200 and no body", w.Code, w.Body.String())
	}
	for k, want := range map[string]string{
		"Content-Type": "application/grpc+proto", "Grpc-Status": "14",
		"Grpc-Message": "100%25 open%0Anow %C3%A9", "Rampart-Error-Code": "circuit_open", "Content-Length": "",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if ex.Code != "circuit_open" || ex.GRPCStatus != "14" {
		t.Errorf("exchange code %q grpc %q", ex.Code, ex.GRPCStatus)
	}

	r.Header.Set("Content-Type", "application/json")
	w = httptest.NewRecorder()
	Error(w, r, http.StatusServiceUnavailable, "circuit_open", "open")
	if w.Code != 503 || w.Header().Get("Content-Type") != "application/json" || w.Header().Get("Grpc-Status") != "" {
		t.Fatalf("plain request: %d %v", w.Code, w.Header())
	}
}

func BenchmarkIsGRPC(b *testing.B) {
	r := httptest.NewRequest("GET", "/x", nil)
	r.Header.Set("Content-Type", "application/json")
	b.ReportAllocs()
	for b.Loop() {
		IsGRPC(r)
	}
}
