package nat

import (
	"fmt"
	"net/netip"
	"sort"
)

// Pool is the NAT ports in use towards one destination from one NAT address
// and protocol. Linux only needs the reply tuple to be unique, so every
// destination address and port has its own pool of RangeSize ports.
type Pool struct {
	NAT   netip.Addr
	Proto uint8
	Dst   netip.AddrPort
	// InUse is the number of distinct NAT ports mapped; PortMin and PortMax
	// the lowest and highest of them.
	InUse            int
	PortMin, PortMax uint16
	Clients          int // distinct inside addresses
	Unreplied        int // mappings the peer never answered
	// The configured range the ports come from, and where it was found
	// (a rule's location, or "kernel default").
	RangeMin, RangeMax uint16
	RangeFrom          string
	Rule               int // index into Snapshot.Rules, -1 for the kernel default
}

// RangeSize is the number of ports in the pool's range.
func (p Pool) RangeSize() int { return int(p.RangeMax) - int(p.RangeMin) + 1 }

// Utilization is InUse / RangeSize.
func (p Pool) Utilization() float64 { return float64(p.InUse) / float64(p.RangeSize()) }

// AddressUse sums the pools of one NAT address and protocol.
type AddressUse struct {
	NAT              netip.Addr
	Proto            uint8
	Mappings         int
	DistinctPorts    int
	PortMin, PortMax uint16
	Destinations     int
	Busiest          Pool // the pool with the highest utilization
}

// Count is a key (an address or address:port) with its number of mappings.
type Count struct {
	Key      string `json:"key"`
	Mappings int    `json:"mappings"`
}

// Analysis is a snapshot's mappings grouped into pools.
type Analysis struct {
	Pools           []Pool // busiest first
	Addresses       []AddressUse
	TopDestinations []Count
	TopClients      []Count
	SNATMappings    int // mappings with a source NAT
}

// PoolKey identifies a pool.
type PoolKey struct {
	NAT   netip.Addr
	Proto uint8
	Dst   netip.AddrPort
}

// Key returns the pool's key.
func (p Pool) Key() PoolKey { return PoolKey{p.NAT, p.Proto, p.Dst} }

// Analyze groups the snapshot's mappings into pools and finds the range of
// each from the rules. top limits the top-destination and top-client lists
// (10 when 0).
func Analyze(s *Snapshot, top int) *Analysis {
	if top <= 0 {
		top = 10
	}
	type acc struct {
		ports     map[uint16]struct{}
		clients   map[netip.Addr]struct{}
		unreplied int
		min, max  uint16
	}
	pools := map[PoolKey]*acc{}
	type addrKey struct {
		nat   netip.Addr
		proto uint8
	}
	addrPorts := map[addrKey]map[uint16]struct{}{}
	addrMappings := map[addrKey]int{}
	dsts := map[string]int{}
	clients := map[string]int{}
	a := &Analysis{}
	for _, m := range s.Mappings {
		if m.Proto != 6 && m.Proto != 17 && m.Proto != 132 && m.Proto != 33 {
			continue
		}
		a.SNATMappings++
		k := PoolKey{m.NAT.Addr(), m.Proto, m.Dst}
		p := pools[k]
		if p == nil {
			p = &acc{ports: map[uint16]struct{}{}, clients: map[netip.Addr]struct{}{}, min: m.NAT.Port(), max: m.NAT.Port()}
			pools[k] = p
		}
		port := m.NAT.Port()
		p.ports[port] = struct{}{}
		p.clients[m.Inside.Addr()] = struct{}{}
		if m.Unreplied {
			p.unreplied++
		}
		p.min, p.max = min(p.min, port), max(p.max, port)
		ak := addrKey{m.NAT.Addr(), m.Proto}
		if addrPorts[ak] == nil {
			addrPorts[ak] = map[uint16]struct{}{}
		}
		addrPorts[ak][port] = struct{}{}
		addrMappings[ak]++
		dsts[ProtoName(m.Proto)+" "+m.Dst.String()]++
		clients[m.Inside.Addr().String()]++
	}
	for k, p := range pools {
		pool := Pool{NAT: k.NAT, Proto: k.Proto, Dst: k.Dst, InUse: len(p.ports), PortMin: p.min, PortMax: p.max,
			Clients: len(p.clients), Unreplied: p.unreplied}
		pool.RangeMin, pool.RangeMax, pool.RangeFrom, pool.Rule = rangeFor(s.Rules, k.NAT, k.Proto, p.min, p.max)
		a.Pools = append(a.Pools, pool)
	}
	sort.Slice(a.Pools, func(i, j int) bool {
		x, y := a.Pools[i], a.Pools[j]
		if ux, uy := x.Utilization(), y.Utilization(); ux != uy {
			return ux > uy
		}
		if x.InUse != y.InUse {
			return x.InUse > y.InUse
		}
		if c := x.NAT.Compare(y.NAT); c != 0 {
			return c < 0
		}
		if x.Proto != y.Proto {
			return x.Proto < y.Proto
		}
		return x.Dst.Compare(y.Dst) < 0
	})
	for ak, ports := range addrPorts {
		u := AddressUse{NAT: ak.nat, Proto: ak.proto, Mappings: addrMappings[ak], DistinctPorts: len(ports), PortMin: 65535}
		for p := range ports {
			u.PortMin, u.PortMax = min(u.PortMin, p), max(u.PortMax, p)
		}
		for _, pool := range a.Pools { // busiest first: the first match is the busiest
			if pool.NAT == ak.nat && pool.Proto == ak.proto {
				if u.Destinations == 0 {
					u.Busiest = pool
				}
				u.Destinations++
			}
		}
		a.Addresses = append(a.Addresses, u)
	}
	sort.Slice(a.Addresses, func(i, j int) bool {
		x, y := a.Addresses[i], a.Addresses[j]
		if x.Mappings != y.Mappings {
			return x.Mappings > y.Mappings
		}
		if c := x.NAT.Compare(y.NAT); c != 0 {
			return c < 0
		}
		return x.Proto < y.Proto
	})
	a.TopDestinations = topCounts(dsts, top)
	a.TopClients = topCounts(clients, top)
	return a
}

// rangeFor picks the narrowest rule that could have produced every port of a
// pool; without one, the kernel's default range.
func rangeFor(rules []Rule, nat netip.Addr, proto uint8, lo, hi uint16) (uint16, uint16, string, int) {
	best := -1
	for i, r := range rules {
		if !r.Covers(nat, proto, lo) || !r.Covers(nat, proto, hi) {
			continue
		}
		if best < 0 || r.RangeSize() < rules[best].RangeSize() {
			best = i
		}
	}
	if best >= 0 {
		rmin, rmax := rules[best].PortRange()
		return rmin, rmax, fmt.Sprintf("%s %s", rules[best].Source, rules[best].Where), best
	}
	if lo < 1024 {
		return 1, 1023, "kernel default (privileged ports)", -1
	}
	return DefaultPortMin, DefaultPortMax, "kernel default", -1
}

func topCounts(m map[string]int, n int) []Count {
	out := make([]Count, 0, len(m))
	for k, v := range m {
		out = append(out, Count{k, v})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Mappings != out[j].Mappings {
			return out[i].Mappings > out[j].Mappings
		}
		return out[i].Key < out[j].Key
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}
