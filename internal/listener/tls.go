package listener

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/listener/guard"
)

// Certs holds a listener's certificates and chooses one per handshake by
// SNI. Reload swaps the whole set atomically: handshakes in progress finish
// with the set they started with and established connections are untouched,
// so certificates can be rotated without dropping anything.
type Certs struct {
	cfg config.ListenerTLS
	set atomic.Pointer[certSet]
}

type certSet struct {
	certs []*tls.Certificate
	// exact maps a lower-case DNS name to its certificate; wildcard maps
	// the suffix of "*.example.com" (".example.com").
	exact    map[string]*tls.Certificate
	wildcard map[string]*tls.Certificate
	clientCA *x509.CertPool
}

// LoadCerts reads the certificates (and client CA) named by cfg.
func LoadCerts(cfg config.ListenerTLS) (*Certs, error) {
	c := &Certs{cfg: cfg}
	if err := c.Reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// Reload re-reads every file; on error the current set stays in use.
func (c *Certs) Reload() error {
	if len(c.cfg.Certificates) == 0 {
		return errors.New("tls: no certificates")
	}
	s := &certSet{exact: map[string]*tls.Certificate{}, wildcard: map[string]*tls.Certificate{}}
	for i, cf := range c.cfg.Certificates {
		kp, err := tls.LoadX509KeyPair(cf.CertFile, cf.KeyFile)
		if err != nil {
			return fmt.Errorf("tls certificate %d (%s): %w", i, cf.CertFile, err)
		}
		leaf := kp.Leaf
		if leaf == nil {
			if leaf, err = x509.ParseCertificate(kp.Certificate[0]); err != nil {
				return fmt.Errorf("tls certificate %d (%s): %w", i, cf.CertFile, err)
			}
			kp.Leaf = leaf
		}
		cert := &kp
		s.certs = append(s.certs, cert)
		names := leaf.DNSNames
		if len(names) == 0 && leaf.Subject.CommonName != "" {
			names = []string{leaf.Subject.CommonName}
		}
		for _, n := range names {
			n = strings.ToLower(n)
			if suffix, ok := strings.CutPrefix(n, "*"); ok && strings.HasPrefix(suffix, ".") {
				if _, dup := s.wildcard[suffix]; !dup {
					s.wildcard[suffix] = cert
				}
			} else if _, dup := s.exact[n]; !dup {
				s.exact[n] = cert
			}
		}
		for _, ip := range leaf.IPAddresses {
			if _, dup := s.exact[ip.String()]; !dup {
				s.exact[ip.String()] = cert
			}
		}
	}
	if ca := c.cfg.ClientAuth.CAFile; ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return fmt.Errorf("tls client_auth ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("tls client_auth ca_file %s: no PEM certificates", ca)
		}
		s.clientCA = pool
	}
	c.set.Store(s)
	return nil
}

// pick returns the certificate for an SNI name: exact match, then the
// longest matching wildcard, then the first certificate.
func (s *certSet) pick(name string) *tls.Certificate {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if c, ok := s.exact[name]; ok {
		return c
	}
	for i := 0; i < len(name); i++ {
		if name[i] == '.' {
			// A wildcard covers exactly one label: "*.example.com" matches
			// "a.example.com", not "a.b.example.com".
			if c, ok := s.wildcard[name[i:]]; ok && i > 0 {
				return c
			}
			break
		}
	}
	return s.certs[0]
}

// Config returns the server TLS configuration: certificates by SNI, the
// minimum version, ALPN for h2 and HTTP/1.1, and client authentication.
func (c *Certs) Config() (*tls.Config, error) { return c.ConfigFor([]string{"h2", "http/1.1"}) }

// ConfigFor is Config with the ALPN protocols alpn (none: no ALPN, as
// for a tcp listener, whose bytes may be any protocol).
func (c *Certs) ConfigFor(alpn []string) (*tls.Config, error) {
	tc := &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: alpn,
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			return c.set.Load().pick(hello.ServerName), nil
		},
	}
	if c.cfg.SessionTickets != nil && !*c.cfg.SessionTickets {
		tc.SessionTicketsDisabled = true
	} else {
		// One key set for every listener, kept across reloads and
		// rotated hourly (tickets.go). A per-handshake clone below
		// copies the keys current at the time.
		ticketKeys.apply(tc)
	}
	switch c.cfg.MinVersion {
	case "", "1.2":
	case "1.3":
		tc.MinVersion = tls.VersionTLS13
	default:
		return nil, fmt.Errorf("tls min_version %q: want 1.2 or 1.3", c.cfg.MinVersion)
	}
	switch c.cfg.ClientAuth.Mode {
	case "", "none":
	case "request", "require":
		mode := tls.VerifyClientCertIfGiven
		if c.cfg.ClientAuth.Mode == "require" {
			mode = tls.RequireAndVerifyClientCert
		}
		// The client CA pool is read per handshake so Reload applies to it.
		tc.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
			cc := tc.Clone()
			cc.GetConfigForClient = nil
			cc.ClientAuth = mode
			cc.ClientCAs = c.set.Load().clientCA
			return cc, nil
		}
	default:
		return nil, fmt.Errorf("tls client_auth mode %q: want none, request or require", c.cfg.ClientAuth.Mode)
	}
	return tc, nil
}

// certPollInterval is how often certificate files are checked for changes.
const certPollInterval = CertPollInterval

// CertPollInterval is how often a listener checks its certificate files
// for changes (Watch).
const CertPollInterval = 5 * time.Second

// Watch reloads the certificates whenever one of their files changes, until
// ctx is done. It polls modification times, which also catches editors and
// tools (cert-manager, certbot) that replace files by renaming.
func (c *Certs) Watch(ctx context.Context, every time.Duration, log *slog.Logger) {
	defer func() {
		if r := recover(); r != nil {
			log.Error("certificate watcher panicked; certificates will not reload until restart", "panic", fmt.Sprint(r))
		}
	}()
	last := c.stamp()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		last = c.poll(last, log)
	}
}

// poll reloads the certificates if their files changed since last, and
// returns the files' new stamp. A panic is logged and the watcher goes on:
// the current certificates stay in use until the files change again.
func (c *Certs) poll(last string, log *slog.Logger) (next string) {
	next = last
	defer func() {
		if r := recover(); r != nil {
			log.Error("certificate reload panicked; the current certificates stay in use", "panic", fmt.Sprint(r))
		}
	}()
	now := c.stamp()
	if now == last {
		return last
	}
	next = now
	if err := c.Reload(); err != nil {
		log.Error("certificate reload failed; the current certificates stay in use", "err", err.Error())
	} else {
		log.Info("certificates reloaded")
	}
	return now
}

// stamp summarises the files' sizes and modification times.
func (c *Certs) stamp() string {
	var b strings.Builder
	files := []string{c.cfg.ClientAuth.CAFile}
	for _, cf := range c.cfg.Certificates {
		files = append(files, cf.CertFile, cf.KeyFile)
	}
	for _, f := range files {
		if f == "" {
			continue
		}
		if st, err := os.Stat(f); err == nil {
			fmt.Fprintf(&b, "%s:%d:%d;", f, st.Size(), st.ModTime().UnixNano())
		} else {
			fmt.Fprintf(&b, "%s:missing;", f)
		}
	}
	return b.String()
}

type tlsConnKey struct{}

// connContext records the guarded connection (guard.Conn) and, for TLS
// listeners, the TLS connection, so the handler can restore r.TLS.
func connContext(ctx context.Context, c net.Conn) context.Context {
	ctx = guard.ConnContext(ctx, c)
	var inner net.Conn = c
	for inner != nil {
		if tc, ok := inner.(*tls.Conn); ok {
			return context.WithValue(ctx, tlsConnKey{}, tc)
		}
		u, ok := inner.(interface{ Unwrap() net.Conn })
		if !ok {
			break
		}
		inner = u.Unwrap()
	}
	return ctx
}

// TLSState returns the TLS state of the connection a request arrived on,
// or nil for plain connections. net/http cannot fill r.TLS itself because
// TLS runs beneath the framing guard.
func TLSState(ctx context.Context) *tls.ConnectionState {
	tc, ok := ctx.Value(tlsConnKey{}).(*tls.Conn)
	if !ok {
		return nil
	}
	st := tc.ConnectionState()
	return &st
}
