package chaos

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/app"
)

// usage is the process's resource use.
type usage struct {
	rssKiB     int
	goroutines int
	files      int
}

func measure() usage {
	var u usage
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
				u.rssKiB, _ = strconv.Atoi(f[1])
			}
		}
	}
	u.goroutines = runtime.NumGoroutine()
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		u.files = len(ents)
	}
	return u
}

// TestSoak runs mixed load with reloads and target churn for RAMPART_SOAK
// (a duration, e.g. 10m; `make soak`) and checks that goroutines and open
// files come back to where they started. It is skipped unless RAMPART_SOAK
// is set.
func TestSoak(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("RAMPART_SOAK"))
	if err != nil || d <= 0 {
		t.Skip("set RAMPART_SOAK=10m (make soak)")
	}
	up1, up2 := upstream(t), upstream(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "rampart.yaml")
	write := func(targets ...string) {
		var tg []string
		for _, a := range targets {
			tg = append(tg, fmt.Sprintf("{address: %q}", a))
		}
		y := `listeners:
  - name: public
    address: "127.0.0.1:0"
admin:
  address: "off"
drain_timeout: 2s
upstreams:
  up:
    targets: [` + strings.Join(tg, ", ") + `]
    # Short, so pooled connections are gone when the end is measured.
    keepalive: {idle_timeout: 1s}
routes:
  - name: all
    match: {path: {prefix: /}}
    upstream: up
    timeout: 2s
observability:
  access_log: {path: "off"}
`
		if err := os.WriteFile(cfgPath, []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(up1)
	a, err := app.New(app.Options{ConfigPath: cfgPath, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	reload := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, reload) }()
	defer func() {
		cancel()
		<-done
	}()
	for deadline := time.Now().Add(5 * time.Second); !a.Ready(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("gateway not ready")
		}
	}
	base := "http://" + a.ListenerAddr("public")
	start := measure()
	t.Logf("start: rss %d KiB, goroutines %d, open files %d", start.rssKiB, start.goroutines, start.files)

	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	var mu sync.Mutex
	counts := map[string]int{}
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &http.Transport{MaxIdleConnsPerHost: 4}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			for i := 0; time.Now().Before(stop); i++ {
				var resp *http.Response
				var err error
				switch (w + i) % 4 {
				case 0:
					resp, err = c.Get(base + "/ok")
				case 1:
					resp, err = c.Get(base + "/big")
				case 2:
					resp, err = c.Post(base+"/ok", "text/plain", bytes.NewReader(make([]byte, 32<<10)))
				case 3:
					// A refused request on a raw connection.
					if nc, err := net.DialTimeout("tcp", strings.TrimPrefix(base, "http://"), time.Second); err == nil {
						nc.SetDeadline(time.Now().Add(5 * time.Second))
						io.WriteString(nc, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n")
						io.Copy(io.Discard, nc)
						nc.Close()
					}
					continue
				}
				key := "error"
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					key = strconv.Itoa(resp.StatusCode)
				}
				mu.Lock()
				counts[key]++
				mu.Unlock()
			}
		}()
	}
	// Reloads with target churn every 2 seconds.
	for i := 0; time.Now().Before(stop); i++ {
		time.Sleep(2 * time.Second)
		if i%2 == 0 {
			write(up1, up2)
		} else {
			write(up2)
		}
		select {
		case reload <- struct{}{}:
		default:
		}
	}
	wg.Wait()
	time.Sleep(3 * time.Second) // idle connections and lingering closes end
	runtime.GC()
	end := measure()
	t.Logf("end:   rss %d KiB, goroutines %d, open files %d; responses %v", end.rssKiB, end.goroutines, end.files, counts)
	if end.goroutines > start.goroutines+50 {
		t.Errorf("goroutines grew from %d to %d", start.goroutines, end.goroutines)
	}
	if end.files > start.files+50 {
		t.Errorf("open files grew from %d to %d", start.files, end.files)
	}
}
