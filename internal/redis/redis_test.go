package redis

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/redis/redistest"
	"github.com/rampart-gw/rampart/internal/registry"
)

var echo = rueidis.NewLuaScript(`return {tonumber(ARGV[1]), 7}`)

type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// client loads rd as cluster.redis and claims its client in a registry
// closed when the test ends.
func client(t *testing.T, rd *config.Redis) (*Client, *logBuf) {
	t.Helper()
	if rd.Timeout == 0 {
		rd.Timeout = config.Duration(2 * time.Second)
	}
	st, errs := Load(&config.Config{Cluster: config.Cluster{Redis: rd}})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	reg := registry.New()
	t.Cleanup(reg.Close)
	claims := &registry.Claims{}
	var c *Client
	log := &logBuf{}
	Claim(claims, st, Deps{Log: slog.New(slog.NewTextHandler(log, nil))}, func(cl *Client) { c = cl })
	claims.Acquire(reg)
	return c, log
}

// waitUp waits up to a second for the circuit to close and reports
// whether it did.
func waitUp(t *testing.T, c *Client) bool {
	t.Helper()
	for range 100 {
		if c.Up() {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return c.Up()
}

func writeFile(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// AUTH with password_file (the default user or an ACL user): the right
// credentials connect; wrong ones leave the circuit open, logged once.
func TestAuth(t *testing.T) {
	rs := redistest.Start(t, "--requirepass", "s3cret", "--user", "rampart", "on", ">userpw", "~*", "&*", "+@all")
	tests := []struct {
		name, user, password string
		up                   bool
	}{
		{"default user", "", "s3cret\n", true},
		{"acl user", "rampart", "userpw", true},
		{"wrong password", "", "nope", false},
		{"wrong user", "someone", "s3cret", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, log := client(t, &config.Redis{Address: rs.Addr(), Username: tc.user, PasswordFile: writeFile(t, "pw", []byte(tc.password))})
			if got := waitUp(t, c); got != tc.up {
				t.Fatalf("up = %v, want %v; log:\n%s", got, tc.up, log)
			}
			if !tc.up {
				if n := strings.Count(log.String(), "redis unavailable"); n != 1 {
					t.Errorf("%d 'redis unavailable' lines while probing, want 1 (one per state change); log:\n%s", n, log)
				}
				if _, err := c.Exec(context.Background(), echo, "k", []string{"1"}); err != ErrDown {
					t.Errorf("Exec while down: %v, want ErrDown", err)
				}
				return
			}
			v, err := c.Exec(context.Background(), echo, "k", []string{"42"})
			if err != nil || len(v) != 2 || v[0] != 42 || v[1] != 7 {
				t.Fatalf("Exec = %v, %v", v, err)
			}
		})
	}
}

// TLS to Redis: verified against ca_file, with a client certificate
// (Redis's tls-auth-clients); without the client certificate Redis
// refuses the handshake and the circuit stays open.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := newCert(t, nil, nil, "test ca", true)
	srv, srvKey := newCert(t, ca, caKey, "redis.test", false)
	cli, cliKey := newCert(t, ca, caKey, "rampart", false)
	caFile := writePEM(t, dir, "ca.pem", ca.Raw, nil)
	srvCert, srvKeyFile := writePEM(t, dir, "srv.pem", srv.Raw, nil), writePEM(t, dir, "srv-key.pem", nil, srvKey)
	cliCert, cliKeyFile := writePEM(t, dir, "cli.pem", cli.Raw, nil), writePEM(t, dir, "cli-key.pem", nil, cliKey)
	rs := redistest.Start(t, "--port", "0", "--tls-port", "{port}", "--tls-cert-file", srvCert, "--tls-key-file", srvKeyFile, "--tls-ca-cert-file", caFile)
	tests := []struct {
		name string
		tls  *config.RedisTLS
		up   bool
	}{
		{"verified with client certificate", &config.RedisTLS{CAFile: caFile, ServerName: "redis.test", CertFile: cliCert, KeyFile: cliKeyFile}, true},
		{"no client certificate", &config.RedisTLS{CAFile: caFile, ServerName: "redis.test"}, false},
		{"wrong server name", &config.RedisTLS{CAFile: caFile, ServerName: "other.test", CertFile: cliCert, KeyFile: cliKeyFile}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, log := client(t, &config.Redis{Address: rs.Addr(), TLS: tc.tls})
			if got := waitUp(t, c); got != tc.up {
				t.Fatalf("up = %v, want %v; log:\n%s", got, tc.up, log)
			}
			if tc.up {
				if v, err := c.Exec(context.Background(), echo, "k", []string{"5"}); err != nil || v[0] != 5 {
					t.Fatalf("Exec over TLS = %v, %v", v, err)
				}
			}
		})
	}
}

// Through Sentinel: the client asks the sentinels for the master and
// decides there.
func TestSentinel(t *testing.T) {
	master := redistest.Start(t)
	sen := redistest.StartSentinel(t, "mymaster", master)
	c, log := client(t, &config.Redis{Sentinel: &config.Sentinel{Master: "mymaster", Addresses: []string{sen.Addr()}}})
	if !waitUp(t, c) {
		t.Fatalf("not up through the sentinel; log:\n%s", log)
	}
	script := rueidis.NewLuaScript(`redis.call('SET', KEYS[1], ARGV[1]) return {1}`)
	if _, err := c.Exec(context.Background(), script, "via-sentinel", []string{"yes"}); err != nil {
		t.Fatal(err)
	}
	if out, _ := master.Do("GET", "via-sentinel"); out != "yes" {
		t.Errorf("the master holds %q, want the key written through the sentinel's master", out)
	}
}

// The circuit opens on the first failure and a probe closes it once
// Redis answers again; Reason tells the failures apart.
func TestCircuit(t *testing.T) {
	rs := redistest.Start(t)
	c, log := client(t, &config.Redis{Address: rs.Addr()})
	if !waitUp(t, c) {
		t.Fatal("not up")
	}
	rs.Kill()
	_, err := c.Exec(context.Background(), echo, "k", []string{"1"})
	if err == nil || Reason(err) != ReasonDown {
		t.Fatalf("Exec after the kill: %v (reason %q), want a down error", err, Reason(err))
	}
	if c.Up() {
		t.Fatal("circuit still closed after a failed decision")
	}
	if _, err := c.Exec(context.Background(), echo, "k", []string{"1"}); err != ErrDown {
		t.Fatalf("Exec with the circuit open: %v, want ErrDown at once", err)
	}
	rs.Restart()
	if !waitUp(t, c) {
		t.Fatalf("not up again within 1s of the restart; log:\n%s", log)
	}
	bad := rueidis.NewLuaScript(`return redis.error_reply('ERR boom')`)
	if _, err := c.Exec(context.Background(), bad, "k", nil); Reason(err) != ReasonError || !c.Up() {
		t.Errorf("an error reply: reason %q, up %v; want error and the circuit closed", Reason(err), c.Up())
	}
	odd := rueidis.NewLuaScript(`return 'text'`)
	if _, err := c.Exec(context.Background(), odd, "k", nil); err != ErrUnexpected {
		t.Errorf("a string reply: %v, want ErrUnexpected", err)
	}
	if got := strings.Count(log.String(), "redis unavailable"); got != 1 {
		t.Errorf("%d 'redis unavailable' lines, want 1; log:\n%s", got, log)
	}
}

func newCert(t *testing.T, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, cn string, isCA bool) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	if isCA {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
	} else {
		tmpl.DNSNames = []string{cn}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func writePEM(t *testing.T, dir, name string, der []byte, key *ecdsa.PrivateKey) string {
	t.Helper()
	var b []byte
	if key != nil {
		k, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		b = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: k})
	} else {
		b = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
