package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/test/gwtest"
)

// tcpEcho is a TCP echo server on 127.0.0.1 until the test ends.
func tcpEcho(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				io.Copy(c, c)
				c.Close()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// echoOnce dials addr, sends msg and reads it back.
func echoOnce(addr, msg string) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		return err
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != msg {
		return fmt.Errorf("echo %q, want %q", buf, msg)
	}
	return nil
}

// TestTCPUpgrade upgrades the binary (SIGUSR2) of a gateway with only a
// tcp listener while clients keep opening connections: no connection
// fails, a connection open on the old process keeps relaying while it
// drains and is closed at its drain_timeout, and the new process serves
// the same port.
func TestTCPUpgrade(t *testing.T) {
	if err := subreaper(); err != nil {
		t.Skipf("cannot become a child subreaper to adopt the new process: %v", err)
	}
	target := tcpEcho(t)
	dir := t.TempDir()
	addr, adminAddr := gwtest.FreeAddr(t), gwtest.FreeAddr(t)
	pidFile, cfgPath := filepath.Join(dir, "rampart.pid"), filepath.Join(dir, "rampart.yaml")
	cfg := fmt.Sprintf(`listeners:
  - {name: db, address: %q, protocol: tcp, upstream: pg}
admin: {address: %q}
drain_timeout: 2s
pid_file: %q
upgrade: {timeout: 10s}
observability: {access_log: {path: "off"}}
upstreams:
  pg: {targets: [{address: %q}], health_check: {active: {interval: 1s}}}
`, addr, adminAddr, pidFile, target)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	old := gwtest.StartProcFileLog(t, rampartBin, "run", "-c", cfgPath)
	gwtest.WaitFor(t, 10*time.Second, "readyz 200 and the pid file", func() bool {
		select {
		case <-old.Exited:
			t.Fatalf("rampart exited early: %v\n%s", old.Err, old.Stderr())
		default:
		}
		return readyzCode(adminAddr) == 200 && readPID(pidFile) == old.Cmd.Process.Pid
	})

	held, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	held.SetDeadline(time.Now().Add(20 * time.Second))
	roundTrip := func(msg string) error {
		if _, err := io.WriteString(held, msg); err != nil {
			return err
		}
		buf := make([]byte, len(msg))
		_, err := io.ReadFull(held, buf)
		return err
	}
	if err := roundTrip("before\n"); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100000 && ctx.Err() == nil; i++ {
				if err := echoOnce(addr, fmt.Sprintf("w%d-%d\n", w, i)); err != nil {
					if ctx.Err() == nil {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, err.Error())
					}
					continue
				}
				ok.Add(1)
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	before := ok.Load()
	old.Signal(t, syscall.SIGUSR2)
	var newPID int
	gwtest.WaitFor(t, 15*time.Second, "the pid file to name the new process", func() bool {
		newPID = readPID(pidFile)
		return newPID != 0 && newPID != old.Cmd.Process.Pid
	})
	t.Cleanup(func() {
		if syscall.Kill(newPID, 0) == nil {
			stopAdopted(t, newPID, 10*time.Second)
		}
	})
	// The old process drains: the held connection still relays.
	if err := roundTrip("during the drain\n"); err != nil {
		t.Errorf("the held connection during the old process's drain: %v", err)
	}
	if code := old.WaitExit(t, 10*time.Second); code != 0 {
		t.Errorf("old process exit code %d, want 0", code)
	}
	// drain_timeout closed it.
	var b [1]byte
	if _, err := held.Read(b[:]); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("the held connection after the old process exited: %v, want closed", err)
	}
	afterOld := ok.Load()
	time.Sleep(300 * time.Millisecond)
	cancel()
	wg.Wait()
	after := ok.Load()
	t.Logf("tcp connections: %d ok (%d before SIGUSR2, %d after the old process exited), %d failed", after, before, after-afterOld, failed.Load())
	if n := failed.Load(); n != 0 {
		t.Errorf("%d connections failed during the upgrade; first: %v", n, firstErr.Load())
	}
	if before == 0 || after-afterOld == 0 {
		t.Errorf("load did not run on both sides of the upgrade (%d before, %d after the old exited)", before, after-afterOld)
	}
	if code := stopAdopted(t, newPID, 10*time.Second); code != 0 {
		t.Errorf("new process exit code %d on SIGTERM, want 0", code)
	}
}
