package correlate

import (
	"github.com/vpndiag/vpndiag/analyze/decode"
)

// tuple is a 5-tuple in a fixed-size, pointer-free form (addresses as 16
// bytes), so the engine's in-flight state holds no pointers for the GC.
type tuple struct {
	src, dst     [16]byte
	sport, dport uint16
	proto        uint8
	v4           bool
}

// sighting is what the engine keeps of one frame: the packet's identity
// (key), where and when it was seen, and the headers that NAT may rewrite.
type sighting struct {
	key     uint64 // match key; 0 means the frame cannot be matched
	t       int64  // clock-corrected time, Unix ns
	frame   uint64 // 1-based frame number in the hop's capture
	tupH    uint64 // hash of the innermost 5-tuple
	tup     tuple
	ttl     uint8
	icmp    uint8 // ICMP/ICMPv6 type + 1, 0 for other protocols
	tunnel  uint8 // outermost decode.TunnelKind, 0 when not tunnelled
	cp      uint64
	fwd     bool // direction within the canonical address pair cp
	wire    int
	encKind uint8  // decode.TunnelKind of an encrypted tunnel (ESP, WireGuard), 0 otherwise
	encID   uint32 // SPI or WireGuard receiver index
	encSeq  uint64 // ESP sequence number or WireGuard counter
	// TCP: a data segment's end (seq + length + SYN/FIN), and for a segment
	// with the ACK flag the acknowledged number and the hash of the flow
	// direction it acknowledges (the reversed 5-tuple).
	tcpData bool
	tcpEnd  uint32
	// Pairing through encrypted tunnels: the IP length of a plain packet
	// (not tunnelled, not a fragment), or the encrypted payload length.
	plainLen uint16
	encLen   uint16
	hasAck   bool
	ack      uint32
	ackFlow  uint64
}

// mix folds v into h (a 64-bit multiply-xorshift; good enough to spread
// already-hashed fields, not a cryptographic hash).
func mix(h, v uint64) uint64 {
	h ^= v + 0x9e3779b97f4a7c15 + (h << 6) + (h >> 2)
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	return h
}

func addr16(a [16]byte) (hi, lo uint64) {
	for i := 0; i < 8; i++ {
		hi = hi<<8 | uint64(a[i])
		lo = lo<<8 | uint64(a[8+i])
	}
	return
}

func (t *tuple) hash() uint64 {
	h := uint64(t.proto)
	a, b := addr16(t.src)
	c, d := addr16(t.dst)
	h = mix(mix(mix(mix(h, a), b), c), d)
	return mix(h, uint64(t.sport)<<16|uint64(t.dport))
}

// isDNS reports whether a UDP/TCP level is DNS (port 53 either side).
func isDNS(l *decode.Level) bool { return l.L4.SrcPort == 53 || l.L4.DstPort == 53 }

// fill computes the sighting of a decoded record: the match key and the
// fields the engine needs. It does not allocate.
//
// The key is built from what NAT and tunnels leave alone, on the innermost
// IP level (so the packet inside a VXLAN/GENEVE/GRE/IP-in-IP tunnel at an
// underlay hop matches the plain packet at a LAN hop):
//   - every packet: IP protocol, transport payload hash and length;
//   - TCP: sequence number and SYN/FIN/RST (no IP ID, so a retransmission is
//     the same packet); pure ACKs add the ACK number and window;
//   - DNS over UDP: the payload (transaction ID, question) alone, so a
//     resolver's retry of the same query is a duplicate, not a new packet;
//   - other UDP, ICMP and the rest: plus the IPv4 identification; ICMP adds
//     type, code and echo sequence (the echo ID is rewritten by NAT).
//
// Addresses and ports are not in the key: NAT rewrites them. A frame without
// payload and without an IP ID cannot be told apart from others: key 0.
func (s *sighting) fill(r *decode.Record) {
	*s = sighting{frame: r.Frame, t: r.Time, wire: r.WireLen}
	l := r.Inner()
	if l == nil {
		return
	}
	ip := &l.IP
	s.ttl = ip.TTL
	if r.NumTunnel == 0 && !ip.Fragment {
		s.plainLen = ip.TotalLen
	}
	if r.NumTunnel > 0 {
		s.tunnel = uint8(r.Tunnels[0].Kind)
		for i := 0; i < int(r.NumTunnel); i++ {
			if tn := &r.Tunnels[i]; tn.Kind.Encrypted() {
				s.encKind = uint8(tn.Kind)
				s.encID = tn.ID
				s.encSeq = uint64(tn.Seq)
				if tn.Kind == decode.TunnelWireGuard {
					s.encSeq = tn.Counter
				}
				s.encLen = uint16(min(l.L4.PayloadLen, 65535))
			}
		}
	}
	t := &s.tup
	t.src = ip.Src.As16()
	t.dst = ip.Dst.As16()
	t.v4 = ip.Version == 4
	t.proto = ip.Proto
	l4 := &l.L4
	if l4.Proto == 6 || l4.Proto == 17 {
		t.sport, t.dport = l4.SrcPort, l4.DstPort
	}
	s.tupH = t.hash()
	// Canonical address pair, for grouping both directions of a
	// conversation when estimating clock offsets.
	a, b := addr16(t.src)
	c, d := addr16(t.dst)
	s.fwd = a < c || (a == c && b < d)
	if s.fwd {
		s.cp = mix(mix(mix(a, b), c), d)
	} else {
		s.cp = mix(mix(mix(c, d), a), b)
	}

	ph := r.PayloadHash()
	h := mix(uint64(ip.Proto)+1, ph)
	h = mix(h, uint64(l4.PayloadLen))
	id := uint64(ip.ID)
	if ip.Version != 4 && !ip.Fragment {
		id = 0
	}
	if ip.Fragment {
		h = mix(h, uint64(ip.FragOffset)<<1|b2u(ip.MoreFrags))
	}
	switch l4.Proto {
	case 6:
		s.tcpFields(l4)
		h = mix(h, uint64(l4.Seq)<<8|uint64(l4.Flags&(decode.TCPSyn|decode.TCPFin|decode.TCPRst)))
		if l4.PayloadLen == 0 {
			h = mix(h, uint64(l4.Ack)<<16|uint64(l4.Window))
		}
		s.key = h | 1
		return
	case 17:
		if isDNS(l) && ph != 0 {
			s.key = h | 1
			return
		}
	case 1, 58:
		s.icmp = l4.ICMPType + 1
		h = mix(h, uint64(l4.ICMPType)<<24|uint64(l4.ICMPCode)<<16|uint64(l4.EchoSeq))
		if l4.Quoted.Valid {
			h = mix(h, uint64(l4.Quoted.ID)<<8|uint64(l4.Quoted.Proto))
		}
	}
	if ph == 0 && id == 0 {
		return // nothing tells this packet apart
	}
	s.key = mix(h, id) | 1
}

// tcpFields fills the TCP accounting fields of a sighting whose tuple is set.
func (s *sighting) tcpFields(l4 *decode.Transport) {
	n := uint32(l4.PayloadLen)
	if l4.Flags&(decode.TCPSyn|decode.TCPFin) != 0 {
		n++
	}
	if n > 0 {
		s.tcpData, s.tcpEnd = true, l4.Seq+n
	}
	if l4.Flags&decode.TCPAck != 0 {
		r := tuple{src: s.tup.dst, dst: s.tup.src, sport: s.tup.dport, dport: s.tup.sport, proto: s.tup.proto, v4: s.tup.v4}
		s.hasAck, s.ack, s.ackFlow = true, l4.Ack, r.hash()
	}
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}
