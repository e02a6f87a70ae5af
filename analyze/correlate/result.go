package correlate

import (
	"math"
	"sort"
)

// HopResult is what trace learned about one hop.
type HopResult struct {
	Name      string
	Source    string
	File      string // the capture file frame numbers refer to
	Format    string
	LinkTypes []string
	Packets   uint64
	Bytes     uint64
	FirstNs   int64 // capture time of the first frame, as recorded (uncorrected)
	LastNs    int64
	// CaptureDrops is the capture's own drop count (pcapng statistics or
	// the kernel), nil when the source carries none.
	CaptureDrops *uint64
	// Missed counts packets seen at hops before and after this one on their
	// class's path but not here: the capture point missed them.
	Missed uint64
	// AckedNotSeen counts TCP data segments this hop never saw although it
	// saw the receiver acknowledge them (and an earlier hop saw them): the
	// capture point missed them.
	AckedNotSeen uint64
	Matched      uint64 // frames matched with a frame of another hop
	Duplicates   uint64 // frames seen twice at this hop within the window (retransmissions, duplicates)
	Unmatchable  uint64 // frames with nothing to match them by (no IP, no payload and no IP ID)
	// Clock offset of this hop relative to the reference hop (this hop's
	// clock minus the reference's): times are corrected by subtracting it.
	OffsetNs      int64
	OffsetUncNs   int64  // half-width of the interval the offset lies in; -1 when unknown
	OffsetMethod  string // MethodReference, MethodTwoWay, MethodOneWay, MethodSameLink, MethodNone
	OffsetFrom    string // the hop the offset was estimated against
	OffsetMatches int    // packets in common with that hop in the sample
	Undecoded     map[string]int64
	Err           error // damage found while reading; what came before was used
}

// Segment is the traffic of one class over one segment (a hop and the next
// hop on the class's path).
type Segment struct {
	From, To  string
	FromHop   int
	ToHop     int
	Class     string
	NAT       bool   // most matched packets of the class were translated
	Tunnel    string // tunnel kinds the class was seen in ("vxlan"), "" if none
	Sent      uint64 // packets seen at From that should reach To
	Received  uint64 // of those, seen at To (or beyond it)
	Lost      uint64 // seen at From, never after, within the window
	LossRatio float64
	// One-way delay From -> To after clock correction, in ms; -1 when no
	// packet was seen at both consecutively.
	DelayP50ms float64
	DelayP99ms float64
	Delayed    uint64 // packets behind the delay figures
	Reordered  uint64
	// Examples are frame numbers, at From, of packets lost on this segment.
	Examples []uint64

	ck classKey
	// series are the time series of the patterns behind Sent and Lost;
	// partial is set when some of those patterns have none (lossseries.go).
	series  []seriesRef
	partial bool
	// hist is the one-way delay histogram behind the delay figures.
	hist *histogram
}

// Result is the outcome of a trace.
type Result struct {
	Hops     []HopResult
	Segments []Segment
	NAT      []NATMapping
	// NATMappingsTotal counts all mappings, including those beyond the
	// ones listed in NAT.
	NATMappingsTotal int
	NATPools         []NATPool
	Tunnels          []TunnelCounters
	WindowNs         int64
	Reference        int // index of the reference hop for clock offsets
	Packets          uint64
	Classes          int
	// TunnelPairs counts plain packets paired with the encrypted tunnel
	// packet carrying them (by size and timing, where unambiguous).
	TunnelPairs uint64

	// The loss-over-time interval grid (lossseries.go).
	lossOrigin, lossWidth int64
}

// paths infers, per class, the next hop after each hop from the sightings of
// matched packets (the most common successor), and turns the path patterns
// into per-segment counts: a packet is lost on segment A->B when A is the
// last hop that saw it and B is A's successor on the class's path, unless
// B's capture had not started or had ended (censored). A packet seen before
// and after B but not at B was missed by B's capture, not lost; so was a TCP
// data segment B did not see but saw acknowledged (ackMissed).
func (e *engine) paths(names []string) ([]Segment, []uint64, []uint64) {
	e.settleLate()
	nc := len(e.classes.list)
	// trans[c][a][b] counts consecutive sightings a->b.
	// trans[2*c+p] counts consecutive sightings a->b of class c's packets,
	// p=1 for packets paired with their encrypted carrier (their path goes
	// through the tunnel's underlay hops), p=0 for the others.
	trans := make([][]uint64, 2*nc)
	for pk, p := range e.patterns {
		ci := 2*int(pk.class) + int(b2u(pk.paired))
		for i := 0; i < maxSight-1; i++ {
			a := (pk.seq >> (4 * uint(i))) & 15
			b := (pk.seq >> (4 * uint(i+1))) & 15
			if a == 0 || b == 0 {
				break
			}
			if trans[ci] == nil {
				trans[ci] = make([]uint64, e.nh*e.nh)
			}
			trans[ci][int(a-1)*e.nh+int(b-1)] += p.count
		}
	}
	succOf := func(tr []uint64, a int) int {
		best, bn := -1, uint64(0)
		for b := 0; b < e.nh; b++ {
			if n := tr[a*e.nh+b]; n > bn {
				best, bn = b, n
			}
		}
		return best
	}
	// Fallback for a hop with no successor in its class: the class's
	// other (paired or not) path, then classes towards the same address
	// in the same direction (all of a class may be lost).
	type dstKey struct {
		addr [16]byte
		from bool
	}
	byDst := map[dstKey][]uint64{}
	for ci := 0; ci < 2*nc; ci++ {
		if trans[ci] == nil {
			continue
		}
		k := e.classes.list[ci/2].key
		dk := dstKey{k.addr, k.from}
		if byDst[dk] == nil {
			byDst[dk] = make([]uint64, e.nh*e.nh)
		}
		for i, n := range trans[ci] {
			byDst[dk][i] += n
		}
	}
	succ := make([][]int, 2*nc)
	for ci := 0; ci < 2*nc; ci++ {
		succ[ci] = make([]int, e.nh)
		k := e.classes.list[ci/2].key
		fb := byDst[dstKey{k.addr, k.from}]
		for a := 0; a < e.nh; a++ {
			succ[ci][a] = -1
			if trans[ci] != nil {
				succ[ci][a] = succOf(trans[ci], a)
			}
			if other := trans[ci^1]; succ[ci][a] < 0 && other != nil {
				succ[ci][a] = succOf(other, a)
			}
			if succ[ci][a] < 0 && fb != nil && !k.other {
				succ[ci][a] = succOf(fb, a)
			}
		}
	}
	type rowKey struct {
		class uint32
		a, b  int
	}
	rows := map[rowKey]*Segment{}
	row := func(c uint32, a, b int) *Segment {
		k := rowKey{c, a, b}
		r := rows[k]
		if r == nil {
			r = &Segment{FromHop: a, ToHop: b, From: names[a], To: names[b], DelayP50ms: -1, DelayP99ms: -1}
			rows[k] = r
		}
		return r
	}
	missed := make([]uint64, e.nh)
	ackMissed := make([]uint64, e.nh)
	// Deterministic order: patterns sorted by key.
	keys := make([]patKey, 0, len(e.patterns))
	for k := range e.patterns {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.class != b.class {
			return a.class < b.class
		}
		if a.seq != b.seq {
			return a.seq < b.seq
		}
		if a.cens != b.cens {
			return a.cens < b.cens
		}
		if a.paired != b.paired {
			return !a.paired
		}
		return a.acked < b.acked
	})
	for _, pk := range keys {
		p := e.patterns[pk]
		var hops []int
		var in uint16
		for i := 0; i < maxSight; i++ {
			h := (pk.seq >> (4 * uint(i))) & 15
			if h == 0 {
				break
			}
			hops = append(hops, int(h-1))
			in |= 1 << (h - 1)
		}
		sc := succ[2*int(pk.class)+int(b2u(pk.paired))]
		for i, a := range hops {
			s := sc[a]
			if s < 0 || in&(1<<uint(s)) != 0 && (i+1 >= len(hops) || hops[i+1] != s) {
				continue // no known next hop, or the packet went elsewhere first
			}
			if i+1 < len(hops) {
				next := hops[i+1]
				if next != s && !reaches(sc, s, next, e.nh) {
					s = next // a branch of the class's path
				}
				r := row(pk.class, a, s)
				r.Sent += p.count
				r.Received += p.count
				r.addSeries(p, false)
				if next != s && pk.cens&(1<<uint(s)) == 0 {
					missed[s] += p.count
				}
				continue
			}
			if pk.cens&(1<<uint(s)) != 0 {
				continue // s was not capturing then: cannot tell
			}
			if pk.acked&(1<<uint(s)) != 0 {
				// s saw the receiver acknowledge it: it arrived, and
				// s's capture missed it.
				r := row(pk.class, a, s)
				r.Sent += p.count
				r.Received += p.count
				r.addSeries(p, false)
				ackMissed[s] += p.count
				continue
			}
			r := row(pk.class, a, s)
			r.Sent += p.count
			r.Lost += p.count
			r.addSeries(p, true)
			for _, f := range p.examples {
				if len(r.Examples) < 5 {
					r.Examples = append(r.Examples, f)
				}
			}
		}
	}
	out := make([]Segment, 0, len(rows))
	for k, r := range rows {
		c := &e.classes.list[k.class]
		r.Class = c.key.name()
		r.ck = c.key
		r.NAT = c.atMax > 0 && 2*c.natAtMax > c.atMax
		r.Tunnel = tunnelNames(c.tunnels)
		if r.Sent > 0 {
			r.LossRatio = float64(r.Lost) / float64(r.Sent)
		}
		if st := e.segs[segKey{class: k.class, a: uint8(k.a), b: uint8(k.b)}]; st != nil {
			r.DelayP50ms = round3(st.hist.quantile(0.5))
			r.DelayP99ms = round3(st.hist.quantile(0.99))
			r.Delayed = st.hist.n
			r.Reordered = st.reordered
			r.hist = &st.hist
		}
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := &out[i], &out[j]
		if a.FromHop != b.FromHop {
			return a.FromHop < b.FromHop
		}
		if a.ToHop != b.ToHop {
			return a.ToHop < b.ToHop
		}
		if a.Sent != b.Sent {
			return a.Sent > b.Sent
		}
		return a.Class < b.Class
	})
	return out, missed, ackMissed
}

func round3(v float64) float64 {
	if v < 0 {
		return v
	}
	return math.Round(v*1000) / 1000
}

// reaches reports whether following successors from a leads to b.
func reaches(succ []int, a, b, nh int) bool {
	for i := 0; i < nh && a >= 0; i++ {
		if a == b {
			return true
		}
		a = succ[a]
	}
	return false
}
