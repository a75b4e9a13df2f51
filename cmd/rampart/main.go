// Command rampart is the Rampart API gateway.
//
//	rampart run -c rampart.yaml        run the gateway (-c etcd://HOST:PORT/PREFIX for etcd)
//	rampart validate -c rampart.yaml   check a config: "ok" or FILE:LINE:COL lines
//	rampart config publish -c FILE --etcd HOST:PORT[,..] [--prefix P]
//	rampart register --etcd HOST:PORT[,..] --service NAME --address HOST:PORT [--ttl 10s]
//	rampart demo                       run with built-in demo upstreams
//	rampart drain [--admin ADDR]       drain a running gateway (preStop hook)
//	rampart schema                     print the config's JSON Schema
//	rampart version                    print version, commit and Go version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/rampart-gw/rampart/internal/app"
	"github.com/rampart-gw/rampart/internal/compile"
	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/demo"
	"github.com/rampart-gw/rampart/internal/memlimit"
	"github.com/rampart-gw/rampart/internal/schema"
	"github.com/rampart-gw/rampart/internal/source"
	"github.com/rampart-gw/rampart/internal/textpages"
	"github.com/rampart-gw/rampart/internal/upgrade"
)

// Set by the Makefile through -ldflags.
var (
	version = "dev"
	commit  = ""
)

const usage = `rampart — a high-availability API gateway

Usage:
  rampart run      [-c FILE]   run the gateway (default config ./rampart.yaml);
                               -c etcd://HOST:PORT[,HOST:PORT]/PREFIX reads and watches etcd
  rampart validate [-c FILE]   check a config; prints "ok" or one FILE:LINE:COL line per problem
                               (warnings as FILE:LINE:COL: warning: ..., exit 0)
  rampart config publish -c FILE --etcd HOST:PORT[,..] [--prefix P]
                               validate a config, then publish it to etcd for every data plane
  rampart register --etcd HOST:PORT[,..] --service NAME --address HOST:PORT [--ttl 10s]
                               register an instance for etcd discovery; keeps its lease alive,
                               deletes the key on SIGTERM/SIGINT (see docs/discovery.md)
  rampart demo                 run with built-in demo upstreams (gateway :8080, admin :9901)
  rampart drain [--admin ADDR] [--wait 60s]
                               ask the gateway on ADDR (default 127.0.0.1:9901) to drain, and wait
                               until it has stopped (for a Kubernetes preStop hook)
  rampart schema               print the JSON Schema of the config file (for editors: completion,
                               descriptions, checks as you type)
  rampart version              print version, commit and Go version

Signals: SIGHUP reloads the config file (or re-reads etcd); SIGTERM/SIGINT drain and exit;
SIGUSR2 upgrades the binary (hands the listening sockets to a new process); SIGUSR1 reopens
the access log file (after logrotate).
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "run":
		return cmdRun(args[1:], stderr)
	case "validate":
		return cmdValidate(args[1:], stdout, stderr)
	case "demo":
		return cmdDemo(args[1:], stdout, stderr)
	case "drain":
		return cmdDrain(args[1:], stdout, stderr)
	case "schema":
		return cmdSchema(args[1:], stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintf(stdout, "rampart %s (commit %s, %s %s/%s)\n", version, revision(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return 0
	case "config":
		return cmdConfig(args[1:], stdout, stderr)
	case "register":
		return cmdRegister(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "rampart: unknown command %q\n\n%s", args[0], usage)
	return 2
}

func revision() string {
	if commit != "" {
		return commit
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return s.Value[:12]
			}
		}
	}
	return "unknown"
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

func cmdRun(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "rampart.yaml", "config file, or etcd://HOST:PORT[,HOST:PORT]/PREFIX")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	watch := fs.Bool("watch", true, "reload the config file when it changes")
	cacheDir := fs.String("cache-dir", source.DefaultCacheDir(), "where the last config applied from etcd is kept")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log := newLogger(stderr, *level)
	slog.SetDefault(log)
	if d := memlimit.Apply("/"); d.Limit > 0 {
		log.Info("Go memory limit set from the cgroup", "limit_bytes", d.Limit, "cgroup_limit_bytes", d.Cgroup, "from", d.Source)
	} else {
		log.Debug("no Go memory limit set from the cgroup", "reason", d.Reason)
	}
	if err := memlimit.ParseSetting(os.Getenv("RAMPART_GC_TUNER")); err != nil {
		printErr(stderr, err)
		return 2
	}
	if t := memlimit.Tune(); t != nil {
		log.Info("adaptive GOGC on (RAMPART_GC_TUNER)", "floor_bytes", memlimit.TuneFloor, "least_gogc", os.Getenv("RAMPART_GC_TUNER"))
	}
	inherited, err := upgrade.FromEnv()
	if err != nil {
		printErr(stderr, err)
		return 2
	}
	defer inherited.Close()
	opts := app.Options{ConfigPath: *path, Watch: *watch, CacheDir: *cacheDir, Log: log, Inherited: inherited, Args: args0(args)}
	if strings.HasPrefix(*path, "etcd://") {
		ec, err := source.ParseEtcdURL(*path)
		if err != nil {
			printErr(stderr, err)
			return 2
		}
		opts.ConfigPath, opts.Etcd = "", &ec
	}
	a, err := app.New(opts)
	if err != nil {
		printErr(stderr, err)
		return 1
	}
	if textpages.Enabled() {
		// The gateway is up: what start-up alone touched of the binary
		// can go (docs/operations.md, "Memory").
		if r, err := textpages.Release(); err != nil {
			log.Warn("could not release the start-up pages of the executable", "err", err)
		} else if r.Skipped != "" {
			log.Debug("start-up pages of the executable kept", "reason", r.Skipped)
		} else {
			log.Debug("released the start-up pages of the executable", "mapped_bytes", r.Bytes, "rss_before_kib", r.RSSBefore, "rss_after_kib", r.RSSAfter)
		}
	}
	return serve(a, log)
}

// args0 are the arguments a binary upgrade passes on: "run" and the flags.
func args0(args []string) []string { return append([]string{"run"}, args...) }

func serve(a *app.App, log *slog.Logger) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	usr2 := make(chan os.Signal, 1)
	signal.Notify(usr2, syscall.SIGUSR2)
	defer signal.Stop(usr2)
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				log.Error("SIGUSR1 handler panicked; SIGUSR1 no longer reopens the access log", "panic", fmt.Sprint(p))
			}
		}()
		for {
			select {
			case <-ctx.Done():
				return
			case <-usr1:
				// ReopenAccessLog logs its own outcome.
				a.ReopenAccessLog()
			}
		}
	}()
	go func() {
		defer func() {
			if p := recover(); p != nil {
				log.Error("SIGUSR2 handler panicked; SIGUSR2 no longer upgrades", "panic", fmt.Sprint(p))
			}
		}()
		for {
			select {
			case <-ctx.Done():
				return
			case <-usr2:
				// Upgrade logs its own outcome.
				a.Upgrade()
			}
		}
	}()
	reload := make(chan struct{}, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				log.Error("SIGHUP forwarder panicked; SIGHUP no longer reloads", "panic", fmt.Sprint(p))
			}
		}()
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				select {
				case reload <- struct{}{}:
				default:
				}
			}
		}
	}()
	if err := a.Run(ctx, reload); err != nil {
		log.Error("gateway stopped", "err", err.Error())
		return 1
	}
	return 0
}

func printErr(w io.Writer, err error) {
	var ce config.Errors
	if errors.As(err, &ce) {
		for _, e := range ce {
			fmt.Fprintln(w, e.Error())
		}
		return
	}
	fmt.Fprintln(w, "rampart:", err)
}

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "rampart.yaml", "config file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := config.Load(*path)
	if err == nil {
		_, err = compile.Build(cfg, compile.Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	}
	if err != nil {
		printErr(stdout, err)
		return 1
	}
	// Warnings do not fail validation: the config runs as written.
	for _, w := range lint(cfg) {
		fmt.Fprintln(stdout, w.String())
	}
	fmt.Fprintln(stdout, "ok")
	return 0
}

func cmdSchema(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("schema", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "rampart schema: unexpected argument %q (it takes none)\n", fs.Arg(0))
		return 2
	}
	if _, err := stdout.Write(schema.JSON()); err != nil {
		printErr(stderr, err)
		return 1
	}
	return 0
}

func cmdDemo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "gateway address")
	adminAddr := fs.String("admin", "127.0.0.1:9901", "admin API address")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log := newLogger(stderr, "info")
	slog.SetDefault(log)
	d, err := demo.Start(demo.Config{Listen: *listen, Admin: *adminAddr})
	if err != nil {
		printErr(stderr, err)
		return 1
	}
	defer d.Close()
	a, err := app.New(app.Options{Config: d.GatewayConfig, Log: log})
	if err != nil {
		printErr(stderr, err)
		return 1
	}
	fmt.Fprint(stdout, d.Instructions(a.ListenerAddr("public"), a.AdminAddr()))
	return serve(a, log)
}
