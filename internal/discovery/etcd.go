package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/rampart-gw/rampart/internal/config"
)

// DefaultPrefix is the etcd key prefix instances register under when
// none is given: config's default, for `rampart register`.
const DefaultPrefix = config.DefaultDiscoveryPrefix

// Instance is the JSON value of a registration: the key is
// PREFIX/SERVICE/ID, written with a lease so that it goes away with the
// instance.
//
//	/rampart/services/users/10.0.0.7:8080 -> {"address": "10.0.0.7:8080", "weight": 2, "zone": "a", "metadata": {"version": "1.4"}}
type Instance struct {
	// Address is host:port, required.
	Address string `json:"address"`
	// Weight is relative to the other instances: 1 when absent or 0,
	// at most MaxWeight.
	Weight int `json:"weight,omitempty"`
	// Zone is the instance's locality, for zone-aware balancing.
	Zone string `json:"zone,omitempty"`
	// Metadata is free-form (string values).
	Metadata map[string]string `json:"metadata,omitempty"`
}

// Key returns the etcd key of instance id of service under prefix.
func Key(prefix, service, id string) string { return serviceDir(prefix, service) + id }

// serviceDir is the key prefix of service's instances, with a trailing
// slash.
func serviceDir(prefix, service string) string {
	p := strings.TrimRight(prefix, "/")
	if p == "" {
		p = DefaultPrefix
	}
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	return p + "/" + service + "/"
}

// ParseInstance reads a registration's value; an error says why it is
// not one.
func ParseInstance(b []byte) (Instance, error) {
	var in Instance
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return Instance{}, fmt.Errorf("not a JSON instance {address, weight, zone, metadata}: %w", err)
	}
	host, port, err := net.SplitHostPort(in.Address)
	if err != nil || host == "" {
		return Instance{}, fmt.Errorf("address %q is not host:port", in.Address)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return Instance{}, fmt.Errorf("address %q: port out of range 1-65535", in.Address)
	}
	if in.Weight < 0 || in.Weight > MaxWeight {
		return Instance{}, fmt.Errorf("weight %d out of range 0-%d", in.Weight, MaxWeight)
	}
	return in, nil
}

// etcdSource watches the instances registered under PREFIX/NAME/.
type etcdSource struct {
	cfg Config
	dir string
}

func newEtcd(cfg Config) (*etcdSource, error) {
	if cfg.Name == "" || strings.Contains(cfg.Name, "/") {
		return nil, fmt.Errorf("invalid service name %q", cfg.Name)
	}
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("no etcd endpoints")
	}
	return &etcdSource{cfg: cfg, dir: serviceDir(cfg.Prefix, cfg.Name)}, nil
}

func (s *etcdSource) describe() string {
	return "etcd " + s.dir + " at " + strings.Join(s.cfg.Endpoints, ",")
}

// EtcdClient connects to endpoints (host:port or URLs). It does not wait
// for a connection.
func EtcdClient(endpoints []string, dialTimeout time.Duration) (*clientv3.Client, error) {
	urls := make([]string, len(endpoints))
	for i, e := range endpoints {
		if !strings.Contains(e, "://") {
			e = "http://" + e
		}
		urls[i] = e
	}
	return clientv3.New(clientv3.Config{
		Endpoints:            urls,
		DialTimeout:          dialTimeout,
		DialKeepAliveTime:    5 * time.Second,
		DialKeepAliveTimeout: 2 * time.Second,
		Logger:               zap.NewNop(), // errors reach the caller; the client's own log is noise
	})
}

// run reads the registrations, then watches them, until ctx ends. When
// the watch fails (etcd compacted the revision, the member lost its
// leader) it reads them again; a failed read keeps the last set and is
// tried again after a pause that grows to 30s.
func (s *etcdSource) run(ctx context.Context, w *Watcher) {
	c, err := EtcdClient(s.cfg.Endpoints, s.cfg.Timeout)
	if err != nil {
		w.fail(fmt.Errorf("connect etcd: %w", err))
		<-ctx.Done()
		return
	}
	defer c.Close()
	// skipped remembers the keys logged as invalid, at their revision, so
	// that reading again does not log them again.
	skipped := map[string]int64{}
	pause := time.Second
	for ctx.Err() == nil {
		insts, rev, err := s.read(ctx, c, w, skipped)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			w.fail(err)
			if !sleep(ctx, pause) {
				return
			}
			pause = min(2*pause, 30*time.Second)
			continue
		}
		pause = time.Second
		w.update(endpoints(insts), false)
		err = s.watch(ctx, c, w, insts, rev, skipped)
		if ctx.Err() != nil {
			return
		}
		w.fail(err)
		if !sleep(ctx, pause) {
			return
		}
	}
}

// read returns the instances registered now, by key, and the revision
// they were read at.
func (s *etcdSource) read(ctx context.Context, c *clientv3.Client, w *Watcher, skipped map[string]int64) (map[string]Instance, int64, error) {
	rctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	resp, err := c.Get(rctx, s.dir, clientv3.WithPrefix())
	if err != nil {
		return nil, 0, fmt.Errorf("read etcd %s: %w", s.dir, err)
	}
	insts := make(map[string]Instance, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		s.put(w, insts, string(kv.Key), kv.Value, kv.ModRevision, skipped)
	}
	return insts, resp.Header.Revision, nil
}

// put records the registration under key, or skips it with one log line
// when its value is not an instance.
func (s *etcdSource) put(w *Watcher, insts map[string]Instance, key string, value []byte, rev int64, skipped map[string]int64) {
	in, err := ParseInstance(value)
	if err != nil {
		delete(insts, key)
		if skipped[key] != rev {
			skipped[key] = rev
			w.log.Warn("etcd discovery: skipping a registration", "upstream", s.cfg.Upstream, "key", key, "error", err)
		}
		return
	}
	delete(skipped, key)
	insts[key] = in
}

// probeEvery is how often etcd is asked, while watching, whether it
// still answers: a watch says nothing while etcd is unreachable (the
// client reconnects quietly), so the probe is what reports it.
func (s *etcdSource) probeEvery() time.Duration {
	return min(max(2*s.cfg.Timeout, time.Second), 30*time.Second)
}

// probe asks etcd for the number of registrations every probeEvery until
// ctx ends, and reports a failure, or the end of one, to w. It is the root
// of its goroutine.
func (s *etcdSource) probe(ctx context.Context, c *clientv3.Client, w *Watcher) {
	defer func() {
		if r := recover(); r != nil {
			w.log.Error("etcd discovery probe panicked", "upstream", s.cfg.Upstream, "panic", r)
		}
	}()
	t := time.NewTicker(s.probeEvery())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
		_, err := c.Get(pctx, s.dir, clientv3.WithPrefix(), clientv3.WithCountOnly())
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			w.fail(fmt.Errorf("etcd unreachable (watching %s): %w", s.dir, err))
		default:
			w.alive()
		}
	}
}

// watch applies changes after rev to insts until ctx ends or the watch
// fails (its error is returned). A probe runs beside it.
func (s *etcdSource) watch(ctx context.Context, c *clientv3.Client, w *Watcher, insts map[string]Instance, rev int64, skipped map[string]int64) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { s.probe(wctx, c, w) })
	// clientv3's Watch blocks until its stream opens (etcd answers, or
	// wctx ends); the probe reports etcd's state meanwhile.
	for resp := range c.Watch(wctx, s.dir, clientv3.WithPrefix(), clientv3.WithRev(rev+1)) {
		if err := resp.Err(); err != nil {
			return fmt.Errorf("watch etcd %s: %w", s.dir, err)
		}
		if resp.Canceled {
			return fmt.Errorf("watch etcd %s: canceled", s.dir)
		}
		if len(resp.Events) == 0 {
			continue // progress notification
		}
		for _, ev := range resp.Events {
			key := string(ev.Kv.Key)
			switch ev.Type {
			case clientv3.EventTypePut:
				s.put(w, insts, key, ev.Kv.Value, ev.Kv.ModRevision, skipped)
			case clientv3.EventTypeDelete:
				delete(insts, key)
				delete(skipped, key)
			}
		}
		w.update(endpoints(insts), false)
	}
	return fmt.Errorf("watch etcd %s: closed", s.dir)
}

// endpoints turns the registrations into endpoints, in key order; two
// keys with one address give one endpoint (the first key's).
func endpoints(insts map[string]Instance) []Endpoint {
	keys := make([]string, 0, len(insts))
	for k := range insts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	eps := make([]Endpoint, 0, len(keys))
	for _, k := range keys {
		in := insts[k]
		eps = append(eps, Endpoint{Addr: in.Address, Weight: max(in.Weight, 1), Zone: in.Zone, Metadata: in.Metadata})
	}
	return eps
}
