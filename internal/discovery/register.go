package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Registration is one instance that `rampart register` keeps registered.
type Registration struct {
	// Endpoints are the etcd cluster's host:port addresses.
	Endpoints []string
	// Prefix is the key prefix (default DefaultPrefix), Service the
	// service name, ID the instance's key under it (default its address).
	Prefix, Service, ID string
	Instance            Instance
	// TTL is the lease's time to live: the key goes away this long after
	// the registrar stops renewing it (it dies, or loses etcd). Default 10s.
	TTL time.Duration
	// Timeout bounds each etcd request. Default 5s.
	Timeout time.Duration
	// OnRegistered, when set, is told the key each time it is written
	// (first, and again after a lost lease).
	OnRegistered func(key string, lease clientv3.LeaseID)
	Log          *slog.Logger
}

// Key returns the registration's etcd key.
func (r *Registration) Key() string {
	id := r.ID
	if id == "" {
		id = r.Instance.Address
	}
	return Key(r.Prefix, r.Service, id)
}

// Register writes the instance under its key with a lease and keeps the
// lease alive until ctx ends; then it deletes the key and revokes the
// lease, and returns nil. When the lease is lost (etcd unreachable for
// longer than the TTL) it registers again, after a pause that grows to
// 30s. The first registration's error is returned at once: a registrar
// that never registered should fail loudly.
func Register(ctx context.Context, r Registration) error {
	if r.Log == nil {
		r.Log = slog.Default()
	}
	if r.TTL <= 0 {
		r.TTL = 10 * time.Second
	}
	if r.Timeout <= 0 {
		r.Timeout = 5 * time.Second
	}
	if r.Service == "" {
		return errors.New("register: no service name")
	}
	value, err := json.Marshal(r.Instance)
	if err != nil {
		return fmt.Errorf("register: %w", err)
	}
	if _, err := ParseInstance(value); err != nil {
		return fmt.Errorf("register: %w", err)
	}
	c, err := EtcdClient(r.Endpoints, r.Timeout)
	if err != nil {
		return fmt.Errorf("register: connect etcd: %w", err)
	}
	defer c.Close()
	key := r.Key()
	first := true
	pause := time.Second
	for ctx.Err() == nil {
		lease, err := r.put(ctx, c, key, string(value))
		if err != nil {
			if first {
				return err
			}
			r.Log.Warn("register again failed", "key", key, "error", err)
			if !sleep(ctx, pause) {
				break
			}
			pause = min(2*pause, 30*time.Second)
			continue
		}
		first, pause = false, time.Second
		if r.OnRegistered != nil {
			r.OnRegistered(key, lease)
		}
		ka, err := c.KeepAlive(ctx, lease)
		if err == nil {
			for range ka { // drained until the lease is lost or ctx ends
			}
		}
		if ctx.Err() != nil {
			return r.deregister(c, key, lease)
		}
		r.Log.Warn("registration lease lost; registering again", "key", key, "error", err)
	}
	return nil
}

// put grants a lease and writes the key with it.
func (r *Registration) put(ctx context.Context, c *clientv3.Client, key, value string) (clientv3.LeaseID, error) {
	rctx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	secs := max(int64((r.TTL+time.Second-1)/time.Second), 1)
	g, err := c.Grant(rctx, secs)
	if err != nil {
		return 0, fmt.Errorf("register %s: grant lease: %w", key, err)
	}
	if _, err := c.Put(rctx, key, value, clientv3.WithLease(g.ID)); err != nil {
		return 0, fmt.Errorf("register %s: %w", key, err)
	}
	return g.ID, nil
}

// deregister deletes the key and revokes the lease (a fresh context: the
// caller's is done).
func (r *Registration) deregister(c *clientv3.Client, key string, lease clientv3.LeaseID) error {
	ctx, cancel := context.WithTimeout(context.Background(), r.Timeout)
	defer cancel()
	_, derr := c.Delete(ctx, key)
	_, rerr := c.Revoke(ctx, lease)
	if err := errors.Join(derr, rerr); err != nil {
		return fmt.Errorf("deregister %s: %w", key, err)
	}
	return nil
}
