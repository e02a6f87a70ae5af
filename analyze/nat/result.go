package nat

import (
	"net/netip"
	"sort"
)

// Pool is what an outside capture shows of one NAT address, protocol and
// destination: every flow is one mapping.
type Pool struct {
	Input         int
	NAT           netip.Addr
	Proto         uint8
	Dst           netip.AddrPort
	Flows         int
	DistinctPorts int
	PortMin       uint16
	PortMax       uint16
	// PeakMappings is the most mappings live at once (a mapping lives from
	// its first packet until its last plus the idle timeout), at PeakAt.
	PeakMappings int
	PeakAt       int64
	// Dense is true when the distinct ports fill PortMin-PortMax exactly.
	Dense bool
	// Reused counts flows that used a port an earlier flow to the same
	// destination had used.
	Reused     int
	Unanswered int // flows that got no packet back
	FirstFrame uint64
	// MaxNewPerSecond is the most flows that started in one second (the
	// second starting at MaxNewPerSecondAt).
	MaxNewPerSecond   int
	MaxNewPerSecondAt int64
	// Ascending is the share of new flows whose port was above the previous
	// flow's: about 0.5 for a NAT that picks ports at random, near 1 for a
	// sequential allocator or for client ports kept untranslated.
	Ascending float64
	// Usage is the most mappings live at once per second (wider for long
	// captures), from when usageMin were first live at once to the end of
	// the capture; nil for small pools and beyond the first 64 pools.
	Usage *LiveSeries

	starts, ends []int64 // sorted mapping lifetimes, for Live
}

// Live returns the number of mappings of the pool live at time t.
func (p *Pool) Live(t int64) int {
	s := sort.Search(len(p.starts), func(i int) bool { return p.starts[i] > t })
	e := sort.Search(len(p.ends), func(i int) bool { return p.ends[i] > t })
	return s - e
}

// Span is PortMax-PortMin+1.
func (p *Pool) Span() int { return int(p.PortMax) - int(p.PortMin) + 1 }

// Address sums the pools of one NAT address and protocol in one input.
type Address struct {
	Input         int
	NAT           netip.Addr
	Proto         uint8
	Flows         int
	DistinctPorts int
	PortMin       uint16
	PortMax       uint16
	Destinations  int
	// SharedPorts counts ports used towards more than one destination.
	SharedPorts int
}

// Mapping is one inside flow and where it left the NAT.
type Mapping struct {
	Proto   uint8
	Inside  netip.AddrPort
	Outside netip.AddrPort // zero when the flow never left the NAT
	Dst     netip.AddrPort
	Time    int64
	Frame   uint64 // first frame of the flow in the inside input
}

// Bucket is one second of an outside/inside comparison.
type Bucket struct {
	Start   int64 `json:"start_unix_ns"`
	New     int   `json:"new_flows"`
	Dropped int   `json:"dropped_flows"`
	Live    int   `json:"live_mappings"` // at the end of the second
}

// Drops is the proof for one destination: the new flows inside, those that
// never left the NAT, and the live mappings when they were dropped.
type Drops struct {
	Proto    uint8
	Dst      netip.AddrPort
	NAT      netip.Addr // the address the other flows were mapped to
	NewFlows int
	Mapped   int
	Dropped  int
	// LiveAtFirstDrop, LiveMinAtDrop and LiveMaxAtDrop are the pool's live
	// mappings when the first flow was dropped, and the fewest and most at
	// any drop. Linux tries a bounded number of random ports per new flow, so
	// drops begin a little before every port is taken.
	LiveAtFirstDrop int
	LiveMinAtDrop   int
	LiveMaxAtDrop   int
	FirstDrop       int64
	DroppedFrames   []uint64 // inside frames of the first dropped flows
	Pool            *Pool    // the outside pool (nil if none was found)
	Buckets         []Bucket
}

// Result is the whole analysis.
type Result struct {
	Pools     []*Pool // busiest first
	Addresses []Address
	Drops     []*Drops // most dropped first
	Mappings  []Mapping
	// Inside and Outside are the input indices of the pair (-1 if absent).
	Inside, Outside int
	// Untracked counts new flows not tracked because MaxFlows or MaxPools
	// was reached; MaxFlows and MaxPools are the limits in force.
	Untracked          uint64
	MaxFlows, MaxPools int
	// PeakTracked is the most flows tracked at once in one input, Evicted
	// the flows whose mapping expired during the pass.
	PeakTracked int
	Evicted     uint64
}

// maxDroppedFrames bounds Drops.DroppedFrames.
const maxDroppedFrames = 10

// Result computes the analysis from everything seen so far.
func (a *Analyzer) Result() *Result {
	res := &Result{Inside: -1, Outside: -1, MaxFlows: a.opt.MaxFlows, MaxPools: a.opt.MaxPools}
	inputs := make([]int, 0, len(a.sides))
	for i := range a.sides {
		inputs = append(inputs, i)
	}
	sort.Ints(inputs)
	for _, i := range inputs {
		s := a.sides[i]
		res.Untracked += s.untracked
		res.Evicted += s.evicted
		res.PeakTracked = max(res.PeakTracked, s.peakLive)
		if s.role == RoleInside {
			res.Inside = i
			continue
		}
		if a.opt.Roles != nil {
			if r, ok := a.opt.Roles[i]; ok && r == RoleOutside {
				res.Outside = i
			}
		}
		a.pools(i, s, res)
	}
	sort.SliceStable(res.Pools, func(i, j int) bool {
		x, y := res.Pools[i], res.Pools[j]
		if x.PeakMappings != y.PeakMappings {
			return x.PeakMappings > y.PeakMappings
		}
		return x.Flows > y.Flows
	})
	if res.Inside >= 0 && res.Outside >= 0 {
		a.match(res)
	}
	return res
}

// pools turns one outside input's pool counters into pools, keeping the
// sources that started at least MinFlows flows (NAT addresses).
func (a *Analyzer) pools(input int, s *side, res *Result) {
	// Flows still live at the end: count those never answered.
	unanswered := make([]int, len(s.pools))
	for i := range s.flows {
		if f := &s.flows[i]; !f.evicted && f.rev == 0 {
			unanswered[f.pool]++
		}
	}
	byAgg := make([]*Pool, len(s.pools))
	for i := range s.pools {
		g := &s.pools[i]
		if u := s.addrs[addrKey{g.key.nat, g.key.proto}]; u == nil || u.starts < a.opt.MinFlows {
			continue
		}
		p := &Pool{Input: input, NAT: g.key.nat, Proto: g.key.proto, Dst: g.key.dst, Flows: g.flows,
			DistinctPorts: len(g.ports), PortMin: g.min, PortMax: g.max, PeakMappings: g.peak, PeakAt: g.peakAt,
			Unanswered: g.unanswered + unanswered[i], FirstFrame: g.firstFrame,
			MaxNewPerSecond: g.maxPerSec, MaxNewPerSecondAt: g.maxPerSecAt, Usage: g.use.series(s.last)}
		p.Reused = p.Flows - p.DistinctPorts
		p.Dense = p.DistinctPorts == p.Span()
		if g.flows > 1 {
			p.Ascending = float64(g.ascending) / float64(g.flows-1)
		}
		byAgg[i] = p
		res.Pools = append(res.Pools, p)
	}
	if s.keep {
		// The pair's proof needs the live mappings at any moment.
		for i := range s.flows {
			f := &s.flows[i]
			if p := byAgg[f.pool]; p != nil {
				p.starts = append(p.starts, f.first)
				p.ends = append(p.ends, f.last+a.timeoutOf(f))
			}
		}
		for _, p := range byAgg {
			if p != nil {
				sort.Slice(p.starts, func(i, j int) bool { return p.starts[i] < p.starts[j] })
				sort.Slice(p.ends, func(i, j int) bool { return p.ends[i] < p.ends[j] })
			}
		}
	}
	var aks []addrKey
	for ak, u := range s.addrs {
		if u.starts >= a.opt.MinFlows {
			aks = append(aks, ak)
		}
	}
	sort.Slice(aks, func(i, j int) bool {
		if c := aks[i].nat.Compare(aks[j].nat); c != 0 {
			return c < 0
		}
		return aks[i].proto < aks[j].proto
	})
	dsts := map[addrKey]int{}
	for _, p := range byAgg {
		if p != nil {
			dsts[addrKey{p.NAT, p.Proto}]++
		}
	}
	for _, ak := range aks {
		u := s.addrs[ak]
		sum := Address{Input: input, NAT: ak.nat, Proto: ak.proto, Flows: u.starts, PortMin: 65535, Destinations: dsts[ak]}
		for port, pu := range u.ports {
			sum.DistinctPorts++
			sum.PortMin, sum.PortMax = min(sum.PortMin, port), max(sum.PortMax, port)
			if pu.shared {
				sum.SharedPorts++
			}
		}
		res.Addresses = append(res.Addresses, sum)
	}
}
