package correlate

import "math/bits"

// Delay histogram: log-linear buckets over microseconds, exact below 64 µs
// and within 1/32 (3%) above, up to 2^40 µs. It is a fixed 4.6 KiB per
// segment and class, whatever the number of packets: the quantile sketch
// behind the p50/p99 delays.
const (
	histSub     = 32
	histLinear  = 2 * histSub
	histBuckets = histLinear + 35*histSub
)

type histogram struct {
	n        uint64
	negative uint64 // delays below zero after clock correction (counted as 0)
	max      int64  // largest delay, ns
	b        [histBuckets]uint32
}

func histIndex(us uint64) int {
	if us < histLinear {
		return int(us)
	}
	e := bits.Len64(us) - 6 // us >> e is in [32, 64)
	i := histLinear + (e-1)*histSub + int(us>>uint(e)) - histSub
	if i >= histBuckets {
		return histBuckets - 1
	}
	return i
}

// histValue is the middle of bucket i, in microseconds.
func histValue(i int) float64 {
	if i < histLinear {
		return float64(i) + 0.5
	}
	e := (i-histLinear)/histSub + 1
	m := (i-histLinear)%histSub + histSub
	lo := float64(uint64(m) << uint(e))
	return lo + float64(uint64(1)<<uint(e))/2
}

func (h *histogram) add(ns int64) {
	if ns < 0 {
		h.negative++
		ns = 0
	}
	h.n++
	if ns > h.max {
		h.max = ns
	}
	h.b[histIndex(uint64(ns)/1000)]++
}

// quantile returns the q-quantile (0..1) in milliseconds, or -1 when empty.
func (h *histogram) quantile(q float64) float64 {
	if h.n == 0 {
		return -1
	}
	rank := uint64(q*float64(h.n-1)) + 1
	var seen uint64
	for i, c := range h.b {
		seen += uint64(c)
		if seen >= rank {
			return histValue(i) / 1000
		}
	}
	return histValue(histBuckets-1) / 1000
}
