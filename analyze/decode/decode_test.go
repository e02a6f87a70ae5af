package decode

import (
	"encoding/binary"
	"net"
	"net/netip"
	"reflect"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

func eq[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

var ap = netip.MustParseAddr

// flow checks a level's addresses and ports.
func flow(t *testing.T, r *Record, level int, proto uint8, src string, sp uint16, dst string, dp uint16) {
	t.Helper()
	if level >= int(r.NumLevels) {
		t.Fatalf("level %d missing: %d levels (reason %v)", level, r.NumLevels, r.Reason)
	}
	l := &r.Levels[level]
	eq(t, "src", l.IP.Src, ap(src))
	eq(t, "dst", l.IP.Dst, ap(dst))
	eq(t, "l4 proto", l.L4.Proto, proto)
	eq(t, "src port", l.L4.SrcPort, sp)
	eq(t, "dst port", l.L4.DstPort, dp)
}

// tunnel checks the i-th tunnel's kind and carrying level and returns it.
func tunnel(t *testing.T, r *Record, i int, kind TunnelKind, level uint8) *Tunnel {
	t.Helper()
	if i >= int(r.NumTunnel) {
		t.Fatalf("tunnel %d missing: %d tunnels (reason %v)", i, r.NumTunnel, r.Reason)
	}
	tu := &r.Tunnels[i]
	eq(t, "tunnel kind", tu.Kind, kind)
	eq(t, "tunnel level", tu.Level, level)
	return tu
}

// innerTCP checks the standard inner IPv4/TCP packet at the given level.
func innerTCP(t *testing.T, r *Record, level int) {
	t.Helper()
	flow(t, r, level, 6, "198.18.1.1", 40000, "198.18.1.2", 443)
	eq(t, "inner payload", string(r.Levels[level].L4.Payload), "hello")
	eq(t, "inner innermost", r.Inner(), &r.Levels[level])
}

func innerUDP6(t *testing.T, r *Record, level int) {
	t.Helper()
	flow(t, r, level, 17, "2001:db8::1", 5353, "2001:db8::2", 53)
	eq(t, "inner payload", string(r.Levels[level].L4.Payload), "query")
}

type decodeCase struct {
	name   string
	link   LinkType
	data   []byte
	reason Reason
	check  func(t *testing.T, r *Record)
}

func decodeCases(t testing.TB) []decodeCase {
	v4syn := v4("198.18.0.1", "198.18.0.2", layers.IPProtocolTCP)
	v4syn.TOS = 46<<2 | 1
	v4syn.TTL = 63
	v4syn.Flags = layers.IPv4DontFragment
	v4syn.Id = 0xbeef
	syn := &layers.TCP{SrcPort: 51000, DstPort: 443, Seq: 0x01020304, SYN: true, Window: 64240,
		Options: []layers.TCPOption{
			{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{0x05, 0xb4}},
			{OptionType: layers.TCPOptionKindNop, OptionLength: 1},
			{OptionType: layers.TCPOptionKindWindowScale, OptionLength: 3, OptionData: []byte{7}},
		}}

	v6udp := v6("2001:db8::a", "2001:db8::b", layers.IPProtocolUDP)
	v6udp.TrafficClass = 0xb8 | 2
	v6udp.FlowLabel = 0xabcde
	v6udp.HopLimit = 7

	v4opt := v4("198.18.0.1", "198.18.0.2", layers.IPProtocolTCP)
	v4opt.Options = []layers.IPv4Option{{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}}} // router alert

	// IPv4 fragments of one 3000-byte UDP datagram.
	frag1 := v4("198.18.0.1", "198.18.0.2", layers.IPProtocolUDP)
	frag1.Flags = layers.IPv4MoreFragments
	frag1.Id = 77
	udpHdr := append(u16(5000), cat(u16(6000), u16(3008), u16(0))...)
	frag2 := v4("198.18.0.1", "198.18.0.2", layers.IPProtocolUDP)
	frag2.FragOffset = 1480 / 8
	frag2.Id = 77

	// IPv6 extension header chain: hop-by-hop, routing, destination, fragment.
	ext := cat(
		[]byte{43, 0, 5, 2, 0, 0, 0, 0},                   // hop-by-hop -> routing, router alert + pad
		[]byte{60, 2, 0, 0, 0, 0, 0, 0}, make([]byte, 16), // routing type 0 -> dest opts, 1 address
		[]byte{44, 0, 1, 4, 0, 0, 0, 0},             // destination options -> fragment
		[]byte{17, 0}, u16(0<<3|1), u32(0xcafe0001), // fragment: offset 0, M, ID -> UDP
		build(t, udpDgram(5353, 53), gopacket.Payload("query")), // UDP
	)
	ext2 := cat([]byte{17, 0}, u16(1232|0), u32(0xcafe0001), []byte("tail of the datagram"))
	ah := cat([]byte{6, 4, 0, 0}, u32(0x1000), u32(9), make([]byte, 12)) // AH, 24 bytes -> TCP

	// ICMP errors quoting the packet that caused them.
	quotedTCP := build(t, v4("198.18.1.1", "198.18.9.9", layers.IPProtocolTCP), tcpSeg(40000, 25))[:28]
	fragNeeded := build(t, eth(layers.EthernetTypeIPv4), v4("198.18.0.254", "198.18.1.1", layers.IPProtocolICMPv4),
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(3, 4), Seq: 1400}, gopacket.Payload(quotedTCP))
	quotedUDP := build(t, v4("198.18.1.1", "198.18.9.9", layers.IPProtocolUDP), udpDgram(33434, 33435))[:28]
	ttlExceeded := build(t, eth(layers.EthernetTypeIPv4), v4("198.18.0.254", "198.18.1.1", layers.IPProtocolICMPv4),
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(11, 0)}, gopacket.Payload(quotedUDP))
	quoted6 := build(t, v6("2001:db8::1", "2001:db8::9", layers.IPProtocolUDP), udpDgram(4500, 4500), gopacket.Payload(make([]byte, 1400)))[:48]
	tooBig := ip6Frame(t, layers.IPProtocolICMPv6, cat([]byte{2, 0, 0, 0}, u32(1280), quoted6))
	echo6 := ip6Frame(t, layers.IPProtocolICMPv6, cat([]byte{128, 0, 0, 0}, u16(0x77), u16(3), []byte("ping")))

	arpReq := &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6,
		ProtAddressSize: 4, Operation: 1, SourceHwAddress: macA, SourceProtAddress: net.IP{198, 18, 0, 1},
		DstHwAddress: make([]byte, 6), DstProtAddress: net.IP{198, 18, 0, 2}}
	garp := *arpReq
	garp.Operation = 2
	garp.DstProtAddress = garp.SourceProtAddress
	garp.DstHwAddress = macA

	vxlanHdr := cat([]byte{0x08, 0, 0, 0}, u32(0x123456<<8))
	vlanInner := cat(ethHdr(macD, macC, layers.EthernetTypeDot1Q), u16(10), u16(0x0800), innerIPv4TCP(t))
	geneveOpts := cat([]byte{2, 0}, u16(0x6558), u32(0xabcdef<<8), []byte{0x01, 0x02, 0x80, 0x01, 0, 0, 0, 0x0c})
	geneveIP := cat([]byte{0, 0}, u16(0x0800), u32(7<<8))
	l2tpv2 := cat(u16(0x4802), u16(0), u16(0x1111), u16(0x2222), u16(5), u16(6), []byte{0xff, 0x03, 0x00, 0x21})
	l2tpv2[2], l2tpv2[3] = 0, byte(len(l2tpv2)+len(innerIPv4TCP(t)))

	deep := innerIPv4TCP(t)
	for i := 0; i < 4; i++ {
		deep = build(t, v4("198.18.0.1", "198.18.0.2", layers.IPProtocolIPv4), gopacket.Payload(deep))
	}

	sll := func(proto uint16, payload []byte) []byte {
		return cat(u16(0), u16(1), u16(6), []byte(macA), []byte{0, 0}, u16(proto), payload)
	}
	sll2 := func(proto uint16, payload []byte) []byte {
		return cat(u16(proto), u16(0), u32(3), u16(1), []byte{4, 6}, []byte(macA), []byte{0, 0}, payload)
	}
	le := func(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

	return []decodeCase{
		{name: "ethernet ipv4 tcp syn", link: LinkEthernet,
			data: build(t, eth(layers.EthernetTypeIPv4), v4syn, syn),
			check: func(t *testing.T, r *Record) {
				eq(t, "link", r.Link, LinkEthernet)
				eq(t, "src mac", r.SrcMAC, [6]byte(macA))
				eq(t, "dst mac", r.DstMAC, [6]byte(macB))
				eq(t, "ethtype", r.EthType, 0x0800)
				eq(t, "levels", r.NumLevels, 1)
				flow(t, r, 0, 6, "198.18.0.1", 51000, "198.18.0.2", 443)
				ip := &r.Levels[0].IP
				eq(t, "version", ip.Version, 4)
				eq(t, "dscp", ip.DSCP(), 46)
				eq(t, "ecn", ip.ECN(), 1)
				eq(t, "ttl", ip.TTL, 63)
				eq(t, "df", ip.DontFrag, true)
				eq(t, "fragment", ip.Fragment, false)
				eq(t, "id", ip.ID, 0xbeef)
				eq(t, "hdrlen", ip.HeaderLen, 20)
				eq(t, "total", ip.TotalLen, 20+28)
				l4 := &r.Levels[0].L4
				eq(t, "flags", l4.Flags, TCPSyn)
				eq(t, "seq", l4.Seq, 0x01020304)
				eq(t, "window", l4.Window, 64240)
				eq(t, "mss", l4.MSS, 1460)
				eq(t, "wscale", l4.WindowScale, 7)
				eq(t, "payload len", l4.PayloadLen, 0)
			}},
		{name: "802.1Q ipv6 udp flow label", link: LinkEthernet,
			data: build(t, eth(layers.EthernetTypeDot1Q), &layers.Dot1Q{VLANIdentifier: 100, Type: layers.EthernetTypeIPv6},
				v6udp, udpDgram(1000, 2000), gopacket.Payload("data")),
			check: func(t *testing.T, r *Record) {
				eq(t, "vlans", r.NumVLANs, 1)
				eq(t, "vlan", r.VLANs[0], 100)
				eq(t, "ethtype", r.EthType, 0x86dd)
				flow(t, r, 0, 17, "2001:db8::a", 1000, "2001:db8::b", 2000)
				ip := &r.Levels[0].IP
				eq(t, "dscp", ip.DSCP(), 46)
				eq(t, "ecn", ip.ECN(), 2)
				eq(t, "flow label", ip.FlowLabel, 0xabcde)
				eq(t, "hop limit", ip.TTL, 7)
				eq(t, "total", ip.TotalLen, 40+12)
				eq(t, "payload", string(r.Levels[0].L4.Payload), "data")
				eq(t, "payload len", r.Levels[0].L4.PayloadLen, 4)
			}},
		{name: "QinQ 88a8+8100", link: LinkEthernet,
			data: build(t, eth(layers.EthernetTypeQinQ), &layers.Dot1Q{VLANIdentifier: 200, Type: layers.EthernetTypeDot1Q},
				&layers.Dot1Q{VLANIdentifier: 300, Type: layers.EthernetTypeIPv4}, v4("198.18.0.1", "198.18.0.2", layers.IPProtocolUDP),
				udpDgram(1, 2)),
			check: func(t *testing.T, r *Record) {
				eq(t, "vlans", r.NumVLANs, 2)
				eq(t, "outer vlan", r.VLANs[0], 200)
				eq(t, "inner vlan", r.VLANs[1], 300)
				flow(t, r, 0, 17, "198.18.0.1", 1, "198.18.0.2", 2)
			}},
		{name: "QinQ 9100", link: LinkEthernet,
			data: cat(ethHdr(macB, macA, 0x9100), u16(5), u16(0x0800), build(t, v4("198.18.0.1", "198.18.0.2", layers.IPProtocolUDP), udpDgram(1, 2))),
			check: func(t *testing.T, r *Record) {
				eq(t, "vlan", r.VLANs[0], 5)
				flow(t, r, 0, 17, "198.18.0.1", 1, "198.18.0.2", 2)
			}},
		{name: "PPPoE session ipv4 icmp echo", link: LinkEthernet,
			data: build(t, eth(layers.EthernetTypePPPoESession), &layers.PPPoE{Version: 1, Type: 1, SessionId: 0x11, Code: 0},
				&layers.PPP{PPPType: layers.PPPTypeIPv4}, v4("198.18.0.1", "198.18.0.2", layers.IPProtocolICMPv4),
				&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0), Id: 0x4242, Seq: 9}, gopacket.Payload("abcd")),
			check: func(t *testing.T, r *Record) {
				eq(t, "ethtype", r.EthType, 0x8864)
				flow(t, r, 0, 1, "198.18.0.1", 0, "198.18.0.2", 0)
				l4 := &r.Levels[0].L4
				eq(t, "type", l4.ICMPType, 8)
				eq(t, "echo id", l4.EchoID, 0x4242)
				eq(t, "echo seq", l4.EchoSeq, 9)
				eq(t, "payload", string(l4.Payload), "abcd")
			}},
		{name: "PPPoE session ipv6", link: LinkEthernet,
			data:  cat(ethHdr(macB, macA, layers.EthernetTypePPPoESession), []byte{0x11, 0, 0, 0x11}, u16(2+52), u16(0x0057), innerIPv6UDP(t)),
			check: func(t *testing.T, r *Record) { innerUDP6(t, r, 0) }},
		{name: "PPPoE LCP", link: LinkEthernet, reason: ReasonUnknownPPP,
			data: cat(ethHdr(macB, macA, layers.EthernetTypePPPoESession), []byte{0x11, 0, 0, 0x11}, u16(6), u16(0xc021), []byte{1, 1, 0, 4})},
		{name: "MPLS two labels ipv4", link: LinkEthernet,
			data: cat(ethHdr(macB, macA, layers.EthernetTypeMPLSUnicast), u32(100<<12|64), u32(200<<12|1<<8|64), innerIPv4TCP(t)),
			check: func(t *testing.T, r *Record) {
				eq(t, "ethtype", r.EthType, 0x8847)
				innerTCP(t, r, 0)
			}},
		{name: "MPLS ipv6", link: LinkEthernet,
			data:  cat(ethHdr(macB, macA, layers.EthernetTypeMPLSUnicast), u32(16<<12|1<<8|64), innerIPv6UDP(t)),
			check: func(t *testing.T, r *Record) { innerUDP6(t, r, 0) }},
		{name: "MPLS pseudowire ethernet", link: LinkEthernet,
			data: cat(ethHdr(macB, macA, layers.EthernetTypeMPLSUnicast), u32(16<<12|1<<8|64), u32(0), innerEthIPv4TCP(t)),
			check: func(t *testing.T, r *Record) {
				eq(t, "outer src mac kept", r.SrcMAC, [6]byte(macA))
				innerTCP(t, r, 0)
			}},
		{name: "LLC/STP", link: LinkEthernet, reason: ReasonLLC,
			data: cat([]byte(macB), []byte(macA), u16(38), []byte{0x42, 0x42, 0x03}, make([]byte, 35))},
		{name: "unknown ethertype", link: LinkEthernet, reason: ReasonUnknownEtherType,
			data: cat(ethHdr(macB, macA, 0x88cc), make([]byte, 30))},
		{name: "unknown link type", link: 147, reason: ReasonUnknownLinkType, data: innerIPv4TCP(t)},
		{name: "Linux SLL ipv4 tcp", link: LinkLinuxSLL, data: sll(0x0800, innerIPv4TCP(t)),
			check: func(t *testing.T, r *Record) {
				eq(t, "src mac", r.SrcMAC, [6]byte(macA))
				eq(t, "ethtype", r.EthType, 0x0800)
				innerTCP(t, r, 0)
			}},
		{name: "Linux SLL arp", link: LinkLinuxSLL, data: sll(0x0806, build(t, arpReq)),
			check: func(t *testing.T, r *Record) {
				eq(t, "arp", r.ARP.Valid, true)
				eq(t, "arp target", r.ARP.TargetIP, ap("198.18.0.2"))
			}},
		{name: "Linux SLL2 ipv6", link: LinkSLL2, data: sll2(0x86dd, innerIPv6UDP(t)),
			check: func(t *testing.T, r *Record) {
				eq(t, "src mac", r.SrcMAC, [6]byte(macA))
				innerUDP6(t, r, 0)
			}},
		{name: "raw 101 ipv4", link: LinkRaw, data: innerIPv4TCP(t),
			check: func(t *testing.T, r *Record) {
				eq(t, "ethtype", r.EthType, 0x0800)
				innerTCP(t, r, 0)
			}},
		{name: "raw 101 ipv6", link: LinkRaw, data: innerIPv6UDP(t),
			check: func(t *testing.T, r *Record) {
				eq(t, "ethtype", r.EthType, 0x86dd)
				innerUDP6(t, r, 0)
			}},
		{name: "raw 12", link: LinkRaw12, data: innerIPv4TCP(t), check: func(t *testing.T, r *Record) { innerTCP(t, r, 0) }},
		{name: "raw 14", link: LinkRaw14, data: innerIPv6UDP(t), check: func(t *testing.T, r *Record) { innerUDP6(t, r, 0) }},
		{name: "IPv4 228", link: LinkIPv4, data: innerIPv4TCP(t), check: func(t *testing.T, r *Record) { innerTCP(t, r, 0) }},
		{name: "IPv4 228 given ipv6", link: LinkIPv4, data: innerIPv6UDP(t), reason: ReasonBadIPHeader},
		{name: "IPv6 229", link: LinkIPv6, data: innerIPv6UDP(t), check: func(t *testing.T, r *Record) { innerUDP6(t, r, 0) }},
		{name: "NULL little-endian AF_INET", link: LinkNull, data: cat(le(2), innerIPv4TCP(t)),
			check: func(t *testing.T, r *Record) { innerTCP(t, r, 0) }},
		{name: "NULL big-endian AF_INET6 30", link: LinkNull, data: cat(u32(30), innerIPv6UDP(t)),
			check: func(t *testing.T, r *Record) { innerUDP6(t, r, 0) }},
		{name: "NULL AF_INET6 24", link: LinkNull, data: cat(le(24), innerIPv6UDP(t)),
			check: func(t *testing.T, r *Record) { innerUDP6(t, r, 0) }},
		{name: "NULL AF_INET6 28", link: LinkNull, data: cat(le(28), innerIPv6UDP(t)),
			check: func(t *testing.T, r *Record) { innerUDP6(t, r, 0) }},
		{name: "NULL unknown family", link: LinkNull, data: cat(le(7), innerIPv6UDP(t)), reason: ReasonUnknownEtherType},
		{name: "LOOP AF_INET", link: LinkLoop, data: cat(u32(2), innerIPv4TCP(t)),
			check: func(t *testing.T, r *Record) { innerTCP(t, r, 0) }},
		{name: "PPP ff03 ipv4", link: LinkPPP, data: cat([]byte{0xff, 0x03, 0x00, 0x21}, innerIPv4TCP(t)),
			check: func(t *testing.T, r *Record) { innerTCP(t, r, 0) }},
		{name: "PPP compressed protocol", link: LinkPPP, data: cat([]byte{0x21}, innerIPv4TCP(t)),
			check: func(t *testing.T, r *Record) { innerTCP(t, r, 0) }},
		{name: "PPP_HDLC ipv6", link: LinkPPPHDLC, data: cat([]byte{0xff, 0x03, 0x00, 0x57}, innerIPv6UDP(t)),
			check: func(t *testing.T, r *Record) { innerUDP6(t, r, 0) }},
		{name: "IPv4 options", link: LinkEthernet,
			data: build(t, eth(layers.EthernetTypeIPv4), v4opt, tcpSeg(1, 2), gopacket.Payload("xy")),
			check: func(t *testing.T, r *Record) {
				eq(t, "hdrlen", r.Levels[0].IP.HeaderLen, 24)
				flow(t, r, 0, 6, "198.18.0.1", 1, "198.18.0.2", 2)
				eq(t, "payload", string(r.Levels[0].L4.Payload), "xy")
				eq(t, "wscale absent", r.Levels[0].L4.WindowScale, -1)
			}},
		{name: "Ethernet padding not payload", link: LinkEthernet,
			data: cat(build(t, eth(layers.EthernetTypeIPv4), v4("198.18.0.1", "198.18.0.2", layers.IPProtocolUDP), udpDgram(7, 9), gopacket.Payload("a")), make([]byte, 17)),
			check: func(t *testing.T, r *Record) {
				eq(t, "payload", string(r.Levels[0].L4.Payload), "a")
				eq(t, "payload len", r.Levels[0].L4.PayloadLen, 1)
			}},
		{name: "IPv4 total length 0 (TSO)", link: LinkRaw,
			data: func() []byte {
				b := innerIPv4TCP(t)
				b[2], b[3] = 0, 0
				return b
			}(),
			check: func(t *testing.T, r *Record) { innerTCP(t, r, 0) }},
		{name: "IPv4 first fragment", link: LinkEthernet,
			data: build(t, eth(layers.EthernetTypeIPv4), frag1, gopacket.Payload(cat(udpHdr, make([]byte, 1472)))),
			check: func(t *testing.T, r *Record) {
				ip := &r.Levels[0].IP
				eq(t, "fragment", ip.Fragment, true)
				eq(t, "mf", ip.MoreFrags, true)
				eq(t, "offset", ip.FragOffset, 0)
				eq(t, "id", ip.ID, 77)
				flow(t, r, 0, 17, "198.18.0.1", 5000, "198.18.0.2", 6000)
				eq(t, "payload len", r.Levels[0].L4.PayloadLen, 3000)
				eq(t, "captured payload", len(r.Levels[0].L4.Payload), 1472)
			}},
		{name: "IPv4 second fragment", link: LinkEthernet,
			data: build(t, eth(layers.EthernetTypeIPv4), frag2, gopacket.Payload(make([]byte, 1528))),
			check: func(t *testing.T, r *Record) {
				ip := &r.Levels[0].IP
				eq(t, "fragment", ip.Fragment, true)
				eq(t, "mf", ip.MoreFrags, false)
				eq(t, "offset", ip.FragOffset, 1480)
				eq(t, "proto", ip.Proto, 17)
				eq(t, "no transport", r.Levels[0].L4.Proto, 0)
				eq(t, "payload", len(r.Levels[0].L4.Payload), 1528)
			}},
		{name: "IPv6 extension headers first fragment", link: LinkEthernet,
			data: ip6Frame(t, layers.IPProtocolIPv6HopByHop, ext),
			check: func(t *testing.T, r *Record) {
				ip := &r.Levels[0].IP
				eq(t, "proto", ip.Proto, 17)
				eq(t, "hdrlen", ip.HeaderLen, 40+8+24+8+8)
				eq(t, "fragment", ip.Fragment, true)
				eq(t, "mf", ip.MoreFrags, true)
				eq(t, "offset", ip.FragOffset, 0)
				eq(t, "id", ip.ID, 0xcafe0001)
				flow(t, r, 0, 17, "2001:db8::a", 5353, "2001:db8::b", 53)
				eq(t, "payload", string(r.Levels[0].L4.Payload), "query")
			}},
		{name: "IPv6 non-first fragment", link: LinkEthernet,
			data: ip6Frame(t, layers.IPProtocolIPv6Fragment, ext2),
			check: func(t *testing.T, r *Record) {
				ip := &r.Levels[0].IP
				eq(t, "offset", ip.FragOffset, 1232)
				eq(t, "mf", ip.MoreFrags, false)
				eq(t, "fragment", ip.Fragment, true)
				eq(t, "no transport", r.Levels[0].L4.Proto, 0)
				eq(t, "payload", string(r.Levels[0].L4.Payload), "tail of the datagram")
			}},
		{name: "IPv6 AH then TCP", link: LinkEthernet,
			data: ip6Frame(t, layers.IPProtocolAH, cat(ah, build(t, tcpSeg(7, 8)))),
			check: func(t *testing.T, r *Record) {
				eq(t, "hdrlen", r.Levels[0].IP.HeaderLen, 40+24)
				flow(t, r, 0, 6, "2001:db8::a", 7, "2001:db8::b", 8)
			}},
		{name: "IPv4 AH then TCP", link: LinkEthernet,
			data: ipFrame(t, layers.IPProtocolAH, cat(ah, build(t, tcpSeg(7, 8)))),
			check: func(t *testing.T, r *Record) {
				eq(t, "proto", r.Levels[0].IP.Proto, 6)
				flow(t, r, 0, 6, "198.18.0.1", 7, "198.18.0.2", 8)
			}},
		{name: "ICMP frag needed quoting TCP", link: LinkEthernet, data: fragNeeded,
			check: func(t *testing.T, r *Record) {
				l4 := &r.Levels[0].L4
				eq(t, "type", l4.ICMPType, 3)
				eq(t, "code", l4.ICMPCode, 4)
				eq(t, "mtu", l4.MTU, 1400)
				q := &l4.Quoted
				eq(t, "quoted", q.Valid, true)
				eq(t, "quoted proto", q.Proto, 6)
				eq(t, "quoted src", q.Src, ap("198.18.1.1"))
				eq(t, "quoted dst", q.Dst, ap("198.18.9.9"))
				eq(t, "quoted sport", q.SrcPort, 40000)
				eq(t, "quoted dport", q.DstPort, 25)
				eq(t, "quoted id", q.ID, 0x1234)
				eq(t, "quoted total", q.TotalLen, 40)
			}},
		{name: "ICMP time exceeded quoting UDP", link: LinkEthernet, data: ttlExceeded,
			check: func(t *testing.T, r *Record) {
				l4 := &r.Levels[0].L4
				eq(t, "type", l4.ICMPType, 11)
				eq(t, "mtu", l4.MTU, 0)
				eq(t, "quoted proto", l4.Quoted.Proto, 17)
				eq(t, "quoted dport", l4.Quoted.DstPort, 33435)
			}},
		{name: "ICMPv6 packet too big", link: LinkEthernet, data: tooBig,
			check: func(t *testing.T, r *Record) {
				l4 := &r.Levels[0].L4
				eq(t, "proto", l4.Proto, 58)
				eq(t, "type", l4.ICMPType, 2)
				eq(t, "mtu", l4.MTU, 1280)
				q := &l4.Quoted
				eq(t, "quoted", q.Valid, true)
				eq(t, "quoted proto", q.Proto, 17)
				eq(t, "quoted src", q.Src, ap("2001:db8::1"))
				eq(t, "quoted dst", q.Dst, ap("2001:db8::9"))
				eq(t, "quoted ports", q.SrcPort+q.DstPort, 9000)
				eq(t, "quoted total", q.TotalLen, 40+8+1400)
			}},
		{name: "ICMPv6 echo", link: LinkEthernet, data: echo6,
			check: func(t *testing.T, r *Record) {
				l4 := &r.Levels[0].L4
				eq(t, "type", l4.ICMPType, 128)
				eq(t, "echo id", l4.EchoID, 0x77)
				eq(t, "echo seq", l4.EchoSeq, 3)
				eq(t, "payload", string(l4.Payload), "ping")
			}},
		{name: "ARP request", link: LinkEthernet, data: cat(ethHdr(macB, macA, layers.EthernetTypeARP), build(t, arpReq)),
			check: func(t *testing.T, r *Record) {
				a := &r.ARP
				eq(t, "valid", a.Valid, true)
				eq(t, "level", a.Level, 0)
				eq(t, "op", a.Op, 1)
				eq(t, "sender mac", a.SenderMAC, [6]byte(macA))
				eq(t, "sender ip", a.SenderIP, ap("198.18.0.1"))
				eq(t, "target ip", a.TargetIP, ap("198.18.0.2"))
				eq(t, "gratuitous", a.Gratuitous(), false)
				eq(t, "levels", r.NumLevels, 0)
			}},
		{name: "gratuitous ARP reply", link: LinkEthernet, data: cat(ethHdr(macB, macA, layers.EthernetTypeARP), build(t, &garp)),
			check: func(t *testing.T, r *Record) {
				eq(t, "op", r.ARP.Op, 2)
				eq(t, "target mac", r.ARP.TargetMAC, [6]byte(macA))
				eq(t, "gratuitous", r.ARP.Gratuitous(), true)
			}},
		{name: "ARP over IPv6 protocol", link: LinkEthernet, reason: ReasonBadARP,
			data: cat(ethHdr(macB, macA, layers.EthernetTypeARP), u16(1), u16(0x86dd), []byte{6, 16}, u16(1), make([]byte, 44))},
		{name: "VXLAN 4789 inner VLAN ipv4 tcp", link: LinkEthernet,
			data: udpFrame(t, 50000, 4789, cat(vxlanHdr, vlanInner)),
			check: func(t *testing.T, r *Record) {
				eq(t, "outer src mac", r.SrcMAC, [6]byte(macA))
				eq(t, "outer vlans", r.NumVLANs, 0)
				eq(t, "levels", r.NumLevels, 2)
				flow(t, r, 0, 17, "198.18.0.1", 50000, "198.18.0.2", 4789)
				tu := tunnel(t, r, 0, TunnelVXLAN, 0)
				eq(t, "vni", tu.ID, 0x123456)
				innerTCP(t, r, 1)
				eq(t, "outer", r.Outer(), &r.Levels[0])
			}},
		{name: "VXLAN 8472 inner ARP", link: LinkEthernet,
			data: udpFrame(t, 50000, 8472, cat(vxlanHdr, cat(ethHdr(macD, macC, layers.EthernetTypeARP), build(t, arpReq)))),
			check: func(t *testing.T, r *Record) {
				tunnel(t, r, 0, TunnelVXLAN, 0)
				eq(t, "levels", r.NumLevels, 1)
				eq(t, "arp", r.ARP.Valid, true)
				eq(t, "arp level", r.ARP.Level, 1)
				eq(t, "arp sender", r.ARP.SenderIP, ap("198.18.0.1"))
			}},
		{name: "GENEVE options TEB", link: LinkEthernet,
			data: udpFrame(t, 40000, 6081, cat(geneveOpts, innerEthIPv4TCP(t))),
			check: func(t *testing.T, r *Record) {
				tu := tunnel(t, r, 0, TunnelGENEVE, 0)
				eq(t, "vni", tu.ID, 0xabcdef)
				eq(t, "protocol", tu.GREProt, 0x6558)
				innerTCP(t, r, 1)
			}},
		{name: "GENEVE IPv4", link: LinkEthernet,
			data: udpFrame(t, 40000, 6081, cat(geneveIP, innerIPv4TCP(t))),
			check: func(t *testing.T, r *Record) {
				eq(t, "vni", tunnel(t, r, 0, TunnelGENEVE, 0).ID, 7)
				innerTCP(t, r, 1)
			}},
		{name: "GENEVE version 1", link: LinkEthernet, reason: ReasonBadTunnelHeader,
			data: udpFrame(t, 40000, 6081, cat([]byte{0x40, 0}, u16(0x0800), u32(7<<8), innerIPv4TCP(t)))},
		{name: "GRE plain ipv4", link: LinkEthernet,
			data: ipFrame(t, layers.IPProtocolGRE, cat(u16(0), u16(0x0800), innerIPv4TCP(t))),
			check: func(t *testing.T, r *Record) {
				tu := tunnel(t, r, 0, TunnelGRE, 0)
				eq(t, "has key", tu.HasKey, false)
				eq(t, "has seq", tu.HasSeq, false)
				eq(t, "prot", tu.GREProt, 0x0800)
				eq(t, "outer proto", r.Levels[0].IP.Proto, 47)
				eq(t, "outer l4", r.Levels[0].L4.Proto, 0)
				innerTCP(t, r, 1)
			}},
		{name: "GRE checksum key seq ipv6", link: LinkEthernet,
			data: build(t, eth(layers.EthernetTypeIPv4), v4("198.18.0.1", "198.18.0.2", layers.IPProtocolGRE),
				&layers.GRE{ChecksumPresent: true, KeyPresent: true, SeqPresent: true, Key: 0xdeadbeef, Seq: 42,
					Protocol: layers.EthernetTypeIPv6}, gopacket.Payload(innerIPv6UDP(t))),
			check: func(t *testing.T, r *Record) {
				tu := tunnel(t, r, 0, TunnelGRE, 0)
				eq(t, "has key", tu.HasKey, true)
				eq(t, "key", tu.ID, 0xdeadbeef)
				eq(t, "has seq", tu.HasSeq, true)
				eq(t, "seq", tu.Seq, 42)
				eq(t, "version", tu.Version, 0)
				innerUDP6(t, r, 1)
			}},
		{name: "GRE TEB with key", link: LinkEthernet,
			data: ipFrame(t, layers.IPProtocolGRE, cat(u16(0x2000), u16(0x6558), u32(99), innerEthIPv4TCP(t))),
			check: func(t *testing.T, r *Record) {
				eq(t, "key", tunnel(t, r, 0, TunnelGRE, 0).ID, 99)
				innerTCP(t, r, 1)
			}},
		{name: "GRE ERSPAN type II", link: LinkEthernet,
			data: ipFrame(t, layers.IPProtocolGRE, cat(u16(0x1000), u16(0x88be), u32(7), u16(0x1000|10), u16(0x0155), u32(0), innerEthIPv4TCP(t))),
			check: func(t *testing.T, r *Record) {
				tu := tunnel(t, r, 0, TunnelGRE, 0)
				eq(t, "prot", tu.GREProt, 0x88be)
				eq(t, "seq", tu.Seq, 7)
				eq(t, "session", tu.Session, 0x155)
				innerTCP(t, r, 1)
			}},
		{name: "GRE ERSPAN type I", link: LinkEthernet,
			data: ipFrame(t, layers.IPProtocolGRE, cat(u16(0), u16(0x88be), innerEthIPv4TCP(t))),
			check: func(t *testing.T, r *Record) {
				eq(t, "prot", tunnel(t, r, 0, TunnelGRE, 0).GREProt, 0x88be)
				innerTCP(t, r, 1)
			}},
		{name: "GRE ERSPAN type III with subheader", link: LinkEthernet,
			data: ipFrame(t, layers.IPProtocolGRE, cat(u16(0x1000), u16(0x22eb), u32(8), u16(0x2000), u16(0x0203), u32(12345), u16(0), []byte{0, 1}, make([]byte, 8), innerEthIPv4TCP(t))),
			check: func(t *testing.T, r *Record) {
				tu := tunnel(t, r, 0, TunnelGRE, 0)
				eq(t, "prot", tu.GREProt, 0x22eb)
				eq(t, "session", tu.Session, 0x203)
				innerTCP(t, r, 1)
			}},
		{name: "GRE ERSPAN type III", link: LinkEthernet,
			data:  ipFrame(t, layers.IPProtocolGRE, cat(u16(0x1000), u16(0x22eb), u32(8), u16(0x2000), u16(0x0001), u32(12345), u32(0), innerEthIPv4TCP(t))),
			check: func(t *testing.T, r *Record) { innerTCP(t, r, 1) }},
		{name: "GRE v1 PPTP PPP", link: LinkEthernet,
			data: ipFrame(t, layers.IPProtocolGRE, cat(u16(0x3081), u16(0x880b), u16(uint16(4+len(innerIPv4TCP(t)))), u16(0x9850), u32(0x6a), u32(0x8c), []byte{0xff, 0x03, 0x00, 0x21}, innerIPv4TCP(t))),
			check: func(t *testing.T, r *Record) {
				tu := tunnel(t, r, 0, TunnelGRE, 0)
				eq(t, "version", tu.Version, 1)
				eq(t, "call id", tu.Session, 0x9850)
				eq(t, "seq", tu.Seq, 0x6a)
				eq(t, "prot", tu.GREProt, 0x880b)
				innerTCP(t, r, 1)
			}},
		{name: "GRE Cisco metadata", link: LinkEthernet,
			data: ipFrame(t, layers.IPProtocolGRE, cat(u16(0x2000), u16(0x8909), u32(0x28), u16(0x0800), []byte{1, 1, 0, 1, 0, 0}, innerIPv4TCP(t))),
			check: func(t *testing.T, r *Record) {
				eq(t, "key", tunnel(t, r, 0, TunnelGRE, 0).ID, 0x28)
				innerTCP(t, r, 1)
			}},
		{name: "GRE routing present", link: LinkEthernet,
			data:  ipFrame(t, layers.IPProtocolGRE, cat(u16(0x4000), u16(0x0800), u32(0), u16(0x0800), []byte{0, 4}, u32(1), u32(0), innerIPv4TCP(t))),
			check: func(t *testing.T, r *Record) { innerTCP(t, r, 1) }},
		{name: "GRE keepalive", link: LinkEthernet,
			data: ipFrame(t, layers.IPProtocolGRE, cat(u16(0), u16(0x0800), build(t, v4("198.18.0.2", "198.18.0.1", layers.IPProtocolGRE), gopacket.Payload(cat(u16(0), u16(0)))))),
			check: func(t *testing.T, r *Record) {
				tunnel(t, r, 0, TunnelGRE, 0)
				tu := tunnel(t, r, 1, TunnelGRE, 1)
				eq(t, "prot", tu.GREProt, 0)
			}},
		{name: "GRE CDP", link: LinkEthernet, reason: ReasonUnknownTunnelPayload,
			data: ipFrame(t, layers.IPProtocolGRE, cat(u16(0), u16(0x2000), make([]byte, 20)))},
		{name: "GRE version 2", link: LinkEthernet, reason: ReasonBadTunnelHeader,
			data: ipFrame(t, layers.IPProtocolGRE, cat(u16(2), u16(0x0800), innerIPv4TCP(t)))},
		{name: "4in4", link: LinkEthernet, data: ipFrame(t, layers.IPProtocolIPv4, innerIPv4TCP(t)),
			check: func(t *testing.T, r *Record) {
				tunnel(t, r, 0, TunnelIPIP, 0)
				innerTCP(t, r, 1)
			}},
		{name: "6in4", link: LinkEthernet, data: ipFrame(t, layers.IPProtocolIPv6, innerIPv6UDP(t)),
			check: func(t *testing.T, r *Record) {
				tunnel(t, r, 0, TunnelIPIP, 0)
				innerUDP6(t, r, 1)
			}},
		{name: "4in6", link: LinkEthernet, data: ip6Frame(t, layers.IPProtocolIPv4, innerIPv4TCP(t)),
			check: func(t *testing.T, r *Record) {
				tunnel(t, r, 0, TunnelIPIP, 0)
				innerTCP(t, r, 1)
			}},
		{name: "6in6", link: LinkEthernet, data: ip6Frame(t, layers.IPProtocolIPv6, innerIPv6UDP(t)),
			check: func(t *testing.T, r *Record) {
				tunnel(t, r, 0, TunnelIPIP, 0)
				innerUDP6(t, r, 1)
			}},
		{name: "too deep", link: LinkRaw, data: deep, reason: ReasonTooDeep,
			check: func(t *testing.T, r *Record) {
				eq(t, "levels", r.NumLevels, MaxLevels)
				eq(t, "tunnels", r.NumTunnel, MaxLevels)
			}},
		{name: "L2TPv3 over IP", link: LinkEthernet,
			data: ipFrame(t, 115, cat(u32(0x1234), innerEthIPv4TCP(t))),
			check: func(t *testing.T, r *Record) {
				tu := tunnel(t, r, 0, TunnelL2TPv3, 0)
				eq(t, "session", tu.ID, 0x1234)
				eq(t, "control", tu.Control, false)
				innerTCP(t, r, 1)
			}},
		{name: "L2TPv3 over IP with cookie", link: LinkEthernet,
			data:  ipFrame(t, 115, cat(u32(0x1234), u32(0xc0c0c0c0), innerEthIPv4TCP(t))),
			check: func(t *testing.T, r *Record) { innerTCP(t, r, 1) }},
		{name: "L2TPv3 over IP control", link: LinkEthernet,
			data: ipFrame(t, 115, cat(u32(0), u16(0xc803), u16(20), make([]byte, 16))),
			check: func(t *testing.T, r *Record) {
				tu := tunnel(t, r, 0, TunnelL2TPv3, 0)
				eq(t, "control", tu.Control, true)
				eq(t, "levels", r.NumLevels, 1)
			}},
		{name: "L2TPv3 over UDP with cookie and sublayer", link: LinkEthernet,
			data: udpFrame(t, 1701, 1701, cat(u16(3), u16(0), u32(0xabcd), u32(1), u32(2), u32(0x40000001), innerEthIPv4TCP(t))),
			check: func(t *testing.T, r *Record) {
				eq(t, "session", tunnel(t, r, 0, TunnelL2TPv3, 0).ID, 0xabcd)
				innerTCP(t, r, 1)
			}},
		{name: "L2TPv3 over UDP control", link: LinkEthernet,
			data: udpFrame(t, 1701, 1701, cat(u16(0xc803), u16(12), u32(5), u32(0))),
			check: func(t *testing.T, r *Record) {
				eq(t, "control", tunnel(t, r, 0, TunnelL2TPv3, 0).Control, true)
			}},
		{name: "L2TPv2 data PPP", link: LinkEthernet,
			data: udpFrame(t, 1701, 1701, cat(l2tpv2, innerIPv4TCP(t))),
			check: func(t *testing.T, r *Record) {
				tu := tunnel(t, r, 0, TunnelL2TPv2, 0)
				eq(t, "tunnel id", tu.ID, 0x1111)
				eq(t, "session id", tu.Session, 0x2222)
				eq(t, "control", tu.Control, false)
				innerTCP(t, r, 1)
			}},
		{name: "L2TPv2 control", link: LinkEthernet,
			data: udpFrame(t, 1701, 1701, cat(u16(0xc802), u16(20), u16(7), u16(0), u16(0), u16(0), make([]byte, 8))),
			check: func(t *testing.T, r *Record) {
				tu := tunnel(t, r, 0, TunnelL2TPv2, 0)
				eq(t, "control", tu.Control, true)
				eq(t, "tunnel id", tu.ID, 7)
			}},
		{name: "ESP", link: LinkEthernet, data: ipFrame(t, layers.IPProtocolESP, cat(u32(0x12345678), u32(9), make([]byte, 48))),
			check: func(t *testing.T, r *Record) {
				tu := tunnel(t, r, 0, TunnelESP, 0)
				eq(t, "spi", tu.ID, 0x12345678)
				eq(t, "seq", tu.Seq, 9)
				eq(t, "encrypted", tu.Kind.Encrypted(), true)
				eq(t, "levels", r.NumLevels, 1)
				eq(t, "payload", len(r.Levels[0].L4.Payload), 56)
			}},
		{name: "ESP over IPv6", link: LinkEthernet, data: ip6Frame(t, layers.IPProtocolESP, cat(u32(0xa), u32(1), make([]byte, 32))),
			check: func(t *testing.T, r *Record) { eq(t, "spi", tunnel(t, r, 0, TunnelESP, 0).ID, 0xa) }},
		{name: "ESP in UDP 4500", link: LinkEthernet, data: udpFrame(t, 4500, 4500, cat(u32(0xf4dc0ae5), u32(3), make([]byte, 100))),
			check: func(t *testing.T, r *Record) {
				tu := tunnel(t, r, 0, TunnelESPinUDP, 0)
				eq(t, "spi", tu.ID, 0xf4dc0ae5)
				eq(t, "seq", tu.Seq, 3)
				eq(t, "ike", r.IKE.Valid, false)
			}},
		{name: "IKE NAT-T after non-ESP marker", link: LinkEthernet,
			data: udpFrame(t, 4500, 4500, cat(u32(0), ikeHdr(0x1111222233334444, 0x5555666677778888, 0x20, 35, 0x20, 1, make([]byte, 60)))),
			check: func(t *testing.T, r *Record) {
				k := &r.IKE
				eq(t, "valid", k.Valid, true)
				eq(t, "natt", k.NATT, true)
				eq(t, "version", k.Version, 2)
				eq(t, "exchange", k.Exchange, 35)
				eq(t, "response", k.Response(), true)
				eq(t, "ispi", k.InitiatorSPI, 0x1111222233334444)
				eq(t, "rspi", k.ResponderSPI, 0x5555666677778888)
				eq(t, "msgid", k.MessageID, 1)
				eq(t, "length", k.Length, 88)
				eq(t, "tunnels", r.NumTunnel, 0)
			}},
		{name: "NAT-T keepalive", link: LinkEthernet, data: udpFrame(t, 4500, 4500, []byte{0xff}),
			check: func(t *testing.T, r *Record) {
				eq(t, "tunnels", r.NumTunnel, 0)
				eq(t, "ike", r.IKE.Valid, false)
			}},
		{name: "IKEv2 SA_INIT on 500", link: LinkEthernet,
			data: udpFrame(t, 500, 500, ikeHdr(0xaabbccdd00112233, 0, 0x20, 34, 0x08, 0, make([]byte, 200))),
			check: func(t *testing.T, r *Record) {
				k := &r.IKE
				eq(t, "valid", k.Valid, true)
				eq(t, "natt", k.NATT, false)
				eq(t, "exchange", k.Exchange, 34)
				eq(t, "flags", k.Flags, 0x08)
				eq(t, "response", k.Response(), false)
			}},
		{name: "IKEv1 main mode", link: LinkEthernet,
			data: udpFrame(t, 500, 500, ikeHdr(1, 2, 0x10, 2, 0, 0, nil)),
			check: func(t *testing.T, r *Record) {
				eq(t, "version", r.IKE.Version, 1)
				eq(t, "exchange", r.IKE.Exchange, 2)
			}},
		{name: "WireGuard init on any port", link: LinkEthernet, data: udpFrame(t, 33333, 44444, wgMsg(1, 148, 0x01020304, 0, 0)),
			check: func(t *testing.T, r *Record) {
				eq(t, "type", r.WireGuard.Type, WGHandshakeInit)
				eq(t, "sender", r.WireGuard.Sender, 0x01020304)
				eq(t, "tunnels", r.NumTunnel, 0)
			}},
		{name: "WireGuard response", link: LinkEthernet, data: udpFrame(t, 44444, 33333, wgMsg(2, 92, 0x0a0b0c0d, 0x01020304, 0)),
			check: func(t *testing.T, r *Record) {
				eq(t, "type", r.WireGuard.Type, WGHandshakeResponse)
				eq(t, "sender", r.WireGuard.Sender, 0x0a0b0c0d)
				eq(t, "receiver", r.WireGuard.Receiver, 0x01020304)
			}},
		{name: "WireGuard cookie", link: LinkEthernet, data: udpFrame(t, 44444, 33333, wgMsg(3, 64, 0, 0x01020304, 0)),
			check: func(t *testing.T, r *Record) {
				eq(t, "type", r.WireGuard.Type, WGCookieReply)
				eq(t, "receiver", r.WireGuard.Receiver, 0x01020304)
			}},
		{name: "WireGuard transport", link: LinkEthernet, data: udpFrame(t, 33333, 44444, wgMsg(4, 32+16*5, 0, 0x0a0b0c0d, 1234567890123)),
			check: func(t *testing.T, r *Record) {
				eq(t, "type", r.WireGuard.Type, WGTransportData)
				eq(t, "counter", r.WireGuard.Counter, 1234567890123)
				tu := tunnel(t, r, 0, TunnelWireGuard, 0)
				eq(t, "receiver", tu.ID, 0x0a0b0c0d)
				eq(t, "counter", tu.Counter, 1234567890123)
				eq(t, "levels", r.NumLevels, 1)
			}},
		{name: "WireGuard full-MTU transport, known index", link: LinkEthernet, data: udpFrame(t, 33333, 44444, wgMsg(4, 1452, 0, 0x0a0b0c0d, 5)),
			check: func(t *testing.T, r *Record) {
				eq(t, "type", r.WireGuard.Type, WGTransportData)
				eq(t, "receiver", tunnel(t, r, 0, TunnelWireGuard, 0).ID, 0x0a0b0c0d)
			}},
		{name: "WireGuard full-MTU transport, unknown index", link: LinkEthernet, data: udpFrame(t, 33333, 44444, wgMsg(4, 1452, 0, 0x77777777, 5)),
			check: func(t *testing.T, r *Record) { eq(t, "type", r.WireGuard.Type, 0) }},
		{name: "WireGuard full-MTU transport on 51820", link: LinkEthernet, data: udpFrame(t, 51820, 44444, wgMsg(4, 1452, 0, 0x77777777, 5)),
			check: func(t *testing.T, r *Record) { eq(t, "type", r.WireGuard.Type, WGTransportData) }},
		{name: "not WireGuard: init with wrong length", link: LinkEthernet, data: udpFrame(t, 33333, 44444, wgMsg(1, 149, 1, 0, 0)),
			check: func(t *testing.T, r *Record) { eq(t, "type", r.WireGuard.Type, 0) }},
		{name: "not WireGuard: reserved bytes set", link: LinkEthernet, data: udpFrame(t, 33333, 44444, append([]byte{1, 0, 1, 0}, make([]byte, 144)...)),
			check: func(t *testing.T, r *Record) { eq(t, "type", r.WireGuard.Type, 0) }},
		{name: "TCP data offset < 5", link: LinkRaw, reason: ReasonBadTransportHeader,
			data: func() []byte { b := innerIPv4TCP(t); b[20+12] = 0x40; return b }()},
		{name: "UDP length < 8", link: LinkRaw, reason: ReasonBadTransportHeader,
			data: func() []byte { b := innerIPv6UDP(t); b[40+5] = 4; return b }()},
		{name: "IPv4 bad IHL", link: LinkRaw, reason: ReasonBadIPHeader,
			data: func() []byte { b := innerIPv4TCP(t); b[0] = 0x44; return b }()},
		{name: "IP version 5", link: LinkRaw, reason: ReasonBadIPHeader,
			data: func() []byte { b := innerIPv4TCP(t); b[0] = 0x55; return b }()},
	}
}

// TestDecode decodes hand-built frames of every link type and tunnel kind
// with one Decoder (so WireGuard indexes learnt from handshakes carry over, as
// in a capture) and asserts their fields and reasons.
func TestDecode(t *testing.T) {
	var d Decoder
	var rec Record
	for _, c := range decodeCases(t) {
		t.Run(c.name, func(t *testing.T) {
			rec.Frame = 42
			d.Decode(c.link, c.data, &rec)
			eq(t, "reason", rec.Reason, c.reason)
			eq(t, "frame kept", rec.Frame, 42)
			if c.check != nil {
				c.check(t, &rec)
			}
			checkInvariants(t, c.data, &rec)
		})
	}
}

// TestTruncated decodes every prefix of every test frame: no panic, the
// invariants hold, and a prefix that cuts into a header (before the
// innermost payload) gives a reason.
func TestTruncated(t *testing.T) {
	var d Decoder
	var rec Record
	for _, c := range decodeCases(t) {
		if c.reason != ReasonNone {
			continue
		}
		d.Decode(c.link, c.data, &rec)
		headers := len(c.data)
		if l := rec.Inner(); l != nil && l.L4.Payload != nil {
			headers = cap(c.data) - cap(l.L4.Payload)
		}
		if headers < 0 || headers > len(c.data) {
			t.Fatalf("%s: payload not within the frame", c.name)
		}
		for n := 0; n < headers; n++ {
			data := c.data[:n:n]
			d.Decode(c.link, data, &rec)
			if rec.Reason == ReasonNone {
				t.Errorf("%s: prefix %d of %d (headers end at %d) decoded without a reason", c.name, n, len(c.data), headers)
			}
			checkInvariants(t, data, &rec)
		}
		for n := headers; n <= len(c.data); n++ {
			d.Decode(c.link, c.data[:n:n], &rec)
			checkInvariants(t, c.data[:n:n], &rec)
		}
	}
}

// checkInvariants asserts what holds for every decoded frame.
func checkInvariants(t testing.TB, data []byte, r *Record) {
	t.Helper()
	if r.NumLevels > MaxLevels || r.NumTunnel > MaxLevels {
		t.Fatalf("levels %d tunnels %d exceed MaxLevels", r.NumLevels, r.NumTunnel)
	}
	if int(r.Reason) >= NumReasons {
		t.Fatalf("reason %d out of range", r.Reason)
	}
	for i := 0; i < MaxLevels; i++ {
		l := &r.Levels[i]
		if i >= int(r.NumLevels) {
			if !reflect.DeepEqual(*l, Level{}) {
				t.Fatalf("level %d beyond NumLevels %d not zero", i, r.NumLevels)
			}
			continue
		}
		if l.IP.Version != 4 && l.IP.Version != 6 {
			t.Fatalf("level %d version %d", i, l.IP.Version)
		}
		if p := l.L4.Payload; len(p) > 0 && !within(data, p) {
			t.Fatalf("level %d payload not within the frame", i)
		}
		if l.L4.PayloadLen < 0 {
			t.Fatalf("level %d negative payload length", i)
		}
	}
	for i := 0; i < int(r.NumTunnel); i++ {
		tu := &r.Tunnels[i]
		if tu.Kind == TunnelNone || int(tu.Kind) >= NumTunnelKinds || tu.Level >= r.NumLevels {
			t.Fatalf("tunnel %d: %+v with %d levels", i, *tu, r.NumLevels)
		}
	}
	if r.ARP.Valid && r.ARP.Level > r.NumLevels {
		t.Fatalf("ARP level %d with %d levels", r.ARP.Level, r.NumLevels)
	}
	_ = r.PayloadHash()
}

// within reports whether p is a subslice of data.
func within(data, p []byte) bool {
	if len(data) == 0 {
		return false
	}
	off := cap(data) - cap(p)
	return off >= 0 && off+len(p) <= len(data) && &data[:cap(data)][off] == &p[0]
}
