package h1server

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/rampart-gw/rampart/internal/listener/guard"
)

// TestIdleConnMemory measures what one parked keep-alive connection costs
// the server: it opens N real connections on 127.0.0.1 (from a child
// process, so that the client's sockets cost this process nothing and N is
// not halved by the descriptor limit), sends one request on each, waits
// until every connection is parked, and reports the growth of the heap and
// the stacks (runtime.MemStats HeapInuse+StackInuse after a GC), of the live
// heap (HeapAlloc) and of the resident set, per connection.
//
// It is heavy, so it runs only when asked:
//
//	RAMPART_IDLE_CONNS=10000 go test -run TestIdleConnMemory -v ./internal/listener/h1server/
//
// RAMPART_IDLE_PROFILE=FILE also writes a heap profile (every allocation
// sampled) of the parked connections: go tool pprof -sample_index=inuse_space -top FILE.
// The test fails if a parked connection costs more than idleHeapCeiling of heap.
func TestIdleConnMemory(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("RAMPART_IDLE_CONNS"))
	if n <= 0 {
		t.Skip("set RAMPART_IDLE_CONNS=N to measure N idle connections")
	}
	if prof := os.Getenv("RAMPART_IDLE_PROFILE"); prof != "" {
		old := runtime.MemProfileRate
		runtime.MemProfileRate = 1
		defer func() { runtime.MemProfileRate = old }()
	}
	body := []byte("hello, idle world")
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(body)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	old := deepAfter
	deepAfter = 5 * time.Second
	defer func() { deepAfter = old }()
	s := &Server{Handler: handler, Config: &guard.Config{}, ReadHeaderTimeout: time.Minute, IdleTimeout: 5 * time.Minute}
	// Behind a wrapper the server may rebind, as the listener's counting
	// connection: parked connections go deep after deepAfter.
	go s.Serve(rebindListener{ln})
	defer s.Close()
	// Warm up: one connection, so that the pools and the poller exist.
	warm, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(warm, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	io.Copy(io.Discard, warm)
	warm.Close()
	waitParked(t, s, 0)

	before := memNow()
	cmd := exec.Command(os.Args[0], "-test.run=^TestIdleClientHelper$")
	cmd.Env = append(os.Environ(), "RAMPART_IDLE_CLIENT="+ln.Addr().String(), "RAMPART_IDLE_CLIENT_N="+strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ready") {
		t.Fatalf("client: %q %v", line, err)
	}
	waitParked(t, s, n)
	report(t, "parked", n, before, memNow())
	deadline := time.Now().Add(deepAfter + time.Duration(n/maxDeepPerSweep+10)*time.Second)
	for deepCount(s) != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d parked deep", deepCount(s), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	after := memNow()
	if prof := os.Getenv("RAMPART_IDLE_PROFILE"); prof != "" {
		f, err := os.Create(prof)
		if err != nil {
			t.Fatal(err)
		}
		pprof.Lookup("heap").WriteTo(f, 0)
		f.Close()
	}
	if heapStack := report(t, "parked deep", n, before, after); heapStack > idleHeapCeiling {
		t.Errorf("a connection parked deep costs %.0f B of heap and stack, more than %d", heapStack, idleHeapCeiling)
	}
}

// report logs the growth from before to after per connection and returns
// the heap and stack part.
func report(t *testing.T, what string, n int, before, after memSample) float64 {
	per := func(a, b uint64) float64 { return (float64(a) - float64(b)) / float64(n) }
	heapStack := per(after.HeapInuse+after.StackInuse, before.HeapInuse+before.StackInuse)
	t.Logf("%s: conns=%d heap+stack_B/conn=%.0f heapinuse_B/conn=%.0f stack_B/conn=%.0f live_B/conn=%.0f objects/conn=%.1f rss_B/conn=%.0f goroutines=%d",
		what, n, heapStack, per(after.HeapInuse, before.HeapInuse), per(after.StackInuse, before.StackInuse),
		per(after.HeapAlloc, before.HeapAlloc), per(after.HeapObjects, before.HeapObjects),
		per(after.rss, before.rss), after.goroutines-before.goroutines)
	t.Logf("%s: runtime memory per conn: heap_retained_B=%.0f (idle %.0f) stack_sys_B=%.0f mspan_B=%.0f gc_meta_B=%.0f other_sys_B=%.0f (poll descriptors among it); heap goal %.1f MiB",
		what, per(after.HeapSys-after.HeapReleased, before.HeapSys-before.HeapReleased),
		per(after.HeapIdle-after.HeapReleased, before.HeapIdle-before.HeapReleased),
		per(after.StackSys, before.StackSys), per(after.MSpanSys, before.MSpanSys),
		per(after.GCSys, before.GCSys), per(after.OtherSys, before.OtherSys), float64(after.NextGC)/(1<<20))
	return heapStack
}

// idleHeapCeiling is the most heap and stack a parked connection may cost
// (measured: see docs/performance.md, "Memory per idle keep-alive connection").
const idleHeapCeiling = 512

type memSample struct {
	runtime.MemStats
	rss        uint64
	goroutines int
}

func memNow() memSample {
	var m memSample
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m.MemStats)
	m.goroutines = runtime.NumGoroutine()
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
				kb, _ := strconv.ParseUint(f[1], 10, 64)
				m.rss = kb << 10
			}
		}
	}
	return m
}

// waitParked waits until n connections are parked and nothing else is open.
func waitParked(t *testing.T, s *Server, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		open := s.conns.Len()
		parked := 0
		if s.poll != nil {
			parked = s.poll.count()
		}
		if open == n && parked == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("open %d, parked %d, want %d", open, parked, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestIdleClientHelper is the client process of TestIdleConnMemory: it
// opens the connections, sends one request on each, reads the response,
// prints "ready" and holds them until its stdin closes.
func TestIdleClientHelper(t *testing.T) {
	addr := os.Getenv("RAMPART_IDLE_CLIENT")
	if addr == "" {
		t.Skip("the client process of TestIdleConnMemory")
	}
	n, _ := strconv.Atoi(os.Getenv("RAMPART_IDLE_CLIENT_N"))
	conns := make([]net.Conn, n)
	next := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				c, err := net.Dial("tcp", addr)
				if err == nil {
					_, err = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
				}
				var resp *http.Response
				if err == nil {
					resp, err = http.ReadResponse(bufio.NewReader(c), nil)
				}
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
				}
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					continue
				}
				conns[i] = c
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		fmt.Fprintln(os.Stderr, "client:", firstErr)
		os.Exit(1)
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

func TestConnSize(t *testing.T) {
	if s := unsafe.Sizeof(srvConn{}); s > 128 {
		t.Errorf("srvConn is %d bytes, more than its 128-byte size class", s)
	}
}
