package discovery

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestParseInstance checks the registration values etcd discovery takes
// and the ones it skips.
func TestParseInstance(t *testing.T) {
	tests := []struct {
		name, in string
		want     Instance
		err      string // in the error; "" for a valid value
	}{
		{"minimal", `{"address": "10.0.0.1:80"}`, Instance{Address: "10.0.0.1:80"}, ""},
		{"full", `{"address": "u1.internal:8080", "weight": 3, "zone": "a", "metadata": {"v": "2"}}`,
			Instance{Address: "u1.internal:8080", Weight: 3, Zone: "a", Metadata: map[string]string{"v": "2"}}, ""},
		{"ipv6", `{"address": "[::1]:80"}`, Instance{Address: "[::1]:80"}, ""},
		{"not json", `up`, Instance{}, "not a JSON instance"},
		{"empty", ``, Instance{}, "not a JSON instance"},
		{"list", `["10.0.0.1:80"]`, Instance{}, "not a JSON instance"},
		{"no address", `{"weight": 1}`, Instance{}, "is not host:port"},
		{"no host", `{"address": ":80"}`, Instance{}, "is not host:port"},
		{"port 0", `{"address": "a:0"}`, Instance{}, "port out of range"},
		{"port name", `{"address": "a:http"}`, Instance{}, "port out of range"},
		{"negative weight", `{"address": "a:1", "weight": -2}`, Instance{}, "weight -2 out of range"},
		{"huge weight", `{"address": "a:1", "weight": 10001}`, Instance{}, "weight 10001 out of range"},
		{"unknown key", `{"address": "a:1", "host": "x"}`, Instance{}, "unknown field"},
		{"number metadata", `{"address": "a:1", "metadata": {"n": 1}}`, Instance{}, "not a JSON instance"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseInstance([]byte(tt.in))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one with %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Address != tt.want.Address || got.Weight != tt.want.Weight || got.Zone != tt.want.Zone || len(got.Metadata) != len(tt.want.Metadata) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestKey(t *testing.T) {
	for _, tt := range []struct{ prefix, want string }{
		{"/rampart/services", "/rampart/services/users/a"},
		{"/rampart/services/", "/rampart/services/users/a"},
		{"", DefaultPrefix + "/users/a"},
		{"svc", "/svc/users/a"},
	} {
		if got := Key(tt.prefix, "users", "a"); got != tt.want {
			t.Errorf("Key(%q) = %q, want %q", tt.prefix, got, tt.want)
		}
	}
}

// FuzzParseInstance: any etcd value is either refused or gives an
// instance that encodes back to a value accepted as the same instance.
func FuzzParseInstance(f *testing.F) {
	for _, s := range []string{`{"address": "10.0.0.1:80"}`, `{"address": "[::1]:80", "weight": 3, "zone": "a", "metadata": {"k": "v"}}`, `up`, `{}`, `{"address": ":0"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		in, err := ParseInstance(b)
		if err != nil {
			return
		}
		again, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseInstance(again)
		if err != nil || back.Address != in.Address || back.Weight != in.Weight || back.Zone != in.Zone || len(back.Metadata) != len(in.Metadata) {
			t.Fatalf("%q -> %+v -> %q -> %+v, %v", b, in, again, back, err)
		}
	})
}
