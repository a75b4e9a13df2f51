package app

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/upgrade"
)

// adminKey names the admin API's socket in a hand-over (listener names
// cannot start with '@').
const adminKey = "@admin"

// ErrUpgradeBusy is returned while another upgrade or a drain is under way.
var ErrUpgradeBusy = errors.New("an upgrade or drain is already under way")

// ready runs once the gateway serves: it writes the pid file, tells the
// process it upgrades (if any) to hand over, and tells systemd.
func (a *App) ready() {
	cfg := a.store.Load().Config
	pid := os.Getpid()
	if cfg.PIDFile != "" {
		if err := upgrade.WritePID(cfg.PIDFile, pid); err != nil {
			a.log.Error("cannot write the pid file", "path", cfg.PIDFile, "err", err.Error())
		} else {
			a.pidFile = cfg.PIDFile
		}
	}
	if a.opts.Inherited.Upgrading() {
		a.log.Info("upgrade: serving; telling the old process to drain", "pid", pid)
	}
	if err := a.opts.Inherited.Ready(); err != nil {
		a.log.Error("upgrade: cannot tell the old process that this one is ready", "err", err.Error())
	}
	// MAINPID lets systemd (NotifyAccess=all) follow the upgrade.
	if err := upgrade.Notify("READY=1\nMAINPID=" + strconv.Itoa(pid)); err != nil {
		a.log.Warn("systemd notification failed", "err", err.Error())
	}
}

// Upgrade starts the new binary (upgrade.binary, or this process's own
// path) with the same arguments, hands it every listening socket and
// waits until it serves; then this process drains and exits. If the new
// process fails or is not ready within upgrade.timeout, this one keeps
// serving and the error says why. It returns the new pid.
func (a *App) Upgrade() (int, error) {
	if !a.upgradeMu.TryLock() {
		return 0, ErrUpgradeBusy
	}
	defer a.upgradeMu.Unlock()
	if a.draining.Load() || a.handedOver.Load() {
		return 0, ErrUpgradeBusy
	}
	snap := a.store.Load()
	if snap == nil {
		return 0, errors.New("no active config")
	}
	cfg := snap.Config
	binary := cfg.Upgrade.Binary
	if binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return 0, fmt.Errorf("cannot find this process's binary (set upgrade.binary): %w", err)
		}
		binary = exe
	}
	timeout := cfg.Upgrade.Timeout.D()
	if timeout <= 0 {
		timeout = config.DefaultUpgradeTimeout.D()
	}
	var sockets []upgrade.Socket
	defer func() {
		for _, s := range sockets {
			s.File.Close()
		}
	}()
	for _, l := range a.listeners {
		f, err := l.File()
		if err != nil {
			return 0, fmt.Errorf("listener %s: %w", l.Name(), err)
		}
		sockets = append(sockets, upgrade.Socket{Key: upgrade.Key(l.Name(), a.boundAddr[l.Name()]), File: f})
	}
	if a.adminLn != nil {
		f, err := upgrade.Files(a.adminLn)
		if err != nil {
			return 0, fmt.Errorf("admin: %w", err)
		}
		sockets = append(sockets, upgrade.Socket{Key: upgrade.Key(adminKey, a.boundAddr[adminKey]), File: f})
	}
	args := a.opts.Args
	if args == nil {
		args = os.Args[1:]
	}
	a.log.Info("upgrade: starting the new binary", "binary", binary, "sockets", len(sockets), "timeout", timeout.String())
	pid, err := upgrade.Start(binary, args, sockets, timeout)
	if err != nil {
		a.log.Error("upgrade failed; this process keeps serving", "err", err.Error())
		return 0, err
	}
	a.log.Info("upgrade: the new process serves; draining this one", "new_pid", pid)
	a.handedOver.Store(true)
	a.RequestDrain()
	return pid, nil
}
