package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/net/http2"

	"github.com/rampart-gw/rampart/test/gwtest"
)

// drainGateway starts the binary with drain settings and waits for readyz.
func drainGateway(t *testing.T, extra string, up string) (p *gwtest.Proc, gwAddr, adminAddr string) {
	t.Helper()
	gwAddr, adminAddr = gwtest.FreeAddr(t), gwtest.FreeAddr(t)
	cfgPath := filepath.Join(t.TempDir(), "rampart.yaml")
	cfg := fmt.Sprintf(`listeners:
  - {name: public, address: %q}
admin: {address: %q}
%s
upstreams:
  up: {targets: [{address: %q}]}
routes:
  - {name: all, match: {path: {prefix: /}}, upstream: up}
`, gwAddr, adminAddr, extra, up)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p = gwtest.StartProc(t, rampartBin, nil, "run", "-c", cfgPath)
	gwtest.WaitFor(t, 10*time.Second, "readyz 200", func() bool {
		select {
		case <-p.Exited:
			t.Fatalf("rampart exited early: %v\n%s", p.Err, p.Stderr())
		default:
		}
		return readyzCode(adminAddr) == 200
	})
	return p, gwAddr, adminAddr
}

func readyzCode(adminAddr string) int {
	c := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}, Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + adminAddr + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestDrainClosesCleanly drains a gateway that holds a request in flight,
// an idle HTTP/1.1 keep-alive connection, an HTTP/2 connection and a
// WebSocket: the request completes, the idle connection is closed at once,
// the HTTP/2 client gets a GOAWAY, the WebSocket gets a close frame with
// code 1001 (both the client and the upstream), and the process exits 0
// within drain_timeout.
func TestDrainClosesCleanly(t *testing.T) {
	const drain = 3 * time.Second
	arrived := make(chan struct{}, 1)
	upClose := make(chan websocket.StatusCode, 1)
	up := gwtest.Upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow":
			arrived <- struct{}{}
			select {
			case <-time.After(1500 * time.Millisecond):
			case <-r.Context().Done():
				return
			}
		case "/ws":
			c, err := websocket.Accept(w, r, nil)
			if err != nil {
				return
			}
			defer c.CloseNow()
			for {
				typ, b, err := c.Read(context.Background())
				if err != nil {
					upClose <- websocket.CloseStatus(err)
					return
				}
				c.Write(context.Background(), typ, b)
			}
		}
		io.WriteString(w, "done "+r.URL.Path)
	}))
	p, gwAddr, _ := drainGateway(t, fmt.Sprintf("drain_timeout: %s", drain), up)

	// An idle keep-alive connection: one request answered, then silence.
	idle, err := net.Dial("tcp", gwAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	fmt.Fprintf(idle, "GET /fast HTTP/1.1\r\nHost: x\r\n\r\n")
	idleR := bufio.NewReader(idle)
	resp, err := http.ReadResponse(idleR, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("idle connection's request: %v %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	idleClosed := make(chan time.Time, 1)
	go func() {
		idle.SetReadDeadline(time.Now().Add(2 * drain))
		idleR.ReadByte() // EOF when the gateway closes it
		idleClosed <- time.Now()
	}()

	// An HTTP/2 (prior knowledge) connection that has done one request.
	h2, err := net.Dial("tcp", gwAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer h2.Close()
	io.WriteString(h2, http2.ClientPreface)
	fr := http2.NewFramer(h2, h2)
	fr.WriteSettings()
	goaway := make(chan time.Time, 1)
	go func() {
		h2.SetReadDeadline(time.Now().Add(2 * drain))
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				return
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					fr.WriteSettingsAck()
				}
			case *http2.GoAwayFrame:
				goaway <- time.Now()
				return
			}
		}
	}()

	// A WebSocket through the gateway, echoing.
	ctx, cancel := context.WithTimeout(context.Background(), 4*drain)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+gwAddr+"/ws", &websocket.DialOptions{HTTPClient: newClient(t)})
	if err != nil {
		t.Fatalf("websocket dial: %v", err)
	}
	defer ws.CloseNow()
	if err := ws.Write(ctx, websocket.MessageText, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, b, err := ws.Read(ctx); err != nil || string(b) != "ping" {
		t.Fatalf("echo: %q %v", b, err)
	}
	wsClose := make(chan websocket.StatusCode, 1)
	go func() {
		for {
			if _, _, err := ws.Read(ctx); err != nil {
				wsClose <- websocket.CloseStatus(err)
				return
			}
		}
	}()

	// A request in flight on its own connection.
	inflight := make(chan string, 1)
	go func() {
		cl := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}, Timeout: 4 * drain}
		resp, err := cl.Get("http://" + gwAddr + "/slow")
		if err != nil {
			inflight <- "error: " + err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		inflight <- fmt.Sprintf("%d %s", resp.StatusCode, b)
	}()
	select {
	case <-arrived:
	case <-time.After(5 * time.Second):
		t.Fatal("slow request never reached the upstream")
	}
	sent := time.Now()
	p.Signal(t, syscall.SIGTERM)

	within := func(ch <-chan time.Time, d time.Duration, what string) time.Duration {
		t.Helper()
		select {
		case at := <-ch:
			return at.Sub(sent)
		case <-time.After(d):
			t.Errorf("%s: not within %s of SIGTERM", what, d)
			return -1
		}
	}
	if took := within(idleClosed, drain/2, "idle keep-alive connection closed"); took >= 0 {
		t.Logf("idle keep-alive connection closed %s after SIGTERM", took.Round(time.Millisecond))
	}
	if took := within(goaway, drain/2, "HTTP/2 GOAWAY"); took >= 0 {
		t.Logf("HTTP/2 GOAWAY %s after SIGTERM", took.Round(time.Millisecond))
	}
	select {
	case got := <-inflight:
		if got != "200 done /slow" {
			t.Errorf("in-flight request: %s, want 200 done /slow", got)
		}
	case <-time.After(drain + time.Second):
		t.Error("in-flight request did not finish")
	}
	select {
	case code := <-wsClose:
		took := time.Since(sent)
		if code != websocket.StatusGoingAway {
			t.Errorf("WebSocket client saw close %v, want 1001 going away", code)
		}
		if took > drain {
			t.Errorf("WebSocket close %s after SIGTERM, want before drain_timeout %s", took, drain)
		}
		t.Logf("WebSocket close %v %s after SIGTERM", code, took.Round(time.Millisecond))
	case <-time.After(drain + time.Second):
		t.Error("WebSocket client got no close frame")
	}
	select {
	case code := <-upClose:
		if code != websocket.StatusGoingAway {
			t.Errorf("upstream saw close %v, want 1001 going away", code)
		}
	case <-time.After(2 * time.Second):
		t.Error("upstream got no close frame")
	}
	if code := p.WaitExit(t, drain+3*time.Second); code != 0 {
		t.Errorf("exit code %d, want 0\n%s", code, p.Stderr())
	}
	if took := time.Since(sent); took > drain+500*time.Millisecond {
		t.Errorf("exit %s after SIGTERM, want within drain_timeout %s", took, drain)
	}
	if !strings.Contains(p.Stderr(), "WebSocket close 1001") {
		t.Errorf("no log line for the WebSocket goodbye:\n%s", p.Stderr())
	}
}

// TestDrainAPIAndDelay drains through POST /api/v1/drain with a
// drain_delay: readyz turns 503 at once, the listener keeps serving new
// connections during the delay, then stops, and the process exits 0.
func TestDrainAPIAndDelay(t *testing.T) {
	const delay = 1500 * time.Millisecond
	up := gwtest.Upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	p, gwAddr, adminAddr := drainGateway(t, fmt.Sprintf("drain_timeout: 2s\ndrain_delay: %s", delay), up)
	admin := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}, Timeout: 2 * time.Second}

	// Not a POST: not allowed.
	if resp, err := admin.Get("http://" + adminAddr + "/api/v1/drain"); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET /api/v1/drain: %v %v, want 405", resp, err)
	}
	sent := time.Now()
	resp, err := admin.Post("http://"+adminAddr+"/api/v1/drain", "", nil)
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /api/v1/drain: %v %v, want 202", resp, err)
	}
	resp.Body.Close()
	if code := readyzCode(adminAddr); code != http.StatusServiceUnavailable {
		t.Errorf("readyz right after the drain call: %d, want 503", code)
	}
	// During the delay, new connections are still served.
	cl := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}, Timeout: 2 * time.Second}
	if resp, err := cl.Get("http://" + gwAddr + "/x"); err != nil || resp.StatusCode != 200 {
		t.Errorf("request during drain_delay: %v %v, want 200", resp, err)
	} else {
		resp.Body.Close()
	}
	if time.Since(sent) >= delay {
		t.Fatalf("the check took longer than the drain delay; the test proves nothing")
	}
	gwtest.WaitFor(t, delay+3*time.Second, "listener closed after the drain delay", func() bool {
		c, err := net.DialTimeout("tcp", gwAddr, 200*time.Millisecond)
		if err != nil {
			return true
		}
		c.Close()
		return false
	})
	if took := time.Since(sent); took < delay {
		t.Errorf("listener closed %s after the drain call, before drain_delay %s", took, delay)
	}
	if code := p.WaitExit(t, 5*time.Second); code != 0 {
		t.Errorf("exit code %d, want 0\n%s", code, p.Stderr())
	}
}

// TestDrainCommand: `rampart drain` (the preStop hook) drains a running
// gateway over loopback and returns once it has stopped.
func TestDrainCommand(t *testing.T) {
	up := gwtest.Upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	p, _, adminAddr := drainGateway(t, "drain_timeout: 2s", up)
	code, stdout, stderr := runBin(t, "drain", "--admin", adminAddr, "--wait", "10s")
	if code != 0 || stdout != "draining\nstopped\n" {
		t.Errorf("rampart drain: exit %d, stdout %q, stderr %q; want 0, \"draining\\nstopped\\n\"", code, stdout, stderr)
	}
	if code := p.WaitExit(t, 5*time.Second); code != 0 {
		t.Errorf("gateway exit code %d, want 0", code)
	}
	// Nothing left to drain.
	if code, stdout, _ := runBin(t, "drain", "--admin", adminAddr); code != 0 || stdout != "not running\n" {
		t.Errorf("rampart drain on a stopped gateway: exit %d, %q; want 0, \"not running\"", code, stdout)
	}
}
