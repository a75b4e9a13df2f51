package balancer

import (
	"math"
	"math/rand/v2"
	"net/http"
)

// hashing is what ring_hash and maglev share: the hash key, and the bounded
// load check of "Consistent Hashing with Bounded Loads" (Mirrokni, Thorup,
// Zadimoghaddam, 2016), made weight-aware: target i may take at most
// ceil(c × (total in-flight + 1) × wᵢ / Σw) requests, counting the one being
// placed. With c ≥ 1 some target always has room, so the walk ends.
type hashing struct {
	targets []*Target
	key     HashKey
	c       float64   // bounded load factor; 0 = off
	share   []float64 // wᵢ / Σw
}

func newHashing(cfg Config, targets []*Target) (hashing, error) {
	h := hashing{targets: targets, c: cfg.BoundedLoad}
	if cfg.HashKey == "" {
		h.key = HashKey{kind: keyIP}
	} else {
		k, err := ParseHashKey(cfg.HashKey)
		if err != nil {
			return hashing{}, err
		}
		h.key = k
	}
	if h.c > 0 {
		total := 0
		for _, t := range targets {
			total += weightOf(t)
		}
		h.share = make([]float64, len(targets))
		for i, t := range targets {
			h.share[i] = float64(weightOf(t)) / float64(total)
		}
	}
	return h, nil
}

// hash returns the hash of r's key, or a random value when r has none, so
// that keyless requests spread by weight like a random balancer's.
func (h *hashing) hash(r *http.Request) uint64 {
	if v, ok := h.key.Value(r); ok {
		return xxh64(v, 0)
	}
	return rand.Uint64()
}

// capacity returns c × (total in-flight + 1), to be scaled by each target's
// share. It reads every target's counter, so bounded load costs O(targets)
// per pick.
func (h *hashing) capacity() float64 {
	var total int64
	for _, t := range h.targets {
		total += t.InFlight.Load()
	}
	return h.c * float64(total+1)
}

// fits reports whether target i can take one more request under capacity.
func (h *hashing) fits(i int, capacity float64) bool {
	return float64(h.targets[i].InFlight.Load()+1) <= math.Ceil(capacity*h.share[i])
}
