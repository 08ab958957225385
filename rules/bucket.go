package rules

import "math"

// Buckets is the number of buckets requests are hashed into: a percentage with
// two decimals selects a whole number of buckets.
const Buckets = 10000

// Bucket returns the serving bucket in [0, Buckets) for a sticky key on a
// route. The hash is part of tandem's contract: FNV-1a (64 bit) over
// route, a zero byte and key, finished with MurmurHash3's fmix64, modulo
// Buckets. It never changes between versions, restarts or instances, so a
// fleet of tandem instances agrees on every key.
func Bucket(route, key string) uint32 {
	h := fnvString(fnvOffset, route)
	h = fnvByte(h, 0)
	h = fnvString(h, key)
	return uint32(fmix64(h) % Buckets)
}

// MirrorBucket returns the mirror-sampling bucket for a key on a route. It is
// an independent hash (a different prefix before the same construction as
// Bucket), so mirror sampling is unbiased with respect to serving.
func MirrorBucket(route, key string) uint32 {
	h := fnvString(fnvOffset, "mirror")
	h = fnvByte(h, 0)
	h = fnvString(h, route)
	h = fnvByte(h, 0)
	h = fnvString(h, key)
	return uint32(fmix64(h) % Buckets)
}

// Threshold converts a percentage (0..100, two decimals) to a bucket count:
// a bucket b is selected iff b < Threshold(p). Raising p only adds buckets and
// lowering it only removes them, which is what makes promotion sticky.
func Threshold(percent float64) uint32 {
	if percent <= 0 {
		return 0
	}
	if percent >= 100 {
		return Buckets
	}
	return uint32(math.Round(percent * 100))
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func fnvString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

func fnvByte(h uint64, b byte) uint64 {
	h ^= uint64(b)
	return h * fnvPrime
}

func fmix64(k uint64) uint64 {
	k ^= k >> 33
	k *= 0xff51afd7ed558ccd
	k ^= k >> 33
	k *= 0xc4ceb9fe1a85ec53
	k ^= k >> 33
	return k
}
