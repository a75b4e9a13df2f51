package config

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestDiscoveryDecode checks how discovery settings are read and which
// defaults each type gets, in YAML and in JSON.
func TestDiscoveryDecode(t *testing.T) {
	yamlDoc := func(d string) string {
		return strings.Replace(base, `targets: [{address: "127.0.0.1:9001"}]`, "discovery: "+d, 1)
	}
	tests := []struct {
		name, file, doc string
		want            Discovery
	}{
		{"dns defaults", "t.yaml", yamlDoc(`{type: dns, name: a.internal, port: 80}`),
			Discovery{Type: "dns", Name: "a.internal", Port: 80, Refresh: Refresh{Every: DefaultDiscoveryRefresh}, Timeout: DefaultDiscoveryTimeout}},
		{"dns ttl", "t.yaml", yamlDoc(`{type: dns, name: a.internal, port: 80, refresh: ttl, timeout: 500ms}`),
			Discovery{Type: "dns", Name: "a.internal", Port: 80, Refresh: Refresh{TTL: true}, Timeout: Duration(500 * time.Millisecond)}},
		{"srv", "t.yaml", yamlDoc(`{type: srv, name: _http._tcp.a.internal, refresh: 5s, resolver: "127.0.0.1:5353"}`),
			Discovery{Type: "srv", Name: "_http._tcp.a.internal", Refresh: Refresh{Every: Duration(5 * time.Second)}, Resolver: "127.0.0.1:5353", Timeout: DefaultDiscoveryTimeout}},
		{"etcd defaults", "t.yaml", yamlDoc(`{type: etcd, name: users, endpoints: ["127.0.0.1:2379"]}`),
			Discovery{Type: "etcd", Name: "users", Endpoints: []string{"127.0.0.1:2379"}, Prefix: DefaultDiscoveryPrefix, Timeout: DefaultDiscoveryTimeout}},
		{"json ttl", "t.json", `{"listeners": [{"address": "127.0.0.1:8080"}], "upstreams": {"app": {"discovery": {"type": "dns", "name": "a.internal", "port": 80, "refresh": "ttl"}}}, "routes": [{"upstream": "app"}]}`,
			Discovery{Type: "dns", Name: "a.internal", Port: 80, Refresh: Refresh{TTL: true}, Timeout: DefaultDiscoveryTimeout}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := LoadBytes(tt.file, []byte(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			got := *c.Upstreams["app"].Discovery
			if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
			// The canonical JSON keeps "ttl" as written, so a config read
			// back from etcd or the admin API means the same.
			b, err := c.JSON()
			if err != nil {
				t.Fatal(err)
			}
			again, err := LoadBytes("again.json", b)
			if err != nil {
				t.Fatalf("reload JSON: %v\n%s", err, b)
			}
			if g := *again.Upstreams["app"].Discovery; fmt.Sprintf("%+v", g) != fmt.Sprintf("%+v", tt.want) {
				t.Errorf("after JSON round trip: %+v", g)
			}
		})
	}
}
