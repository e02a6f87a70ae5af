package correlate

import "sort"

// DelayBin is one bin of a one-way delay histogram: Packets delays in
// [LoMs, HiMs). The bins are the engine's own (exact to the microsecond
// below 64 µs, 1/32 of the value wide above); the last bin also holds
// everything beyond it. Delays below zero after clock correction are in the
// bin at 0.
type DelayBin struct {
	LoMs, HiMs float64
	Packets    uint64
}

// histBounds returns bucket i's interval in microseconds.
func histBounds(i int) (lo, hi float64) {
	if i < histLinear {
		return float64(i), float64(i + 1)
	}
	e := (i-histLinear)/histSub + 1
	m := uint64((i-histLinear)%histSub + histSub)
	return float64(m << uint(e)), float64((m + 1) << uint(e))
}

// bins lists the histogram's non-empty buckets in order.
func (h *histogram) bins() []DelayBin {
	var out []DelayBin
	for i, c := range h.b {
		if c == 0 {
			continue
		}
		lo, hi := histBounds(i)
		out = append(out, DelayBin{LoMs: lo / 1000, HiMs: hi / 1000, Packets: uint64(c)})
	}
	return out
}

// DelayBins returns the one-way delays (From -> To, after clock correction)
// behind the segment's delay figures as a histogram of its non-empty bins;
// nil when no packet was timed at both ends.
func (s *Segment) DelayBins() []DelayBin {
	if s.hist == nil || s.hist.n == 0 {
		return nil
	}
	return s.hist.bins()
}

// HopDelays is the one-way delay distribution of every packet timed from
// one hop to the next, whatever its class.
type HopDelays struct {
	From, To       string
	FromHop, ToHop int
	Packets        uint64 // packets timed
	DelayP50ms     float64
	DelayP99ms     float64
	Bins           []DelayBin
	Classes        int // classes summed
}

// HopDelays sums the segments' delay histograms per pair of hops (all
// classes), in path order: along the path of the class that sent the most,
// then of the next class, and so on (client -> gw -> server, then the
// answers' way back).
func (r *Result) HopDelays() []HopDelays {
	type pair struct{ a, b int }
	sums := map[pair]*histogram{}
	classes := map[pair]int{}
	var order []pair
	for i := range r.Segments {
		s := &r.Segments[i]
		if s.hist == nil || s.hist.n == 0 {
			continue
		}
		k := pair{s.FromHop, s.ToHop}
		h := sums[k]
		if h == nil {
			h = &histogram{}
			sums[k] = h
			order = append(order, k)
		}
		h.n += s.hist.n
		h.negative += s.hist.negative
		h.max = max(h.max, s.hist.max)
		for j, c := range s.hist.b {
			h.b[j] += c
		}
		classes[k]++
	}
	rank := r.pathRank()
	sort.Slice(order, func(i, j int) bool {
		ri, iok := rank[[2]int{order[i].a, order[i].b}]
		rj, jok := rank[[2]int{order[j].a, order[j].b}]
		switch {
		case iok && jok && ri != rj:
			return ri < rj
		case iok != jok:
			return iok
		}
		if order[i].a != order[j].a {
			return order[i].a < order[j].a
		}
		return order[i].b < order[j].b
	})
	out := make([]HopDelays, 0, len(order))
	for _, k := range order {
		h := sums[k]
		out = append(out, HopDelays{From: r.Hops[k.a].Name, To: r.Hops[k.b].Name, FromHop: k.a, ToHop: k.b,
			Packets: h.n, DelayP50ms: round3(h.quantile(0.5)), DelayP99ms: round3(h.quantile(0.99)),
			Bins: h.bins(), Classes: classes[k]})
	}
	return out
}

// pathRank numbers hop pairs in the order they appear walking each class's
// path from its first hop, classes by packets sent (most first).
func (r *Result) pathRank() map[[2]int]int {
	type cls struct {
		name string
		sent uint64
		segs []*Segment
	}
	by := map[string]*cls{}
	var list []*cls
	for i := range r.Segments {
		s := &r.Segments[i]
		c := by[s.Class]
		if c == nil {
			c = &cls{name: s.Class}
			by[s.Class] = c
			list = append(list, c)
		}
		c.sent += s.Sent
		c.segs = append(c.segs, s)
	}
	sort.SliceStable(list, func(i, j int) bool {
		if list[i].sent != list[j].sent {
			return list[i].sent > list[j].sent
		}
		return list[i].name < list[j].name
	})
	rank := map[[2]int]int{}
	for _, c := range list {
		into := map[int]bool{}
		for _, s := range c.segs {
			into[s.ToHop] = true
		}
		for _, first := range c.segs {
			if into[first.FromHop] {
				continue
			}
			cur, seen := first.FromHop, map[int]bool{}
			for !seen[cur] {
				seen[cur] = true
				var next *Segment
				for _, s := range c.segs {
					if s.FromHop == cur && (next == nil || s.Sent > next.Sent) {
						next = s
					}
				}
				if next == nil {
					break
				}
				k := [2]int{next.FromHop, next.ToHop}
				if _, ok := rank[k]; !ok {
					rank[k] = len(rank)
				}
				cur = next.ToHop
			}
		}
	}
	return rank
}
