package nat

import (
	"net/netip"
	"sort"
	"time"
)

// match pairs every inside flow with the outside flow its first packets
// became, and collects the flows that never left the NAT.
func (a *Analyzer) match(res *Result) {
	in, out := a.sides[res.Inside], a.sides[res.Outside]
	index := map[matchKey][]int32{}
	dsts := map[dirKeyDst]bool{}
	for i := range out.flows {
		f := &out.flows[i]
		dsts[dirKeyDst{f.key.proto, netip.AddrPortFrom(f.key.dst, f.key.dport)}] = true
		for j := 0; j < int(out.nmatch[i]); j++ {
			k := out.matches[i][j]
			index[k] = append(index[k], int32(i))
		}
	}
	used := make([]bool, len(out.flows))
	byDst := map[dirKeyDst]*Drops{}
	var order []dirKeyDst
	for i := range in.flows {
		f := &in.flows[i]
		dk := dirKeyDst{f.key.proto, netip.AddrPortFrom(f.key.dst, f.key.dport)}
		if !dsts[dk] {
			continue // traffic that does not cross the NAT (to the gateway itself, say)
		}
		m := Mapping{Proto: f.key.proto, Inside: netip.AddrPortFrom(f.key.src, f.key.sport), Dst: dk.dst, Time: f.first, Frame: f.firstFrame}
		for j := 0; j < int(in.nmatch[i]) && !m.Outside.IsValid(); j++ {
			for _, o := range index[in.matches[i][j]] {
				if !used[o] {
					used[o] = true
					ok := out.flows[o].key
					m.Outside = netip.AddrPortFrom(ok.src, ok.sport)
					break
				}
			}
		}
		res.Mappings = append(res.Mappings, m)
		d := byDst[dk]
		if d == nil {
			d = &Drops{Proto: dk.proto, Dst: dk.dst}
			byDst[dk] = d
			order = append(order, dk)
		}
		d.NewFlows++
		if m.Outside.IsValid() {
			d.Mapped++
		} else {
			d.Dropped++
		}
	}
	sort.SliceStable(res.Mappings, func(i, j int) bool { return res.Mappings[i].Time < res.Mappings[j].Time })
	for _, dk := range order {
		d := byDst[dk]
		// The NAT address most flows to this destination were mapped to.
		natCount := map[netip.Addr]int{}
		for _, m := range res.Mappings {
			if m.Proto == dk.proto && m.Dst == dk.dst && m.Outside.IsValid() {
				natCount[m.Outside.Addr()]++
			}
		}
		best := 0
		for addr, n := range natCount {
			if n > best || n == best && addr.Compare(d.NAT) < 0 {
				d.NAT, best = addr, n
			}
		}
		for _, p := range res.Pools {
			if p.Input == res.Outside && p.NAT == d.NAT && p.Proto == d.Proto && p.Dst == d.Dst {
				d.Pool = p
			}
		}
		a.timeline(d, res.Mappings)
		res.Drops = append(res.Drops, d)
	}
	sort.SliceStable(res.Drops, func(i, j int) bool { return res.Drops[i].Dropped > res.Drops[j].Dropped })
}

type dirKeyDst struct {
	proto uint8
	dst   netip.AddrPort
}

// timeline fills the drop times, the live mappings at the drops and the
// per-second buckets.
func (a *Analyzer) timeline(d *Drops, maps []Mapping) {
	live := func(t int64) int {
		if d.Pool == nil {
			return 0
		}
		return d.Pool.Live(t)
	}
	sec := int64(time.Second)
	var bucket *Bucket
	d.LiveMinAtDrop = -1
	for _, m := range maps {
		if m.Proto != d.Proto || m.Dst != d.Dst {
			continue
		}
		start := m.Time - m.Time%sec
		if bucket == nil || bucket.Start != start {
			if bucket != nil {
				bucket.Live = live(bucket.Start + sec - 1)
			}
			d.Buckets = append(d.Buckets, Bucket{Start: start})
			bucket = &d.Buckets[len(d.Buckets)-1]
		}
		bucket.New++
		if m.Outside.IsValid() {
			continue
		}
		bucket.Dropped++
		// The mappings live just before the flow arrived.
		l := live(m.Time)
		if len(d.DroppedFrames) == 0 {
			d.FirstDrop, d.LiveAtFirstDrop = m.Time, l
		}
		if d.LiveMinAtDrop < 0 || l < d.LiveMinAtDrop {
			d.LiveMinAtDrop = l
		}
		d.LiveMaxAtDrop = max(d.LiveMaxAtDrop, l)
		if len(d.DroppedFrames) < maxDroppedFrames {
			d.DroppedFrames = append(d.DroppedFrames, m.Frame)
		}
	}
	if bucket != nil {
		bucket.Live = live(bucket.Start + sec - 1)
	}
	if d.LiveMinAtDrop < 0 {
		d.LiveMinAtDrop = 0
	}
}
