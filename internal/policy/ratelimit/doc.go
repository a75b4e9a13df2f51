// Package ratelimit is the `rate_limit` policy: a token bucket per key.
//
// Config:
//
//	policies:
//	  per-key:
//	    type: rate_limit
//	    key: consumer               # ip | consumer | route | header:NAME | claim:NAME, or a list
//	    rate: 1000/m                # sustained rate: N/s, N/m or N/h (required)
//	    burst: 50                   # bucket size; default: rate per second rounded up, min 1
//	    by_role: {free: 100/m, premium: 10000/m}
//	    store: local                # local (default) | redis (shared through cluster.redis)
//	    on_failure: deny            # store redis only: overrides cluster.redis.on_failure
//	    sync: plain                 # store redis only: plain (default) | lease
//	    trust_forwarded: 0          # X-Forwarded-For hops to trust for the ip key
//	    max_keys: 100000            # buckets held per rate (default 100000)
//
// Each request takes one token from the bucket of its key; buckets refill
// at `rate` up to `burst`. The key is built from its parts: ip (the client
// address, see trust_forwarded), consumer (set by api_key; requests without
// a consumer are counted per client IP), route (the matched route's name),
// header:NAME (the header's first value; absent counts as empty, so all
// requests without it share one bucket). A list combines parts, for
// example [consumer, route]. claim:NAME is a claim of the token a jwt
// policy listed before this one verified (a string as is, a number in its
// JSON form; requests without the claim are counted per client IP); a
// route that lists it without a jwt policy before it is refused by
// validation. A policy listed on several routes shares its
// buckets across them unless its key includes route.
//
// With by_role, a consumer's first role (in the consumer's order) that has
// an entry uses that rate, with its own buckets; its burst is the
// policy's burst scaled by role rate / rate (or the role rate's default
// burst when burst is not set). Others use `rate`.
//
// Over the limit: 429 rate_limited with Retry-After (seconds until one
// request would be allowed, rounded up, at least 1). Every response of the
// route, allowed or not, carries the IETF draft headers
// (draft-ietf-httpapi-ratelimit-headers):
//
//	RateLimit-Limit      the burst: the most requests allowed at once
//	RateLimit-Remaining  requests allowed right now (tokens left)
//	RateLimit-Reset      seconds until the bucket is full again, rounded up
//
// The algorithm is GCRA, an exact token bucket kept in one int64 per key.
// Buckets live outside config snapshots (the registry, claimed through policy.Claim), keyed by policy
// name, key, max_keys, role, rate and burst: a reload that keeps those
// settings keeps every bucket; a changed rate starts with full buckets.
// Memory is bounded: 64 shards, each capped at max_keys/64 keys; full
// (idle) buckets are dropped on sweeps, and a shard at its cap drops the
// least recently refilled of a random sample. A decision for an existing
// key takes a shard lock, a map lookup and a few integer operations, with
// no allocation (see BenchmarkTakeAt); it uses the request's start time
// rather than reading the clock again.
//
// With store redis the buckets are shared by every gateway instance
// using the same Redis (cluster.redis, see internal/redis): each decision
// is one EVALSHA of a Lua script running the same GCRA in Redis, on
// Redis's clock (TIME), storing one value per key (the arrival time) with
// a TTL of the time to refill; rejected requests write nothing. Keys are
// cluster.redis.prefix + 32 hex digits of SHA-256(policy, role, key). When
// Redis does not decide (down, past cluster.redis.timeout, an error
// reply), on_failure does: local uses buckets in this process at rate ÷
// cluster.instances (burst likewise, rounded up); allow admits; deny
// answers 429 with Retry-After: 1.
//
// sync lease (lease.go): an instance takes a batch of tokens for a key in
// one round trip (leaseScript: GCRA with a cost, granting as many as fit)
// and spends them locally; the batch is what the key's observed rate needs
// in 200ms, from 1 (cold keys: one round trip per request) to burst/20. A
// lease lives 200ms; what it did not spend goes back (the TAT moves back,
// never below Redis's now), with the next fetch or by one background
// sweeper per rate. A key Redis refused is refused locally until its next
// token fits. At most instances × burst/20 tokens are outstanding per key:
// the bound docs/policies.md states.
//
// Metrics: rampart_rate_limit_decisions_total{policy, decision} with
// decision allowed or limited; with store redis,
// rampart_rate_limit_store_errors_total{policy, reason} (timeout, down or
// error: decisions on_failure made), rampart_rate_limit_store_duration_seconds{policy}
// and rampart_redis_up.
package ratelimit
