package cluster

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// clientCert is an upstream's client certificate (upstream mTLS), read
// from cert_file and key_file and read again when either file changes, so
// that a rotated certificate is presented on the next new connection
// without a reload. A file that cannot be read or parsed keeps the last
// good certificate in use and is logged once per change.
type clientCert struct {
	certFile, keyFile string

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   string
	checked time.Time
}

// clientCertCheckEvery bounds how often a handshake stats the files.
const clientCertCheckEvery = time.Second

// clientCerts holds one clientCert per file pair, shared by every config
// that names it (the upstream, its pool, its health checker, the next
// snapshot's).
var clientCerts sync.Map // "cert\x00key" -> *clientCert

// loadClientCert returns the shared clientCert of the pair, loading it
// now: an error is a config error (the files are missing or invalid).
func loadClientCert(certFile, keyFile string) (*clientCert, error) {
	key := certFile + "\x00" + keyFile
	if v, ok := clientCerts.Load(key); ok {
		c := v.(*clientCert)
		c.mu.Lock()
		defer c.mu.Unlock()
		// A config is being built: its files must be readable now.
		if err := c.reloadLocked(time.Now(), true); err != nil {
			return nil, err
		}
		return c, nil
	}
	c := &clientCert{certFile: certFile, keyFile: keyFile}
	if err := c.reloadLocked(time.Now(), true); err != nil {
		return nil, err
	}
	v, _ := clientCerts.LoadOrStore(key, c)
	return v.(*clientCert), nil
}

func fileStamp(paths ...string) string {
	s := ""
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			s += p + ":missing;"
			continue
		}
		s += fmt.Sprintf("%s:%d:%d;", p, st.Size(), st.ModTime().UnixNano())
	}
	return s
}

// reloadLocked re-reads the files when their stamp changed (or force).
// With strict it returns the error; otherwise it logs it once per stamp
// and keeps the last good certificate.
func (c *clientCert) reloadLocked(now time.Time, strict bool) error {
	c.checked = now
	stamp := fileStamp(c.certFile, c.keyFile)
	if stamp == c.stamp && c.cert != nil {
		return nil
	}
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		err = fmt.Errorf("upstream tls client certificate %s: %w", c.certFile, err)
		if strict || c.cert == nil {
			return err
		}
		if stamp != c.stamp {
			slog.Error("upstream client certificate reload failed; the previous one stays in use", "cert_file", c.certFile, "err", err.Error())
			c.stamp = stamp
		}
		return nil
	}
	if c.cert != nil {
		slog.Info("upstream client certificate reloaded", "cert_file", c.certFile)
	}
	c.cert, c.stamp = &cert, stamp
	return nil
}

// get is tls.Config.GetClientCertificate: the current certificate, after a
// check of the files at most once per clientCertCheckEvery. It is presented
// whatever CAs the target names; a target that refuses it fails the
// handshake, a connect-stage failure.
func (c *clientCert) get(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := time.Now(); now.Sub(c.checked) >= clientCertCheckEvery {
		c.reloadLocked(now, false)
	}
	return c.cert, nil
}
