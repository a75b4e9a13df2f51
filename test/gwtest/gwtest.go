// Package gwtest runs the real gateway in-process for black-box tests: from
// a config document (written to a file, so Reload and file watching work as
// in production), on whatever addresses the document names (use
// "127.0.0.1:0" for free ports), stopped and drained when the test ends.
// Every test package under test/ starts its gateways through it. For tests
// of the real binary, MainWithBinary builds it and StartProc runs it.
package gwtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/app"
)

// Head is the usual start of a test config: one listener named "public"
// and the admin API on free ports, a short drain, no access log.
const Head = `listeners:
  - name: public
    address: "127.0.0.1:0"
admin:
  address: "127.0.0.1:0"
drain_timeout: 5s
observability:
  access_log: {path: "off"}
`

// Gateway is a gateway running in-process.
type Gateway struct {
	App *app.App
	// Path is the config file the gateway runs from ("" when started from
	// Options.Config).
	Path string
	// Addr is the host:port of the listener named "public" (or the first).
	Addr string
	// URL is http://Addr; Admin is http://ADMIN-ADDR ("" without admin).
	URL, Admin string
	// Reloads delivers reload requests to Run (as SIGHUP does).
	Reloads chan struct{}

	stop func()
}

// Start writes doc to a file in the test's temp dir and runs the gateway
// from it until the test ends.
func Start(t testing.TB, doc string) *Gateway {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rampart.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	g := Run(t, app.Options{ConfigPath: path})
	g.Path = path
	return g
}

// Run runs the gateway with opts (a quiet logger unless opts.Log is set)
// until the test ends or Stop is called.
func Run(t testing.TB, opts app.Options) *Gateway {
	t.Helper()
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	a, err := app.New(opts)
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	g := &Gateway{App: a, Reloads: make(chan struct{}, 1)}
	g.Addr = a.ListenerAddr("public")
	g.URL = "http://" + g.Addr
	if addr := a.AdminAddr(); addr != "" {
		g.Admin = "http://" + addr
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, g.Reloads) }()
	var once sync.Once
	g.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("gateway Run: %v", err)
				}
			case <-time.After(15 * time.Second):
				t.Errorf("gateway did not stop within 15s")
			}
		})
	}
	t.Cleanup(g.stop)
	WaitFor(t, 5*time.Second, "gateway ready", a.Ready)
	return g
}

// Stop drains and stops the gateway now (it is also stopped at cleanup).
func (g *Gateway) Stop() { g.stop() }

// Write replaces the config file's content (without applying it).
func (g *Gateway) Write(t testing.TB, doc string) {
	t.Helper()
	if g.Path == "" {
		t.Fatal("gwtest: gateway has no config file")
	}
	if err := os.WriteFile(g.Path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Reload writes doc to the config file and applies it, failing the test if
// it is refused.
func (g *Gateway) Reload(t testing.TB, doc string) {
	t.Helper()
	g.Write(t, doc)
	if err := g.App.Reload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
}

// WaitFor polls cond every 10ms until it holds, failing the test after d.
func WaitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Client returns an HTTP/1.1 client that never uses a proxy from the
// environment, never decompresses, and does not follow redirects.
func Client(t testing.TB, timeout time.Duration) *http.Client {
	tr := &http.Transport{Proxy: nil, DisableCompression: true, MaxIdleConnsPerHost: 64}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{
		Transport:     tr,
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Upstream starts an HTTP/1.1 server for h on 127.0.0.1, closed when the
// test ends, and returns its address.
func Upstream(t testing.TB, h http.Handler) string {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s.Listener.Addr().String()
}

// FreeAddr returns a 127.0.0.1 address that was free a moment ago, for
// processes that must be given their ports up front.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// MainWithBinary builds cmd/rampart into a temporary directory, stores its
// path in *bin, runs the package's tests and exits; call it from TestMain
// in packages that run the real binary (see StartProc).
func MainWithBinary(m *testing.M, bin *string) {
	os.Exit(mainWithBinary(m, bin))
}

func mainWithBinary(m *testing.M, bin *string) int {
	dir, err := os.MkdirTemp("", "rampart-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "gwtest: create temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if *bin, err = buildBinary(dir); err != nil {
		fmt.Fprintln(os.Stderr, "gwtest:", err)
		return 1
	}
	return m.Run()
}

// buildBinary builds cmd/rampart into dir and returns its path.
func buildBinary(dir string) (string, error) {
	bin := filepath.Join(dir, "rampart")
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, goBin, "build", "-o", bin, "github.com/rampart-gw/rampart/cmd/rampart").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("build rampart: %v\n%s", err, out)
	}
	return bin, nil
}

// Proc is the gateway binary running as a child process.
type Proc struct {
	Cmd *exec.Cmd
	// Exited is closed when the process has exited; Err is then what
	// Cmd.Wait returned.
	Exited <-chan struct{}
	Err    error
	stderr syncBuffer
	// logFile, when set, is the file standard error goes to instead.
	logFile string
}

// StartProc starts bin with args. stdout, if not nil, receives its standard
// output; its standard error is kept (see Stderr) and logged if the test
// fails. A process still running when the test ends gets SIGTERM, and
// SIGKILL 10s later.
func StartProc(t testing.TB, bin string, stdout io.Writer, args ...string) *Proc {
	t.Helper()
	p := &Proc{Cmd: exec.Command(bin, args...)}
	p.Cmd.Stdout = stdout
	p.Cmd.Stderr = &p.stderr
	return p.start(t)
}

// StartProcFileLog is StartProc with standard output and error going to a
// file (see Stderr), so that processes it starts which share them (a
// binary upgrade's new process) do not hold up its exit.
func StartProcFileLog(t testing.TB, bin string, args ...string) *Proc {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "rampart-*.log")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	p := &Proc{Cmd: exec.Command(bin, args...), logFile: f.Name()}
	p.Cmd.Stdout, p.Cmd.Stderr = f, f
	return p.start(t)
}

func (p *Proc) start(t testing.TB) *Proc {
	t.Helper()
	exited := make(chan struct{})
	p.Exited = exited
	if err := p.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.Err = p.Cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-p.Exited:
		default:
			p.Cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.Exited:
			case <-time.After(10 * time.Second):
				p.Cmd.Process.Kill()
				<-p.Exited
			}
		}
		if t.Failed() {
			t.Logf("rampart stderr:\n%s", p.Stderr())
		}
	})
	return p
}

// Stderr returns what the process has written to its standard error (the
// log) so far.
func (p *Proc) Stderr() string {
	if p.logFile != "" {
		b, _ := os.ReadFile(p.logFile)
		return string(b)
	}
	return p.stderr.String()
}

// Signal sends sig to the process, failing the test if it cannot.
func (p *Proc) Signal(t testing.TB, sig os.Signal) {
	t.Helper()
	if err := p.Cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// WaitExit waits up to d for the process to exit and returns its exit code.
func (p *Proc) WaitExit(t testing.TB, d time.Duration) int {
	t.Helper()
	select {
	case <-p.Exited:
	case <-time.After(d):
		t.Fatalf("rampart did not exit within %s", d)
	}
	var ee *exec.ExitError
	if errors.As(p.Err, &ee) {
		return ee.ExitCode()
	}
	if p.Err != nil {
		t.Fatalf("wait: %v", p.Err)
	}
	return 0
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
