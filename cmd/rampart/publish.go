package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/rampart-gw/rampart/internal/compile"
	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/source"
)

// cmdConfig runs `rampart config SUBCOMMAND`.
func cmdConfig(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "publish" {
		fmt.Fprintln(stderr, "usage: rampart config publish -c FILE --etcd HOST:PORT[,HOST:PORT] [--prefix P]")
		return 2
	}
	fs := flag.NewFlagSet("config publish", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "rampart.yaml", "config file to publish")
	endpoints := fs.String("etcd", "127.0.0.1:2379", "etcd endpoints, comma-separated HOST:PORT")
	prefix := fs.String("prefix", source.DefaultPrefix, "etcd key prefix the data planes watch")
	timeout := fs.Duration("timeout", 10*time.Second, "give up after this long")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	data, err := os.ReadFile(*path)
	if err != nil {
		printErr(stderr, fmt.Errorf("read config: %w", err))
		return 1
	}
	// The same checks as `rampart validate`: a data plane would refuse
	// anything that fails them, so it is never published.
	cfg, err := config.LoadBytes(*path, data)
	if err == nil {
		_, err = compile.Build(cfg, compile.Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	}
	if err != nil {
		printErr(stderr, err)
		fmt.Fprintln(stderr, "rampart: config not published")
		return 1
	}
	format := "yaml"
	if strings.HasSuffix(strings.ToLower(*path), ".json") {
		format = "json"
	}
	ec := source.EtcdConfig{Prefix: *prefix}
	for _, e := range strings.Split(*endpoints, ",") {
		if e = strings.TrimSpace(e); e != "" {
			ec.Endpoints = append(ec.Endpoints, e)
		}
	}
	e, err := source.NewEtcd(ec)
	if err != nil {
		printErr(stderr, err)
		return 1
	}
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	rev, err := e.Publish(ctx, data, format, cfg.Version())
	if err != nil {
		printErr(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "published version %s to %s (revision %d)\n", cfg.Version(), e.Config(), rev)
	return 0
}
