// Package upgrade hands a running gateway's listening sockets to a new
// process for a zero-downtime binary upgrade, and speaks systemd's
// readiness protocol.
//
// The old process starts the new binary with its listening sockets as
// extra file descriptors (3, 4, ...), their names in RAMPART_UPGRADE_FDS
// ("public=127.0.0.1:8080,admin=127.0.0.1:9901", one per descriptor, in
// order), and the write end of a pipe whose number is in
// RAMPART_UPGRADE_READY_FD. The new process loads its config, takes the
// sockets whose name and address are unchanged (and binds the others),
// and writes "ready" to the pipe once it serves. Only then does the old
// process stop accepting and drain. If the new process exits or does not
// become ready within the timeout, the old one keeps serving.
package upgrade

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// EnvFDs names the inherited descriptors, from 3 on.
	EnvFDs = "RAMPART_UPGRADE_FDS"
	// EnvReadyFD is the descriptor the new process reports readiness on.
	EnvReadyFD = "RAMPART_UPGRADE_READY_FD"
)

// Key names a listening socket across processes: its listener name and
// its configured address, so that a socket is only reused for the same
// listener at the same address.
func Key(name, address string) string { return name + "=" + address }

// Inherited holds the sockets a process got from its parent.
type Inherited struct {
	mu      sync.Mutex
	files   map[string]*os.File
	readyFD *os.File
}

// FromEnv takes the sockets and the readiness pipe named in the
// environment, and clears the variables so that they do not leak into a
// later upgrade. With no variables set it returns an empty set.
func FromEnv() (*Inherited, error) {
	in := &Inherited{files: map[string]*os.File{}}
	names, readyFD := os.Getenv(EnvFDs), os.Getenv(EnvReadyFD)
	os.Unsetenv(EnvFDs)
	os.Unsetenv(EnvReadyFD)
	if names != "" {
		for i, key := range strings.Split(names, ",") {
			fd := 3 + i
			unix.CloseOnExec(fd)
			in.files[key] = os.NewFile(uintptr(fd), key)
		}
	}
	if readyFD != "" {
		fd, err := strconv.Atoi(readyFD)
		if err != nil || fd < 3 {
			in.Close()
			return nil, fmt.Errorf("%s=%q: want a descriptor number", EnvReadyFD, readyFD)
		}
		unix.CloseOnExec(fd)
		in.readyFD = os.NewFile(uintptr(fd), "upgrade-ready")
	}
	return in, nil
}

// Upgrading reports whether this process was started by an upgrade.
func (in *Inherited) Upgrading() bool { return in != nil && in.readyFD != nil }

// Listen returns the inherited socket for key, or binds address (with
// SO_REUSEPORT when reusePort is set).
func (in *Inherited) Listen(key, address string, reusePort bool) (net.Listener, error) {
	if in != nil {
		in.mu.Lock()
		f := in.files[key]
		delete(in.files, key)
		in.mu.Unlock()
		if f != nil {
			ln, err := net.FileListener(f)
			f.Close()
			if err == nil {
				return ln, nil
			}
			// A descriptor that is not a listening socket: bind afresh.
		}
	}
	lc := net.ListenConfig{}
	if reusePort {
		lc.Control = func(network, address string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			})
			return errors.Join(err, serr)
		}
	}
	return lc.Listen(context.Background(), "tcp", address)
}

// Ready tells the parent, if any, that this process serves, and closes
// the sockets it did not take (listeners the new config dropped or moved).
func (in *Inherited) Ready() error {
	if in == nil {
		return nil
	}
	in.Close()
	in.mu.Lock()
	f := in.readyFD
	in.readyFD = nil
	in.mu.Unlock()
	if f == nil {
		return nil
	}
	defer f.Close()
	_, err := f.WriteString("ready\n")
	return err
}

// Close closes the sockets not taken.
func (in *Inherited) Close() {
	if in == nil {
		return
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	for k, f := range in.files {
		f.Close()
		delete(in.files, k)
	}
}

// Socket is a listening socket handed to a new process.
type Socket struct {
	Key  string
	File *os.File // a duplicate of the socket's descriptor
}

// Files duplicates the descriptor of a TCP listener.
func Files(ln net.Listener) (*os.File, error) {
	for {
		switch l := ln.(type) {
		case *net.TCPListener:
			return l.File()
		case interface{ Unwrap() net.Listener }:
			ln = l.Unwrap()
		default:
			return nil, fmt.Errorf("listener %T cannot be handed over", ln)
		}
	}
}

// Start runs binary with args and the sockets, and waits until it reports
// ready, exits or timeout passes. On success it returns the new pid; the
// child then lives on by itself. On failure the child is gone and the
// error says why.
func Start(binary string, args []string, sockets []Socket, timeout time.Duration) (int, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer r.Close()
	cmd := exec.Command(binary, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, os.Stdout, os.Stderr
	names := make([]string, len(sockets))
	for i, s := range sockets {
		names[i] = s.Key
		cmd.ExtraFiles = append(cmd.ExtraFiles, s.File)
	}
	cmd.ExtraFiles = append(cmd.ExtraFiles, w)
	env := make([]string, 0, len(os.Environ())+2)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, EnvFDs+"=") && !strings.HasPrefix(kv, EnvReadyFD+"=") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, EnvFDs+"="+strings.Join(names, ","), EnvReadyFD+"="+strconv.Itoa(3+len(sockets)))
	err = cmd.Start()
	w.Close()
	// Starting a process calls Fd on every file it passes, which puts the
	// descriptor in blocking mode, and O_NONBLOCK belongs to the open file
	// description that this process's listeners share: set it back, or a
	// listener's Accept would block a thread and ignore Close.
	for _, s := range sockets {
		unix.SetNonblock(int(s.File.Fd()), true)
	}
	if err != nil {
		return 0, fmt.Errorf("start %s: %w", binary, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	ready := make(chan bool, 1)
	go func() {
		line, _ := bufio.NewReader(r).ReadString('\n')
		ready <- line == "ready\n"
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case ok := <-ready:
		if ok {
			return cmd.Process.Pid, nil
		}
		// The pipe closed without "ready": the child is exiting.
		select {
		case err := <-exited:
			return 0, fmt.Errorf("new process exited before it was ready: %v", exitReason(err))
		case <-timer.C:
		}
	case err := <-exited:
		return 0, fmt.Errorf("new process exited before it was ready: %v", exitReason(err))
	case <-timer.C:
	}
	cmd.Process.Kill()
	<-exited
	return 0, fmt.Errorf("new process was not ready within %s; it was killed", timeout)
}

func exitReason(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// Notify sends a state to systemd's notification socket ($NOTIFY_SOCKET,
// for Type=notify units), e.g. "READY=1". Without one it does nothing.
func Notify(state string) error {
	sock := os.Getenv("NOTIFY_SOCKET")
	if sock == "" {
		return nil
	}
	if sock[0] == '@' {
		sock = "\x00" + sock[1:] // abstract namespace
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write([]byte(state))
	return err
}

// WritePID writes pid to path atomically (a temporary file renamed over it).
func WritePID(path string, pid int) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// RemovePID removes path if it still names pid (a newer process may have
// rewritten it).
func RemovePID(path string, pid int) {
	b, err := os.ReadFile(path)
	if err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(pid) {
		os.Remove(path)
	}
}
