package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/sys/unix"

	"github.com/rampart-gw/rampart/test/gwtest"
)

// subreaper makes this test process adopt orphaned descendants (the new
// process of an upgrade, whose parent exits), so that it can wait for them.
var subreaper = sync.OnceValue(func() error {
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
})

func readPID(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

// stopAdopted sends SIGTERM to an adopted process and waits for its exit
// code (SIGKILL after d).
func stopAdopted(t *testing.T, pid int, d time.Duration) int {
	t.Helper()
	syscall.Kill(pid, syscall.SIGTERM)
	done := make(chan int, 1)
	go func() {
		var ws syscall.WaitStatus
		for {
			_, err := syscall.Wait4(pid, &ws, 0, nil)
			if !errors.Is(err, syscall.EINTR) {
				break
			}
		}
		done <- ws.ExitStatus()
	}()
	select {
	case code := <-done:
		return code
	case <-time.After(d):
		syscall.Kill(pid, syscall.SIGKILL)
		t.Errorf("process %d did not exit within %s of SIGTERM", pid, d)
		return <-done
	}
}

type upgradeCfg struct {
	gwAddr, adminAddr, pidFile, cfgPath string
}

func writeUpgradeConfig(t *testing.T, up string) upgradeCfg {
	t.Helper()
	dir := t.TempDir()
	c := upgradeCfg{gwAddr: gwtest.FreeAddr(t), adminAddr: gwtest.FreeAddr(t), pidFile: filepath.Join(dir, "rampart.pid"), cfgPath: filepath.Join(dir, "rampart.yaml")}
	cfg := fmt.Sprintf(`listeners:
  - {name: public, address: %q}
admin: {address: %q}
drain_timeout: 3s
pid_file: %q
upgrade: {timeout: 10s}
upstreams:
  up: {targets: [{address: %q}]}
routes:
  - {name: all, match: {path: {prefix: /}}, upstream: up}
`, c.gwAddr, c.adminAddr, c.pidFile, up)
	if err := os.WriteFile(c.cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return c
}

func echoWS(w http.ResponseWriter, r *http.Request) bool {
	if r.URL.Path != "/ws" {
		return false
	}
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return true
	}
	defer c.CloseNow()
	for {
		typ, b, err := c.Read(context.Background())
		if err != nil {
			return true
		}
		c.Write(context.Background(), typ, b)
	}
}

// TestBinaryUpgrade upgrades the binary (SIGUSR2) under steady concurrent
// load over HTTP/1.1 keep-alive, HTTP/2 and a WebSocket: no request fails,
// the old process exits 0, the pid file names the new process, which then
// serves alone. The WebSocket open on the old process is closed with 1001
// at its drain and reconnects to the new one.
func TestBinaryUpgrade(t *testing.T) {
	if err := subreaper(); err != nil {
		t.Skipf("cannot become a child subreaper to adopt the new process: %v", err)
	}
	up := gwtest.Upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if echoWS(w, r) {
			return
		}
		io.WriteString(w, "ok")
	}))
	c := writeUpgradeConfig(t, up)
	old := gwtest.StartProcFileLog(t, rampartBin, "run", "-c", c.cfgPath)
	gwtest.WaitFor(t, 10*time.Second, "readyz 200 and the pid file", func() bool {
		select {
		case <-old.Exited:
			t.Fatalf("rampart exited early: %v\n%s", old.Err, old.Stderr())
		default:
		}
		return readyzCode(c.adminAddr) == 200 && readPID(c.pidFile) == old.Cmd.Process.Pid
	})

	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	fail := func(err error) {
		failed.Add(1)
		firstErr.CompareAndSwap(nil, err.Error())
	}
	var wg sync.WaitGroup
	load := func(cl *http.Client, proto int) {
		defer wg.Done()
		for i := 0; i < 100000 && ctx.Err() == nil; i++ {
			resp, err := cl.Get("http://" + c.gwAddr + "/x")
			if err != nil {
				if ctx.Err() == nil {
					fail(err)
				}
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(b) != "ok" || resp.ProtoMajor != proto {
				fail(fmt.Errorf("HTTP/%d: %d %q", resp.ProtoMajor, resp.StatusCode, b))
				continue
			}
			ok.Add(1)
			time.Sleep(2 * time.Millisecond)
		}
	}
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go load(newClient(t), 1)
	}
	wg.Add(1)
	go load(h2cClient(t), 2)
	// One WebSocket, exchanging messages; a close 1001 (the old process
	// draining) makes it reconnect.
	var wsMsgs, wsGoingAway atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for reconnects := 0; reconnects < 5 && ctx.Err() == nil; reconnects++ {
			ws, _, err := websocket.Dial(ctx, "ws://"+c.gwAddr+"/ws", &websocket.DialOptions{HTTPClient: newClient(t)})
			if err != nil {
				if ctx.Err() == nil {
					fail(fmt.Errorf("websocket dial: %w", err))
				}
				return
			}
			for ctx.Err() == nil {
				if err := ws.Write(ctx, websocket.MessageText, []byte("m")); err != nil {
					break
				}
				_, b, err := ws.Read(ctx)
				if err != nil {
					if websocket.CloseStatus(err) == websocket.StatusGoingAway {
						wsGoingAway.Add(1)
					} else if ctx.Err() == nil {
						fail(fmt.Errorf("websocket read: %w", err))
					}
					break
				}
				if string(b) != "m" {
					fail(fmt.Errorf("websocket echo %q", b))
				}
				wsMsgs.Add(1)
				time.Sleep(20 * time.Millisecond)
			}
			ws.CloseNow()
		}
	}()

	time.Sleep(300 * time.Millisecond)
	before := ok.Load()
	old.Signal(t, syscall.SIGUSR2)
	var newPID int
	gwtest.WaitFor(t, 15*time.Second, "the pid file to name the new process", func() bool {
		newPID = readPID(c.pidFile)
		return newPID != 0 && newPID != old.Cmd.Process.Pid
	})
	t.Cleanup(func() {
		if syscall.Kill(newPID, 0) == nil {
			stopAdopted(t, newPID, 10*time.Second)
		}
	})
	if code := old.WaitExit(t, 10*time.Second); code != 0 {
		t.Errorf("old process exit code %d, want 0", code)
	}
	afterOld := ok.Load()
	time.Sleep(500 * time.Millisecond)
	cancel()
	wg.Wait()
	after := ok.Load()
	t.Logf("requests: %d ok (%d before SIGUSR2, %d after the old process exited), %d failed; websocket: %d messages, %d going-away closes",
		after, before, after-afterOld, failed.Load(), wsMsgs.Load(), wsGoingAway.Load())
	if n := failed.Load(); n != 0 {
		t.Errorf("%d requests failed during the upgrade; first: %v", n, firstErr.Load())
	}
	if before == 0 || after-afterOld == 0 {
		t.Errorf("load did not run on both sides of the upgrade (%d before, %d after the old exited)", before, after-afterOld)
	}
	if wsGoingAway.Load() == 0 {
		t.Errorf("the WebSocket on the old process got no close 1001")
	}
	if code := readyzCode(c.adminAddr); code != 200 {
		t.Errorf("readyz on the new process: %d, want 200", code)
	}
	logs := old.Stderr()
	for _, want := range []string{"upgrade: starting the new binary", "upgrade: serving; telling the old process to drain", "upgrade: the new process serves; draining this one"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	if code := stopAdopted(t, newPID, 10*time.Second); code != 0 {
		t.Errorf("new process exit code %d on SIGTERM, want 0", code)
	}
	if _, err := os.Stat(c.pidFile); !os.IsNotExist(err) {
		t.Errorf("pid file left behind after the new process stopped: %v", err)
	}
}

// TestFailedUpgrade: when the new process cannot start (here: the config
// on disk has become invalid), the old one keeps serving, the pid file is
// unchanged, and POST /api/v1/upgrade answers 500 with the reason.
func TestFailedUpgrade(t *testing.T) {
	up := gwtest.Upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	c := writeUpgradeConfig(t, up)
	old := gwtest.StartProcFileLog(t, rampartBin, "run", "-c", c.cfgPath, "-watch=false")
	gwtest.WaitFor(t, 10*time.Second, "readyz 200", func() bool { return readyzCode(c.adminAddr) == 200 })
	if err := os.WriteFile(c.cfgPath, []byte("listeners: [{name: public, address: 127.0.0.1:1, bogus: 1}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	admin := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}, Timeout: 20 * time.Second}
	resp, err := admin.Post("http://"+c.adminAddr+"/api/v1/upgrade", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 500 || !strings.Contains(string(b), `"upgrade_failed"`) || !strings.Contains(string(b), "exited before it was ready") {
		t.Errorf("POST /api/v1/upgrade: %d %s; want 500 upgrade_failed naming the exit", resp.StatusCode, b)
	}
	// SIGUSR2 too fails the same way, and the old process serves on.
	old.Signal(t, syscall.SIGUSR2)
	gwtest.WaitFor(t, 15*time.Second, "two failed upgrades logged", func() bool {
		return strings.Count(old.Stderr(), "upgrade failed; this process keeps serving") >= 2
	})
	cl := newClient(t)
	if resp, body := get(t, cl, "http://"+c.gwAddr+"/x"); resp.StatusCode != 200 || string(body) != "ok" {
		t.Errorf("after the failed upgrades: %d %q", resp.StatusCode, body)
	}
	if readyzCode(c.adminAddr) != 200 {
		t.Errorf("readyz not 200 after the failed upgrades")
	}
	if pid := readPID(c.pidFile); pid != old.Cmd.Process.Pid {
		t.Errorf("pid file names %d, want the old process %d", pid, old.Cmd.Process.Pid)
	}
	// The old process still drains and exits cleanly: the hand-over
	// attempts left its sockets as they were.
	sent := time.Now()
	old.Signal(t, syscall.SIGTERM)
	if code := old.WaitExit(t, 6*time.Second); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
	if took := time.Since(sent); took > 3*time.Second+500*time.Millisecond {
		t.Errorf("exit took %s after SIGTERM, want within drain_timeout 3s", took)
	}
	if !strings.Contains(old.Stderr(), "unknown key \"bogus\"") {
		t.Errorf("the new process's refusal is not in the log:\n%s", old.Stderr())
	}
}

// TestUpgradeTimeout: a new binary that never reports ready is killed after
// upgrade.timeout, and the old process serves on.
func TestUpgradeTimeout(t *testing.T) {
	up := gwtest.Upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	dir := t.TempDir()
	script := filepath.Join(dir, "never-ready.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nexec sleep 30\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	gwAddr, adminAddr := gwtest.FreeAddr(t), gwtest.FreeAddr(t)
	cfgPath := filepath.Join(dir, "rampart.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`listeners:
  - {name: public, address: %q}
admin: {address: %q}
upgrade: {binary: %q, timeout: 1s}
upstreams:
  up: {targets: [{address: %q}]}
routes:
  - {name: all, match: {path: {prefix: /}}, upstream: up}
`, gwAddr, adminAddr, script, up)), 0o644)
	gwtest.StartProcFileLog(t, rampartBin, "run", "-c", cfgPath)
	gwtest.WaitFor(t, 10*time.Second, "readyz 200", func() bool { return readyzCode(adminAddr) == 200 })
	admin := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}, Timeout: 10 * time.Second}
	start := time.Now()
	resp, err := admin.Post("http://"+adminAddr+"/api/v1/upgrade", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if took := time.Since(start); resp.StatusCode != 500 || !strings.Contains(string(b), "not ready within 1s; it was killed") || took < time.Second || took > 5*time.Second {
		t.Errorf("POST /api/v1/upgrade: %d %s after %s; want 500 naming the timeout after about 1s", resp.StatusCode, b, took)
	}
	if resp, body := get(t, newClient(t), "http://"+gwAddr+"/x"); resp.StatusCode != 200 || string(body) != "ok" {
		t.Errorf("after the timed-out upgrade: %d %q", resp.StatusCode, body)
	}
	if code := readyzCode(adminAddr); code != 200 {
		t.Errorf("readyz %d after the timed-out upgrade, want 200", code)
	}
}
