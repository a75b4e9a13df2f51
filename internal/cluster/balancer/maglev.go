package balancer

import (
	"net/http"
	"slices"
	"strings"
)

// maglevSize is the lookup table size: a prime, as the permutation needs,
// and Envoy's default. It bounds the weight resolution (1/65537) and costs
// 256 KiB per balancer.
const maglevSize = 65537

// Maglev is Google's Maglev consistent hashing (Eisenbud et al., NSDI 2016):
// each target walks its own permutation of a 65537-entry table, and the
// targets take turns claiming their next free entry, heavier targets more
// often, until the table is full. A key's hash indexes the table directly,
// so a pick is one hash and one load, whatever the number of targets. Keys
// spread more evenly than on a ring; the price is that removing a target
// also moves a small fraction of other targets' keys (under 1 % of them in
// our tests).
type Maglev struct {
	hashing
	table []uint32 // target index per entry
}

var _ Balancer = (*Maglev)(nil)

// NewMaglev builds the lookup table over targets, keyed by cfg.HashKey, with
// cfg.BoundedLoad.
func NewMaglev(cfg Config, targets []*Target) (*Maglev, error) {
	h, err := newHashing(cfg, targets)
	if err != nil {
		return nil, err
	}
	m := &Maglev{hashing: h}
	if len(targets) > 1 {
		m.table = maglevTable(targets)
	}
	return m, nil
}

// maglevTable populates the table as in the paper's Pseudocode 1, with
// Envoy's weighting: in round r a target of weight w claims an entry only if
// r·w has reached the entries it claimed so far times the largest weight.
func maglevTable(targets []*Target) []uint32 {
	type entry struct {
		target             uint32
		offset, skip, next uint64 // next is the permutation position
		weight, quota      int64
	}
	entries := make([]entry, len(targets))
	var maxWeight int64
	for i, t := range targets {
		entries[i] = entry{
			target: uint32(i),
			offset: xxh64(t.Addr, 0) % maglevSize,
			skip:   xxh64(t.Addr, 1)%(maglevSize-1) + 1,
			weight: int64(weightOf(t)),
		}
		maxWeight = max(maxWeight, entries[i].weight)
	}
	// The targets take turns in address order, not in the order given, so
	// that every gateway instance builds the same table.
	slices.SortStableFunc(entries, func(a, b entry) int {
		return strings.Compare(targets[a.target].Addr, targets[b.target].Addr)
	})
	const empty = ^uint32(0)
	table := make([]uint32, maglevSize)
	for i := range table {
		table[i] = empty
	}
	filled := 0
	for round := int64(1); filled < maglevSize; round++ {
		for i := range entries {
			e := &entries[i]
			if round*e.weight < e.quota {
				continue
			}
			e.quota += maxWeight
			c := (e.offset + e.next*e.skip) % maglevSize
			for table[c] != empty {
				e.next++
				c = (e.offset + e.next*e.skip) % maglevSize
			}
			table[c] = e.target
			e.next++
			if filled++; filled == maglevSize {
				break
			}
		}
	}
	return table
}

// Pick returns the target of r's key's entry, or with bounded load the
// target of the first entry from there on that has room.
func (m *Maglev) Pick(r *http.Request) *Target {
	switch len(m.targets) {
	case 0:
		return nil
	case 1:
		return m.targets[0]
	}
	k := int(m.hash(r) % maglevSize)
	if m.c == 0 {
		return m.targets[m.table[k]]
	}
	capacity := m.capacity()
	first := k
	for step := 0; step < maglevSize; step++ {
		if o := int(m.table[k]); m.fits(o, capacity) {
			return m.targets[o]
		}
		if k++; k == maglevSize {
			k = 0
		}
	}
	return m.targets[m.table[first]]
}
