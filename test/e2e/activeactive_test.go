package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/test/gwtest"
)

// TestActiveActiveKill runs three gateway processes with one config in
// front of one upstream, as three instances behind an external load
// balancer would be, and kills one of them (SIGKILL, no drain) under load.
// The clients spread requests over the instances and, like a load balancer
// with retries, send a request that fails at the transport to the next
// instance: no request is lost, and the two survivors carry the load.
func TestActiveActiveKill(t *testing.T) {
	var served atomic.Int64
	up := gwtest.Upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		io.WriteString(w, "ok")
	}))
	type instance struct {
		addr, admin string
		p           *gwtest.Proc
	}
	var inst [3]instance
	for i := range inst {
		inst[i].addr, inst[i].admin = gwtest.FreeAddr(t), gwtest.FreeAddr(t)
		cfg := fmt.Sprintf(`listeners:
  - {name: public, address: %q}
admin: {address: %q}
upstreams:
  up: {targets: [{address: %q}]}
routes:
  - {name: all, match: {path: {prefix: /}}, upstream: up}
`, inst[i].addr, inst[i].admin, up)
		path := filepath.Join(t.TempDir(), "rampart.yaml")
		if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		inst[i].p = gwtest.StartProc(t, rampartBin, io.Discard, "run", "-c", path)
	}
	for i := range inst {
		gwtest.WaitFor(t, 10*time.Second, fmt.Sprintf("instance %d ready", i), func() bool {
			return readyzCode(inst[i].admin) == 200
		})
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var (
		ok, retried, lost atomic.Int64
		perInstance       [3]atomic.Int64
		killed            atomic.Bool
		afterKill         atomic.Int64
		firstLost         atomic.Value
	)
	// send tries instance first, then the others in turn; a request is lost
	// only when every instance failed it.
	send := func(cl *http.Client, first int) {
		for k := 0; k < len(inst); k++ {
			i := (first + k) % len(inst)
			resp, err := cl.Get("http://" + inst[i].addr + "/x")
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 && string(b) == "ok" {
					ok.Add(1)
					perInstance[i].Add(1)
					if killed.Load() {
						afterKill.Add(1)
					}
					return
				}
				err = fmt.Errorf("instance %d: %d %q", i, resp.StatusCode, b)
			}
			if ctx.Err() != nil {
				return
			}
			retried.Add(1)
			if k == len(inst)-1 {
				lost.Add(1)
				firstLost.CompareAndSwap(nil, err.Error())
			}
		}
	}
	var wg sync.WaitGroup
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := newClient(t)
			for n := 0; n < 20000 && ctx.Err() == nil; n++ {
				send(cl, (w+n)%len(inst))
				time.Sleep(time.Millisecond)
			}
		}()
	}
	time.Sleep(700 * time.Millisecond)
	before := ok.Load()
	if err := inst[0].p.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed.Store(true)
	select {
	case <-inst[0].p.Exited:
	case <-time.After(5 * time.Second):
		t.Fatal("killed instance did not exit")
	}
	killedAt := perInstance[0].Load()
	time.Sleep(1500 * time.Millisecond)
	cancel()
	wg.Wait()

	t.Logf("requests: %d ok (%d before the kill, %d after), %d retried on another instance, %d lost; per instance %d/%d/%d; upstream served %d",
		ok.Load(), before, afterKill.Load(), retried.Load(), lost.Load(),
		perInstance[0].Load(), perInstance[1].Load(), perInstance[2].Load(), served.Load())
	if n := lost.Load(); n != 0 {
		t.Errorf("%d requests lost (failed on every instance); first: %v", n, firstLost.Load())
	}
	if before == 0 || afterKill.Load() == 0 {
		t.Errorf("load did not run on both sides of the kill (%d before, %d after)", before, afterKill.Load())
	}
	if n := perInstance[0].Load() - killedAt; n != 0 {
		t.Errorf("the killed instance answered %d requests after its exit", n)
	}
	for i := 1; i < len(inst); i++ {
		if readyzCode(inst[i].admin) != 200 {
			t.Errorf("surviving instance %d not ready", i)
		}
	}
}
