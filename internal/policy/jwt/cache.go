package jwt

import (
	"sync"
	"time"
)

// verified is what the policy keeps of a verified token: everything a
// later request with the same token needs, computed once.
type verified struct {
	// until is when the token stops being acceptable: exp plus leeway.
	until time.Time
	// set is the key set the token was verified with; the entry is only
	// used while that set is current, so a key removed at the IdP stops
	// cached tokens too.
	set      *keySet
	claims   map[string]any
	consumer string
	roles    []string
	// headers holds the value of each forwarded claim (nil when absent),
	// in the order of the policy's forward list; read-only, capacity
	// equal to length, so a header map holding one never writes into it.
	headers [][]string
}

// tokenCache is the verified-token cache: keyed by the SHA-256 of the
// token, bounded, entries dropped at their token's expiry. A hit costs a
// hash and a map lookup instead of a signature check.
type tokenCache struct {
	mu  sync.RWMutex
	m   map[[32]byte]*verified
	max int
}

func newTokenCache(max int) *tokenCache {
	if max <= 0 {
		return nil
	}
	return &tokenCache{m: make(map[[32]byte]*verified, min(max, 1024)), max: max}
}

// get returns the entry for h if it is still valid at now for set.
func (c *tokenCache) get(h [32]byte, now time.Time, set *keySet) *verified {
	if c == nil {
		return nil
	}
	c.mu.RLock()
	v := c.m[h]
	c.mu.RUnlock()
	if v == nil || !now.Before(v.until) || v.set != set {
		return nil
	}
	return v
}

// evictScan bounds the entries a full cache looks at for expired ones
// before it drops one at random.
const evictScan = 8

// put stores v under h, making room when the cache is full: an expired
// entry among the first evictScan (the map's iteration order is random),
// or else the first of them.
func (c *tokenCache) put(h [32]byte, v *verified, now time.Time) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[h]; !ok && len(c.m) >= c.max {
		var victim [32]byte
		n := 0
		for k, e := range c.m {
			if n == 0 {
				victim = k
			}
			if !now.Before(e.until) {
				victim = k
				break
			}
			if n++; n == evictScan {
				break
			}
		}
		delete(c.m, victim)
	}
	c.m[h] = v
}

// len returns the number of entries (tests).
func (c *tokenCache) len() int {
	if c == nil {
		return 0
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
