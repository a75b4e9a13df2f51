//go:build linux

package h1server

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/listener/guard"
)

// TestServerWorkers checks that resumed connections run on long-lived
// workers: woken one after another they reuse one worker, woken together
// they start more, idle workers exit after workerIdle, and Close and
// Shutdown end every worker.
func TestServerWorkers(t *testing.T) {
	wake := func(t *testing.T, ts *testServer, conns []net.Conn, brs []*bufio.Reader, i int) {
		t.Helper()
		if _, body := roundTrip(t, conns[i], brs[i], "GET", get("/w")); body != `GET /w 0 "" <nil>` {
			t.Fatalf("conn %d: body %q", i, body)
		}
	}
	setup := func(t *testing.T, n int) (*testServer, []net.Conn, []*bufio.Reader) {
		ts := startServer(t, echoHandler(), &guard.Config{}, nil)
		conns := make([]net.Conn, n)
		brs := make([]*bufio.Reader, n)
		for i := range conns {
			conns[i] = ts.dial(t)
			brs[i] = bufio.NewReader(conns[i])
			wake(t, ts, conns, brs, i)
		}
		waitFor(t, "all connections to park", func() bool { _, p := ts.count(); return p == n })
		return ts, conns, brs
	}

	t.Run("reuse and idle exit", func(t *testing.T) {
		noLeaks(t)
		old := workerIdle
		workerIdle = 300 * time.Millisecond
		t.Cleanup(func() { workerIdle = old })
		const n = 20
		ts, conns, brs := setup(t, n)
		p := ts.srv.poll
		// One after another: each wake-up finds the worker of the last.
		for i := range conns {
			wake(t, ts, conns, brs, i)
			waitFor(t, "the connection to park", func() bool { _, pk := ts.count(); return pk == n })
			time.Sleep(time.Millisecond) // the worker back at its wait
		}
		if w := p.workers.Load(); w < 1 || w > 3 {
			t.Errorf("%d workers after %d sequential wake-ups, want 1 (at most 3 on a busy machine)", w, n)
		}
		// Together: more workers, and all requests served.
		done := make(chan struct{}, n)
		for i := range conns {
			go func() {
				defer func() { done <- struct{}{} }()
				conns[i].Write([]byte(get("/w")))
			}()
		}
		for range conns {
			<-done
		}
		for i := range conns {
			resp, err := http.ReadResponse(brs[i], nil)
			if err != nil {
				t.Fatalf("conn %d: %v", i, err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		waitFor(t, "all connections to park again", func() bool { _, pk := ts.count(); return pk == n })
		// Idle workers exit after one to two idle periods.
		start := time.Now()
		waitFor(t, "idle workers to exit", func() bool { return p.workers.Load() == 0 })
		if el := time.Since(start); el > 4*time.Second {
			t.Errorf("idle workers exited after %v", el)
		}
		// The connections still wake up (on a new worker).
		wake(t, ts, conns, brs, 0)
		if w := p.workers.Load(); w != 1 {
			t.Errorf("%d workers after a wake-up", w)
		}
	})

	for _, how := range []string{"close", "shutdown"} {
		t.Run(how, func(t *testing.T) {
			noLeaks(t) // workers wait 10 s: only the server's end ends them
			const n = 8
			ts, conns, brs := setup(t, n)
			for i := range conns {
				wake(t, ts, conns, brs, i)
			}
			waitFor(t, "all connections to park again", func() bool { _, pk := ts.count(); return pk == n })
			p := ts.srv.poll
			if p.workers.Load() == 0 {
				t.Fatal("no worker after wake-ups")
			}
			if how == "close" {
				ts.srv.Close()
			} else {
				ts.shutdown(t)
			}
			waitFor(t, "workers to exit", func() bool { return p.workers.Load() == 0 })
		})
	}
}

// TestServerParkAtOnce checks the miss streak: after parkMisses hot waits
// in a row timed out, a connection parks right after its response; a
// request that arrives just as it parks is served; and a quick wake-up
// brings the hot wait back.
func TestServerParkAtOnce(t *testing.T) {
	noLeaks(t)
	// Every hot wait 600 ms, so that "at once" is told from it.
	oldMin, oldMax, oldFirst := hotMin, hotMax, hotFirst
	hotMin, hotMax, hotFirst = 600*time.Millisecond, 600*time.Millisecond, 600*time.Millisecond
	t.Cleanup(func() { hotMin, hotMax, hotFirst = oldMin, oldMax, oldFirst })
	entered, release := make(chan struct{}), make(chan struct{})
	echo := echoHandler()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			entered <- struct{}{}
			<-release
		}
		echo.ServeHTTP(w, r)
	})
	ts := startServer(t, h, &guard.Config{}, nil)
	c := ts.dial(t)
	br := bufio.NewReader(c)
	parked := func() bool { _, p := ts.count(); return p == 1 }
	misses := func() uint8 {
		p := ts.srv.poll
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.head == nil {
			return 255
		}
		return p.head.misses
	}
	for i := range parkMisses {
		roundTrip(t, c, br, "GET", get("/w"))
		waitFor(t, "the connection to park after its hot wait", parked)
		if m := misses(); m != uint8(i+1) {
			t.Fatalf("misses %d after %d hot waits timed out", m, i+1)
		}
	}
	// A wake-up within hotFirst of the park would end the streak.
	time.Sleep(hotFirst + 100*time.Millisecond)
	roundTrip(t, c, br, "GET", get("/w"))
	start := time.Now()
	waitFor(t, "the connection to park at once", parked)
	if el := time.Since(start); el >= hotFirst/2 {
		t.Errorf("parked %v after the response, want at once (hot wait %v)", el, hotFirst)
	}

	// A request arriving while the connection parks at once: the handler
	// of the first holds the response until the second is in the socket,
	// after the server read the first. (Sent later than hotFirst after
	// the park, so that the streak holds.)
	time.Sleep(hotFirst + 100*time.Millisecond)
	io.WriteString(c, get("/hold"))
	<-entered
	io.WriteString(c, get("/next"))
	close(release)
	if _, body := roundTrip(t, c, br, "GET", ""); body != `GET /hold 0 "" <nil>` {
		t.Fatalf("held: body %q", body)
	}
	c.SetReadDeadline(time.Now().Add(hotFirst / 2))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("request sent at park time not served at once: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	if string(b) != `GET /next 0 "" <nil>` {
		t.Fatalf("next: body %q", b)
	}
	c.SetReadDeadline(time.Time{})

	// That wake-up came within hotFirst: the next response waits hot.
	time.Sleep(hotFirst / 3)
	if parked() {
		t.Errorf("parked at once after a quick wake-up")
	}
	waitFor(t, "the connection to park after its hot wait", parked)
	if m := misses(); m != 1 {
		t.Errorf("misses %d after a quick wake-up and one hot wait", m)
	}
}
