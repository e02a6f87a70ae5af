package correlate

import "net/netip"

// maxMappings bounds the NAT mappings kept; further ones are only counted.
const maxMappings = 100000

// natKey is one observed translation: a packet with tuple before at hop a
// was seen with tuple after at hop b.
type natKey struct {
	a, b          uint8
	before, after tuple
}

type natMap struct {
	order         int
	packets       uint64 // packets translated this way (in the direction first seen)
	replies       uint64 // packets translated the reverse way (answers)
	firstT, lastT int64
}

// poolKey is a source NAT port pool: the outside address a translation
// rewrote the inside source to, per protocol and hop pair.
type poolKey struct {
	a, b  uint8
	proto uint8
	addr  [16]byte
	v4    bool
}

type natPool struct {
	ports    [1024]uint64 // bitset of outside source ports used
	distinct int
	minPort  uint16
	maxPort  uint16
	inside   map[[16]byte]bool
}

type natTable struct {
	m        map[natKey]*natMap
	pools    map[poolKey]*natPool
	overflow uint64
}

func (n *natTable) init() {
	n.m = map[natKey]*natMap{}
	n.pools = map[poolKey]*natPool{}
}

func (t tuple) reversed() tuple {
	t.src, t.dst = t.dst, t.src
	t.sport, t.dport = t.dport, t.sport
	return t
}

// record notes that the packet seen as before at hop a was seen as after at
// hop b. Answers (the reverse translation of a known mapping) count on it.
func (n *natTable) record(a uint8, before *tuple, b uint8, after *tuple) {
	k := natKey{a: a, b: b, before: *before, after: *after}
	if m := n.m[k]; m != nil {
		m.packets++
		return
	}
	rk := natKey{a: b, b: a, before: after.reversed(), after: before.reversed()}
	if m := n.m[rk]; m != nil {
		m.replies++
		return
	}
	if len(n.m) >= maxMappings {
		n.overflow++
		return
	}
	n.m[k] = &natMap{order: len(n.m), packets: 1}
	if before.src != after.src || before.sport != after.sport {
		pk := poolKey{a: a, b: b, proto: after.proto, addr: after.src, v4: after.v4}
		p := n.pools[pk]
		if p == nil {
			p = &natPool{minPort: after.sport, maxPort: after.sport, inside: map[[16]byte]bool{}}
			n.pools[pk] = p
		}
		w, bit := after.sport/64, uint64(1)<<(after.sport%64)
		if p.ports[w]&bit == 0 {
			p.ports[w] |= bit
			p.distinct++
			p.minPort = min(p.minPort, after.sport)
			p.maxPort = max(p.maxPort, after.sport)
		}
		if len(p.inside) < 1024 {
			p.inside[before.src] = true
		}
	}
}

// NATMapping is one translation learned from packets matched across hops.
type NATMapping struct {
	From    string `json:"from"` // hop where the packet had the Before tuple
	To      string `json:"to"`   // hop where it had the After tuple
	Proto   string `json:"proto"`
	Before  string `json:"before"` // "SRC:PORT -> DST:PORT"
	After   string `json:"after"`
	Packets uint64 `json:"packets"` // in this direction
	Replies uint64 `json:"replies"` // answers translated back
}

// NATPool is what the matched packets show of a source NAT's port pool.
type NATPool struct {
	From          string `json:"from"`
	To            string `json:"to"`
	Proto         string `json:"proto"`
	Outside       string `json:"outside_address"`
	InsideHosts   int    `json:"inside_hosts"`
	DistinctPorts int    `json:"distinct_ports"`
	PortMin       uint16 `json:"port_min"`
	PortMax       uint16 `json:"port_max"`
}

func (t *tuple) String() string {
	s, d := addrOf(t.src, t.v4), addrOf(t.dst, t.v4)
	if t.proto == 6 || t.proto == 17 {
		return netip.AddrPortFrom(s, t.sport).String() + " -> " + netip.AddrPortFrom(d, t.dport).String()
	}
	return s.String() + " -> " + d.String()
}
