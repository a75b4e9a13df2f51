package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"math"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/rueidis"

	"github.com/rampart-gw/rampart/internal/redis"
)

// gcra is the decision of store redis: the same GCRA as Store.decide,
// computed in Redis in one atomic round trip. KEYS[1] holds the key's
// theoretical arrival time (TAT) in microseconds of Redis's own clock
// (TIME), so gateway clocks never matter; ARGV[1] is the emission
// interval and ARGV[2] the tolerance (burst × interval), in microseconds.
// A rejected request writes nothing, so it does not consume; an admitted
// one stores the new TAT with a TTL of the time until the bucket is full
// again, after which the key is gone and indistinguishable from a full
// bucket. Lua numbers are doubles: microseconds since 1970 (about 2^51)
// are exact, and '%.0f' writes them without an exponent. The reply is
// {1, ahead, 0} when admitted (ahead: TAT - now) or {0, TAT - now,
// retry after} when not.
//
// rueidis runs it with EVALSHA and, on NOSCRIPT (a restarted or flushed
// Redis), with EVAL, which loads it again.
var gcra = rueidis.NewLuaScript(gcraSource)

const gcraSource = `
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = now
local v = redis.call('GET', KEYS[1])
if v then
  tat = tonumber(v)
  if not tat then
    return redis.error_reply('ERR rampart: rate limit key ' .. KEYS[1] .. ' does not hold a number')
  end
  if tat < now then tat = now end
end
local ahead = tat + interval - now
if ahead > tolerance then
  return {0, tat - now, ahead - tolerance}
end
redis.call('SET', KEYS[1], string.format('%.0f', tat + interval), 'PX', math.ceil(ahead / 1000))
return {1, ahead, 0}
`

// hashLen is the length of the hex digest in a Redis key: 128 bits of
// SHA-256, so every key has the same length whatever the client sent.
const hashLen = 32

// shared is what the limiters of one policy with store redis share: the
// client, the failure mode and the metrics.
type shared struct {
	client *redis.Client
	mode   string // local, allow or deny
	prefix string
	errs   map[string]prometheus.Counter // by reason
	dur    prometheus.Observer
}

// remote is one rate of a policy in Redis.
type remote struct {
	*shared
	ns       string   // hashed before the key: policy name and role
	args     []string // interval and tolerance, microseconds
	interval int64
	tol      int64
}

func newRemote(sh *shared, name, role string, perSecond float64, burst int) *remote {
	interval := max(1, int64(math.Round(1e6/perSecond)))
	tol := interval * int64(burst)
	return &remote{
		shared:   sh,
		ns:       name + "\x00" + role + "\x00",
		args:     []string{strconv.FormatInt(interval, 10), strconv.FormatInt(tol, 10)},
		interval: interval,
		tol:      tol,
	}
}

// redisKey is prefix + the hex of SHA-256(policy, role, key), cut to
// hashLen: fixed length, so a long header value cannot grow Redis's
// memory, and binary bytes never reach it.
func (rm *remote) redisKey(key []byte) string {
	h := sha256.New()
	h.Write([]byte(rm.ns))
	h.Write(key)
	var sum [sha256.Size]byte
	var hx [2 * sha256.Size]byte
	hex.Encode(hx[:], h.Sum(sum[:0]))
	return rm.prefix + string(hx[:hashLen])
}

// take decides in Redis. ok is false when Redis did not decide (down,
// slow, an error): the caller applies on_failure.
func (rm *remote) take(ctx context.Context, key []byte) (d Decision, ok bool) {
	start := time.Now()
	v, err := rm.client.Exec(ctx, gcra, rm.redisKey(key), rm.args)
	if err == nil && len(v) != 3 {
		err = redis.ErrUnexpected
	}
	if err != nil {
		if c := rm.errs[redis.Reason(err)]; c != nil && ctx.Err() == nil {
			c.Inc()
		}
		return Decision{}, false
	}
	if rm.dur != nil {
		rm.dur.Observe(time.Since(start).Seconds())
	}
	us := func(n int64) time.Duration { return time.Duration(n) * time.Microsecond }
	if v[0] == 1 {
		return Decision{Allowed: true, Remaining: int(max(0, rm.tol-v[1]) / rm.interval), Reset: us(v[1])}, true
	}
	return Decision{Reset: us(v[1]), RetryAfter: us(v[2])}, true
}
