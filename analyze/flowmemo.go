package analyze

import (
	"net/netip"

	"github.com/vpndiag/vpndiag/analyze/decode"
)

// FlowMemo remembers the flow of the previous packet and the value an
// analyzer's map holds for it. Packets come in runs of one flow (a bulk
// transfer and its ACKs), and a run then costs a comparison of addresses
// and ports per packet instead of building the flow key (KeyOf), hashing it
// and probing the map.
//
// Only TCP, UDP and SCTP packets that are not later fragments are
// remembered: for them the key depends on nothing but addresses, ports and
// protocol, so a packet with the remembered addresses and ports, in either
// direction, has the remembered key. The memo holds a copy of what the map
// holds: whoever deletes or replaces entries must Forget it.
type FlowMemo[V any] struct {
	ok           bool
	ab           bool // the remembered packet went from A to B
	proto        uint8
	sport, dport uint16
	input        int
	src, dst     netip.Addr
	val          V
}

// memoable reports whether the level's flow key depends on nothing but its
// addresses, ports and protocol.
func memoable(l *decode.Level) bool {
	switch l.L4.Proto {
	case 6, 17, 132:
		return !(l.IP.Fragment && l.IP.FragOffset > 0) && l.IP.Proto == l.L4.Proto
	}
	return false
}

// Get returns the value remembered for the level's flow and the packet's
// direction (as KeyOf returns it), if the flow is the one remembered.
func (m *FlowMemo[V]) Get(input int, l *decode.Level) (v V, ab bool, ok bool) {
	if !m.ok || m.input != input || m.proto != l.L4.Proto || !memoable(l) {
		return v, false, false
	}
	ip, t := &l.IP, &l.L4
	switch {
	case m.sport == t.SrcPort && m.dport == t.DstPort && m.src == ip.Src && m.dst == ip.Dst:
		return m.val, m.ab, true
	case m.sport == t.DstPort && m.dport == t.SrcPort && m.src == ip.Dst && m.dst == ip.Src:
		return m.val, !m.ab, true
	}
	return v, false, false
}

// Set remembers v as the value of the level's flow; ab is the packet's
// direction as KeyOf returned it.
func (m *FlowMemo[V]) Set(input int, l *decode.Level, ab bool, v V) {
	if !memoable(l) {
		m.Forget()
		return
	}
	m.ok, m.ab, m.proto, m.sport, m.dport, m.input = true, ab, l.L4.Proto, l.L4.SrcPort, l.L4.DstPort, input
	m.src, m.dst, m.val = l.IP.Src, l.IP.Dst, v
}

// Forget drops what is remembered (call it when entries are deleted).
func (m *FlowMemo[V]) Forget() {
	var zero V
	m.val, m.ok = zero, false
}
