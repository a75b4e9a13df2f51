package reload

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/source"
	"github.com/rampart-gw/rampart/test/gwtest"
)

// rampartBin is the gateway binary, built once by TestMain for the SIGHUP
// and `config publish` tests.
var rampartBin string

func TestMain(m *testing.M) { gwtest.MainWithBinary(m, &rampartBin) }

// head is the start of every test config: one listener and the admin API on
// the given addresses.
func head(listen, adminAddr string) string {
	return fmt.Sprintf("listeners:\n  - {name: public, address: %q}\nadmin: {address: %q}\ndrain_timeout: 2s\nobservability: {access_log: {path: \"off\"}}\n", listen, adminAddr)
}

func newClient(t *testing.T) *http.Client { return gwtest.Client(t, 10*time.Second) }

// named starts an upstream that answers every request with its name in the
// body and X-Upstream, and status (200 if 0).
func named(t *testing.T, name string, status int) string {
	t.Helper()
	return gwtest.Upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("X-Upstream", name)
		if status != 0 {
			w.WriteHeader(status)
		}
		io.WriteString(w, name)
	}))
}

// get returns the status and body of GET url ("" body and status 0 on a
// transport error).
func get(c *http.Client, url string, hdr ...string) (int, string, http.Header) {
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error(), nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// send makes a request with a body and returns status and body.
func send(t *testing.T, c *http.Client, method, url, contentType string, body []byte, hdr ...string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// status is the part of GET /api/v1/config/status the tests read.
type status struct {
	Active struct {
		Version   string `json:"version"`
		Source    string `json:"source"`
		FromCache bool   `json:"from_cache"`
	} `json:"active"`
	LastReload *struct {
		Result string `json:"result"`
		Source string `json:"source"`
		Errors []struct {
			Line    int    `json:"line"`
			Col     int    `json:"col"`
			Path    string `json:"path"`
			Message string `json:"message"`
			Text    string `json:"text"`
		} `json:"errors"`
	} `json:"last_reload"`
	LastError *struct {
		Source string `json:"source"`
	} `json:"last_error"`
	Reloads       map[string]int64 `json:"reloads"`
	LastCandidate *struct {
		Version string `json:"version"`
		Outcome string `json:"outcome"`
	} `json:"last_candidate"`
	Etcd *struct {
		Connected        bool  `json:"connected"`
		Revision         int64 `json:"revision"`
		StartedFromCache bool  `json:"started_from_cache"`
	} `json:"etcd"`
}

func getStatus(t *testing.T, c *http.Client, admin string) status {
	t.Helper()
	code, body, _ := get(c, admin+"/api/v1/config/status")
	var s status
	if code != 200 || json.Unmarshal([]byte(body), &s) != nil {
		t.Fatalf("status: %d %.300s", code, body)
	}
	return s
}

// version returns the active config version from the admin API.
func version(t *testing.T, c *http.Client, admin string) string {
	t.Helper()
	return getStatus(t, c, admin).Active.Version
}

// etcdServer is a real etcd process (the Debian etcd-server package).
type etcdServer struct {
	t        *testing.T
	args     []string
	client   string
	cmd      *exec.Cmd
	done     chan struct{}
	endpoint string
}

// startEtcd starts etcd on free loopback ports with its data in a temporary
// directory. Stop and Start keep the ports and the data.
func startEtcd(t *testing.T) *etcdServer {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		t.Fatalf("etcd is not installed (run scripts/test-deps.sh, which installs the Debian package etcd-server): %v", err)
	}
	client, peer := gwtest.FreeAddr(t), gwtest.FreeAddr(t)
	e := &etcdServer{t: t, endpoint: client, args: []string{bin,
		"--name", "reload-test", "--data-dir", filepath.Join(t.TempDir(), "etcd"),
		"--listen-client-urls", "http://" + client, "--advertise-client-urls", "http://" + client,
		"--listen-peer-urls", "http://" + peer, "--initial-advertise-peer-urls", "http://" + peer,
		"--initial-cluster", "reload-test=http://" + peer, "--log-level", "error", "--logger", "zap",
	}}
	e.Start()
	t.Cleanup(e.Stop)
	return e
}

// Start starts the server and waits until it answers.
func (e *etcdServer) Start() {
	e.t.Helper()
	cmd := exec.Command(e.args[0], e.args[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		e.t.Fatalf("start etcd: %v", err)
	}
	e.cmd, e.done = cmd, make(chan struct{})
	go func() { cmd.Wait(); close(e.done) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + e.endpoint + "/health")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(b), `"true"`) {
				return
			}
		}
		select {
		case <-e.done:
			e.t.Fatalf("etcd exited: %s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("etcd not healthy after 20s: %s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop stops the server (SIGTERM, then SIGKILL after 5s).
func (e *etcdServer) Stop() {
	if e.cmd == nil {
		return
	}
	e.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.done:
	case <-time.After(5 * time.Second):
		e.cmd.Process.Kill()
		<-e.done
	}
	e.cmd = nil
}

// publish writes data under prefix without validating it (as a broken
// publisher would), and returns the revision.
func (e *etcdServer) publish(t *testing.T, prefix, data string) int64 {
	t.Helper()
	c, err := source.NewEtcd(source.EtcdConfig{Endpoints: []string{e.endpoint}, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rev, err := c.Publish(ctx, []byte(data), "yaml", "test")
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
