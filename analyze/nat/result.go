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
	Untracked       uint64
}

// maxDroppedFrames bounds Drops.DroppedFrames.
const maxDroppedFrames = 10

// Result computes the analysis from everything seen so far.
func (a *Analyzer) Result() *Result {
	res := &Result{Inside: -1, Outside: -1}
	inputs := make([]int, 0, len(a.sides))
	for i := range a.sides {
		inputs = append(inputs, i)
	}
	sort.Ints(inputs)
	for _, i := range inputs {
		s := a.sides[i]
		res.Untracked += s.untracked
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

func (a *Analyzer) timeout(proto uint8) int64 {
	if proto == 6 {
		return int64(a.opt.TCPTimeout)
	}
	return int64(a.opt.UDPTimeout)
}

// pools groups one outside input's flows by initiator (NAT address),
// protocol and destination.
func (a *Analyzer) pools(input int, s *side, res *Result) {
	type addrKey struct {
		nat   netip.Addr
		proto uint8
	}
	starts := map[addrKey]int{}
	for i := range s.flows {
		k := s.flows[i].key
		starts[addrKey{k.src, k.proto}]++
	}
	type poolKey struct {
		nat   netip.Addr
		proto uint8
		dst   netip.AddrPort
	}
	pools := map[poolKey]*Pool{}
	var order []poolKey
	ports := map[poolKey]map[uint16]int{}
	addrPorts := map[addrKey]map[uint16]map[netip.AddrPort]bool{}
	for i := range s.flows {
		f := &s.flows[i]
		ak := addrKey{f.key.src, f.key.proto}
		if starts[ak] < a.opt.MinFlows {
			continue
		}
		pk := poolKey{f.key.src, f.key.proto, netip.AddrPortFrom(f.key.dst, f.key.dport)}
		p := pools[pk]
		if p == nil {
			p = &Pool{Input: input, NAT: pk.nat, Proto: pk.proto, Dst: pk.dst, PortMin: f.key.sport, PortMax: f.key.sport, FirstFrame: f.firstFrame}
			pools[pk] = p
			ports[pk] = map[uint16]int{}
			order = append(order, pk)
		}
		p.Flows++
		if f.rev == 0 {
			p.Unanswered++
		}
		ports[pk][f.key.sport]++
		p.PortMin, p.PortMax = min(p.PortMin, f.key.sport), max(p.PortMax, f.key.sport)
		p.starts = append(p.starts, f.first)
		p.ends = append(p.ends, f.last+a.timeout(f.key.proto))
		if addrPorts[ak] == nil {
			addrPorts[ak] = map[uint16]map[netip.AddrPort]bool{}
		}
		if addrPorts[ak][f.key.sport] == nil {
			addrPorts[ak][f.key.sport] = map[netip.AddrPort]bool{}
		}
		addrPorts[ak][f.key.sport][pk.dst] = true
	}
	for _, pk := range order {
		p := pools[pk]
		p.DistinctPorts = len(ports[pk])
		p.Reused = p.Flows - p.DistinctPorts
		p.Dense = p.DistinctPorts == p.Span()
		sort.Slice(p.starts, func(i, j int) bool { return p.starts[i] < p.starts[j] })
		sort.Slice(p.ends, func(i, j int) bool { return p.ends[i] < p.ends[j] })
		// Sweep: the live count peaks just after some mapping starts.
		e := 0
		for i, t := range p.starts {
			for e < len(p.ends) && p.ends[e] <= t {
				e++
			}
			if live := i + 1 - e; live > p.PeakMappings {
				p.PeakMappings, p.PeakAt = live, t
			}
		}
		res.Pools = append(res.Pools, p)
	}
	var aks []addrKey
	for ak := range addrPorts {
		aks = append(aks, ak)
	}
	sort.Slice(aks, func(i, j int) bool {
		if c := aks[i].nat.Compare(aks[j].nat); c != 0 {
			return c < 0
		}
		return aks[i].proto < aks[j].proto
	})
	for _, ak := range aks {
		u := Address{Input: input, NAT: ak.nat, Proto: ak.proto, Flows: starts[ak], PortMin: 65535}
		dsts := map[netip.AddrPort]bool{}
		for port, d := range addrPorts[ak] {
			u.DistinctPorts++
			u.PortMin, u.PortMax = min(u.PortMin, port), max(u.PortMax, port)
			if len(d) > 1 {
				u.SharedPorts++
			}
			for k := range d {
				dsts[k] = true
			}
		}
		u.Destinations = len(dsts)
		res.Addresses = append(res.Addresses, u)
	}
}
