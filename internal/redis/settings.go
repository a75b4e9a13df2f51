package redis

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/redis/rueidis"

	"github.com/rampart-gw/rampart/internal/config"
)

// Settings are cluster.redis made ready to connect: the password and TLS
// files read, the client options built. Load makes them at compile time;
// nothing connects until a snapshot acquires the Client (Claim).
type Settings struct {
	// Timeout bounds one decision (cluster.redis.timeout).
	Timeout time.Duration
	// OnFailure is cluster.redis.on_failure: local, allow or deny.
	OnFailure string
	// Prefix starts every key (cluster.redis.prefix).
	Prefix string
	// Instances is cluster.instances, at least 1.
	Instances int

	opt rueidis.ClientOption
	// key is the Client's identity in the registry: everything that
	// shapes its connections (addresses, credentials, TLS, timeout).
	key string
}

// Load builds the Settings of cfg's cluster.redis, or returns every
// problem found, positioned at the key it concerns. It returns nil
// settings and no error when cluster.redis is not set.
func Load(cfg *config.Config) (*Settings, config.Errors) {
	rd := cfg.Cluster.Redis
	if rd == nil {
		return nil, nil
	}
	var errs config.Errors
	st := &Settings{
		Timeout:   rd.Timeout.D(),
		OnFailure: rd.OnFailure,
		Prefix:    rd.Prefix,
		Instances: max(1, cfg.Cluster.Instances),
	}
	if st.Timeout <= 0 { // a config built in Go without defaults
		st.Timeout = config.DefaultRedisTimeout.D()
	}
	if st.OnFailure == "" {
		st.OnFailure = config.DefaultRedisOnFailure
	}
	id := &strings.Builder{}
	opt := rueidis.ClientOption{
		Username: rd.Username,
		// The gateway never reads through a client-side cache, and a
		// decision must not be retried (it would take a second token).
		DisableCache: true,
		DisableRetry: true,
		ClientName:   "rampart",
		// Dialing happens in the background prober, and on the request
		// path only when an established connection broke; the decision's
		// own timeout bounds what a request waits.
		Dialer: netDialer(max(time.Second, st.Timeout)),
		// A connection that has not answered for this long is dropped
		// and dialed again (rueidis sends PINGs on idle connections).
		ConnWriteTimeout: max(2*time.Second, 20*st.Timeout),
		// One pipelined connection per node: the prober's PING then
		// tests the very connection decisions use, so a Redis restart is
		// not met again by a decision on another, stale connection.
		PipelineMultiplex: -1,
	}
	switch {
	case rd.Sentinel != nil:
		opt.InitAddress = rd.Sentinel.Addresses
		opt.Sentinel = rueidis.SentinelOption{
			MasterSet: rd.Sentinel.Master,
			Dialer:    opt.Dialer,
			// Recover from a missed +switch-master event (see rueidis).
			TopologyRefreshInterval: 5 * time.Second,
		}
		fmt.Fprintf(id, "sentinel|%s|%s", rd.Sentinel.Master, strings.Join(rd.Sentinel.Addresses, ","))
	case len(rd.Addresses) > 0:
		opt.InitAddress = rd.Addresses
		fmt.Fprintf(id, "cluster|%s", strings.Join(rd.Addresses, ","))
	default:
		opt.InitAddress = []string{rd.Address}
		// One server: never guess at cluster mode, and keep a client
		// (which dials again by itself) even while the server is down.
		opt.ForceSingleClient = true
		fmt.Fprintf(id, "single|%s", rd.Address)
	}
	fmt.Fprintf(id, "|user=%s|timeout=%d", rd.Username, st.Timeout)
	if rd.PasswordFile != "" {
		b, err := os.ReadFile(rd.PasswordFile)
		if err != nil {
			errs = append(errs, cfg.Errorf("cluster.redis.password_file", "read password_file: %v", err))
		} else if pw := strings.TrimSpace(string(b)); pw == "" {
			errs = append(errs, cfg.Errorf("cluster.redis.password_file", "password_file %s is empty", rd.PasswordFile))
		} else {
			opt.Password = pw
			fmt.Fprintf(id, "|password=%s", digest([]byte(pw)))
		}
	}
	if t := rd.TLS; t != nil {
		tc, sum, tlsErrs := tlsConfig(cfg, t)
		errs = append(errs, tlsErrs...)
		opt.TLSConfig = tc
		opt.Sentinel.TLSConfig = tc
		fmt.Fprintf(id, "|tls|%s|%v|%s", t.ServerName, t.InsecureSkipVerify, sum)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	st.opt, st.key = opt, id.String()
	return st, nil
}

// tlsConfig builds the client TLS config of cluster.redis.tls and a digest
// of the files it read, for the identity.
func tlsConfig(cfg *config.Config, t *config.RedisTLS) (*tls.Config, string, config.Errors) {
	var errs config.Errors
	tc := &tls.Config{ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify, MinVersion: tls.VersionTLS12}
	h := sha256.New()
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		switch {
		case err != nil:
			errs = append(errs, cfg.Errorf("cluster.redis.tls.ca_file", "read ca_file: %v", err))
		default:
			roots := x509.NewCertPool()
			if !roots.AppendCertsFromPEM(pem) {
				errs = append(errs, cfg.Errorf("cluster.redis.tls.ca_file", "ca_file %s: no PEM certificates", t.CAFile))
			}
			tc.RootCAs = roots
			h.Write(pem)
		}
	}
	if t.CertFile != "" {
		certPEM, err1 := os.ReadFile(t.CertFile)
		keyPEM, err2 := os.ReadFile(t.KeyFile)
		switch {
		case err1 != nil:
			errs = append(errs, cfg.Errorf("cluster.redis.tls.cert_file", "read cert_file: %v", err1))
		case err2 != nil:
			errs = append(errs, cfg.Errorf("cluster.redis.tls.key_file", "read key_file: %v", err2))
		default:
			cert, err := tls.X509KeyPair(certPEM, keyPEM)
			if err != nil {
				errs = append(errs, cfg.Errorf("cluster.redis.tls.cert_file", "load client certificate: %v", err))
			}
			tc.Certificates = []tls.Certificate{cert}
			h.Write(certPEM)
			h.Write(keyPEM)
		}
	}
	return tc, hex.EncodeToString(h.Sum(nil)[:8]), errs
}

// digest is a short hash for identities (never the secret itself).
func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}
