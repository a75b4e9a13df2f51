// Package redis is the gateway's connection to the Redis behind
// cluster-wide rate limits (cluster.redis): one shared client per Redis
// setting, kept in the registry so that it outlives config reloads, with a
// circuit around it.
//
// The client is github.com/redis/rueidis (pipelined: concurrent decisions
// share connections and go out in batches). It reaches one server
// (address), a Redis Cluster (addresses: seed nodes) or the master of a
// Sentinel group (sentinel), with AUTH (username, password_file) and TLS.
//
// The circuit: a decision that times out or finds Redis unreachable marks
// Redis down. While it is down, Exec returns ErrDown at once, without a
// round trip, so requests do not each pay the timeout; the rate limit uses
// its on_failure instead. A prober owned by the client PINGs Redis (at
// once, then 100ms, 200ms, ... up to 1s apart) and marks it up when it
// answers within the timeout: shared limiting resumes by itself. Each
// change of state is logged once and shown in rampart_redis_up. Error
// replies (a Redis that answers, but with an error) do not open the
// circuit.
package redis

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/rueidis"

	"github.com/rampart-gw/rampart/internal/registry"
	"github.com/rampart-gw/rampart/internal/telemetry"
)

// ErrDown is returned by Exec while the circuit is open: Redis was found
// unreachable or slow and has not answered a probe since.
var ErrDown = errors.New("redis is unavailable")

// Reasons a decision was not made in Redis, as Reason returns them (the
// reason label of rampart_rate_limit_store_errors_total).
const (
	ReasonTimeout = "timeout" // no answer within cluster.redis.timeout
	ReasonDown    = "down"    // unreachable, or the circuit is open
	ReasonError   = "error"   // Redis answered an error or an unexpected reply
)

// Probe intervals while Redis is down.
const (
	minProbe = 100 * time.Millisecond
	maxProbe = time.Second
)

// Client is the shared connection to one Redis setting. It is safe for
// concurrent use. Make it with Claim; it is closed when the last snapshot
// holding it is retired.
type Client struct {
	timeout time.Duration
	log     *slog.Logger
	gauge   prometheus.Gauge

	rc    atomic.Pointer[box] // nil until the first client is made
	up    atomic.Bool
	state atomic.Int32 // stateUnknown, stateUp or stateDown: what was last logged
	kick  chan struct{}

	mu      sync.Mutex // serializes state changes and their log lines
	closed  bool
	lastErr error
	since   time.Time // of the last change of state

	opt    rueidis.ClientOption
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

type box struct{ c rueidis.Client }

const (
	stateUnknown int32 = iota
	stateUp
	stateDown
)

// Deps are the shared services a Client reports to.
type Deps struct {
	Log     *slog.Logger
	Metrics *telemetry.Metrics
}

// Claim records that a snapshot needs the client of st: shared through
// the registry with every snapshot whose settings have the same identity,
// made (and its prober started) when the snapshot is acquired. set gets
// it then; with nil claims (tests), a fresh client is made at once.
func Claim(claims *registry.Claims, st *Settings, deps Deps, set func(*Client)) {
	mk := func() *Client { return newClient(st, deps) }
	if claims == nil {
		set(mk())
		return
	}
	registry.Claim(claims, "redis|"+st.key, mk, set)
}

// newClient starts the client's prober, which connects at once.
func newClient(st *Settings, deps Deps) *Client {
	c := &Client{timeout: st.Timeout, log: deps.Log, opt: st.opt, kick: make(chan struct{}, 1), done: make(chan struct{})}
	if c.log == nil {
		c.log = slog.Default()
	}
	if deps.Metrics != nil {
		c.gauge = deps.Metrics.RedisUp
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	go c.run()
	return c
}

// Up reports whether the circuit is closed: decisions go to Redis.
func (c *Client) Up() bool { return c.up.Load() }

// State is what the admin API's status shows of a client.
type State struct {
	Addresses []string  `json:"addresses"`
	Master    string    `json:"sentinel_master,omitempty"`
	Up        bool      `json:"up"`
	Since     time.Time `json:"since,omitzero"`
	LastError string    `json:"last_error,omitempty"`
}

// State returns the client's addresses and circuit state.
func (c *Client) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := State{Addresses: c.opt.InitAddress, Master: c.opt.Sentinel.MasterSet, Up: c.up.Load(), Since: c.since}
	if c.lastErr != nil && !st.Up {
		st.LastError = c.lastErr.Error()
	}
	return st
}

// Timeout is the bound on one decision.
func (c *Client) Timeout() time.Duration { return c.timeout }

// Exec runs script on key with args, within the client's timeout (and
// ctx), and returns its reply: an array of integers. It returns ErrDown at
// once while the circuit is open. Use Reason to classify an error.
func (c *Client) Exec(ctx context.Context, script *rueidis.Lua, key string, args []string) ([]int64, error) {
	b := c.rc.Load()
	if b == nil || !c.up.Load() {
		return nil, ErrDown
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	res := script.Exec(ctx, b.c, []string{key}, args)
	if err := res.Error(); err != nil {
		if _, isRedis := rueidis.IsRedisErr(err); !isRedis && ctx.Err() != context.Canceled {
			// Unreachable or slow: open the circuit. A request whose
			// client went away (Canceled) says nothing about Redis.
			c.fail(err)
		}
		if ctx.Err() == context.DeadlineExceeded {
			return nil, context.DeadlineExceeded
		}
		return nil, err
	}
	msgs, err := res.ToArray()
	if err != nil {
		return nil, ErrUnexpected
	}
	out := make([]int64, len(msgs))
	for i := range msgs {
		if out[i], err = msgs[i].AsInt64(); err != nil {
			return nil, ErrUnexpected
		}
	}
	return out, nil
}

// ErrUnexpected is returned when Redis answers a reply of another shape.
var ErrUnexpected = errors.New("redis answered an unexpected reply")

// Reason classifies an error of Exec: timeout, down or error.
func Reason(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return ReasonTimeout
	case errors.Is(err, ErrDown):
		return ReasonDown
	}
	if _, ok := rueidis.IsRedisErr(err); ok || errors.Is(err, ErrUnexpected) {
		return ReasonError
	}
	return ReasonDown
}

// fail opens the circuit after a failed decision and wakes the prober.
func (c *Client) fail(err error) {
	if c.up.CompareAndSwap(true, false) {
		c.setState(stateDown, err)
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
}

// setState logs and shows a change of state, once per change.
func (c *Client) setState(s int32, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.state.Load() == s {
		return
	}
	c.state.Store(s)
	c.lastErr, c.since = err, time.Now()
	addrs := c.opt.InitAddress
	if s == stateUp {
		c.log.Info("redis available: rate limits are shared", "redis", addrs)
		if c.gauge != nil {
			c.gauge.Set(1)
		}
		return
	}
	c.log.Warn("redis unavailable: rate limits use on_failure until it answers", "redis", addrs, "error", err)
	if c.gauge != nil {
		c.gauge.Set(0)
	}
}

// run owns the connection: it makes the rueidis client, probes Redis
// while the circuit is open and closes it when it answers. It stops when
// the Client is closed.
func (c *Client) run() {
	defer close(c.done)
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("redis prober panicked; rate limits use on_failure", "panic", r)
			c.up.Store(false)
		}
	}()
	wait := minProbe
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		if c.up.Load() {
			select {
			case <-c.ctx.Done():
				return
			case <-c.kick:
			}
			wait = minProbe
			continue
		}
		err := c.probe()
		if err == nil {
			// Logged before the circuit closes, so that a failure right
			// after it is logged after it.
			c.setState(stateUp, nil)
			c.up.Store(true)
			continue
		}
		c.setState(stateDown, err)
		t.Reset(wait)
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		wait = min(2*wait, maxProbe)
	}
}

// probe makes the rueidis client if there is none yet, then PINGs Redis
// within the timeout.
func (c *Client) probe() error {
	b := c.rc.Load()
	if b == nil {
		rc, err := rueidis.NewClient(c.opt)
		if rc == nil {
			return err
		}
		b = &box{c: rc}
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			rc.Close()
			return ErrDown
		}
		c.rc.Store(b)
		c.mu.Unlock()
		if err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.timeout)
	defer cancel()
	return b.c.Do(ctx, b.c.B().Ping().Build()).Error()
}

// Close stops the prober and closes the connections; decisions still
// running get ErrDown or a closed-client error.
func (c *Client) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.mu.Unlock()
	c.up.Store(false)
	c.cancel()
	<-c.done
	if b := c.rc.Load(); b != nil {
		b.c.Close()
	}
}

var _ registry.Closer = (*Client)(nil)

func netDialer(timeout time.Duration) net.Dialer {
	return net.Dialer{Timeout: timeout, KeepAlive: time.Second}
}
