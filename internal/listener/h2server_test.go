package listener

import (
	"net/http"
	"strings"
	"testing"
)

// TestHTTP2ServerChoice checks which HTTP/2 server a listener runs, from
// Config.HTTP2Server and RAMPART_HTTP2_SERVER, and that an unknown name is
// refused at construction.
func TestHTTP2ServerChoice(t *testing.T) {
	for _, tc := range []struct {
		name, field, env string
		// want is the server asked for; wantErr a part of the error.
		want, wantErr string
	}{
		{name: "default", want: DefaultHTTP2Server},
		{name: "env-net-http", env: "net/http", want: HTTP2NetHTTP},
		{name: "env-rampart", env: "rampart", want: HTTP2Rampart},
		{name: "env-normalised", env: "  RAMPART ", want: HTTP2Rampart},
		{name: "field", field: "net/http", env: "rampart", want: HTTP2NetHTTP},
		{name: "field-rampart", field: "rampart", want: HTTP2Rampart},
		{name: "env-unknown", env: "nghttp2", wantErr: `RAMPART_HTTP2_SERVER: unknown server "nghttp2" (net/http, rampart)`},
		{name: "field-unknown", field: "h2o", env: "net/http", wantErr: `unknown server "h2o"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("RAMPART_HTTP2_SERVER", tc.env)
			l, err := Listen(Config{Address: "127.0.0.1:0", HTTP2Server: tc.field}, http.NotFoundHandler(), Deps{})
			if tc.wantErr != "" {
				if err == nil {
					l.Close()
					t.Fatalf("Listen accepted it; want an error with %q", tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %q, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			got := l.HTTP2Server()
			if got != tc.want && !(tc.want == HTTP2Rampart && got == HTTP2NetHTTP && !rampartHTTP2Built) {
				t.Errorf("HTTP/2 server %q, want %q", got, tc.want)
			}
		})
	}
}
