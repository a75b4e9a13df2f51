package pathnorm

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	cases := []struct {
		name, in, want string
		err            error
	}{
		{"clean", "/users/42", "/users/42", nil},
		{"root", "/", "/", nil},
		{"dot dot", "/public/../admin", "/admin", nil},
		{"dot", "/a/./b", "/a/b", nil},
		{"above root", "/../../etc/passwd", "/etc/passwd", nil},
		{"encoded dots", "/public/%2e%2e/admin", "/admin", nil},
		{"encoded dots upper", "/public/%2E%2E/admin", "/admin", nil},
		{"mixed dot", "/public/.%2e/admin", "/admin", nil},
		{"double slash", "//admin", "/admin", nil},
		{"many slashes", "/a///b//", "/a/b/", nil},
		{"trailing dot dot", "/a/b/..", "/a/", nil},
		{"trailing dot", "/a/.", "/a/", nil},
		{"trailing slash kept", "/a/", "/a/", nil},
		{"unreserved decoded", "/%41%7e", "/A~", nil},
		{"reserved upper-cased", "/a%3fb", "/a%3Fb", nil},
		{"dotfile kept", "/.well-known/x", "/.well-known/x", nil},
		{"dots in name kept", "/a/..b/c.", "/a/..b/c.", nil},
		{"encoded slash kept", "/a%2Fb", "/a%2Fb", nil},
		{"encoded slash upper-cased", "/a%2fb", "/a%2Fb", nil},
		{"encoded slash hiding dots", "/public%2F..%2Fadmin", "", ErrEncodedSlash},
		{"encoded slash hiding dot", "/a%2F.%2Fb", "", ErrEncodedSlash},
		{"encoded double slash", "/a%2F%2Fb", "", ErrEncodedSlash},
		{"encoded slash hiding encoded dots", "/a%2f%2e%2e/b", "", ErrEncodedSlash},
		{"encoded backslash", "/a%5cb", "", ErrEncodedSlash},
		{"backslash", "/a\\b", "", ErrBackslash},
		{"nul", "/a%00b", "", ErrNUL},
		{"bad percent", "/a%zzb", "", ErrInvalid},
		{"short percent", "/a%2", "", ErrInvalid},
		{"space", "/a b", "", ErrInvalid},
		{"relative", "a/b", "", ErrInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Normalize(c.in)
			if err != c.err || got != c.want {
				t.Fatalf("Normalize(%q) = %q, %v; want %q, %v", c.in, got, err, c.want, c.err)
			}
		})
	}
}

func TestRequest(t *testing.T) {
	r := httptest.NewRequest("GET", "/public/%2e%2e/admin?x=1", nil)
	if err := Request(r); err != nil {
		t.Fatal(err)
	}
	if r.URL.Path != "/admin" || r.URL.RawQuery != "x=1" || r.URL.RequestURI() != "/admin?x=1" {
		t.Fatalf("got %q %q", r.URL.Path, r.URL.RequestURI())
	}
	r = httptest.NewRequest("GET", "/a/%3F/../b%20c", nil)
	if err := Request(r); err != nil {
		t.Fatal(err)
	}
	if r.URL.Path != "/a/b c" || r.URL.EscapedPath() != "/a/b%20c" {
		t.Fatalf("got %q %q", r.URL.Path, r.URL.EscapedPath())
	}
	r = httptest.NewRequest("GET", "/a%2Fb/../c", nil)
	if err := Request(r); err != nil || r.URL.EscapedPath() != "/c" {
		t.Fatalf("got %q, %v", r.URL.EscapedPath(), err)
	}
	r = httptest.NewRequest("GET", "/public%2F..%2Fadmin", nil)
	if Request(r) == nil {
		t.Fatal("encoded slash hiding a dot segment accepted")
	}
}

func TestNormalizeNoAlloc(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { Normalize("/users/42/orders") }); n != 0 {
		t.Fatalf("%v allocations on a clean path", n)
	}
}

// FuzzNormalize checks that the normal form is a fixed point, is never
// above the root, and carries no dot segment, double slash or encoded slash.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"/", "/a/../b", "/%2e%2e/", "//x//y", "/a%2Fb", "/a/./b/.", "/%41", "/a%zz", "/.%2e/.."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := Normalize(in)
		if err != nil {
			return
		}
		again, err := Normalize(out)
		if err != nil || again != out {
			t.Fatalf("not a fixed point: %q -> %q -> %q, %v", in, out, again, err)
		}
		if !strings.HasPrefix(out, "/") || strings.Contains(out, "//") ||
			strings.Contains(out, "/./") || strings.Contains(out, "/../") ||
			strings.HasSuffix(out, "/..") || strings.HasSuffix(out, "/.") {
			t.Fatalf("not normal: %q -> %q", in, out)
		}
		low := strings.ToLower(out)
		if strings.Contains(low, "%5c") || strings.Contains(low, "%00") || strings.Contains(low, "%2e") {
			t.Fatalf("encoded backslash, NUL or dot survived: %q -> %q", in, out)
		}
		// The path the router sees (%2F decoded) is normal too.
		d := strings.ReplaceAll(out, "%2F", "/")
		if strings.Contains(d, "//") || strings.Contains(d, "/./") || strings.Contains(d, "/../") ||
			strings.HasSuffix(d, "/..") || strings.HasSuffix(d, "/.") {
			t.Fatalf("decoded form not normal: %q -> %q", in, d)
		}
	})
}

func BenchmarkNormalize(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Normalize("/api/v1/users/42/orders")
	}
}
