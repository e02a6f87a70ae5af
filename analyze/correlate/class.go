package correlate

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/vpndiag/vpndiag/analyze/decode"
)

// maxClasses bounds the class table; further classes are counted as "other".
const maxClasses = 4096

// classKey is a traffic class: protocol and the service end of the packet,
// as seen at the first hop that saw it. A packet to a service port is "to
// ADDR:PORT"; its answer, from that port, is "from ADDR:PORT", so every
// client port of one service falls in one class per direction.
type classKey struct {
	addr  [16]byte
	port  uint16
	proto uint8
	from  bool
	v4    bool
	other bool
}

type classInfo struct {
	key     classKey
	packets uint64 // packets (matched or not) first seen in this class
	matched uint64 // seen at two hops or more
	nat     uint64 // matched packets whose addresses or ports changed between hops
	tunnels uint16 // bitmask of decode.TunnelKind seen on matched packets
	// Packets seen at the most hops of any in the class (the class's full
	// observed path), and how many of those were translated: the class
	// counts as NAT'd when most of them were.
	maxN            uint8
	atMax, natAtMax uint64
}

type classTable struct {
	m    map[classKey]uint32
	list []classInfo
}

func (c *classTable) init() { c.m = map[classKey]uint32{} }

func keyOf(s *sighting) classKey {
	t := &s.tup
	k := classKey{proto: t.proto, v4: t.v4}
	switch {
	case t.proto == 6 || t.proto == 17:
		k.from = t.sport < t.dport
	case s.icmp == 0+1 && t.v4, s.icmp == 129+1 && !t.v4: // echo reply
		k.from = true
	}
	if k.from {
		k.addr, k.port = t.src, t.sport
	} else {
		k.addr, k.port = t.dst, t.dport
	}
	return k
}

func (c *classTable) lookup(s *sighting) uint32 {
	k := keyOf(s)
	if i, ok := c.m[k]; ok {
		return i
	}
	if len(c.list) >= maxClasses {
		k = classKey{other: true}
		if i, ok := c.m[k]; ok {
			return i
		}
	}
	i := uint32(len(c.list))
	c.list = append(c.list, classInfo{key: k})
	c.m[k] = i
	return i
}

// protoName names an IP protocol for class names.
func protoName(p uint8, v4 bool) string {
	switch p {
	case 6:
		return "TCP"
	case 17:
		return "UDP"
	case 1:
		return "ICMP"
	case 58:
		return "ICMPv6"
	case 50:
		return "ESP"
	case 47:
		return "GRE"
	case 4, 41:
		return "IP-in-IP"
	}
	return fmt.Sprintf("IP proto %d", p)
}

func addrOf(b [16]byte, v4 bool) netip.Addr {
	a := netip.AddrFrom16(b)
	if v4 {
		a = a.Unmap()
	}
	return a
}

// name is the class as reports show it: "UDP to 198.18.66.53:53".
func (k classKey) name() string {
	if k.other {
		return "other"
	}
	dir := "to"
	if k.from {
		dir = "from"
	}
	a := addrOf(k.addr, k.v4)
	if k.proto == 6 || k.proto == 17 {
		return fmt.Sprintf("%s %s %s", protoName(k.proto, k.v4), dir, netip.AddrPortFrom(a, k.port))
	}
	return fmt.Sprintf("%s %s %s", protoName(k.proto, k.v4), dir, a)
}

// tunnelNames lists the tunnel kinds of a bitmask ("vxlan", "wireguard").
func tunnelNames(mask uint16) string {
	var s []string
	for k := 1; k < decode.NumTunnelKinds; k++ {
		if mask&(1<<uint(k)) != 0 {
			s = append(s, decode.TunnelKind(k).String())
		}
	}
	return strings.Join(s, ",")
}
