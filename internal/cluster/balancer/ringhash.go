package balancer

import (
	"cmp"
	"math/bits"
	"net/http"
	"slices"
	"strconv"
)

// Ring sizing. Each target owns ringPointsPerWeight points per unit of
// weight, a number that depends on the target alone: removing a target then
// removes exactly its points and no remaining target gains any, so only the
// removed target's keys move. Above ringMaxPoints (12 MiB of ring) the
// points per weight are scaled down, and that guarantee becomes approximate.
const (
	ringPointsPerWeight = 1024
	ringMaxPoints       = 1 << 20
)

// RingHash is consistent hashing on a ring (Karger et al. 1997, as in
// Envoy's ring_hash and ketama): every target is hashed onto a 64-bit ring
// at many points, in proportion to its weight, and a request goes to the
// first point clockwise of its key's hash. The same key always reaches the
// same target while the target set is unchanged, and a change of the set
// moves only the keys of the targets that came or went.
type RingHash struct {
	hashing
	hashes []uint64 // sorted point positions
	owners []int32  // owners[k] is the target index of hashes[k]
	// index[p] is the first point whose hash, shifted right by shift, is
	// at least p: it narrows the binary search to a handful of points,
	// which saves most of its cache misses on large rings.
	index []uint32
	shift uint
}

var _ Balancer = (*RingHash)(nil)

// NewRingHash builds the ring over targets, keyed by cfg.HashKey, with
// cfg.BoundedLoad.
func NewRingHash(cfg Config, targets []*Target) (*RingHash, error) {
	h, err := newHashing(cfg, targets)
	if err != nil {
		return nil, err
	}
	total := 0
	for _, t := range targets {
		total += weightOf(t)
	}
	perWeight := ringPointsPerWeight
	if total*perWeight > ringMaxPoints {
		perWeight = max(1, ringMaxPoints/total)
	}
	type point struct {
		hash  uint64
		owner int32
	}
	points := make([]point, 0, total*perWeight)
	var buf []byte
	for i, t := range targets {
		// Point k of a target is the hash of "addr_k", as in Envoy: the
		// positions depend on the address alone, so every gateway
		// instance builds the same ring.
		for k := range weightOf(t) * perWeight {
			buf = strconv.AppendInt(append(append(buf[:0], t.Addr...), '_'), int64(k), 10)
			points = append(points, point{xxh64(string(buf), 0), int32(i)})
		}
	}
	// Ties (practically never) are broken by address, so that the ring does
	// not depend on the order of targets.
	slices.SortFunc(points, func(a, b point) int {
		if c := cmp.Compare(a.hash, b.hash); c != 0 {
			return c
		}
		return cmp.Compare(targets[a.owner].Addr, targets[b.owner].Addr)
	})
	rh := &RingHash{hashing: h, hashes: make([]uint64, len(points)), owners: make([]int32, len(points))}
	for k, p := range points {
		rh.hashes[k] = p.hash
		rh.owners[k] = p.owner
	}
	rh.buildIndex()
	return rh, nil
}

// Pick returns the target owning r's key, or with bounded load the first
// target clockwise from it that has room.
func (rh *RingHash) Pick(r *http.Request) *Target {
	switch len(rh.targets) {
	case 0:
		return nil
	case 1:
		return rh.targets[0]
	}
	k := rh.search(rh.hash(r))
	if rh.c == 0 {
		return rh.targets[rh.owners[k]]
	}
	capacity := rh.capacity()
	first := k
	n := len(rh.owners)
	for step := 0; step < n; step++ {
		if o := int(rh.owners[k]); rh.fits(o, capacity) {
			return rh.targets[o]
		}
		if k++; k == n {
			k = 0
		}
	}
	return rh.targets[rh.owners[first]]
}

// buildIndex sizes the index at one entry per one to two points.
func (rh *RingHash) buildIndex() {
	b := max(1, bits.Len(uint(len(rh.hashes)))-1)
	rh.shift = uint(64 - b)
	rh.index = make([]uint32, 1<<b+1)
	k := 0
	for p := range 1 << b {
		for k < len(rh.hashes) && rh.hashes[k]>>rh.shift < uint64(p) {
			k++
		}
		rh.index[p] = uint32(k)
	}
	rh.index[1<<b] = uint32(len(rh.hashes))
}

// search returns the index of the first point at or clockwise of h.
func (rh *RingHash) search(h uint64) int {
	p := h >> rh.shift
	lo, hi := int(rh.index[p]), int(rh.index[p+1])
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if rh.hashes[m] < h {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == len(rh.hashes) {
		return 0
	}
	return lo
}
