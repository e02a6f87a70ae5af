package correlate

import (
	"container/heap"
	"math"
)

// Clock offset methods, as reported in HopResult.OffsetMethod.
const (
	MethodReference = "reference" // the reference hop (offset 0 by definition)
	MethodTwoWay    = "two-way"   // bounded by minimum delays in both directions
	MethodOneWay    = "one-way"   // one direction only: 0 when that fits and the bound is under 10 ms, else the bound
	MethodSameLink  = "same-link" // equal TTL at both hops and no reverse traffic
	MethodNone      = "none"      // no packet in common with another hop in the sample
)

// sample is a packet seen in the first pass, for clock offset estimation.
type sample struct {
	t   int64
	cp  uint64
	fwd bool
	ttl uint8
	dup bool
}

// group gathers the delays tB-tA of one direction of one conversation
// between hops A and B.
type group struct {
	min, max              int64
	n                     int
	ttlUp, ttlDown, ttlEq int // TTL at A greater, smaller, equal to the TTL at B
}

// pairEstimate is the clock offset of hop B relative to hop A (B's clock
// minus A's clock) from the packets both saw.
type pairEstimate struct {
	a, b    int
	matches int
	offset  int64
	unc     int64 // half-width of the interval the offset lies in; -1 unknown
	method  string
}

// orientation of a group: +1 packets travel A->B, -1 B->A, 0 unknown.
func (g *group) orientation() int {
	switch {
	case g.ttlUp > g.ttlDown && g.ttlUp > g.ttlEq:
		return 1
	case g.ttlDown > g.ttlUp && g.ttlDown > g.ttlEq:
		return -1
	}
	return 0
}

// estimatePair bounds the offset o of B relative to A. A packet travelling
// A->B has delta = tB-tA = d+o with d >= 0, one travelling B->A has delta =
// o-d. So the smallest delta of any A->B group is an upper bound of o and
// the largest delta of any B->A group a lower bound; with both, o is the
// middle of that interval and the uncertainty its half width. A group's
// direction comes from the TTL (it decreases along the path) or, between
// two groups of one conversation, from which has the larger delays.
func estimatePair(a, b int, sa, sb map[uint64]sample) (pairEstimate, bool) {
	type gk struct {
		cp  uint64
		fwd bool
	}
	groups := map[gk]*group{}
	n := 0
	for k, x := range sa {
		if x.dup {
			continue
		}
		y, ok := sb[k]
		if !ok || y.dup {
			continue
		}
		n++
		d := y.t - x.t
		g := groups[gk{x.cp, x.fwd}]
		if g == nil {
			g = &group{min: d, max: d}
			groups[gk{x.cp, x.fwd}] = g
		}
		g.n++
		g.min = min(g.min, d)
		g.max = max(g.max, d)
		switch {
		case x.ttl > y.ttl:
			g.ttlUp++
		case x.ttl < y.ttl:
			g.ttlDown++
		default:
			g.ttlEq++
		}
	}
	e := pairEstimate{a: a, b: b, matches: n, unc: -1}
	if n == 0 {
		return e, false
	}
	hi, lo := int64(math.MaxInt64), int64(math.MinInt64)
	nearMin, nearMax := int64(math.MaxInt64), int64(math.MinInt64)
	for k, g := range groups {
		o := g.orientation()
		if o == 0 {
			if r := groups[gk{k.cp, !k.fwd}]; r != nil {
				if ro := r.orientation(); ro != 0 {
					o = -ro
				} else if g.min+g.max > r.min+r.max {
					o = 1
				} else if g.min+g.max < r.min+r.max {
					o = -1
				}
			}
		}
		switch o {
		case 1:
			hi = min(hi, g.min)
		case -1:
			lo = max(lo, g.max)
		default:
			nearMin = min(nearMin, g.min)
			nearMax = max(nearMax, g.max)
		}
	}
	switch {
	case hi != math.MaxInt64 && lo != math.MinInt64:
		e.offset = lo + (hi-lo)/2
		e.unc = (hi - lo) / 2
		if e.unc < 0 {
			e.unc = -e.unc
		}
		e.method = MethodTwoWay
	case hi != math.MaxInt64:
		e.offset, e.method = snap(hi, hi >= 0), MethodOneWay
	case lo != math.MinInt64:
		e.offset, e.method = snap(lo, lo <= 0), MethodOneWay
	default:
		// Same link, one direction, no TTL change: nothing tells the
		// offset from the delay (a wire or bridge: microseconds). Keep
		// the order the timestamps show: take the delta nearest zero when
		// all have one sign, else assume synchronised clocks.
		e.method = MethodSameLink
		switch {
		case nearMin >= 0:
			e.offset = snap(nearMin, true)
		case nearMax <= 0:
			e.offset = snap(nearMax, true)
		default:
			e.offset, e.unc = 0, max(-nearMin, nearMax)
		}
	}
	return e, true
}

// hopOffset is a hop's clock offset relative to the reference hop.
type hopOffset struct {
	offset int64
	unc    int64 // -1 unknown
	method string
	via    int // the hop it was estimated from (-1 for the reference and unknown)
}

// unknownCost ranks estimates without an uncertainty behind every bounded one.
const unknownCost = int64(1e12)

// combineOffsets turns pairwise estimates into offsets relative to hop ref,
// following for each hop the chain of estimates with the smallest summed
// uncertainty (Dijkstra over the hops).
func combineOffsets(nhops, ref int, pairs []pairEstimate, minMatches int) []hopOffset {
	out := make([]hopOffset, nhops)
	adj := make([][]pairEstimate, nhops)
	for _, p := range pairs {
		if p.matches < minMatches {
			continue
		}
		adj[p.a] = append(adj[p.a], p)
		// The reverse edge: A relative to B.
		adj[p.b] = append(adj[p.b], pairEstimate{a: p.b, b: p.a, matches: p.matches, offset: -p.offset, unc: p.unc, method: p.method})
	}
	cost := make([]int64, nhops)
	for i := range out {
		out[i] = hopOffset{unc: -1, method: MethodNone, via: -1}
		cost[i] = math.MaxInt64
	}
	out[ref] = hopOffset{method: MethodReference, via: -1}
	cost[ref] = 0
	q := &costHeap{{ref, 0}}
	done := make([]bool, nhops)
	for q.Len() > 0 {
		it := heap.Pop(q).(costItem)
		if done[it.hop] || it.cost != cost[it.hop] {
			continue
		}
		done[it.hop] = true
		for _, e := range adj[it.hop] {
			// Cost of an edge: its uncertainty. Hops on one link (equal
			// TTL) are joined first, at no cost: their delay is a wire's,
			// and only their direct estimate orders their packets right;
			// an offset through other hops would carry those hops' jitter.
			c := e.unc + 1
			switch {
			case e.method == MethodSameLink:
				c = 0
			case e.unc < 0:
				c = unknownCost
			}
			nc := it.cost + c
			if done[e.b] || nc > cost[e.b] || (nc == cost[e.b] && (e.method != MethodSameLink || out[e.b].method == MethodSameLink)) {
				continue
			}
			cost[e.b] = nc
			from := out[it.hop]
			ho := hopOffset{offset: from.offset + e.offset, method: e.method, via: it.hop}
			if from.unc >= 0 && e.unc >= 0 {
				ho.unc = from.unc + e.unc
			} else {
				ho.unc = -1
			}
			if from.method == MethodOneWay || from.method == MethodSameLink {
				ho.method = from.method
			}
			out[e.b] = ho
			heap.Push(q, costItem{e.b, nc})
		}
	}
	return out
}

type costItem struct {
	hop  int
	cost int64
}

type costHeap []costItem

func (h costHeap) Len() int           { return len(h) }
func (h costHeap) Less(i, j int) bool { return h[i].cost < h[j].cost }
func (h costHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *costHeap) Push(x any)        { *h = append(*h, x.(costItem)) }
func (h *costHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

// snapLimit is the largest one-sided bound still read as synchronised
// clocks plus a network delay.
const snapLimit = int64(10e6)

// snap turns a one-sided bound into an offset. A bound only says the offset
// is at most (or at least) it; when zero satisfies it and the bound is
// small, the clocks are taken as synchronised (offset 0), which keeps the
// measured delays and the order of packets between these hops and any
// other. A large bound is a clock difference: the offset is the bound (the
// smallest delay taken as zero).
func snap(bound int64, zeroFits bool) int64 {
	if zeroFits && bound < snapLimit && bound > -snapLimit {
		return 0
	}
	return bound
}
