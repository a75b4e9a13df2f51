package h1server

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/listener/guard"
)

// writeCounter counts the Write calls (system calls, for a TCP
// connection) beneath a server's tls.Conn.
type writeCounter struct {
	net.Conn
	n *atomic.Int64
}

func (c writeCounter) Write(b []byte) (int, error) { c.n.Add(1); return c.Conn.Write(b) }

type tlsCountListener struct {
	net.Listener
	cfg *tls.Config
	n   *atomic.Int64
}

func (l tlsCountListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return tls.Server(writeCounter{c, l.n}, l.cfg), nil
}

func testCert(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestTLSOneWritePerResponse: under TLS a response whose head and body fit
// in one record (16 KiB) goes out in one Write of the TCP connection (one
// record), whether the body fits in the write buffer or not; a larger one
// still arrives whole.
func TestTLSOneWritePerResponse(t *testing.T) {
	cases := []struct {
		size      int
		maxWrites int64
	}{
		{100, 1},
		{8000, 1},
		{15000, 1},
		{40000, 4}, // head, then the body in records of 16 KiB
	}
	var writes atomic.Int64
	var before atomic.Int64 // the writes when the last handler started
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		before.Store(writes.Load())
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(n))
		body := make([]byte, n)
		for i := range body {
			body[i] = 'a' + byte(i%26)
		}
		w.Write(body)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{testCert(t)}, NextProtos: []string{"http/1.1"}}
	srv := &Server{Handler: h, Config: &guard.Config{}, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute,
		HandOver: func(g *guard.Conn) { g.Close() }, Log: slog.New(slog.DiscardHandler)}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(tlsCountListener{ln, cfg, &writes}) }()
	t.Cleanup(func() {
		srv.Close()
		<-served
	})
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	// Past Go's dynamic record sizing (small records for the first 128
	// KiB of a connection), as a busy keep-alive connection is.
	for sent := 0; sent < 160<<10; sent += 16000 {
		tlsGet(t, conn, br, 16000)
	}
	for _, tc := range cases {
		tlsGet(t, conn, br, tc.size)
		// The client has read the whole response: it is all written.
		if got := writes.Load() - before.Load(); got < 1 || got > tc.maxWrites {
			t.Errorf("%d-byte body: %d writes, want 1..%d", tc.size, got, tc.maxWrites)
		}
	}
}

func tlsGet(t *testing.T, conn net.Conn, br *bufio.Reader, n int) {
	t.Helper()
	if _, err := io.WriteString(conn, "GET /?n="+strconv.Itoa(n)+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || len(body) != n {
		t.Fatalf("%d-byte body: read %d bytes, %v", n, len(body), err)
	}
	for i, b := range body {
		if b != 'a'+byte(i%26) {
			t.Fatalf("%d-byte body: byte %d is %q", n, i, b)
		}
	}
}
