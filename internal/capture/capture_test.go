package capture

import (
	"testing"

	"github.com/rampart-gw/rampart/internal/exchange"
)

func TestExpand(t *testing.T) {
	params := []exchange.Param{
		{Name: "id", Value: "a b/c?d"},
		{Name: "rest", Value: "x y/z%w", Rest: true},
		{Name: "n", Value: "42"},
	}
	const query = "page=2&q=h%C3%A9+llo&e="
	tests := []struct {
		src  string
		mode Mode
		want string
	}{
		{"/v1/users/{id}", Path, "/v1/users/a%20b%2Fc%3Fd"},
		{"/v1/{rest}", Path, "/v1/x%20y/z%25w"},
		{"/v1/{*rest}/end", Path, "/v1/x%20y/z%25w/end"},
		{"/plain", Path, "/plain"},
		{"user={id}&p={query.page}", Query, "user=a+b%2Fc%3Fd&p=2"},
		{"q={query.q}&missing={query.none}&e={query.e}", Query, "q=h%C3%A9+llo&missing=&e="},
		{"/{unknown}/x", Path, "//x"},
		{"id-{id}-{n}", Header, "id-a b/c?d-42"},
	}
	for _, tt := range tests {
		s, err := Parse(tt.src)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.src, err)
		}
		if got := s.ExpandString(params, query, tt.mode); got != tt.want {
			t.Errorf("Expand(%q, %d) = %q, want %q", tt.src, tt.mode, got, tt.want)
		}
	}
}

func TestHeaderDropsControls(t *testing.T) {
	s, _ := Parse("v={id}")
	got := s.ExpandString([]exchange.Param{{Name: "id", Value: "a\r\nX-Evil: 1\x7f"}}, "", Header)
	if got != "v=aX-Evil: 1" {
		t.Errorf("got %q", got)
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		src   string
		names []string
		bad   bool
	}{
		{"/a/{id}/{*rest}", []string{"id", "rest"}, false},
		{"/a/{id}/{id}", []string{"id"}, false},
		{"/a/{query.x}", nil, false},
		{"/a/{id", nil, true},
		{"/a/id}", nil, true},
		{"/a/{}", nil, true},
		{"/a/{a-b}", nil, true},
		{"/a/{query.}", nil, true},
		{`{"a":1}`, nil, true},
	}
	for _, tt := range tests {
		s, err := Parse(tt.src)
		if (err != nil) != tt.bad {
			t.Errorf("Parse(%q) error %v, want bad=%v", tt.src, err, tt.bad)
			continue
		}
		if err != nil {
			continue
		}
		got := s.Names()
		if len(got) != len(tt.names) {
			t.Errorf("Parse(%q).Names() = %v, want %v", tt.src, got, tt.names)
			continue
		}
		for i := range got {
			if got[i] != tt.names[i] {
				t.Errorf("Parse(%q).Names() = %v, want %v", tt.src, got, tt.names)
			}
		}
	}
}

func FuzzParseExpand(f *testing.F) {
	for _, s := range []string{"/v1/{id}", "/x/{*rest}?q={query.a}", "{", "}", "{query.}", "/a{b}c{d}"} {
		f.Add(s, "v/w", "a=1")
	}
	f.Fuzz(func(t *testing.T, src, val, query string) {
		s, err := Parse(src)
		if err != nil {
			return
		}
		params := []exchange.Param{{Name: "id", Value: val}, {Name: "rest", Value: val, Rest: true}}
		for _, m := range []Mode{Path, Query, Header} {
			out := s.ExpandString(params, query, m)
			if m == Header && !hasControl(src) {
				for i := range len(out) {
					if out[i] < 0x20 || out[i] == 0x7f {
						t.Fatalf("control byte in header expansion %q", out)
					}
				}
			}
		}
	})
}

func hasControl(s string) bool {
	for i := range len(s) {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}
