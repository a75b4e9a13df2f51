package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rampart-gw/rampart/internal/discovery"
)

// cmdRegister runs `rampart register`: it registers one instance of a
// service in etcd, for gateways with discovery type etcd, keeps its
// lease alive, and deletes the key on SIGTERM or SIGINT.
func cmdRegister(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("register", flag.ContinueOnError)
	fs.SetOutput(stderr)
	endpoints := fs.String("etcd", "127.0.0.1:2379", "etcd endpoints, comma-separated HOST:PORT")
	service := fs.String("service", "", "service name (discovery.name of the upstream); required")
	address := fs.String("address", "", "HOST:PORT of this instance; required")
	ttl := fs.Duration("ttl", 10*time.Second, "lease time to live: the key goes away this long after the registrar dies")
	prefix := fs.String("prefix", discovery.DefaultPrefix, "etcd key prefix (discovery.prefix)")
	id := fs.String("id", "", "the instance's key under PREFIX/SERVICE/ (default: its address)")
	weight := fs.Int("weight", 1, "relative weight, 1-10000")
	zone := fs.String("zone", "", "the instance's zone, for zone-aware balancing")
	meta := fs.String("meta", "", "metadata as k=v pairs, comma-separated")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "rampart register: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *service == "" || *address == "" {
		fmt.Fprintln(stderr, "usage: rampart register --etcd HOST:PORT[,..] --service NAME --address HOST:PORT [--ttl 10s] [--prefix P] [--id ID] [--weight N] [--zone Z] [--meta k=v,..]")
		return 2
	}
	if strings.ContainsAny(*service, "/ ") || strings.ContainsAny(*id, "/ ") {
		fmt.Fprintln(stderr, "rampart register: --service and --id must not contain '/' or spaces")
		return 2
	}
	if _, p, err := net.SplitHostPort(*address); err != nil || p == "" {
		fmt.Fprintf(stderr, "rampart register: --address %q is not HOST:PORT\n", *address)
		return 2
	} else if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
		fmt.Fprintf(stderr, "rampart register: --address %q: port out of range 1-65535\n", *address)
		return 2
	}
	if *weight < 1 || *weight > discovery.MaxWeight {
		fmt.Fprintf(stderr, "rampart register: --weight %d out of range 1-%d\n", *weight, discovery.MaxWeight)
		return 2
	}
	if *ttl < time.Second {
		fmt.Fprintf(stderr, "rampart register: --ttl %s is under 1s\n", *ttl)
		return 2
	}
	in := discovery.Instance{Address: *address, Weight: *weight, Zone: *zone}
	for _, kv := range strings.Split(*meta, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			fmt.Fprintf(stderr, "rampart register: --meta %q is not k=v\n", kv)
			return 2
		}
		if in.Metadata == nil {
			in.Metadata = map[string]string{}
		}
		in.Metadata[k] = v
	}
	reg := discovery.Registration{Prefix: *prefix, Service: *service, ID: *id, Instance: in, TTL: *ttl,
		Log: newLogger(stderr, "info")}
	for _, e := range strings.Split(*endpoints, ",") {
		if e = strings.TrimSpace(e); e != "" {
			reg.Endpoints = append(reg.Endpoints, e)
		}
	}
	reg.OnRegistered = func(key string, lease clientv3.LeaseID) {
		fmt.Fprintf(stdout, "registered %s at %s (lease %x, ttl %s)\n", *address, key, int64(lease), *ttl)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := discovery.Register(ctx, reg); err != nil {
		printErr(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "deregistered %s\n", reg.Key())
	return 0
}
