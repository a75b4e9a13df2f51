package router

import (
	"encoding/binary"
	"math/rand/v2"
	"net/http"
	"testing"

	"github.com/rampart-gw/rampart/internal/config"
)

// byteSource feeds math/rand from the fuzzer's bytes, so that the fuzzer
// steers the random generator. Once the bytes run out it continues with
// splitmix64: a constant stream would make rand's rejection sampling loop
// forever.
type byteSource struct {
	b     []byte
	state uint64
}

func (s *byteSource) Uint64() uint64 {
	if len(s.b) > 0 {
		var buf [8]byte
		n := copy(buf[:], s.b)
		s.b = s.b[n:]
		return binary.LittleEndian.Uint64(buf[:])
	}
	s.state += 0x9e3779b97f4a7c15
	z := s.state
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// FuzzMatch builds rules from the fuzz input, adds one rule whose host, path
// pattern and query come straight from fuzzed strings, and checks that Match
// neither panics nor disagrees with the reference (nor Explain with Match), which ranks regexes and
// templates by the length of their literal prefix as the Router does.
func FuzzMatch(f *testing.F) {
	f.Add([]byte("seed-one-\x00\x01\x02\x03\x04\x05\x06\x07"), "api.Example.com:80", "/u/{id}/{*rest}", "^/u/[0-9]+$", "/u/12/x", "a=1&b=a+b")
	f.Add([]byte{}, "[::1]:8080", "/a", "/a|/b", "/b", "%zz=1;")
	f.Add([]byte("\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8\x10\x20\x30"), "*.a.com", "/{x}", "^{2}a", "/", "k%20y=a%26b")
	// Regex and template literals against a catch-all and equal-length
	// prefixes, under the literal-length rank.
	f.Add([]byte("catch-all"), "a.com", "/items/{id}", "^/items/[0-9]+$", "/items/42", "")
	f.Add([]byte("literals\x03\x01"), "b.a.com", "/a/{*r}", `/a\.json|/a\.js(?i)x`, "/a.json", "a=1")
	f.Fuzz(func(t *testing.T, seed []byte, host, tpl, re, path, query string) {
		if len(re) > 64 || len(tpl) > 64 {
			return // large regexes only slow the fuzzer down
		}
		g := gen{rand.New(&byteSource{b: seed})}
		rules := make([]Rule, g.r.IntN(16))
		for i := range rules {
			rules[i] = g.rule()
		}
		extra := []config.Match{
			{Hosts: []string{host}},
			{Path: config.PathMatch{Template: tpl}},
			{Path: config.PathMatch{Regex: re}},
			{Path: config.PathMatch{Prefix: path}, Query: map[string]string{query: path}},
			{Path: config.PathMatch{Exact: path}, Headers: map[string]string{host: query}},
		}
		for _, m := range extra {
			// Keep only the extra rules that compile on their own.
			if _, err := New([]Rule{{Match: m}}); err == nil {
				rules = append(rules, Rule{Match: m})
			}
		}
		rt, err := New(rules)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		reqs := []req{g.request(), {host: host, path: path, method: "GET", header: http.Header{http.CanonicalHeaderKey(host): {query}}, query: query}}
		for _, q := range reqs {
			got := rt.Match(q.host, q.path, q.method, q.header, q.query)
			want := refMatch(rules, q.host, q.path, q.method, q.header, q.query)
			if got != want {
				t.Fatalf("Match(%+v) = %d, reference %d\nrules: %+v", q, got, want, rules)
			}
			checkExplain(t, rt, rules, q)
		}
	})
}
