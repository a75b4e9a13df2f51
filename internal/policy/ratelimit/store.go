package ratelimit

import (
	"hash/maphash"
	"math"
	"sync"
	"time"
)

// Store holds the token buckets of one rate: a sharded map from key to
// bucket, each bucket a single "theoretical arrival time" (the Generic Cell
// Rate Algorithm, an exact token bucket in one int64). Memory is bounded:
// a bucket whose arrival time has passed is full again and indistinguishable
// from a new one, so it is dropped when its shard is swept; a shard at its
// key cap drops full buckets first and then the sampled least recently
// refilled one. A Store is safe for concurrent use and lives outside config
// snapshots.
type Store struct {
	interval  int64 // nanoseconds per token (T)
	tolerance int64 // burst * T: how far ahead of now the arrival time may run
	burst     int
	perShard  int
	seed      maphash.Seed
	epoch     time.Time    // zero of the clock (monotonic)
	now       func() int64 // nanoseconds since epoch
	shards    [shardCount]shard
}

const shardCount = 64

type shard struct {
	mu        sync.Mutex
	m         map[string]*bucket
	lastSweep int64
	_         [40]byte // keep shards on separate cache lines
}

type bucket struct{ tat int64 }

// Decision is the outcome of one Take.
type Decision struct {
	Allowed bool
	// Remaining is how many more requests would be allowed right now.
	Remaining int
	// Reset is how long until the bucket is full again.
	Reset time.Duration
	// RetryAfter is, when not allowed, how long until one request would be.
	RetryAfter time.Duration
}

// NewStore returns a store allowing perSecond requests per second with
// bursts of burst, holding at most maxKeys keys. now, when not nil, is the
// clock in nanoseconds (for tests); the default is monotonic time.
func NewStore(perSecond float64, burst, maxKeys int, now func() int64) *Store {
	s := &Store{burst: burst, seed: maphash.MakeSeed(), epoch: time.Now(), now: now}
	s.interval = int64(math.Round(float64(time.Second) / perSecond))
	if s.interval < 1 {
		s.interval = 1
	}
	s.tolerance = s.interval * int64(burst)
	s.perShard = max(1, (maxKeys+shardCount-1)/shardCount)
	if s.now == nil {
		s.now = func() int64 { return int64(time.Since(s.epoch)) }
	}
	for i := range s.shards {
		s.shards[i].m = make(map[string]*bucket)
	}
	return s
}

// Burst returns the bucket size.
func (s *Store) Burst() int { return s.burst }

// Take counts one request against key.
func (s *Store) Take(key string) Decision {
	sh := &s.shards[maphash.String(s.seed, key)%shardCount]
	now := s.now()
	sh.mu.Lock()
	b := sh.m[key]
	if b == nil {
		b = s.insert(sh, key, now)
	}
	d := s.decide(b, now)
	sh.mu.Unlock()
	return d
}

// TakeBytes is Take for a key built in a buffer; it does not allocate for a
// key already present.
func (s *Store) TakeBytes(key []byte) Decision { return s.takeBytes(key, s.now()) }

// TakeBytesAt is TakeBytes at time t, which must carry a monotonic clock
// reading (from time.Now). The gateway passes the request's start time:
// reading the clock costs as much as the rest of the decision on some
// virtual machines, and a time a little in the past only makes the limiter
// marginally stricter.
func (s *Store) TakeBytesAt(key []byte, t time.Time) Decision {
	return s.takeBytes(key, int64(t.Sub(s.epoch)))
}

func (s *Store) takeBytes(key []byte, now int64) Decision {
	sh := &s.shards[maphash.Bytes(s.seed, key)%shardCount]
	sh.mu.Lock()
	b := sh.m[string(key)] // no allocation: the compiler looks up in place
	if b == nil {
		b = s.insert(sh, string(key), now)
	}
	d := s.decide(b, now)
	sh.mu.Unlock()
	return d
}

// decide applies GCRA to b at now. The caller holds the shard lock.
func (s *Store) decide(b *bucket, now int64) Decision {
	tat := max(b.tat, now)
	next := tat + s.interval
	if ahead := next - now; ahead > s.tolerance {
		return Decision{Reset: time.Duration(tat - now), RetryAfter: time.Duration(ahead - s.tolerance)}
	}
	b.tat = next
	ahead := next - now
	return Decision{Allowed: true, Remaining: int((s.tolerance - ahead) / s.interval), Reset: time.Duration(ahead)}
}

// insert adds a full bucket for key, making room first. The caller holds
// the shard lock.
func (s *Store) insert(sh *shard, key string, now int64) *bucket {
	// Sweep full buckets at most once per refill time (and at least a
	// second apart), or at once when the shard is at its cap.
	if len(sh.m) >= s.perShard || (len(sh.m) > 0 && now-sh.lastSweep > max(s.tolerance, int64(time.Second))) {
		sh.lastSweep = now
		for k, b := range sh.m {
			if b.tat <= now {
				delete(sh.m, k)
			}
		}
	}
	if len(sh.m) >= s.perShard {
		// Still full of active keys: drop the least recently refilled of a
		// random sample (map iteration order is random), like Redis's
		// approximated LRU.
		var victim string
		oldest := int64(math.MaxInt64)
		n := 0
		for k, b := range sh.m {
			if b.tat < oldest {
				victim, oldest = k, b.tat
			}
			if n++; n == 8 {
				break
			}
		}
		delete(sh.m, victim)
	}
	b := &bucket{tat: now}
	sh.m[key] = b
	return b
}

// Len returns the number of keys held.
func (s *Store) Len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}
