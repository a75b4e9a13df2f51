package waf

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"testing"

	coreruleset "github.com/corazawaf/coraza-coreruleset/v4"
	"github.com/corazawaf/coraza/v3"
	txhttp "github.com/corazawaf/coraza/v3/http"

	"github.com/rampart-gw/rampart/internal/exchange"
	"github.com/rampart-gw/rampart/internal/policy/policytest"
	"github.com/rampart-gw/rampart/internal/policy/sanitize"
)

type benchRequest struct{ name, method, target, ctype, body string }

// benchRequests are the requests measured: a GET with a query string, a
// 1 KiB JSON POST and a 16 KiB form POST, all benign (nothing blocks).
func benchRequests() []benchRequest {
	// 1 KiB of JSON: 26 objects of three fields (78 values).
	json := `{"items":[` + strings.Repeat(`{"id":12345,"name":"widget","ok":true},`, 25) + `{"id":0,"name":"last one","ok":false}]}`
	// 16 KiB of form: about 400 fields of a few words each.
	form := url.Values{}
	for i, n := 0, 0; n < 16<<10-48; i++ {
		k, v := "field"+strconv.Itoa(i), "some ordinary text value "+strconv.Itoa(i*7919)
		form.Set(k, v)
		n += len(url.QueryEscape(k)) + len(url.QueryEscape(v)) + 2
	}
	return []benchRequest{
		{"GET", "GET", "http://api.example.com/users/42?sort=name&page=2", "", ""},
		{"JSON1KiB", "POST", "http://api.example.com/api/items", "application/json", json},
		{"Form16KiB", "POST", "http://api.example.com/api/form", "application/x-www-form-urlencoded", form.Encode()},
	}
}

// BenchmarkWAF measures the added cost per request of Rampart's waf at PL1
// (its defaults), of stock Coraza's net/http middleware (txhttp.WrapHandler)
// with the same rule set (the same SecLang, CRS PL1 included), and of the
// sanitize policy, for the same three requests, side by side. "none" is
// the benchmark's own cost (building the request and recorder), to be
// subtracted; cpu-ns/op is the CPU time of the process per request (GC
// included), steadier than ns/op on a shared machine:
//
//	go test -run '^$' -bench BenchmarkWAF -benchmem ./internal/policy/waf/
func BenchmarkWAF(b *testing.B) {
	f := build(b, "")
	stock, err := coraza.NewWAF(coraza.NewWAFConfig().WithRootFS(coreruleset.FS).WithDirectives(f.inst.rules))
	if err != nil {
		b.Fatal(err)
	}
	sp, err := sanitize.New(policytest.Spec(b, "policies:\n  s:\n    type: sanitize\n", "s"))
	if err != nil {
		b.Fatal(err)
	}
	nop := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })
	benchHandlers(b, benchRequests(), []namedHandler{
		{"none", nop}, // the harness alone: subtract it for the added cost
		{"rampart", f.Wrap(nop)},
		{"stock", txhttp.WrapHandler(stock, nop)},
		{"sanitize", sp.Wrap(nop)},
	})
}

// BenchmarkWAFLargeField measures one 64,000-byte form field (the CRS's
// own 920390 test sends one, of digits) at PL1, Rampart's waf against
// stock Coraza with the same rules, for three kinds of value: digits,
// English-like words and base64-like random letters.
//
//	go test -run '^$' -bench BenchmarkWAFLargeField ./internal/policy/waf/
func BenchmarkWAFLargeField(b *testing.B) {
	f := build(b, "")
	stock, err := coraza.NewWAF(coraza.NewWAFConfig().WithRootFS(coreruleset.FS).WithDirectives(f.inst.rules))
	if err != nil {
		b.Fatal(err)
	}
	nop := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })
	words := strings.Repeat("some ordinary text value ", 64000/25+1)[:64000]
	var rnd strings.Builder
	x := uint32(2463534242)
	const b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	for rnd.Len() < 64000 {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		rnd.WriteByte(b64[x%uint32(len(b64))])
	}
	var reqs []benchRequest
	for _, v := range []struct{ name, value string }{
		{"digits", strings.Repeat("1", 64000)},
		{"words", words},
		{"random", rnd.String()},
	} {
		reqs = append(reqs, benchRequest{v.name, "POST", "http://api.example.com/api/form", "application/x-www-form-urlencoded", "foo=" + url.QueryEscape(v.value)})
	}
	benchHandlers(b, reqs, []namedHandler{
		{"rampart", f.Wrap(nop)},
		{"stock", txhttp.WrapHandler(stock, nop)},
	})
}

type namedHandler struct {
	name string
	h    http.Handler
}

// benchHandlers runs each request through each handler.
func benchHandlers(b *testing.B, reqs []benchRequest, handlers []namedHandler) {
	for _, rq := range reqs {
		for _, hc := range handlers {
			b.Run(rq.name+"/"+hc.name, func(b *testing.B) {
				b.SetBytes(int64(len(rq.body)))
				b.ReportAllocs()
				cpu0 := cpuTime()
				for b.Loop() {
					var r *http.Request
					if rq.body == "" {
						r = httptest.NewRequest(rq.method, rq.target, nil)
					} else {
						r = httptest.NewRequest(rq.method, rq.target, strings.NewReader(rq.body))
						r.Header.Set("Content-Type", rq.ctype)
						// As a server's request has it (httptest leaves it out).
						r.Header.Set("Content-Length", strconv.Itoa(len(rq.body)))
					}
					r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")
					r.Header.Set("Accept", "*/*")
					r.Header.Set("Accept-Language", "en-US,en;q=0.5")
					ex := &exchange.Exchange{RequestID: "rid"}
					r = r.WithContext(exchange.With(r.Context(), ex))
					w := httptest.NewRecorder()
					hc.h.ServeHTTP(w, r)
					if w.Code != 200 {
						b.Fatalf("%s %s: status %d %s", hc.name, rq.name, w.Code, w.Body)
					}
				}
				// CPU time (user and system, all threads: GC included) per
				// request, steadier than ns/op on a shared machine.
				b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

// cpuTime is the process's CPU time so far, in nanoseconds.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
