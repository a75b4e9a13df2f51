package waf

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rampart-gw/rampart/internal/exchange"
)

// BenchmarkWAF measures the added cost per request at PL1: a GET and a
// 1 KiB JSON POST.
func BenchmarkWAF(b *testing.B) {
	f := build(b, "")
	h := f.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	json := `{"items":[` + strings.Repeat(`{"id":12345,"name":"widget","ok":true},`, 25) + `{"id":0}]}`
	for _, bc := range []struct{ name, method, body string }{
		{"GET", "GET", ""},
		{"JSON1KiB", "POST", json[:min(len(json), 1024)]},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var r *http.Request
				if bc.body == "" {
					r = httptest.NewRequest(bc.method, "http://api.example.com/users/42?sort=name&page=2", nil)
				} else {
					r = httptest.NewRequest(bc.method, "http://api.example.com/api", strings.NewReader(bc.body))
					r.Header.Set("Content-Type", "application/json")
				}
				r.Header.Set("User-Agent", "Mozilla/5.0")
				r.Header.Set("Accept", "*/*")
				ex := &exchange.Exchange{RequestID: "rid"}
				r = r.WithContext(exchange.With(r.Context(), ex))
				h.ServeHTTP(httptest.NewRecorder(), r)
			}
		})
	}
}
