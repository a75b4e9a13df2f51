package route

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func TestShadowHost(t *testing.T) {
	tests := []struct{ in, want string }{
		{"api.example.com", "api.example.com-shadow"},
		{"api.example.com:8080", "api.example.com-shadow:8080"},
		{"127.0.0.1:80", "127.0.0.1-shadow:80"},
		{"[::1]:8443", "[::1]-shadow:8443"},
		{"[::1]", "[::1]-shadow"},
		{"host:", "host-shadow:"},
		{"", ""},
	}
	for _, tc := range tests {
		if got := ShadowHost(tc.in); got != tc.want {
			t.Errorf("ShadowHost(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzShadowHost(f *testing.F) {
	for _, s := range []string{"a.b", "a.b:1", "[::1]:2", "x:y:z", ":", "]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		got := ShadowHost(host)
		if host == "" {
			if got != "" {
				t.Fatalf("ShadowHost(\"\") = %q", got)
			}
			return
		}
		if len(got) != len(host)+len("-shadow") || !strings.Contains(got, "-shadow") {
			t.Fatalf("ShadowHost(%q) = %q", host, got)
		}
		if strings.Replace(got, "-shadow", "", 1) != host && !strings.Contains(host, "-shadow") {
			t.Fatalf("ShadowHost(%q) = %q: not the host with -shadow inserted", host, got)
		}
	})
}

// shadowFunc is a Shadow from a function.
type shadowFunc func(*http.Request) (int, error)

func (f shadowFunc) Shadow(r *http.Request) (int, error) { return f(r) }

// TestMirrorTee drives a Mirror around a handler that reads the body in
// different ways, and checks what the shadow gets and that every in-flight
// slot is given back: a body read whole is copied, one read in part or
// not at all, or over the limit, is dropped, and a panicking handler (an
// aborted response) still frees its slot.
func TestMirrorTee(t *testing.T) {
	body := bytes.Repeat([]byte("abcdefgh"), 100) // 800 bytes
	tests := []struct {
		name    string
		chunked bool
		limit   int64
		read    func(io.Reader)
		panics  bool
		copied  bool
	}{
		{"read whole", false, 1000, func(r io.Reader) { io.ReadAll(r) }, false, true},
		{"read whole chunked", true, 1000, func(r io.Reader) { io.ReadAll(iotest.OneByteReader(r)) }, false, true},
		{"exactly the limit", true, 800, func(r io.Reader) { io.ReadAll(r) }, false, true},
		{"over the limit", true, 799, func(r io.Reader) { io.ReadAll(r) }, false, false},
		{"read in part", true, 1000, func(r io.Reader) { io.ReadFull(r, make([]byte, 10)) }, false, false},
		{"not read", false, 1000, func(io.Reader) {}, false, false},
		{"panics", true, 1000, func(r io.Reader) { io.ReadFull(r, make([]byte, 10)) }, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := make(chan []byte, 1)
			m := NewMirror(Mirror{
				Next: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					tc.read(r.Body)
					if tc.panics {
						panic(http.ErrAbortHandler)
					}
				}),
				Shadow: shadowFunc(func(r *http.Request) (int, error) {
					b, _ := io.ReadAll(r.Body)
					got <- b
					return 200, nil
				}),
				Percent: 100, MaxInFlight: 1, MaxBody: tc.limit, Timeout: time.Second,
			})
			var rd io.Reader = bytes.NewReader(body)
			if tc.chunked {
				rd = io.MultiReader(rd)
			}
			req := httptest.NewRequest(http.MethodPost, "/x", rd)
			if tc.chunked {
				req.ContentLength = -1
			}
			func() {
				defer func() { recover() }()
				m.ServeHTTP(httptest.NewRecorder(), req)
			}()
			if tc.copied {
				select {
				case b := <-got:
					if !bytes.Equal(b, body) {
						t.Fatalf("shadow got %d bytes, want the body's %d", len(b), len(body))
					}
				case <-time.After(5 * time.Second):
					t.Fatal("no copy sent")
				}
			}
			deadline := time.Now().Add(5 * time.Second)
			for m.State.InFlight() != 0 {
				if time.Now().After(deadline) {
					t.Fatalf("%d slots still taken", m.State.InFlight())
				}
				time.Sleep(time.Millisecond)
			}
			select {
			case <-got:
				if !tc.copied {
					t.Fatal("a copy was sent, want it dropped")
				}
			default:
			}
		})
	}
}
