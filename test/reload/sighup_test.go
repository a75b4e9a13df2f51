package reload

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSIGHUP runs the real binary: an invalid config sent with SIGHUP is
// refused (the old one keeps serving, the log and the status say why), a
// valid one is applied.
func TestSIGHUP(t *testing.T) {
	one, two := named(t, "one", 0), named(t, "two", 0)
	listen, adminAddr := freeAddr(t), freeAddr(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "rampart.yaml")
	os.WriteFile(path, []byte(routeTo(listen, adminAddr, one)), 0o600)
	cmd := exec.Command(rampartBin, "run", "-c", path, "-watch=false")
	logs, err := os.Create(filepath.Join(dir, "rampart.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	c := newClient(t)
	url, admin := "http://"+listen, "http://"+adminAddr
	answers(t, c, url+"/", "one", "binary serving")
	v0 := version(t, c, admin)

	os.WriteFile(path, []byte(strings.Replace(routeTo(listen, adminAddr, two), "upstream: svc", "upstream: nope", 1)), 0o600)
	cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, 5*time.Second, "SIGHUP refusal", func() bool {
		st := getStatus(t, c, admin)
		return st.LastError != nil && st.LastError.Source == "sighup"
	})
	if code, b, _ := get(c, url+"/"); code != 200 || b != "one" || version(t, c, admin) != v0 {
		t.Fatalf("after a refused SIGHUP: %d %q", code, b)
	}
	st := getStatus(t, c, admin)
	if len(st.LastReload.Errors) != 1 || !strings.Contains(st.LastReload.Errors[0].Text, "rampart.yaml:") {
		t.Errorf("status errors %+v", st.LastReload.Errors)
	}

	os.WriteFile(path, []byte(routeTo(listen, adminAddr, two)), 0o600)
	cmd.Process.Signal(syscall.SIGHUP)
	answers(t, c, url+"/", "two", "config applied on SIGHUP")
	if b, _ := os.ReadFile(logs.Name()); !bytes.Contains(b, []byte("config refused")) {
		t.Errorf("the log does not report the refusal:\n%s", b)
	}
}
