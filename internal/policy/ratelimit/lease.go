package ratelimit

import (
	"context"
	"hash/maphash"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/redis/rueidis"

	"github.com/rampart-gw/rampart/internal/redis"
)

// leaseScript is the decision of sync lease: GCRA with a cost. It first
// gives back ARGV[4] tokens an earlier lease did not spend (the key's TAT
// moves back by that many intervals, never below Redis's now), then takes
// up to ARGV[3] tokens: as many as fit within the tolerance (the TAT moves
// ahead by one interval each). ARGV[1] and ARGV[2] are the interval and
// the tolerance in microseconds, as for gcra. The reply is {granted,
// TAT - now, retry after}: retry after is how long until one token fits
// when none was granted (else 0). Taking nothing writes nothing unless
// tokens were given back, so a rejected request does not consume; ARGV[3]
// = 0 is a pure give-back.
var leaseScript = rueidis.NewLuaScript(leaseSource)

const leaseSource = `
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local give = tonumber(ARGV[4])
local tat = now
local v = redis.call('GET', KEYS[1])
if v then
  tat = tonumber(v)
  if not tat then
    return redis.error_reply('ERR rampart: rate limit key ' .. KEYS[1] .. ' does not hold a number')
  end
  if tat < now then tat = now end
end
local changed = false
if give > 0 and tat > now then
  tat = tat - give * interval
  if tat < now then tat = now end
  changed = true
end
local n = math.floor((tolerance - (tat - now)) / interval)
if n > want then n = want end
if n < 1 then
  if changed then
    if tat > now then
      redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000))
    else
      redis.call('DEL', KEYS[1])
    end
  end
  return {0, tat - now, math.max(0, tat + interval - now - tolerance)}
end
tat = tat + n * interval
redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000))
return {n, tat - now, 0}
`

// Lease sizing and sweeping.
const (
	// leasePeriod is how long a lease lives: its size is the tokens the
	// key is expected to need in this time, and what is unspent after
	// it goes back to Redis.
	leasePeriod = 200 * time.Millisecond
	// leaseShare: a lease holds at most burst / leaseShare tokens, so
	// the tokens outstanding on other instances stay a small part of
	// the burst.
	leaseShare = 20
	// maxLeaseTokens caps a lease whatever the burst.
	maxLeaseTokens = 1000
	// sweepEvery is the sweeper's tick: each tick gives back the expired
	// leases (at most sweepBatch) and forgets the idle keys of one shard.
	sweepEvery = 25 * time.Millisecond
	sweepBatch = 256
	// idleAfter: a key with nothing leased and no request for this long
	// is forgotten (its rate estimate starts again from one token).
	idleAfter = 5 * time.Second
)

// maxLease is the largest lease for a rate with the given burst.
func maxLease(burst int) int64 {
	return max(1, min(int64(burst)/leaseShare, maxLeaseTokens))
}

// leases are the token leases of one rate in this process (sync lease):
// per key, the tokens taken from Redis and not yet spent, and the key's
// request rate, which sizes the next lease. A background sweeper gives
// back what expired leases did not spend. Safe for concurrent use; it
// lives in the registry, outside config snapshots, and Close gives back
// every lease.
type leases struct {
	max      int64 // tokens per lease at most
	perShard int
	seed     maphash.Seed
	epoch    time.Time
	shards   [shardCount]leaseShard

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

type leaseShard struct {
	mu sync.Mutex
	m  map[string]*lease
	// held lists the leases that hold tokens, for the sweeper.
	held []*lease
	_    [40]byte
}

// lease is one key's state. Times are nanoseconds since leases.epoch;
// ahead is microseconds of Redis's clock.
type lease struct {
	tokens    int64 // taken from Redis, not yet spent
	expires   int64 // after this the tokens go back
	denyUntil int64 // Redis refused until then: refused here without asking
	ahead     int64 // the key's TAT - now in Redis at the last answer
	at        int64 // when that answer came
	rate      float64
	hits      int64 // requests since the last fetch
	last      int64 // time of the last fetch
	seen      int64 // time of the last request
	fetching  bool  // a lease of more than one token is being fetched
	listed    bool  // in its shard's held list
	rm        *remote
	rkey      string // the Redis key, for giving back
}

func newLeases(burst, maxKeys int) *leases {
	ls := &leases{
		max:      maxLease(burst),
		perShard: max(1, (maxKeys+shardCount-1)/shardCount),
		seed:     maphash.MakeSeed(),
		epoch:    time.Now(),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	for i := range ls.shards {
		ls.shards[i].m = make(map[string]*lease)
	}
	go ls.sweeper()
	return ls
}

// take decides one request on key at t (a time.Now reading, for example
// the request's start): from the key's lease when it holds a token,
// else in Redis, taking a new lease sized by the key's rate. ok is false
// when Redis did not decide (down, slow, an error): the caller applies
// on_failure, as in plain mode.
func (ls *leases) take(ctx context.Context, rm *remote, key []byte, t time.Time) (Decision, bool) {
	now := int64(t.Sub(ls.epoch))
	sh := &ls.shards[maphash.Bytes(ls.seed, key)%shardCount]
	sh.mu.Lock()
	l := sh.m[string(key)]
	if l == nil {
		if len(sh.m) >= ls.perShard {
			// Full of keys: decide this one as plain does.
			sh.mu.Unlock()
			return rm.take(ctx, key)
		}
		l = &lease{last: now}
		sh.m[string(key)] = l
	}
	l.hits++
	l.seen = now
	if l.tokens > 0 && now < l.expires {
		l.tokens--
		d := l.allowed(rm, now)
		sh.mu.Unlock()
		return d, true
	}
	if l.tokens == 0 && now < l.denyUntil {
		d := l.refused(rm, now)
		sh.mu.Unlock()
		return d, true
	}
	give := l.tokens // expired: they go back with this fetch
	l.tokens = 0
	want, fetcher := int64(1), false
	if !l.fetching {
		// Requests per second since the last fetch, smoothed; the lease
		// is what that rate needs in one lease period.
		if el := now - l.last; el > 0 {
			inst := float64(l.hits) * 1e9 / float64(el)
			l.rate = (l.rate + inst) / 2
		}
		want = min(ls.max, max(1, int64(math.Ceil(l.rate*leasePeriod.Seconds()))))
		l.hits, l.last = 0, now
		l.fetching, fetcher = true, true
	}
	sh.mu.Unlock()

	rkey := rm.redisKey(key)
	granted, ahead, retry, ok := rm.lease(ctx, rkey, want, give, true)
	done := int64(time.Since(ls.epoch))
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if fetcher {
		l.fetching = false
	}
	if !ok {
		return Decision{}, false
	}
	l.ahead, l.at = ahead, done
	if granted == 0 {
		l.denyUntil = done + retry*1000
		return l.refused(rm, done), true
	}
	if granted > 1 {
		l.tokens += granted - 1
		l.expires = done + int64(leasePeriod)
		l.rm, l.rkey = rm, rkey
		if !l.listed {
			l.listed = true
			sh.held = append(sh.held, l)
		}
	}
	return l.allowed(rm, done), true
}

// aheadNow is the key's TAT - now in Redis, in nanoseconds, as of the
// last answer and the time since, not counting the tokens held here
// (they come back if unspent).
func (l *lease) aheadNow(rm *remote, now int64) int64 {
	return max(0, (l.ahead-l.tokens*rm.interval)*1000-(now-l.at))
}

func (l *lease) allowed(rm *remote, now int64) Decision {
	a := l.aheadNow(rm, now)
	return Decision{Allowed: true, Remaining: int(max(0, rm.tol*1000-a) / (rm.interval * 1000)), Reset: time.Duration(a)}
}

func (l *lease) refused(rm *remote, now int64) Decision {
	return Decision{Reset: time.Duration(l.aheadNow(rm, now)), RetryAfter: time.Duration(max(l.denyUntil-now, 0))}
}

// lease runs leaseScript: take up to want tokens of rkey after giving
// back give. ok is false when Redis did not answer; count says whether to
// count that as a store error (a request's decision) or not (a give-back
// by the sweeper).
func (rm *remote) lease(ctx context.Context, rkey string, want, give int64, count bool) (granted, ahead, retry int64, ok bool) {
	start := time.Now()
	args := []string{rm.args[0], rm.args[1], strconv.FormatInt(want, 10), strconv.FormatInt(give, 10)}
	v, err := rm.client.Exec(ctx, leaseScript, rkey, args)
	if err == nil && (len(v) != 3 || v[0] < 0 || v[0] > max(want, 0)) {
		err = redis.ErrUnexpected
	}
	if err != nil {
		if c := rm.errs[redis.Reason(err)]; count && c != nil && ctx.Err() == nil {
			c.Inc()
		}
		return 0, 0, 0, false
	}
	if count && rm.dur != nil {
		rm.dur.Observe(time.Since(start).Seconds())
	}
	return v[0], v[1], v[2], true
}

// giveBack is one expired lease's unspent tokens.
type giveBack struct {
	rm   *remote
	rkey string
	n    int64
}

// sweeper gives back expired leases and forgets idle keys until Close.
func (ls *leases) sweeper() {
	defer close(ls.done)
	tick := time.NewTicker(sweepEvery)
	defer tick.Stop()
	next := 0
	var out []giveBack
	for {
		select {
		case <-ls.stop:
			return
		case <-tick.C:
		}
		now := int64(time.Since(ls.epoch))
		out = ls.collect(out[:0], now, sweepBatch)
		ls.send(out)
		ls.forget(&ls.shards[next], now)
		next = (next + 1) % shardCount
	}
}

// collect takes the unspent tokens of leases expired at now (all when
// now is math.MaxInt64), at most limit of them.
func (ls *leases) collect(out []giveBack, now int64, limit int) []giveBack {
	for i := range ls.shards {
		sh := &ls.shards[i]
		sh.mu.Lock()
		kept := sh.held[:0]
		for _, l := range sh.held {
			if l.tokens > 0 && now >= l.expires && len(out) < limit {
				out = append(out, giveBack{rm: l.rm, rkey: l.rkey, n: l.tokens})
				l.tokens = 0
			}
			if l.tokens > 0 {
				kept = append(kept, l)
			} else {
				l.listed = false
			}
		}
		clear(sh.held[len(kept):])
		sh.held = kept
		sh.mu.Unlock()
	}
	return out
}

// send gives tokens back to Redis, one round trip each (pipelined with
// other traffic by the client). A give-back that fails leaves the tokens
// taken in Redis until the key refills: the shared limit is stricter for
// a moment, never looser.
func (ls *leases) send(out []giveBack) {
	for _, g := range out {
		if g.rm.client != nil {
			g.rm.lease(context.Background(), g.rkey, 0, g.n, false)
		}
	}
}

// forget drops the idle keys of sh: nothing leased, no request lately,
// not refused for longer.
func (ls *leases) forget(sh *leaseShard, now int64) {
	sh.mu.Lock()
	for k, l := range sh.m {
		if l.tokens == 0 && !l.listed && !l.fetching && now-l.seen > int64(idleAfter) && now >= l.denyUntil {
			delete(sh.m, k)
		}
	}
	sh.mu.Unlock()
}

// Close stops the sweeper and gives back every lease (within about a
// second, bounded by the Redis timeout per key).
func (ls *leases) Close() {
	ls.closeOnce.Do(func() {
		close(ls.stop)
		<-ls.done
		out := ls.collect(nil, math.MaxInt64, math.MaxInt)
		deadline := time.Now().Add(time.Second)
		for i := 0; i < len(out) && time.Now().Before(deadline); i += sweepBatch {
			ls.send(out[i:min(i+sweepBatch, len(out))])
		}
	})
}

// outstanding is the number of tokens held in leases (for tests).
func (ls *leases) outstanding() int64 {
	var n int64
	for i := range ls.shards {
		sh := &ls.shards[i]
		sh.mu.Lock()
		for _, l := range sh.m {
			n += l.tokens
		}
		sh.mu.Unlock()
	}
	return n
}
