package balancer

import "math/bits"

// xxHash64 (https://github.com/Cyan4973/xxHash, XXH64) is the hash behind
// ring_hash and maglev. It is the hash Envoy uses for the same purpose and,
// unlike hash/maphash, it is stable across processes and releases, so every
// gateway instance maps a key to the same target. It is written out here to
// keep the module free of a dependency for forty lines of arithmetic.

const (
	prime1 uint64 = 11400714785074694791
	prime2 uint64 = 14029467366897019727
	prime3 uint64 = 1609587929392839161
	prime4 uint64 = 9650029242287828579
	prime5 uint64 = 2870177450012600261
)

// xxh64 returns the XXH64 hash of s with the given seed. It does not
// allocate.
func xxh64(s string, seed uint64) uint64 {
	n := len(s)
	p := 0
	var h uint64
	if n >= 32 {
		v1 := seed + prime1 + prime2
		v2 := seed + prime2
		v3 := seed
		v4 := seed - prime1
		for ; p+32 <= n; p += 32 {
			v1 = xxRound(v1, le64(s[p:]))
			v2 = xxRound(v2, le64(s[p+8:]))
			v3 = xxRound(v3, le64(s[p+16:]))
			v4 = xxRound(v4, le64(s[p+24:]))
		}
		h = bits.RotateLeft64(v1, 1) + bits.RotateLeft64(v2, 7) +
			bits.RotateLeft64(v3, 12) + bits.RotateLeft64(v4, 18)
		h = xxMerge(h, v1)
		h = xxMerge(h, v2)
		h = xxMerge(h, v3)
		h = xxMerge(h, v4)
	} else {
		h = seed + prime5
	}
	h += uint64(n)
	for ; p+8 <= n; p += 8 {
		h ^= xxRound(0, le64(s[p:]))
		h = bits.RotateLeft64(h, 27)*prime1 + prime4
	}
	if p+4 <= n {
		h ^= uint64(le32(s[p:])) * prime1
		h = bits.RotateLeft64(h, 23)*prime2 + prime3
		p += 4
	}
	for ; p < n; p++ {
		h ^= uint64(s[p]) * prime5
		h = bits.RotateLeft64(h, 11) * prime1
	}
	h ^= h >> 33
	h *= prime2
	h ^= h >> 29
	h *= prime3
	h ^= h >> 32
	return h
}

func xxRound(acc, in uint64) uint64 {
	acc += in * prime2
	acc = bits.RotateLeft64(acc, 31)
	return acc * prime1
}

func xxMerge(acc, v uint64) uint64 {
	acc ^= xxRound(0, v)
	return acc*prime1 + prime4
}

func le64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

func le32(s string) uint32 {
	_ = s[3]
	return uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24
}
