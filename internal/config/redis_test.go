package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// cluster.redis: where Redis is (one of address, addresses, sentinel),
// credentials, TLS and the decision settings, every problem positioned
// (issue 12).
func TestRedisRules(t *testing.T) {
	tests := []struct{ name, doc, want string }{
		{"nothing says where", "cluster:\n  redis: {timeout: 50ms}\n", "9:10: cluster.redis: one of address, addresses (Redis Cluster) or sentinel is required"},
		{"address and addresses", "cluster:\n  redis: {address: \"127.0.0.1:6379\", addresses: [\"127.0.0.1:7000\"]}\n",
			"9:49: cluster.redis.addresses: address and addresses are exclusive: set one of address, addresses (Redis Cluster) or sentinel"},
		{"addresses and sentinel", "cluster:\n  redis:\n    addresses: [\"127.0.0.1:7000\"]\n    sentinel: {master: m, addresses: [\"127.0.0.1:26379\"]}\n",
			"11:15: cluster.redis.sentinel: addresses and sentinel are exclusive: set one of address, addresses (Redis Cluster) or sentinel"},
		{"empty addresses", "cluster:\n  redis: {addresses: []}\n", "9:22: cluster.redis.addresses: at least one address is required"},
		{"bad cluster address", "cluster:\n  redis: {addresses: [\"127.0.0.1:7000\", \"nope\"]}\n", `9:41: cluster.redis.addresses[1]: invalid address "nope" (want host:port)`},
		{"duplicate cluster address", "cluster:\n  redis: {addresses: [\"127.0.0.1:7000\", \"127.0.0.1:7000\"]}\n", `9:41: cluster.redis.addresses[1]: address "127.0.0.1:7000" listed twice (also [0])`},
		{"sentinel without master", "cluster:\n  redis: {sentinel: {addresses: [\"127.0.0.1:26379\"]}}\n", "9:21: cluster.redis.sentinel.master: master is required (the name sentinels know the master by)"},
		{"sentinel without addresses", "cluster:\n  redis: {sentinel: {master: m}}\n", "9:21: cluster.redis.sentinel.addresses: at least one address is required"},
		{"username without password", "cluster:\n  redis: {address: \"127.0.0.1:6379\", username: rampart}\n", "9:48: cluster.redis.username: username needs password_file (Redis AUTH takes both)"},
		{"empty password_file", "cluster:\n  redis: {address: \"127.0.0.1:6379\", password_file: \"\"}\n", "9:53: cluster.redis.password_file: password_file must not be empty"},
		{"cert without key", "cluster:\n  redis: {address: \"127.0.0.1:6379\", tls: {cert_file: c.pem}}\n", "9:55: cluster.redis.tls.cert_file: cert_file needs key_file"},
		{"key without cert", "cluster:\n  redis: {address: \"127.0.0.1:6379\", tls: {key_file: k.pem}}\n", "9:54: cluster.redis.tls.key_file: key_file needs cert_file"},
		{"unknown tls key", "cluster:\n  redis: {address: \"127.0.0.1:6379\", tls: {ca: x}}\n", `9:44: cluster.redis.tls: unknown key "ca"`},
		{"zero timeout", "cluster:\n  redis: {address: \"127.0.0.1:6379\", timeout: 0s}\n", "9:47: cluster.redis.timeout: must be positive"},
		{"long prefix", "cluster:\n  redis: {address: \"127.0.0.1:6379\", prefix: " + strings.Repeat("p", 65) + "}\n", "9:46: cluster.redis.prefix: prefix longer than 64 bytes"},
		{"instances zero", "cluster:\n  instances: 0\n  redis: {address: \"127.0.0.1:6379\"}\n", "9:14: cluster.instances: must be at least 1"},
		{"instances without redis", "cluster:\n  instances: 3\n", "9:14: cluster.instances: instances applies only with cluster.redis (it divides a rate limit's rate while Redis is unavailable)"},
		{"unknown redis key", "cluster:\n  redis: {address: \"127.0.0.1:6379\", db: 2}\n", `9:38: cluster.redis: unknown key "db"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadBytes("t.yaml", []byte(base+tt.doc))
			if err == nil {
				t.Fatal("config accepted")
			}
			if got := err.Error(); !strings.Contains(got, "t.yaml:"+tt.want) {
				t.Errorf("got:\n%s\nwant it to contain:\nt.yaml:%s", got, tt.want)
			}
		})
	}
}

// The three ways of saying where Redis is parse, and the defaults apply
// only to keys left out.
func TestRedisForms(t *testing.T) {
	tests := []struct {
		name, doc string
		check     func(t *testing.T, c *Config)
	}{
		{"single with defaults", "cluster:\n  redis: {address: \"127.0.0.1:6379\"}\n", func(t *testing.T, c *Config) {
			rd := c.Cluster.Redis
			if rd.Timeout.D() != 50*time.Millisecond || rd.OnFailure != "local" || rd.Prefix != "rampart:rl:" || c.Cluster.Instances != 1 {
				t.Errorf("defaults: timeout %v on_failure %q prefix %q instances %d", rd.Timeout, rd.OnFailure, rd.Prefix, c.Cluster.Instances)
			}
		}},
		{"cluster", "cluster:\n  instances: 3\n  redis: {addresses: [\"127.0.0.1:7000\", \"127.0.0.1:7001\"], timeout: 20ms, on_failure: deny, prefix: \"\"}\n", func(t *testing.T, c *Config) {
			rd := c.Cluster.Redis
			if !slices.Equal(rd.Addresses, []string{"127.0.0.1:7000", "127.0.0.1:7001"}) || rd.Timeout.D() != 20*time.Millisecond || rd.OnFailure != "deny" || rd.Prefix != "" || c.Cluster.Instances != 3 {
				t.Errorf("got %+v instances %d", rd, c.Cluster.Instances)
			}
		}},
		{"sentinel with auth and tls", "cluster:\n  redis:\n    sentinel: {master: mymaster, addresses: [\"127.0.0.1:26379\"]}\n    username: rampart\n    password_file: redis.pw\n    tls: {ca_file: ca.pem, cert_file: c.pem, key_file: k.pem, server_name: redis.internal}\n", func(t *testing.T, c *Config) {
			rd := c.Cluster.Redis
			if rd.Sentinel.Master != "mymaster" || rd.Username != "rampart" || rd.PasswordFile != "redis.pw" || rd.TLS.ServerName != "redis.internal" || rd.TLS.KeyFile != "k.pem" {
				t.Errorf("got %+v %+v %+v", rd, rd.Sentinel, rd.TLS)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.check(t, mustLoad(t, base+tt.doc))
		})
	}
}

// upstreams.X.tls.cert_file and key_file (upstream mTLS) come as a pair.
func TestUpstreamClientCertPair(t *testing.T) {
	const doc = "listeners: [{name: public, address: \"127.0.0.1:8080\"}]\nupstreams:\n  s:\n    targets: [{address: \"127.0.0.1:9000\"}]\n    tls: {%s}\nroutes:\n  - {name: all, match: {path: {prefix: /}}, upstream: s}\n"
	for _, tt := range []struct{ tls, want string }{
		{"cert_file: c.pem", "t.yaml:5:22: upstreams.s.tls.cert_file: cert_file needs key_file"},
		{"key_file: k.pem", "t.yaml:5:21: upstreams.s.tls.key_file: key_file needs cert_file"},
		{"cert_file: c.pem, key_file: k.pem", ""},
	} {
		_, err := LoadBytes("t.yaml", []byte(strings.Replace(doc, "%s", tt.tls, 1)))
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: refused: %v", tt.tls, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: error %v, want %s", tt.tls, err, tt.want)
		}
	}
}

// consumers[].client_certs are "sha256:" fingerprints, each of one consumer.
func TestConsumerClientCerts(t *testing.T) {
	fp := "sha256:" + strings.Repeat("ab", 32)
	const doc = "listeners: [{name: public, address: \"127.0.0.1:8080\"}]\nconsumers:\n  - {name: a, client_certs: [%s]}\n  - {name: b, client_certs: [%s]}\nupstreams:\n  s: {targets: [{address: \"127.0.0.1:9000\"}]}\nroutes:\n  - {name: all, match: {path: {prefix: /}}, upstream: s}\n"
	for _, tt := range []struct{ a, b, want string }{
		{fp, "sha256:" + strings.Repeat("cd", 32), ""},
		{fp, fp, "t.yaml:4:30: consumers[1].client_certs[0]: client certificate already used by consumers[0]"},
		{"ab12", "sha256:" + strings.Repeat("cd", 32), `t.yaml:3:30: consumers[0].client_certs[0]: client certificate "ab12": want "sha256:" and the 64 hex digits`},
		{"sha256:" + strings.Repeat("zz", 32), fp, `consumers[0].client_certs[0]: client certificate "sha256:zz`},
	} {
		_, err := LoadBytes("t.yaml", []byte(strings.Replace(strings.Replace(doc, "%s", tt.a, 1), "%s", tt.b, 1)))
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: refused: %v", tt.a, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s/%s: error %v, want %s", tt.a, tt.b, err, tt.want)
		}
	}
}
