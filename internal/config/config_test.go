package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata")

// goodFiles lists the testdata configs that must parse and validate.
func goodFiles(t testing.TB) []string {
	t.Helper()
	var files []string
	for _, pat := range []string{"testdata/*.yaml", "testdata/*.json"} {
		m, err := filepath.Glob(pat)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range m {
			if !strings.HasPrefix(filepath.Base(f), "bad") {
				files = append(files, f)
			}
		}
	}
	if len(files) == 0 {
		t.Fatal("no testdata configs")
	}
	return files
}

func TestGoodConfigs(t *testing.T) {
	for _, f := range goodFiles(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			var c *Config
			if f == "testdata/full.yaml" {
				c = loadContract(t)
			} else {
				var err error
				if c, err = Load(f); err != nil {
					t.Fatalf("Load: %v", err)
				}
			}
			if c.File() != f {
				t.Errorf("File() = %q, want %q", c.File(), f)
			}
			b, err := c.JSON()
			if err != nil {
				t.Fatalf("JSON: %v", err)
			}
			if !json.Valid(b) {
				t.Fatalf("JSON() is not valid JSON:\n%s", b)
			}
			// The (redacted) JSON form is itself a config document that
			// parses; the version is stable.
			if v1, v2 := c.Version(), c.Version(); v1 != v2 || len(v1) != 12 {
				t.Errorf("Version() = %q then %q, want 12 stable hex digits", v1, v2)
			}
			if _, err := Parse("roundtrip.json", b); err != nil {
				t.Errorf("JSON() output does not parse: %v", err)
			}
		})
	}
}

func TestBadGolden(t *testing.T) {
	_, err := Load("testdata/bad.yaml")
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Load(bad.yaml) = %v, want Errors", err)
	}
	got := err.Error() + "\n"
	if *update {
		if err := os.WriteFile("testdata/bad.golden", []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile("testdata/bad.golden")
	if err != nil {
		t.Fatalf("read golden (run with -update to create it): %v", err)
	}
	if got != string(want) {
		t.Errorf("errors differ from testdata/bad.golden (run with -update to accept):\ngot:\n%s\nwant:\n%s", got, want)
	}
	for i := 1; i < len(errs); i++ {
		a, b := errs[i-1].Pos, errs[i].Pos
		if a.Line > b.Line || (a.Line == b.Line && a.Col > b.Col) {
			t.Errorf("errors not sorted: %v before %v", a, b)
		}
	}
}

// base is a valid config the rule cases add to. Lines:
//
//	1 listeners:
//	2   - address: "127.0.0.1:8080"
//	3 upstreams:
//	4   app:
//	5     targets: [{address: "127.0.0.1:9001"}]
//	6 routes:
//	7   - upstream: app
const base = `listeners:
  - address: "127.0.0.1:8080"
upstreams:
  app:
    targets: [{address: "127.0.0.1:9001"}]
routes:
  - upstream: app
`

func TestBaseIsValid(t *testing.T) {
	if _, err := LoadBytes("t.yaml", []byte(base)); err != nil {
		t.Fatal(err)
	}
}

// TestRules checks each rule with a document that breaks it, asserting the
// exact error line, which includes line and column.
func TestRules(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want string // one of the error lines, without "t.yaml:"
	}{
		// Decoding.
		{"empty document", "", "1:1: empty document"},
		{"only comments", "# nothing\n", "1:1: empty document"},
		{"null document", "~\n", "1:1: empty document"},
		{"yaml syntax", "listeners:\n  - address: [\n", "2:1: invalid yaml: did not find expected node content"},
		{"multiple documents", base + "---\nadmin: {}\n", "8:1: multiple documents in one file are not supported"},
		{"root not a mapping", "- a\n- b\n", "1:1: expected a mapping, got a list"},
		{"unknown top-level key", base + "listener: []\n", `8:1: unknown key "listener" (did you mean "listeners"?)`},
		{"unknown nested key", base + "admin: {adress: x}\n", `8:9: admin: unknown key "adress" (did you mean "address"?)`},
		{"duplicate key", base + "drain_timeout: 1s\ndrain_timeout: 2s\n", `9:1: duplicate key "drain_timeout" (first at line 8, column 1)`},
		{"duplicate map key", base + "policies:\n  a: {type: waf}\n  a: {type: cors}\n", `10:3: policies: duplicate key "a" (first at line 9, column 3)`},
		{"string for int", base + "consumers: []\nlisteners2: 1\n", `9:1: unknown key "listeners2" (did you mean "listeners"?)`},
		{"string for int field", strings.Replace(base, `- address: "127.0.0.1:8080"`, `- {address: "127.0.0.1:8080", limits: {max_connections: "10"}}`, 1), `2:59: listeners[0].limits.max_connections: expected an integer, got string "10"`},
		{"float for int", strings.Replace(base, `"127.0.0.1:9001"`, `"127.0.0.1:9001", weight: 1.5`, 1), `5:51: upstreams.app.targets[0].weight: expected an integer, got number 1.5`},
		{"list for map", base + "admin: [a]\n", "8:8: admin: expected a mapping, got a list"},
		{"map for list", base + "consumers: {name: x}\n", "8:12: consumers: expected a list, got a mapping"},
		{"map for string", strings.Replace(base, "upstream: app", "upstream: {name: app}", 1), "7:15: routes[0].upstream: expected a string, got a mapping"},
		{"bool strict", strings.Replace(base, "upstream: app", "upstream: app\n    strip_prefix: 1", 1), "8:19: routes[0].strip_prefix: expected a boolean (true or false), got number 1"},
		{"bad duration", base + "drain_timeout: 10\n", `8:16: drain_timeout: invalid duration "10" (want e.g. 250ms, 10s, 5m)`},
		{"bad duration unit", base + "drain_timeout: 10 sec\n", `8:16: drain_timeout: invalid duration "10 sec" (want e.g. 250ms, 10s, 5m)`},
		{"negative duration", base + "drain_timeout: -1s\n", `8:16: drain_timeout: negative duration "-1s"`},
		{"nan number", base + "observability: {tracing: {otlp_endpoint: \"127.0.0.1:4317\", sample_ratio: .nan}}\n", "8:74: observability.tracing.sample_ratio: expected a finite number, got .nan"},
		{"int overflow", strings.Replace(base, `"127.0.0.1:9001"`, `"127.0.0.1:9001", weight: 99999999999999999999`, 1), "5:51: upstreams.app.targets[0].weight: integer 99999999999999999999 out of range"},
		{"bare int duration", base + "cluster: {redis: {address: \"127.0.0.1:6379\", timeout: 1}}\n", `8:55: cluster.redis.timeout: invalid duration "1" (want e.g. 250ms, 10s, 5m)`},
		{"merge key", base + "admin: {<<: {address: off}}\n", "8:9: admin: merge keys (<<) are not supported; repeat the keys instead"},

		// Listeners.
		{"no listeners", strings.Replace(base, "listeners:\n  - address: \"127.0.0.1:8080\"\n", "", 1), "1:1: listeners: at least one listener is required"},
		{"duplicate listener name", strings.Replace(base, `  - address: "127.0.0.1:8080"`, "  - {name: a, address: \"127.0.0.1:8080\"}\n  - {name: a, address: \"127.0.0.1:8081\"}", 1), `3:12: listeners[1].name: duplicate listener name "a" (first used by listeners[0])`},
		{"listener address no port", strings.Replace(base, `"127.0.0.1:8080"`, `"127.0.0.1"`, 1), `2:14: listeners[0].address: invalid address "127.0.0.1" (want host:port)`},
		{"listener port not numeric", strings.Replace(base, `"127.0.0.1:8080"`, `"127.0.0.1:http"`, 1), `2:14: listeners[0].address: invalid address "127.0.0.1:http": port "http" is not a number`},
		{"listener protocol", strings.Replace(base, `- address: "127.0.0.1:8080"`, `- {address: "127.0.0.1:8080", protocol: udp}`, 1), `2:43: listeners[0].protocol: invalid protocol "udp" (want http or tcp)`},
		{"tcp needs upstream", strings.Replace(base, `- address: "127.0.0.1:8080"`, `- {address: "127.0.0.1:8080", protocol: tcp}`, 1), `2:5: listeners[0].upstream: a tcp listener needs an upstream (or tls.sni_routes)`},
		{"tcp unknown upstream", strings.Replace(base, `- address: "127.0.0.1:8080"`, `- {address: "127.0.0.1:8080", protocol: tcp, upstream: ap}`, 1), `2:58: listeners[0].upstream: unknown upstream "ap" (did you mean "app"?)`},
		{"http forbids upstream", strings.Replace(base, `- address: "127.0.0.1:8080"`, `- {address: "127.0.0.1:8080", upstream: app}`, 1), `2:43: listeners[0].upstream: upstream is only for protocol tcp; http listeners use routes`},
		{"negative limit", strings.Replace(base, `- address: "127.0.0.1:8080"`, `- {address: "127.0.0.1:8080", limits: {max_header_bytes: -1}}`, 1), `2:60: listeners[0].limits.max_header_bytes: must not be negative`},
		{"negative body buffer", strings.Replace(base, `- address: "127.0.0.1:8080"`, `- {address: "127.0.0.1:8080", limits: {body_buffer_bytes: -1}}`, 1), `2:61: listeners[0].limits.body_buffer_bytes: must not be negative`},
		{"negative buffer memory", strings.Replace(base, `- address: "127.0.0.1:8080"`, `- {address: "127.0.0.1:8080", limits: {buffer_memory_bytes: -1}}`, 1), `2:63: listeners[0].limits.buffer_memory_bytes: must not be negative`},
		{"body buffer over budget", strings.Replace(base, `- address: "127.0.0.1:8080"`, `- {address: "127.0.0.1:8080", limits: {body_buffer_bytes: 2048, buffer_memory_bytes: 1024}}`, 1), `2:61: listeners[0].limits.body_buffer_bytes: 2048 exceeds buffer_memory_bytes (1024)`},
		{"max body below -1", strings.Replace(base, `- address: "127.0.0.1:8080"`, `- {address: "127.0.0.1:8080", limits: {max_body_bytes: -2}}`, 1), `2:58: listeners[0].limits.max_body_bytes: must not be negative (-1 means unlimited)`},
		{"tls without certificates", strings.Replace(base, `- address: "127.0.0.1:8080"`, `- {address: "127.0.0.1:8080", tls: {}}`, 1), `2:38: listeners[0].tls.certificates: at least one certificate is required`},
		{"tls cert without key", strings.Replace(base, `- address: "127.0.0.1:8080"`, `- {address: "127.0.0.1:8080", tls: {certificates: [{cert_file: a.pem}]}}`, 1), `2:54: listeners[0].tls.certificates[0].key_file: key_file is required`},
		{"tls min version", strings.Replace(base, `- address: "127.0.0.1:8080"`, `- {address: "127.0.0.1:8080", tls: {certificates: [{cert_file: a, key_file: b}], min_version: "1.0"}}`, 1), `2:97: listeners[0].tls.min_version: invalid TLS version "1.0" (want 1.2 or 1.3) (did you mean "1.2"?)`},
		{"tls client auth mode", strings.Replace(base, `- address: "127.0.0.1:8080"`, `- {address: "127.0.0.1:8080", tls: {certificates: [{cert_file: a, key_file: b}], client_auth: {mode: always}}}`, 1), `2:104: listeners[0].tls.client_auth.mode: invalid client_auth mode "always" (want none, request or require)`},
		{"tls client auth ca", strings.Replace(base, `- address: "127.0.0.1:8080"`, `- {address: "127.0.0.1:8080", tls: {certificates: [{cert_file: a, key_file: b}], client_auth: {mode: request}}}`, 1), `2:97: listeners[0].tls.client_auth.ca_file: client_auth mode "request" needs a ca_file`},

		// Admin.
		{"admin address", base + "admin: {address: nowhere}\n", `8:18: admin.address: invalid address "nowhere" (want host:port); or "off" to disable the admin API`},

		// Upstreams.
		{"upstream name", strings.Replace(base, "routes:", "  \"a/b\":\n    targets: [{address: \"127.0.0.1:1\"}]\nroutes:", 1), `6:3: upstreams.a/b: invalid upstream name "a/b" (use letters, digits, '_', '.' and '-')`},
		{"no targets", strings.Replace(base, `targets: [{address: "127.0.0.1:9001"}]`, "balancer: random", 1), `4:3: upstreams.app.targets: at least one target is required unless discovery is set`},
		{"discovery type", strings.Replace(base, `targets: [{address: "127.0.0.1:9001"}]`, "discovery: {type: consul}", 1), `5:23: upstreams.app.discovery.type: invalid discovery type "consul" (want static, dns, srv or etcd)`},
		{"discovery dns needs port", strings.Replace(base, `targets: [{address: "127.0.0.1:9001"}]`, "discovery: {type: dns, name: app.internal}", 1), `5:16: upstreams.app.discovery.port: discovery type dns needs a port in 1-65535`},
		{"discovery refresh word", strings.Replace(base, `targets: [{address: "127.0.0.1:9001"}]`, `discovery: {type: dns, name: a.b, port: 80, refresh: often}`, 1), `5:58: upstreams.app.discovery.refresh: invalid refresh "often" (want a duration such as 10s, or ttl)`},
		{"discovery refresh too short", strings.Replace(base, `targets: [{address: "127.0.0.1:9001"}]`, `discovery: {type: dns, name: a.b, port: 80, refresh: 1ms}`, 1), `5:58: upstreams.app.discovery.refresh: refresh 1ms is too short (at least 100ms, or ttl)`},
		{"discovery port with srv", strings.Replace(base, `targets: [{address: "127.0.0.1:9001"}]`, `discovery: {type: srv, name: _http._tcp.a.b, port: 80}`, 1), `5:56: upstreams.app.discovery.port: port is not used by discovery type srv (only by dns)`},
		{"discovery resolver with etcd", strings.Replace(base, `targets: [{address: "127.0.0.1:9001"}]`, `discovery: {type: etcd, name: app, endpoints: ["127.0.0.1:2379"], resolver: "127.0.0.1:53"}`, 1), `5:81: upstreams.app.discovery.resolver: resolver is not used by discovery type etcd (only by dns and srv)`},
		{"discovery endpoints with dns", strings.Replace(base, `targets: [{address: "127.0.0.1:9001"}]`, `discovery: {type: dns, name: a.b, port: 80, endpoints: ["127.0.0.1:2379"]}`, 1), `5:60: upstreams.app.discovery.endpoints: endpoints is not used by discovery type dns (only by etcd)`},
		{"discovery etcd needs endpoints", strings.Replace(base, `targets: [{address: "127.0.0.1:9001"}]`, `discovery: {type: etcd, name: app}`, 1), `5:16: upstreams.app.discovery.endpoints: discovery type etcd needs endpoints (HOST:PORT of the etcd cluster)`},
		{"discovery etcd bad endpoint", strings.Replace(base, `targets: [{address: "127.0.0.1:9001"}]`, `discovery: {type: etcd, name: app, endpoints: ["nowhere"]}`, 1), `5:52: upstreams.app.discovery.endpoints[0]: invalid address "nowhere" (want host:port)`},
		{"discovery etcd name slash", strings.Replace(base, `targets: [{address: "127.0.0.1:9001"}]`, `discovery: {type: etcd, name: a/b, endpoints: ["127.0.0.1:2379"]}`, 1), `5:35: upstreams.app.discovery.name: invalid service name "a/b" (no '/' or spaces)`},
		{"discovery etcd prefix", strings.Replace(base, `targets: [{address: "127.0.0.1:9001"}]`, `discovery: {type: etcd, name: app, endpoints: ["127.0.0.1:2379"], prefix: services}`, 1), `5:79: upstreams.app.discovery.prefix: prefix "services" must start with /`},
		{"discovery bad dns name", strings.Replace(base, `targets: [{address: "127.0.0.1:9001"}]`, `discovery: {type: dns, name: "a b", port: 80}`, 1), `5:34: upstreams.app.discovery.name: invalid DNS name "a b"`},
		{"discovery and targets", strings.Replace(base, `targets: [{address: "127.0.0.1:9001"}]`, `targets: [{address: "127.0.0.1:9001"}]
    discovery: {type: dns, name: a.b, port: 80}`, 1), `5:14: upstreams.app.targets: targets and discovery type dns exclude each other (discovery finds the targets)`},
		{"discovery static with name", strings.Replace(base, `targets: [{address: "127.0.0.1:9001"}]`, `targets: [{address: "127.0.0.1:9001"}]
    discovery: {type: static, name: a.b}`, 1), `6:37: upstreams.app.discovery.name: name is not used by discovery type static (only by dns, srv and etcd)`},
		{"target address", strings.Replace(base, `"127.0.0.1:9001"`, `"127.0.0.1:0"`, 1), `5:25: upstreams.app.targets[0].address: invalid address "127.0.0.1:0": port 0 out of range 1-65535`},
		{"target without host", strings.Replace(base, `"127.0.0.1:9001"`, `":9001"`, 1), `5:25: upstreams.app.targets[0].address: invalid address ":9001": missing host`},
		{"duplicate target", strings.Replace(base, `[{address: "127.0.0.1:9001"}]`, `[{address: "127.0.0.1:9001"}, {address: "127.0.0.1:9001"}]`, 1), `5:54: upstreams.app.targets[1].address: duplicate target "127.0.0.1:9001" (also targets[0])`},
		{"weight zero", strings.Replace(base, `"127.0.0.1:9001"`, `"127.0.0.1:9001", weight: 0`, 1), `5:51: upstreams.app.targets[0].weight: weight 0 out of range 1-10000`},
		{"weight too big", strings.Replace(base, `"127.0.0.1:9001"`, `"127.0.0.1:9001", weight: 10001`, 1), `5:51: upstreams.app.targets[0].weight: weight 10001 out of range 1-10000`},
		{"balancer", strings.Replace(base, "  app:\n", "  app:\n    balancer: fastest\n", 1), `5:15: upstreams.app.balancer: invalid balancer "fastest" (want round_robin, random, least_request, ring_hash, maglev or ewma)`},
		{"hash key without hashing", strings.Replace(base, "  app:\n", "  app:\n    hash_key: ip\n", 1), `5:15: upstreams.app.hash_key: hash_key is only for balancer ring_hash or maglev`},
		{"hash key form", strings.Replace(base, "  app:\n", "  app:\n    balancer: maglev\n    hash_key: \"header:\"\n", 1), `6:15: upstreams.app.hash_key: invalid hash_key "header:" (want ip, path, header:NAME, cookie:NAME, query:NAME or param:NAME)`},
		{"upstream protocol", strings.Replace(base, "  app:\n", "  app:\n    protocol: h3\n", 1), `5:15: upstreams.app.protocol: invalid protocol "h3" (want http1, h2c or h2) (did you mean "h2"?)`},
		{"upstream h2 without tls", strings.Replace(base, "  app:\n", "  app:\n    protocol: h2\n", 1), `5:15: upstreams.app.protocol: protocol h2 is HTTP/2 over TLS and needs tls (h2c is HTTP/2 in plain text)`},
		{"upstream h2c with tls", strings.Replace(base, "  app:\n", "  app:\n    protocol: h2c\n    tls: {server_name: a}\n", 1), `5:15: upstreams.app.protocol: protocol h2c is HTTP/2 in plain text; with tls use h2`},
		{"upstream ping on http1", strings.Replace(base, "  app:\n", "  app:\n    keepalive: {ping_interval: 10s}\n", 1), `5:32: upstreams.app.keepalive.ping_interval: ping_interval is for HTTP/2 connections: protocol h2c, or h2 with tls`},
		{"upstream ping negative", strings.Replace(base, "  app:\n", "  app:\n    protocol: h2c\n    keepalive: {ping_timeout: -1s}\n", 1), `6:31: upstreams.app.keepalive.ping_timeout: negative duration "-1s"`},
		{"grpc health with path", strings.Replace(base, "  app:\n", "  app:\n    protocol: h2c\n    health_check: {active: {path: /h, grpc: {service: x}}}\n", 1), `6:35: upstreams.app.health_check.active.path: path and grpc are exclusive: a check is gRPC (grpc), HTTP (path) or TCP (neither, with send and expect)`},
		{"grpc health with expect", strings.Replace(base, "  app:\n", "  app:\n    protocol: h2c\n    health_check: {active: {grpc: {}, expect: x}}\n", 1), `6:47: upstreams.app.health_check.active.expect: expect and grpc are exclusive: a check is gRPC (grpc), HTTP (path) or TCP (neither, with send and expect)`},
		{"grpc health on http1", strings.Replace(base, "  app:\n", "  app:\n    health_check: {active: {grpc: {service: x}}}\n", 1), `5:35: upstreams.app.health_check.active.grpc: gRPC health checks need an HTTP/2 upstream: protocol h2c, or h2 with tls`},
		{"failover to itself", strings.Replace(base, "  app:\n", "  app:\n    failover: app\n", 1), `5:15: upstreams.app.failover: an upstream cannot fail over to itself`},
		{"failover unknown", strings.Replace(base, "  app:\n", "  app:\n    failover: dr\n", 1), `5:15: upstreams.app.failover: unknown upstream "dr"`},
		{"health interval", strings.Replace(base, "  app:\n", "  app:\n    health_check: {active: {path: /h, interval: 0s}}\n", 1), `5:49: upstreams.app.health_check.active.interval: must be positive`},
		{"health path", strings.Replace(base, "  app:\n", "  app:\n    health_check: {active: {path: h}}\n", 1), `5:35: upstreams.app.health_check.active.path: path must start with "/"`},
		{"health threshold", strings.Replace(base, "  app:\n", "  app:\n    health_check: {active: {path: /h, healthy_threshold: 0}}\n", 1), `5:58: upstreams.app.health_check.active.healthy_threshold: must be at least 1`},
		{"ejection percent", strings.Replace(base, "  app:\n", "  app:\n    health_check: {passive: {max_ejection_percent: 101}}\n", 1), `5:52: upstreams.app.health_check.passive.max_ejection_percent: 101 out of range 0-100`},
		{"breaker", strings.Replace(base, "  app:\n", "  app:\n    circuit_breaker: {max_requests: 0}\n", 1), `5:37: upstreams.app.circuit_breaker.max_requests: must be at least 1`},

		// Routes.
		{"request buffering mode", strings.Replace(base, "upstream: app", "upstream: app\n    request_buffering: always", 1), `8:24: routes[0].request_buffering: invalid request_buffering "always" (want auto, on or off)`},
		{"no routes", strings.Replace(base, "routes:\n  - upstream: app\n", "", 1), "1:1: routes: at least one route is required"},
		{"duplicate route name", strings.Replace(base, "  - upstream: app\n", "  - {name: r, upstream: app}\n  - {name: r, upstream: app}\n", 1), `8:12: routes[1].name: duplicate route name "r" (first used by routes[0])`},
		{"no destination", strings.Replace(base, "  - upstream: app\n", "  - name: r\n", 1), "7:5: routes[0]: a route needs exactly one of upstream, split or aggregate"},
		{"two destinations", strings.Replace(base, "  - upstream: app\n", "  - upstream: app\n    split: [{upstream: app, weight: 1}]\n", 1), "7:5: routes[0]: a route needs exactly one of upstream, split or aggregate"},
		{"unknown upstream", strings.Replace(base, "upstream: app", "upstream: ap", 1), `7:15: routes[0].upstream: unknown upstream "ap" (did you mean "app"?)`},
		{"unknown upstream far", strings.Replace(base, "upstream: app", "upstream: billing", 1), `7:15: routes[0].upstream: unknown upstream "billing"`},
		{"split unknown upstream", strings.Replace(base, "upstream: app", "split: [{upstream: x, weight: 1}]", 1), `7:24: routes[0].split[0].upstream: unknown upstream "x"`},
		{"split empty", strings.Replace(base, "upstream: app", "split: []", 1), "7:12: routes[0].split: a split needs at least one item"},
		{"split weight", strings.Replace(base, "upstream: app", "split: [{upstream: app}]", 1), "7:13: routes[0].split[0].weight: weight 0 out of range 1-10000"},
		{"split duplicate", strings.Replace(base, "upstream: app", "split: [{upstream: app, weight: 1}, {upstream: app, weight: 1}]", 1), `7:52: routes[0].split[1].upstream: upstream "app" already in split[0]`},
		{"mirror unknown", strings.Replace(base, "upstream: app", "upstream: app\n    mirror: {upstream: shadow}", 1), `8:24: routes[0].mirror.upstream: unknown upstream "shadow"`},
		{"mirror percent", strings.Replace(base, "upstream: app", "upstream: app\n    mirror: {upstream: app, percent: -1}", 1), `8:38: routes[0].mirror.percent: -1 out of range 0-100`},
		{"mirror percent over", strings.Replace(base, "upstream: app", "upstream: app\n    mirror: {upstream: app, percent: 100.5}", 1), `8:38: routes[0].mirror.percent: 100.5 out of range 0-100`},
		{"mirror max_in_flight", strings.Replace(base, "upstream: app", "upstream: app\n    mirror: {upstream: app, max_in_flight: 0}", 1), `8:44: routes[0].mirror.max_in_flight: must be at least 1`},
		{"mirror max_body_bytes", strings.Replace(base, "upstream: app", "upstream: app\n    mirror: {upstream: app, max_body_bytes: -1}", 1), `8:45: routes[0].mirror.max_body_bytes: must not be negative`},
		{"aggregate unknown", strings.Replace(base, "upstream: app", "aggregate: {backends: [{upstream: nope, path: /x}]}", 1), `7:39: routes[0].aggregate.backends[0].upstream: unknown upstream "nope"`},
		{"aggregate path", strings.Replace(base, "upstream: app", "aggregate: {backends: [{upstream: app, path: x}]}", 1), `7:50: routes[0].aggregate.backends[0].path: path must start with "/"`},
		{"two path kinds", strings.Replace(base, "upstream: app", "upstream: app\n    match: {path: {exact: /a, prefix: /b}}", 1), `8:39: routes[0].match.path.prefix: path has both exact and prefix; use one of exact, prefix, regex or template`},
		{"exact slash", strings.Replace(base, "upstream: app", "upstream: app\n    match: {path: {exact: a}}", 1), `8:27: routes[0].match.path.exact: exact must start with "/"`},
		{"prefix slash", strings.Replace(base, "upstream: app", "upstream: app\n    match: {path: {prefix: a}}", 1), `8:28: routes[0].match.path.prefix: prefix must start with "/"`},
		{"regex", strings.Replace(base, "upstream: app", "upstream: app\n    match: {path: {regex: \"[a-\"}}", 1), "8:27: routes[0].match.path.regex: invalid regex: error parsing regexp: missing closing ]: `[a-`"},
		{"template slash", strings.Replace(base, "upstream: app", "upstream: app\n    match: {path: {template: u}}", 1), `8:30: routes[0].match.path.template: template must start with "/"`},
		{"template catch-all last", strings.Replace(base, "upstream: app", "upstream: app\n    match: {path: {template: \"/{*a}/b\"}}", 1), `8:30: routes[0].match.path.template: invalid template "/{*a}/b": {*a} must be the last segment`},
		{"template name", strings.Replace(base, "upstream: app", "upstream: app\n    match: {path: {template: \"/u/{1d}\"}}", 1), `8:30: routes[0].match.path.template: invalid template "/u/{1d}": "1d" is not a valid name`},
		{"template partial segment", strings.Replace(base, "upstream: app", "upstream: app\n    match: {path: {template: \"/u/x{id}\"}}", 1), `8:30: routes[0].match.path.template: invalid template "/u/x{id}": segment "x{id}" must be literal or a whole {name}`},
		{"host empty", strings.Replace(base, "upstream: app", "upstream: app\n    match: {hosts: [\"\"]}", 1), "8:21: routes[0].match.hosts[0]: host must not be empty"},
		{"host port", strings.Replace(base, "upstream: app", "upstream: app\n    match: {hosts: [a.com:80]}", 1), `8:21: routes[0].match.hosts[0]: invalid host "a.com:80": no port allowed (hosts match any port)`},
		{"host scheme", strings.Replace(base, "upstream: app", "upstream: app\n    match: {hosts: [\"http://a.com\"]}", 1), `8:21: routes[0].match.hosts[0]: invalid host "http://a.com": no scheme allowed`},
		{"host wildcard", strings.Replace(base, "upstream: app", "upstream: app\n    match: {hosts: [\"a.*.com\"]}", 1), `8:21: routes[0].match.hosts[0]: invalid host "a.*.com": a wildcard is allowed only as the whole first label (*.example.com)`},
		{"host chars", strings.Replace(base, "upstream: app", "upstream: app\n    match: {hosts: [\"a_b.com\"]}", 1), `8:21: routes[0].match.hosts[0]: invalid host "a_b.com": not a DNS name`},
		{"method", strings.Replace(base, "upstream: app", "upstream: app\n    match: {methods: [GET, \"G T\"]}", 1), `8:28: routes[0].match.methods[1]: invalid method "G T"`},
		{"header name", strings.Replace(base, "upstream: app", "upstream: app\n    match: {headers: {\"X:Y\": a}}", 1), `8:23: routes[0].match.headers.X:Y: invalid header name "X:Y"`},
		{"strip prefix without prefix", strings.Replace(base, "upstream: app", "upstream: app\n    strip_prefix: true", 1), "8:19: routes[0].strip_prefix: strip_prefix needs match.path.prefix or match.path.template"},
		{"rewrite without prefix", strings.Replace(base, "upstream: app", "upstream: app\n    rewrite: {prefix: /v1/}", 1), "8:14: routes[0].rewrite: rewrite needs match.path.prefix or match.path.template"},
		{"rewrite slash", strings.Replace(base, "upstream: app", "upstream: app\n    match: {path: {prefix: /a/}}\n    rewrite: {prefix: v1/}", 1), `9:23: routes[0].rewrite.prefix: prefix must start with "/"`},
		{"retry attempts", strings.Replace(base, "upstream: app", "upstream: app\n    retry: {attempts: 0}", 1), "8:23: routes[0].retry.attempts: must be at least 1"},
		{"retry on", strings.Replace(base, "upstream: app", "upstream: app\n    retry: {on: [reset, 5xxx]}", 1), `8:25: routes[0].retry.on[1]: invalid retry condition "5xxx" (want connect_failure, reset, timeout, 5xx, gateway_error, retriable_4xx, grpc:STATUS or a status code) (did you mean "5xx"?)`},
		{"retry grpc unknown", strings.Replace(base, "upstream: app", "upstream: app\n    retry: {on: [grpc:unavailabel]}", 1), `8:18: routes[0].retry.on[0]: invalid retry condition "grpc:unavailabel" (unknown gRPC status; want grpc: and one of cancelled, unknown, invalid_argument, deadline_exceeded, not_found, already_exists, permission_denied, resource_exhausted, failed_precondition, aborted, out_of_range, unimplemented, internal, unavailable, data_loss, unauthenticated) (did you mean "unavailable"?)`},
		{"retry grpc ok", strings.Replace(base, "upstream: app", "upstream: app\n    retry: {on: [grpc:ok]}", 1), `8:18: routes[0].retry.on[0]: invalid retry condition "grpc:ok": OK is not a failure`},
		{"retry grpc bare", strings.Replace(base, "upstream: app", "upstream: app\n    retry: {on: [resource-exhausted]}", 1), `8:18: routes[0].retry.on[0]: invalid retry condition "resource-exhausted": gRPC statuses are written "grpc:resource_exhausted"`},
		{"retry grpc dash", strings.Replace(base, "upstream: app", "upstream: app\n    retry: {on: [grpc:resource-exhausted]}", 1), `8:18: routes[0].retry.on[0]: invalid retry condition "grpc:resource-exhausted" (unknown gRPC status; want grpc: and one of cancelled, unknown, invalid_argument, deadline_exceeded, not_found, already_exists, permission_denied, resource_exhausted, failed_precondition, aborted, out_of_range, unimplemented, internal, unavailable, data_loss, unauthenticated) (did you mean "resource_exhausted"?)`},
		{"retry status", strings.Replace(base, "upstream: app", "upstream: app\n    retry: {on: [99]}", 1), `8:18: routes[0].retry.on[0]: status 99 out of range 100-599`},
		{"retry backoff", strings.Replace(base, "upstream: app", "upstream: app\n    retry: {backoff: {base: 1s, max: 10ms}}", 1), `8:38: routes[0].retry.backoff.max: must not be less than backoff.base`},
		{"fallback status", strings.Replace(base, "upstream: app", "upstream: app\n    fallback: {status: 600}", 1), `8:24: routes[0].fallback.status: status 600 out of range 100-599`},
		{"cache ttl", strings.Replace(base, "upstream: app", "upstream: app\n    cache: {ttl: 0s}", 1), `8:18: routes[0].cache.ttl: must be positive`},
		{"unknown policy", strings.Replace(base, "upstream: app", "upstream: app\n    policies: [auth]", 1) + "policies:\n  aut: {type: jwt}\n", `8:16: routes[0].policies[0]: unknown policy "auth" (did you mean "aut"?)`},
		{"duplicate policy", strings.Replace(base, "upstream: app", "upstream: app\n    policies: [a, a]", 1) + "policies:\n  a: {type: waf}\n", `8:19: routes[0].policies[1]: duplicate policy "a" (also policies[0])`},

		// Policies.
		{"policy without type", base + "policies:\n  a: {issuer: x}\n", "9:3: policies.a: type is required (one of jwt, api_key, client_cert, rate_limit, ip_filter, waf, sanitize, concurrency_limit, require_role, cors, headers or grpc_web)"},
		{"policy unknown type", base + "policies:\n  a: {type: oauth}\n", `9:13: policies.a.type: invalid policy type "oauth" (want jwt, api_key, client_cert, rate_limit, ip_filter, waf, sanitize, concurrency_limit, require_role, cors, headers or grpc_web)`},
		{"policy type not string", base + "policies:\n  a: {type: [jwt]}\n", "9:13: policies.a.type: expected a string, got a list"},
		{"policy not mapping", base + "policies:\n  a: jwt\n", `9:6: policies.a: expected a mapping, got string "jwt"`},

		// Consumers.
		{"consumer empty name", base + "consumers:\n  - {roles: [a]}\n", "9:5: consumers[0].name: name must not be empty"},
		{"consumer duplicate", base + "consumers:\n  - {name: a}\n  - {name: a}\n", `10:12: consumers[1].name: duplicate consumer name "a" (also consumers[0])`},
		{"consumer shared key", base + "consumers:\n  - {name: a, api_keys: [k]}\n  - {name: b, api_keys: [k]}\n", "10:26: consumers[1].api_keys[0]: api key already used by consumers[0]"},

		// Cluster and observability.
		{"redis on_failure", base + "cluster:\n  redis: {address: \"127.0.0.1:6379\", on_failure: open}\n", `9:50: cluster.redis.on_failure: invalid on_failure "open" (want local, allow or deny)`},
		{"redis address", base + "cluster:\n  redis: {address: redis}\n", `9:20: cluster.redis.address: invalid address "redis" (want host:port)`},
		{"log format", base + "observability:\n  access_log: {format: text}\n", `9:24: observability.access_log.format: invalid access log format "text" (want json)`},
		{"sample ratio", base + "observability:\n  tracing: {otlp_endpoint: \"127.0.0.1:4317\", sample_ratio: 2}\n", "9:60: observability.tracing.sample_ratio: 2 out of range 0-1"},
		{"request id header", base + "observability:\n  request_id_header: \"X Id\"\n", `9:22: observability.request_id_header: invalid header name "X Id"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadBytes("t.yaml", []byte(tt.doc))
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error %T is not Errors: %v", err, err)
			}
			want := "t.yaml:" + tt.want
			for _, e := range errs {
				if e.Error() == want {
					return
				}
			}
			t.Errorf("missing error line\nwant: %s\ngot:\n%v", want, err)
		})
	}
}

func TestAllErrorsReported(t *testing.T) {
	doc := strings.Replace(base, "upstream: app", "upstream: nope\n    timeout: soon\n    retry: {attempts: x}", 1) + "admin: {address: bad}\nextra: 1\n"
	_, err := LoadBytes("t.yaml", []byte(doc))
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("got %v, want Errors", err)
	}
	want := []string{
		`t.yaml:7:15: routes[0].upstream: unknown upstream "nope"`,
		`t.yaml:8:14: routes[0].timeout: invalid duration "soon" (want e.g. 250ms, 10s, 5m)`,
		`t.yaml:9:23: routes[0].retry.attempts: expected an integer, got string "x"`,
		`t.yaml:10:18: admin.address: invalid address "bad" (want host:port); or "off" to disable the admin API`,
		`t.yaml:11:1: unknown key "extra"`,
	}
	if got := err.Error(); got != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}

func TestDefaults(t *testing.T) {
	c, err := Parse("t.yaml", []byte(base+"policies:\n  x: {type: waf}\n"))
	if err != nil {
		t.Fatal(err)
	}
	l := c.Listeners[0]
	u := c.Upstreams["app"]
	r := c.Routes[0]
	o := c.Observability
	for _, tt := range []struct {
		name      string
		got, want any
	}{
		{"listener name", l.Name, "listener-0"},
		{"listener protocol", l.Protocol, "http"},
		{"max_header_bytes", l.Limits.MaxHeaderBytes, 61440},
		{"max_body_bytes", l.Limits.MaxBodyBytes, int64(10485760)},
		{"read_header_timeout", l.Limits.ReadHeaderTimeout, Duration(10 * time.Second)},
		{"idle_timeout", l.Limits.IdleTimeout, Duration(60 * time.Second)},
		{"max_connections", l.Limits.MaxConnections, 100000},
		{"body_buffer_bytes", l.Limits.BodyBufferBytes, int64(65536)},
		{"buffer_memory_bytes", l.Limits.BufferMemoryBytes, int64(64 << 20)},
		{"buffer_dir", l.Limits.BufferDir, ""},
		{"request_buffering", r.RequestBuffering, "auto"},
		{"admin address", c.Admin.Address, "127.0.0.1:9901"},
		{"drain_timeout", c.DrainTimeout, Duration(30 * time.Second)},
		{"balancer", u.Balancer, "round_robin"},
		{"upstream protocol", u.Protocol, "http1"},
		{"connect_timeout", u.ConnectTimeout, Duration(5 * time.Second)},
		{"keepalive max idle", u.Keepalive.MaxIdlePerTarget, 64},
		{"keepalive idle timeout", u.Keepalive.IdleTimeout, Duration(60 * time.Second)},
		{"target weight", u.Targets[0].Weight, 1},
		{"route name", r.Name, "route-0"},
		{"route timeout", r.Timeout, Duration(15 * time.Second)},
		{"request_id_header", o.RequestIDHeader, "X-Request-ID"},
		{"access log path", o.AccessLog.Path, "stdout"},
		{"access log format", o.AccessLog.Format, "json"},
		{"policy type", c.Policies["x"].Type, "waf"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if !reflect.DeepEqual(tt.got, tt.want) {
				t.Errorf("got %#v, want %#v", tt.got, tt.want)
			}
		})
	}

	t.Run("explicit zero kept", func(t *testing.T) {
		doc := strings.Replace(base, `- address: "127.0.0.1:8080"`, `- {address: "127.0.0.1:8080", limits: {max_body_bytes: 0, idle_timeout: 0s}}`, 1)
		doc = strings.Replace(doc, "upstream: app", "upstream: app\n    timeout: 0s\n    name: \"\"", 1)
		c, _ := parse("t.yaml", []byte(doc))
		if got := c.Listeners[0].Limits.MaxBodyBytes; got != 0 {
			t.Errorf("max_body_bytes = %d, want explicit 0", got)
		}
		if got := c.Listeners[0].Limits.IdleTimeout; got != 0 {
			t.Errorf("idle_timeout = %v, want explicit 0", got)
		}
		if got := c.Routes[0].Timeout; got != 0 {
			t.Errorf("route timeout = %v, want explicit 0", got)
		}
		if got := c.Routes[0].Name; got != "" {
			t.Errorf("route name = %q, want explicit empty", got)
		}
	})
	t.Run("null means default", func(t *testing.T) {
		c, err := Parse("t.yaml", []byte(base+"drain_timeout: ~\n"))
		if err != nil {
			t.Fatal(err)
		}
		if c.DrainTimeout != DefaultDrainTimeout {
			t.Errorf("drain_timeout = %v, want default", c.DrainTimeout)
		}
	})
	t.Run("ring_hash hash_key", func(t *testing.T) {
		c, err := LoadBytes("t.yaml", []byte(strings.Replace(base, "  app:\n", "  app:\n    balancer: ring_hash\n", 1)))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Upstreams["app"].HashKey; got != "ip" {
			t.Errorf("hash_key = %q, want ip", got)
		}
	})
	t.Run("Default", func(t *testing.T) {
		c := Default()
		if c.Admin.Address != DefaultAdminAddress || c.DrainTimeout != DefaultDrainTimeout {
			t.Errorf("Default() = %+v", c)
		}
	})
}

func TestPositions(t *testing.T) {
	c := loadContract(t)
	for _, tt := range []struct {
		path string
		want string
	}{
		{"listeners[0].limits.max_body_bytes", "13:23"},
		{"upstreams.users", "34:3"},
		{"upstreams.users.targets[1].address", "37:19"},
		{"routes[2].match.path.regex", "96:21"},
		{"routes[0].match.headers.X-Api-Version", "72:17"},
		{"policies.auth", "104:3"},
		{"policies.auth.type", "105:11"},
		{"policies.auth.audiences[0]", "108:17"},
		// Absent values fall back to their nearest written parent.
		{"routes[1].timeout", "88:5"},
		{"upstreams.users.targets[0].zone", "36:9"},
	} {
		t.Run(tt.path, func(t *testing.T) {
			if got := c.Pos(tt.path); got.String() != "testdata/full.yaml:"+tt.want {
				t.Errorf("Pos(%q) = %v, want %s", tt.path, got, tt.want)
			}
		})
	}
	t.Run("unknown path", func(t *testing.T) {
		var empty Config
		if got := empty.Pos("x.y"); got != (Pos{}) {
			t.Errorf("Pos on an unparsed config = %v, want zero", got)
		}
	})
	t.Run("Errorf", func(t *testing.T) {
		e := c.Errorf("routes[0].upstream", "unknown upstream %q", "x")
		if got, want := e.Error(), `testdata/full.yaml:76:15: routes[0].upstream: unknown upstream "x"`; got != want {
			t.Errorf("got %q, want %q", got, want)
		}
		e = &Error{Pos: Pos{File: "f", Line: 1, Col: 2}, Msg: "m"}
		if got := e.Error(); got != "f:1:2: m" {
			t.Errorf("without path: %q", got)
		}
	})
}

// rateLimit stands in for a policy package's config.
type rateLimit struct {
	Type   string            `yaml:"type"`
	Rate   Rate              `yaml:"rate"`
	Burst  int               `yaml:"burst"`
	ByRole map[string]Rate   `yaml:"by_role"`
	Store  string            `yaml:"store"`
	Key    any               `yaml:"key"`
	Wait   time.Duration     `yaml:"wait"`
	Extra  map[string]string `yaml:"extra"`
}

func TestDecodeNode(t *testing.T) {
	c := loadContract(t)
	t.Run("good", func(t *testing.T) {
		var rl rateLimit
		if errs := DecodeNode(c.File(), c.Policies["per-key"].Spec, "policies.per-key", &rl, "type"); errs != nil {
			t.Fatal(errs)
		}
		if rl.Rate.N != 1000 || rl.Rate.Period != time.Minute || rl.Burst != 50 || rl.ByRole["premium"].N != 10000 || rl.Key != "consumer" || rl.Type != "" {
			t.Errorf("decoded %+v", rl)
		}
	})
	t.Run("errors", func(t *testing.T) {
		doc := "type: rate_limit\nrate: 10/d\nburst: many\nby_role: {free: fast}\nwait: 1\nbogus: 1\nkey: [ip, consumer]\n"
		var n yaml.Node
		if err := yaml.Unmarshal([]byte(doc), &n); err != nil {
			t.Fatal(err)
		}
		var rl rateLimit
		errs := DecodeNode("p.yaml", n.Content[0], "policies.rl", &rl, "type")
		want := strings.Join([]string{
			`p.yaml:2:7: policies.rl.rate: invalid rate "10/d": unit must be s, m or h`,
			`p.yaml:3:8: policies.rl.burst: expected an integer, got string "many"`,
			`p.yaml:4:17: policies.rl.by_role.free: invalid rate "fast" (want N/s, N/m or N/h)`,
			`p.yaml:5:7: policies.rl.wait: invalid duration "1" (want e.g. 250ms, 10s, 5m)`,
			`p.yaml:6:1: policies.rl: unknown key "bogus"`,
		}, "\n")
		if errs.Error() != want {
			t.Errorf("got:\n%v\nwant:\n%s", errs, want)
		}
		if !reflect.DeepEqual(rl.Key, []any{"ip", "consumer"}) {
			t.Errorf("key = %#v", rl.Key)
		}
	})
	t.Run("not a pointer", func(t *testing.T) {
		var rl rateLimit
		if errs := DecodeNode("p.yaml", c.Policies["per-key"].Spec, "p", rl); len(errs) != 1 {
			t.Errorf("got %v, want one error", errs)
		}
	})
}

func TestJSONRedactsSecrets(t *testing.T) {
	doc := base + `policies:
  auth:
    type: jwt
    keys: [{kty: oct, k: c2VjcmV0}]
    client_secret: s3cret
    issuer: https://idp/
  redis-auth:
    type: rate_limit
    nested: {password: hunter2, token: abc}
consumers:
  - {name: acme, api_keys: [plainkey1, plainkey2]}
`
	c, err := LoadBytes("t.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.JSON()
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"c2VjcmV0", "s3cret", "hunter2", `"abc"`, "plainkey1", "plainkey2"} {
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("JSON() leaks %s:\n%s", secret, b)
		}
	}
	var m struct {
		Policies  map[string]map[string]any `json:"policies"`
		Consumers []struct {
			APIKeys []string `json:"api_keys"`
		} `json:"consumers"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if got := m.Policies["auth"]["issuer"]; got != "https://idp/" {
		t.Errorf("issuer = %v, want kept", got)
	}
	if got := m.Policies["auth"]["type"]; got != "jwt" {
		t.Errorf("type = %v", got)
	}
	if got := m.Consumers[0].APIKeys; !reflect.DeepEqual(got, []string{redacted, redacted}) {
		t.Errorf("api_keys = %v", got)
	}
}

func TestVersion(t *testing.T) {
	yamlDoc := base
	jsonDoc := `{"listeners": [{"address": "127.0.0.1:8080"}], "upstreams": {"app": {"targets": [{"address": "127.0.0.1:9001"}]}}, "routes": [{"upstream": "app"}]}`
	a, err := LoadBytes("a.yaml", []byte(yamlDoc))
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadBytes("b.json", []byte(jsonDoc))
	if err != nil {
		t.Fatal(err)
	}
	if a.Version() != b.Version() {
		t.Errorf("same config, different versions: %s vs %s", a.Version(), b.Version())
	}
	c, err := LoadBytes("c.yaml", []byte(strings.Replace(yamlDoc, "9001", "9002", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if a.Version() == c.Version() {
		t.Errorf("different configs, same version %s", a.Version())
	}
	// Secrets are redacted from JSON() but still count for the version.
	withKey := func(k string) string {
		c, err := LoadBytes("k.yaml", []byte(base+"consumers: [{name: a, api_keys: ["+k+"]}]\n"))
		if err != nil {
			t.Fatal(err)
		}
		return c.Version()
	}
	if withKey("k1") == withKey("k2") {
		t.Error("changing an api key does not change the version")
	}
}

func TestJSONFallback(t *testing.T) {
	data, err := os.ReadFile("testdata/tabs.json")
	if err != nil {
		t.Fatal(err)
	}
	ynode, yerr := yamlDocument("t.json", data)
	jnode, jerr := jsonDocument("t.json", data)
	if yerr != nil || jerr != nil {
		t.Fatalf("yaml: %v, json: %v", yerr, jerr)
	}
	// The JSON reader positions nodes exactly as the YAML parser does.
	var walk func(a, b *yaml.Node)
	walk = func(a, b *yaml.Node) {
		if a.Line != b.Line || a.Column != b.Column || a.Value != b.Value || a.ShortTag() != b.ShortTag() || len(a.Content) != len(b.Content) {
			t.Fatalf("yaml %d:%d %s %q, json %d:%d %s %q", a.Line, a.Column, a.ShortTag(), a.Value, b.Line, b.Column, b.ShortTag(), b.Value)
		}
		for i := range a.Content {
			walk(a.Content[i], b.Content[i])
		}
	}
	walk(ynode, jnode)

	for _, tt := range []struct {
		name, doc, want string
	}{
		{"syntax error", "{\n\t\"listeners\": [\n\t\t{\"address\" \"x\"}\n\t]\n}\n", "t.json:3:14: invalid json: expected ':' after key"},
		{"trailing comma", "{\"listeners\": [],}", "t.json:1:18: invalid json: expected a string key"},
		{"bad literal", "{\"a\": tru}", "t.json:1:7: invalid json: unexpected 't'"},
		{"long key", "{\"" + strings.Repeat("k", 1100) + "\": 1}", "t.json:1:2: unknown key \"" + strings.Repeat("k", 1100) + "\""},
		{"wrong type at position", "{\n\t\"drain_timeout\": 30\n}", "t.json:2:19: drain_timeout: invalid duration \"30\" (want e.g. 250ms, 10s, 5m)"},
		// YAML rejects the "\/" escape and a key apart from its colon, both
		// valid JSON: a .yaml file holding such JSON is read as JSON.
		{"fallback from yaml", "{\"admin\": {\"token_file\": \"a\\/b\"}, \"drain_timeout\"\n: \"1s\", \"x\\/\": 1}", `t.yaml:2:9: unknown key "x/"`},
		{"fallback keeps yaml error", "{\"admin\": {\"token_file\": \"a\\/b\"},,}", `t.yaml:1:1: invalid yaml: found unknown escape character`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			file := "t.json"
			if strings.HasPrefix(tt.want, "t.yaml") {
				file = "t.yaml"
			}
			_, err := Parse(file, []byte(tt.doc))
			if err == nil || err.Error() != tt.want {
				t.Errorf("got %v, want %s", err, tt.want)
			}
		})
	}
}

func TestAliasBomb(t *testing.T) {
	t.Run("values", func(t *testing.T) { aliasBomb(t, "x", "  - upstream: app\n    match: {methods: *a8}\n") })
	t.Run("routes", func(t *testing.T) {
		aliasBomb(t, "{upstream: nope, timeout: x, match: {hosts: [\"a:1\"]}}", "  - *a8\n")
	})
}

// aliasBomb parses a document whose routes expand a small text into a
// hundred million nodes, and fails if that takes long.
func aliasBomb(t *testing.T, leaf, routes string) {
	var b strings.Builder
	b.WriteString("a0: &a0 [" + strings.Repeat(leaf+", ", 9) + leaf + "]\n")
	for i := 1; i < 9; i++ {
		b.WriteString("a" + string(rune('0'+i)) + ": &a" + string(rune('0'+i)) + " [")
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*a" + string(rune('0'+i-1)))
		}
		b.WriteString("]\n")
	}
	doc := strings.Replace(base, "  - upstream: app\n", routes, 1) + "policies:\n  p: {type: waf, big: *a8}\n"
	doc = "x-anchors:\n" + indent(b.String()) + doc
	start := time.Now()
	_, err := Parse("t.yaml", []byte(doc))
	if err == nil {
		t.Fatal("no error")
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("alias expansion took %v", time.Since(start))
	}
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n  ") + "\n"
}

func FuzzParse(f *testing.F) {
	for _, file := range append(goodFiles(f), "testdata/bad.yaml") {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(base))
	f.Add([]byte("{\"a\": [1, 2.5, true, null, {\"b\": \"c\"}]}"))
	f.Add([]byte("a: &x [1]\nb: *x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// The same bytes go through the YAML path (with its JSON fallback)
		// and the strict JSON reader.
		for _, file := range []string{"f.yaml", "f.json"} {
			c, err := LoadBytes(file, data)
			if err != nil {
				var errs Errors
				if !errors.As(err, &errs) || len(errs) == 0 {
					t.Fatalf("%s: error %T is not non-empty Errors: %v", file, err, err)
				}
				for _, e := range errs {
					if e.Pos.File != file || e.Pos.Line < 1 || e.Pos.Col < 1 {
						t.Fatalf("%s: error without a position: %#v", file, e)
					}
				}
				continue
			}
			if _, err := c.JSON(); err != nil {
				t.Fatalf("%s: JSON: %v", file, err)
			}
			if c.Version() != c.Version() {
				t.Fatalf("%s: Version is not deterministic", file)
			}
		}
	})
}
