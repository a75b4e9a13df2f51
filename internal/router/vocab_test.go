package router

import (
	"strconv"
	"strings"
	"testing"

	"github.com/rampart-gw/rampart/internal/config"
)

// validates reports whether config.Validate accepts a one-route config
// whose match is the YAML flow mapping match.
func validates(t *testing.T, match string) (bool, string) {
	t.Helper()
	doc := "listeners: [{address: \"127.0.0.1:0\"}]\n" +
		"upstreams: {app: {targets: [{address: \"127.0.0.1:9001\"}]}}\n" +
		"routes: [{upstream: app, match: " + match + "}]\n"
	_, err := config.LoadBytes("t.yaml", []byte(doc))
	if err != nil {
		return false, err.Error()
	}
	return true, ""
}

// Route hosts have one grammar, config's: every host Validate accepts the
// router accepts, and every host Validate refuses the router refuses too
// (issue 16: the router was lenient, taking ports, IPv6 literals and
// trailing dots that Validate refuses).
func TestHostGrammarAgreesWithValidate(t *testing.T) {
	hosts := []string{
		"a.com", "A.Com", "*.a.com", "*.A.COM", "127.0.0.1", "localhost", "xn--bcher-kva.example", "a-b.c1.com",
		strings.Repeat("a", 63) + ".com",
		"", "*", "*.", "*.*.a.com", "a.*.com", "x*.a.com", "a.com:80", "[::1]", "::1", "[::1]:80", "a.com.", ".a.com",
		"a..com", "-a.com", "a-.com", "a_b.com", "http://a.com", "a.com/x", "a com", "é.com",
		strings.Repeat("a", 64) + ".com", strings.Repeat("a.", 127) + "com",
	}
	for _, h := range hosts {
		ok, verr := validates(t, "{hosts: ["+strconv.Quote(h)+"]}")
		_, err := New([]Rule{{Match: config.Match{Hosts: []string{h}}}})
		if ok != (err == nil) {
			t.Errorf("host %q: Validate ok=%v (%s), router error %v", h, ok, verr, err)
		}
	}
}

// Path templates have one grammar, config's: Validate and the router
// accept and refuse the same templates.
func TestTemplateGrammarAgreesWithValidate(t *testing.T) {
	templates := []string{
		"/", "/a", "/u/{id}", "/u/{id}/{*rest}", "/{*rest}", "/a/{x}/b", "/{a}/{b}", "/{_x1}", "/a//{x}", "/a/",
		"u/{id}", "/u/{id}.json", "/u/{*r}/x", "/u/{}", "/u/{*}", "/{a}/{a}", "/u/{id", "/u/id}", "/u/{{id}}",
		"/u/{1id}", "/u/{a-b}", "/u/{a.b}", "/u/{é}", "/u/{**r}", "/u/{a b}",
	}
	for _, tpl := range templates {
		ok, verr := validates(t, "{path: {template: "+strconv.Quote(tpl)+"}}")
		_, err := New([]Rule{{Match: config.Match{Path: config.PathMatch{Template: tpl}}}})
		if ok != (err == nil) {
			t.Errorf("template %q: Validate ok=%v (%s), router error %v", tpl, ok, verr, err)
		}
	}
}
