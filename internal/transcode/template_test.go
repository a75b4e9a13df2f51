package transcode

import (
	"fmt"
	"strings"
	"testing"
)

func TestParseTemplate(t *testing.T) {
	cases := []struct {
		tmpl   string
		fields string // the variables' fields, comma-separated
		err    string
	}{
		{"/v1/things", "", ""},
		{"/v1/things/{id}", "id", ""},
		{"/v1/{name=shelves/*}/books/{book.id}", "name,book.id", ""},
		{"/v1/{name=shelves/*/books/*}", "name", ""},
		{"/v1/things/{id}:undelete", "id", ""},
		{"/v1/files/{path=**}", "path", ""},
		{"/v1/**", "", ""},
		{"/v1/*/x", "", ""},
		{"v1/things", "", "must start with \"/\""},
		{"/", "", "no segment"},
		{"/v1/{id", "", "unclosed variable"},
		{"/v1/{id=a/{b}}", "", "nested variable"},
		{"/v1/{1id}", "", "invalid field path"},
		{"/v1/{a..b}", "", "invalid field path"},
		{"/v1/**/x", "", "\"**\" must be the last segment"},
		{"/v1/{id}/{id}", "", "bound twice"},
		{"/v1//x", "", "unexpected"},
		{"/v1/x:", "", "invalid verb"},
		{"/v1/*x", "", "after \"*\""},
		{"/v1/{id}x", "", "after a variable"},
	}
	for _, c := range cases {
		tp, err := ParseTemplate(c.tmpl)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s: %v", c.tmpl, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: error %v, want one containing %q", c.tmpl, err, c.err)
		case err == nil && strings.Join(tp.Fields(), ",") != c.fields:
			t.Errorf("%s: fields %v, want %s", c.tmpl, tp.Fields(), c.fields)
		}
	}
}

func TestTemplateMatch(t *testing.T) {
	cases := []struct {
		tmpl, path string
		want       string // "field=value ..." or "-" for no match
	}{
		{"/v1/things/{id}", "/v1/things/42", "id=42"},
		{"/v1/things/{id}", "/v1/things/a%20b", "id=a b"},
		{"/v1/things/{id}", "/v1/things/a%2Fb", "id=a/b"},
		{"/v1/things/{id}", "/v1/things/", "-"},
		{"/v1/things/{id}", "/v1/things/1/2", "-"},
		{"/v1/things/{id}", "/v1/thing/1", "-"},
		{"/v1/{name=shelves/*}/books/{book.id}", "/v1/shelves/s1/books/b2", "name=shelves/s1 book.id=b2"},
		{"/v1/{name=shelves/*}/books/{book.id}", "/v1/racks/s1/books/b2", "-"},
		{"/v1/files/{path=**}", "/v1/files/a/b%2Fc/d", "path=a/b%2Fc/d"},
		{"/v1/files/{path=**}", "/v1/files", "path="},
		{"/v1/things/{id}:undelete", "/v1/things/7:undelete", "id=7"},
		{"/v1/things/{id}:undelete", "/v1/things/7", "-"},
		{"/v1/things/{id}:undelete", "/v1/things/7:delete", "-"},
		{"/v1/things/{id}", "/v1/things/7:undelete", "id=7:undelete"},
		{"/v1/a%20b", "/v1/a%20b", ""},
		{"/v1/x", "v1/x", "-"},
		{"/v1/things/{id}", "/v1/things/%zz", "-"},
	}
	for _, c := range cases {
		tp, err := ParseTemplate(c.tmpl)
		if err != nil {
			t.Fatalf("%s: %v", c.tmpl, err)
		}
		caps, ok := tp.Match(c.path)
		got := "-"
		if ok {
			var parts []string
			for _, cp := range caps {
				parts = append(parts, strings.Join(cp.Field, ".")+"="+cp.Value)
			}
			got = strings.Join(parts, " ")
		}
		if got != c.want {
			t.Errorf("%s on %s: got %q, want %q", c.tmpl, c.path, got, c.want)
		}
	}
}

// TestMatchRanking: among matching bindings the most literal one wins.
func TestMatchRanking(t *testing.T) {
	mk := func(tmpl string) *Binding {
		tp, err := ParseTemplate(tmpl)
		if err != nil {
			t.Fatal(err)
		}
		return &Binding{HTTPMethod: "GET", Template: tp, Path: tmpl}
	}
	h := &Handler{Bindings: []*Binding{mk("/v1/{any=**}"), mk("/v1/things/{id}"), mk("/v1/things/special"), mk("/v1/{x}/{y}")}}
	for path, want := range map[string]string{
		"/v1/things/special": "/v1/things/special",
		"/v1/things/9":       "/v1/things/{id}",
		"/v1/a/b":            "/v1/{x}/{y}",
		"/v1/a/b/c":          "/v1/{any=**}",
	} {
		b, _ := h.match("GET", path)
		if b == nil || b.Path != want {
			t.Errorf("%s: got %v, want %s", path, b, want)
		}
	}
	if b, _ := h.match("POST", "/v1/things/9"); b != nil {
		t.Errorf("POST matched %s", b.Path)
	}
}

func TestHTTPStatus(t *testing.T) {
	for code, want := range map[int]int{0: 200, 1: 499, 2: 500, 3: 400, 4: 504, 5: 404, 6: 409, 7: 403, 8: 429,
		9: 400, 10: 409, 11: 400, 12: 501, 13: 500, 14: 503, 15: 500, 16: 401, 99: 500} {
		if got := HTTPStatus(code); got != want {
			t.Errorf("HTTPStatus(%d) = %d, want %d", code, got, want)
		}
	}
}

// FuzzTemplate: parsing and matching never panic, and a path built from
// a template's own literals matches it.
func FuzzTemplate(f *testing.F) {
	for _, s := range []string{"/v1/things/{id}", "/v1/{name=shelves/*}/books/{book.id}", "/v1/files/{path=**}",
		"/v1/things/{id}:undelete", "/v1/**", "/{a=*/**}", "/x/{y=a/b/*}:v"} {
		f.Add(s, "/v1/things/42")
	}
	f.Fuzz(func(t *testing.T, tmpl, path string) {
		tp, err := ParseTemplate(tmpl)
		if err != nil {
			return
		}
		tp.Match(path)
		// The template with every wildcard replaced by "x" matches.
		var b strings.Builder
		for _, sg := range tp.segs {
			b.WriteByte('/')
			switch sg.kind {
			case segLiteral:
				b.WriteString(escapeSegment(sg.lit))
			default:
				b.WriteString("x")
			}
		}
		if tp.verb != "" {
			b.WriteString(":" + escapeSegment(tp.verb))
		}
		if _, ok := tp.Match(b.String()); !ok && !strings.ContainsAny(b.String(), ":") {
			t.Errorf("%q does not match its own path %q", tmpl, b.String())
		}
	})
}

func escapeSegment(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '/' || c == '%' || c == ':' || c == '?' || c == '#' || c < 0x21 || c > 0x7e {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}
