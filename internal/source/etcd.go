package source

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
)

// DefaultPrefix is the etcd key prefix used when none is given.
const DefaultPrefix = "/rampart"

// The keys under a prefix P. One publish writes all three in one
// transaction, so a watcher sees them change together.
const (
	keyConfig  = "/config"  // the config document as published (YAML or JSON)
	keyVersion = "/version" // the config's content hash (config.Version)
	keyFormat  = "/format"  // "yaml" or "json"
)

// EtcdConfig names an etcd cluster and the key prefix of one config.
type EtcdConfig struct {
	Endpoints []string
	// Prefix is the key prefix, with a leading slash and no trailing one.
	// Default DefaultPrefix.
	Prefix string
	// DialTimeout bounds connecting, and each reconnect attempt. Default 3s.
	DialTimeout time.Duration
}

// ReconnectBackoff is the longest wait between two attempts to reconnect to
// an etcd that went away (plus up to 20 % jitter). gRPC's default grows to
// 120 s, so after a long outage the client would notice a returned etcd only
// tens of seconds later; capped, a returned etcd is seen within about 2 s.
const ReconnectBackoff = 2 * time.Second

// reconnectParams are the gRPC connection's reconnect settings: 100 ms
// doubling (x1.6) up to ReconnectBackoff, each attempt bounded by timeout.
func reconnectParams(timeout time.Duration) grpc.ConnectParams {
	return grpc.ConnectParams{
		Backoff: backoff.Config{
			BaseDelay:  100 * time.Millisecond,
			Multiplier: 1.6,
			Jitter:     0.2,
			MaxDelay:   ReconnectBackoff,
		},
		MinConnectTimeout: timeout,
	}
}

// ParseEtcdURL parses etcd://HOST:PORT[,HOST:PORT...]/PREFIX.
func ParseEtcdURL(s string) (EtcdConfig, error) {
	rest, ok := strings.CutPrefix(s, "etcd://")
	if !ok {
		return EtcdConfig{}, fmt.Errorf("parse etcd url %q: want etcd://HOST:PORT[,HOST:PORT]/PREFIX", s)
	}
	hosts, prefix, _ := strings.Cut(rest, "/")
	cfg := EtcdConfig{Prefix: NormalizePrefix("/" + prefix)}
	for _, h := range strings.Split(hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			cfg.Endpoints = append(cfg.Endpoints, h)
		}
	}
	if len(cfg.Endpoints) == 0 {
		return EtcdConfig{}, fmt.Errorf("parse etcd url %q: no endpoint", s)
	}
	return cfg, nil
}

// String formats cfg as an etcd:// URL.
func (c EtcdConfig) String() string {
	return "etcd://" + strings.Join(c.Endpoints, ",") + c.Prefix
}

// NormalizePrefix gives p one leading slash and no trailing slash; an empty
// prefix becomes DefaultPrefix.
func NormalizePrefix(p string) string {
	p = "/" + strings.Trim(p, "/")
	if p == "/" {
		return DefaultPrefix
	}
	return p
}

// Revision is one published config.
type Revision struct {
	Data []byte
	// Format is "yaml" or "json".
	Format string
	// Version is the content hash the publisher computed.
	Version string
	// Rev is the etcd revision that wrote the config key (ModRevision).
	Rev int64
}

// ErrNotPublished is returned by Get when no config is under the prefix.
var ErrNotPublished = errors.New("no config published under the prefix")

// Etcd reads, watches and publishes configs under one prefix.
type Etcd struct {
	// Log receives watch panics (default slog.Default()).
	Log    *slog.Logger
	cfg    EtcdConfig
	client *clientv3.Client
}

// NewEtcd returns a client for cfg. It does not wait for a connection: an
// unreachable cluster shows as errors from Get and Publish.
func NewEtcd(cfg EtcdConfig) (*Etcd, error) {
	cfg.Prefix = NormalizePrefix(cfg.Prefix)
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 3 * time.Second
	}
	endpoints := make([]string, len(cfg.Endpoints))
	for i, e := range cfg.Endpoints {
		if !strings.Contains(e, "://") {
			e = "http://" + e
		}
		if _, err := url.Parse(e); err != nil {
			return nil, fmt.Errorf("etcd endpoint %q: %w", cfg.Endpoints[i], err)
		}
		endpoints[i] = e
	}
	c, err := clientv3.New(clientv3.Config{
		Endpoints:            endpoints,
		DialTimeout:          cfg.DialTimeout,
		DialKeepAliveTime:    5 * time.Second,
		DialKeepAliveTimeout: 2 * time.Second,
		AutoSyncInterval:     0,
		DialOptions:          []grpc.DialOption{grpc.WithConnectParams(reconnectParams(cfg.DialTimeout))},
		Logger:               zap.NewNop(), // errors reach the caller; the client's own log is noise
	})
	if err != nil {
		return nil, fmt.Errorf("connect etcd: %w", err)
	}
	return &Etcd{cfg: cfg, client: c}, nil
}

// Config returns the client's settings.
func (e *Etcd) Config() EtcdConfig { return e.cfg }

// Close closes the client.
func (e *Etcd) Close() error { return e.client.Close() }

// Get reads the published config.
func (e *Etcd) Get(ctx context.Context) (Revision, error) {
	resp, err := e.client.Get(ctx, e.cfg.Prefix+"/", clientv3.WithPrefix())
	if err != nil {
		return Revision{}, fmt.Errorf("read etcd %s: %w", e.cfg.Prefix, err)
	}
	rev := Revision{Format: "yaml"}
	found := false
	for _, kv := range resp.Kvs {
		switch string(kv.Key) {
		case e.cfg.Prefix + keyConfig:
			rev.Data, rev.Rev, found = kv.Value, kv.ModRevision, true
		case e.cfg.Prefix + keyVersion:
			rev.Version = string(kv.Value)
		case e.cfg.Prefix + keyFormat:
			rev.Format = string(kv.Value)
		}
	}
	if !found {
		return Revision{}, ErrNotPublished
	}
	return rev, nil
}

// Publish writes data (in format "yaml" or "json") with its version in one
// transaction and returns the etcd revision it created.
func (e *Etcd) Publish(ctx context.Context, data []byte, format, version string) (int64, error) {
	p := e.cfg.Prefix
	resp, err := e.client.Txn(ctx).Then(
		clientv3.OpPut(p+keyConfig, string(data)),
		clientv3.OpPut(p+keyVersion, version),
		clientv3.OpPut(p+keyFormat, format),
	).Commit()
	if err != nil {
		return 0, fmt.Errorf("publish to etcd %s: %w", p, err)
	}
	return resp.Header.Revision, nil
}

// Watch sends each config published after revision from on out, until ctx
// is done or the watch fails (the channel is then closed; call Get and Watch
// again). Revisions of one publish arrive as one Revision. It returns at
// once, even when etcd cannot be reached.
func (e *Etcd) Watch(ctx context.Context, from int64, format string) <-chan Revision {
	out := make(chan Revision)
	ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	go func() {
		defer close(out)
		defer cancel()
		defer func() {
			if p := recover(); p != nil {
				log := e.Log
				if log == nil {
					log = slog.Default()
				}
				log.Error("etcd watch panicked; the channel is closed so the caller reads and watches again", "panic", fmt.Sprint(p))
			}
		}()
		// clientv3's Watch blocks until its stream is open, that is until
		// etcd answers (or ctx ends): call it here, so that the caller keeps
		// probing and reporting etcd's state meanwhile.
		wch := e.client.Watch(ctx, e.cfg.Prefix+"/", clientv3.WithPrefix(), clientv3.WithRev(from+1))
		for resp := range wch {
			if resp.Err() != nil || resp.Canceled {
				return
			}
			var rev Revision
			found := false
			for _, ev := range resp.Events {
				if ev.Type != clientv3.EventTypePut {
					continue
				}
				switch string(ev.Kv.Key) {
				case e.cfg.Prefix + keyConfig:
					rev.Data, rev.Rev, found = ev.Kv.Value, ev.Kv.ModRevision, true
				case e.cfg.Prefix + keyVersion:
					rev.Version = string(ev.Kv.Value)
				case e.cfg.Prefix + keyFormat:
					format = string(ev.Kv.Value)
				}
			}
			if !found {
				continue
			}
			rev.Format = format
			select {
			case out <- rev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}
