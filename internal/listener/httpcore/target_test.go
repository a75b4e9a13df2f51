package httpcore

import (
	"net/textproto"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// ParseTarget must agree with url.ParseRequestURI on origin-form targets.
func checkTarget(t *testing.T, target string) {
	t.Helper()
	var u url.URL
	ok := ParseTarget(&u, target)
	want, err := url.ParseRequestURI(target)
	if ok != (err == nil) {
		t.Fatalf("ParseTarget(%q) ok = %v, ParseRequestURI err = %v", target, ok, err)
	}
	if ok && !reflect.DeepEqual(&u, want) {
		t.Fatalf("ParseTarget(%q) = %#v, want %#v", target, u, *want)
	}
}

func TestParseTarget(t *testing.T) {
	for _, target := range []string{
		"/", "/a/b", "/a?b=c", "/a?", "/a?b=c?d", "/%41", "/a%2Fb", "/a b", "/ä", "/a%zz",
		"/~user/$x&y+z,w:v;u=t@s", "/a#frag", "//host/path", "/a?%zz",
	} {
		checkTarget(t, target)
	}
}

func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"/", "/a?b", "/%41", "/a%zz", "/a b", "/a#b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) == 0 || s[0] != '/' || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			return // what the servers pass: origin form, checked for controls and spaces
		}
		checkTarget(t, s)
	})
}

func TestCommonKeysCanonical(t *testing.T) {
	for _, k := range CommonKeys {
		if c := textproto.CanonicalMIMEHeaderKey(k); c != k {
			t.Errorf("CommonKeys has %q, canonical form %q", k, c)
		}
	}
}
