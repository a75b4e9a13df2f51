package listener

import (
	"crypto/tls"
	"crypto/x509"
	"syscall"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/config"
)

// connect reports whether a TLS connection to a server running cfg
// resumed its session.
func connect(t testing.TB, cfg, client *tls.Config) bool {
	t.Helper()
	st, err := dialTLS(t, cfg, client)
	if err != nil {
		t.Fatal(err)
	}
	return st.DidResume
}

func ticketCerts(t testing.TB, tickets *bool, version uint16) (serverCfg func() *tls.Config, client *tls.Config) {
	ca := newTestCA(t)
	dir := t.TempDir()
	cf, kf := ca.issue(t, dir, "srv", false, "api.example.com")
	lc := config.ListenerTLS{Certificates: []config.Certificate{{CertFile: cf, KeyFile: kf}}, SessionTickets: tickets}
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	client = &tls.Config{RootCAs: pool, ServerName: "api.example.com", ClientSessionCache: tls.NewLRUClientSessionCache(8),
		MinVersion: version, MaxVersion: version}
	return func() *tls.Config {
		c, err := LoadCerts(lc)
		if err != nil {
			t.Fatal(err)
		}
		tc, err := c.Config()
		if err != nil {
			t.Fatal(err)
		}
		return tc
	}, client
}

// TestSessionResumption: a client resumes its TLS session (1.2 tickets and
// 1.3 PSK) on the same listener, on a config built afresh as a reload or a
// second listener builds it (the keys are the process's, not the
// config's), and after one key rotation; two rotations end the ticket;
// session_tickets: false turns resumption off.
func TestSessionResumption(t *testing.T) {
	off := false
	for _, v := range []struct {
		name string
		ver  uint16
	}{{"TLS1.2", tls.VersionTLS12}, {"TLS1.3", tls.VersionTLS13}} {
		t.Run(v.name, func(t *testing.T) {
			build, client := ticketCerts(t, nil, v.ver)
			cfg := build()
			if connect(t, cfg, client) {
				t.Fatal("first connection resumed")
			}
			if !connect(t, cfg, client) {
				t.Fatal("second connection to the same config not resumed")
			}
			if !connect(t, build(), client) {
				t.Fatal("not resumed on a config built afresh (reload / another listener)")
			}
			ticketKeys.mu.Lock()
			ticketKeys.rotateLocked(time.Now())
			ticketKeys.mu.Unlock()
			if !connect(t, cfg, client) {
				t.Fatal("not resumed after one rotation (the previous key must still decrypt)")
			}
			// The last connection got a ticket under the current key;
			// two rotations retire it.
			for range 2 {
				ticketKeys.mu.Lock()
				ticketKeys.rotateLocked(time.Now())
				ticketKeys.mu.Unlock()
			}
			if connect(t, cfg, client) {
				t.Fatal("resumed with a ticket two rotations old")
			}
			buildOff, clientOff := ticketCerts(t, &off, v.ver)
			cfgOff := buildOff()
			connect(t, cfgOff, clientOff)
			if connect(t, cfgOff, clientOff) {
				t.Fatal("resumed with session_tickets: false")
			}
		})
	}
}

// BenchmarkHandshake compares full TLS handshakes (ECDSA P-256 server
// certificate) with resumed ones, TLS 1.2 and 1.3, over loopback, client
// and server in this process. Besides ns/op (wall, noisy on a shared
// machine) it reports cpu-µs/op, the process's CPU time per handshake
// (both ends), which is what resumption saves.
func BenchmarkHandshake(b *testing.B) {
	for _, v := range []struct {
		name string
		ver  uint16
	}{{"TLS1.2", tls.VersionTLS12}, {"TLS1.3", tls.VersionTLS13}} {
		for _, resumed := range []bool{false, true} {
			name := v.name + "/full"
			if resumed {
				name = v.name + "/resumed"
			}
			b.Run(name, func(b *testing.B) {
				build, client := ticketCerts(b, nil, v.ver)
				ln, err := tls.Listen("tcp", "127.0.0.1:0", build())
				if err != nil {
					b.Fatal(err)
				}
				defer ln.Close()
				go func() {
					for {
						c, err := ln.Accept()
						if err != nil {
							return
						}
						go func() {
							defer c.Close()
							if c.(*tls.Conn).Handshake() == nil {
								c.Write([]byte("x"))
								c.Read(make([]byte, 1))
							}
						}()
					}
				}()
				dial := func() bool {
					conn, err := tls.Dial("tcp", ln.Addr().String(), client)
					if err != nil {
						b.Fatal(err)
					}
					conn.Read(make([]byte, 1))
					r := conn.ConnectionState().DidResume
					conn.Close()
					return r
				}
				if resumed {
					dial()
				} else {
					client.ClientSessionCache = nil
				}
				cpu0 := cpuTime()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if dial() != resumed {
						b.Fatalf("resumed = %v, want %v", !resumed, resumed)
					}
				}
				b.StopTimer()
				b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
			})
		}
	}
}

// cpuTime is the process's user + system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
