package exchange

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestErrorBody(t *testing.T) {
	tests := []struct {
		name   string
		status int
		code   string
		msg    string
		rid    string
	}{
		{"plain", 404, "route_not_found", "no route matches GET /x", "abc"},
		{"escapes", 400, "bad_request", "bad \"quote\" \\ <tag> & \n\x01", "r\"id"},
		{"utf8", 502, "upstream_unreachable", "héllo ✓", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			r := httptest.NewRequest("GET", "/", nil)
			e := &Exchange{RequestID: tc.rid}
			r = r.WithContext(With(r.Context(), e))
			Error(rec, r, tc.status, tc.code, tc.msg)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d", rec.Code, tc.status)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Fatalf("content-type %q", ct)
			}
			var body struct {
				Error struct {
					Status    int    `json:"status"`
					Code      string `json:"code"`
					Message   string `json:"message"`
					RequestID string `json:"request_id"`
				} `json:"error"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q is not JSON: %v", rec.Body.String(), err)
			}
			if body.Error.Status != tc.status || body.Error.Code != tc.code || body.Error.Message != tc.msg || body.Error.RequestID != tc.rid {
				t.Fatalf("body %+v", body.Error)
			}
			if e.Code != tc.code {
				t.Fatalf("exchange code %q, want %q", e.Code, tc.code)
			}
		})
	}
}

var _ http.ResponseWriter = httptest.NewRecorder()

func TestContext(t *testing.T) {
	type key struct{}
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
	c := &Context{Context: parent}
	c.Exchange.RequestID = "rid"
	if e := From(c); e != &c.Exchange {
		t.Fatalf("From = %p, want %p", e, &c.Exchange)
	}
	child, stop := context.WithCancel(c)
	defer stop()
	if e := From(child); e != &c.Exchange {
		t.Fatal("From a child context does not find the Exchange")
	}
	if v := child.Value(key{}); v != "v" {
		t.Fatalf("parent value %v", v)
	}
	cancel()
	<-child.Done()
	if c.Err() != context.Canceled || child.Err() != context.Canceled {
		t.Fatalf("errors %v, %v", c.Err(), child.Err())
	}
}
