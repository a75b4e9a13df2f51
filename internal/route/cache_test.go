package route

import (
	"net/http"
	"testing"
)

func TestCacheable(t *testing.T) {
	get := &http.Request{Method: http.MethodGet}
	tests := []struct {
		name string
		r    *http.Request
		resp *http.Response
		want bool
	}{
		{"plain 200", get, &http.Response{StatusCode: 200, Header: http.Header{}}, true},
		{"post", &http.Request{Method: http.MethodPost}, &http.Response{StatusCode: 200, Header: http.Header{}}, false},
		{"404", get, &http.Response{StatusCode: 404, Header: http.Header{}}, false},
		{"set-cookie", get, &http.Response{StatusCode: 200, Header: http.Header{"Set-Cookie": {"a=b"}}}, false},
		{"vary", get, &http.Response{StatusCode: 200, Header: http.Header{"Vary": {"Accept"}}}, false},
		{"no-store", get, &http.Response{StatusCode: 200, Header: http.Header{"Cache-Control": {"max-age=5, no-store"}}}, false},
		{"private", get, &http.Response{StatusCode: 200, Header: http.Header{"Cache-Control": {"private"}}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := cacheable(tc.r, tc.resp.StatusCode, tc.resp.Header); got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}
