// Package decode turns captured frames into compact packet records.
//
// A Record is filled in place by a Decoder for every frame, without heap
// allocations: analyzers receive a pointer to the same Record over and over and
// must copy whatever they keep. Byte slices in a Record (Payload) point into the
// frame buffer and are valid only until the next frame is decoded.
//
// A frame is modelled as a stack of network levels. Level 0 is the outermost IP
// header; each tunnel the decoder passes (VXLAN, GENEVE, GRE, IP-in-IP, L2TPv3)
// adds one level for the packet it carries. Encrypted tunnels (ESP, WireGuard)
// are recorded as a Tunnel whose inner level cannot be read.
package decode

import (
	"hash/maphash"
	"net/netip"
)

// MaxLevels is the deepest IP nesting a Record keeps (outer + 3 tunnels).
const MaxLevels = 4

// LinkType is a pcap/pcapng link-layer header type (LINKTYPE_* values).
type LinkType uint16

// Link types the decoder understands.
const (
	LinkNull     LinkType = 0   // BSD loopback: 4-byte host-order address family
	LinkEthernet LinkType = 1   // IEEE 802.3 Ethernet
	LinkPPP      LinkType = 9   // PPP (RFC 1661), with optional HDLC framing
	LinkRaw12    LinkType = 12  // DLT_RAW as some old writers store it: raw IPv4/IPv6
	LinkRaw14    LinkType = 14  // DLT_RAW on OpenBSD as some old writers store it: raw IPv4/IPv6
	LinkPPPHDLC  LinkType = 50  // PPP in HDLC-like framing
	LinkRaw      LinkType = 101 // raw IPv4/IPv6
	LinkLoop     LinkType = 108 // OpenBSD loopback: network-order family
	LinkLinuxSLL LinkType = 113 // Linux cooked capture v1
	LinkIPv4     LinkType = 228 // raw IPv4
	LinkIPv6     LinkType = 229 // raw IPv6
	LinkSLL2     LinkType = 276 // Linux cooked capture v2
)

// TunnelKind names an encapsulation the decoder passed through.
type TunnelKind uint8

// Tunnel kinds.
const (
	TunnelNone      TunnelKind = iota
	TunnelVXLAN                // UDP 4789 (and 8472), VNI in ID
	TunnelGENEVE               // UDP 6081, VNI in ID
	TunnelGRE                  // IP proto 47: key in ID (HasKey), sequence in Seq (HasSeq)
	TunnelIPIP                 // 4in4, 6in4, 4in6, 6in6 (IP proto 4 or 41)
	TunnelL2TPv3               // over IP (proto 115) or UDP 1701: session ID in ID
	TunnelESP                  // IP proto 50: SPI in ID, sequence in Seq; payload encrypted
	TunnelESPinUDP             // UDP-encapsulated ESP (NAT-T, UDP 4500)
	TunnelWireGuard            // WireGuard transport data; receiver index in ID, counter in Counter
	TunnelL2TPv2               // L2TPv2 over UDP 1701: tunnel ID in ID, session ID in Session; PPP inside
	numTunnelKinds
)

var tunnelNames = [...]string{"none", "vxlan", "geneve", "gre", "ipip", "l2tpv3", "esp", "esp-in-udp", "wireguard", "l2tpv2"}

// String returns the lower-case name used in reports ("vxlan", "esp-in-udp", ...).
func (k TunnelKind) String() string {
	if int(k) < len(tunnelNames) {
		return tunnelNames[k]
	}
	return "unknown"
}

// Encrypted reports whether the tunnel's payload cannot be decoded.
func (k TunnelKind) Encrypted() bool {
	return k == TunnelESP || k == TunnelESPinUDP || k == TunnelWireGuard
}

// Tunnel is one encapsulation layer. It sits between Levels[Level] (the
// carrying packet) and Levels[Level+1] (the carried packet, absent for
// encrypted tunnels, control messages, and tunnels whose payload is not IP,
// such as an inner ARP).
type Tunnel struct {
	Kind    TunnelKind
	Level   uint8  // index of the carrying level
	HasKey  bool   // GRE key present
	HasSeq  bool   // GRE sequence present
	Version uint8  // GRE version: 0, or 1 for PPTP enhanced GRE
	Control bool   // L2TP control message (L2TPv3 session ID 0 or T bit; L2TPv2 T bit): no inner level
	GREProt uint16 // GRE protocol type (0x0800, 0x86dd, 0x6558 TEB, 0x88be/0x22eb ERSPAN, 0x880b PPP, 0x8909 Cisco metadata ...), or GENEVE protocol type
	// ID is the VNI (VXLAN, GENEVE), GRE key (for PPTP enhanced GRE version
	// 1: payload length<<16 | call ID), L2TPv3 session ID (0 for control),
	// L2TPv2 tunnel ID, ESP SPI or WireGuard receiver index.
	ID      uint32
	Seq     uint32 // GRE or ESP sequence number
	Session uint32 // ERSPAN session ID (10 bits), PPTP call ID, L2TPv2 session ID
	Counter uint64 // WireGuard transport counter
}

// IP is one network-layer header (IPv4 or IPv6).
type IP struct {
	Version   uint8  // 4 or 6; 0 means absent
	Proto     uint8  // next protocol after extension headers (6 TCP, 17 UDP, ...)
	TTL       uint8  // TTL or hop limit
	TOS       uint8  // DSCP<<2 | ECN (IPv4 TOS, IPv6 traffic class)
	HeaderLen uint16 // IPv4 header with options (and AH), or 40 + IPv6 extension headers
	TotalLen  uint16 // IPv4 total length, or IPv6 payload length + 40 (capped at 65535)
	ID        uint32 // IPv4 identification, or IPv6 fragment identification
	FlowLabel uint32
	// Fragment fields: FragOffset is in bytes.
	FragOffset uint16
	MoreFrags  bool
	DontFrag   bool
	Fragment   bool // a fragment (MF set or offset > 0, or IPv6 fragment header)
	Src, Dst   netip.Addr
}

// DSCP returns the differentiated services code point.
func (ip *IP) DSCP() uint8 { return ip.TOS >> 2 }

// ECN returns the explicit congestion notification bits.
func (ip *IP) ECN() uint8 { return ip.TOS & 3 }

// TCP flag bits, as in the TCP header.
const (
	TCPFin = 0x01
	TCPSyn = 0x02
	TCPRst = 0x04
	TCPPsh = 0x08
	TCPAck = 0x10
	TCPUrg = 0x20
	TCPEce = 0x40
	TCPCwr = 0x80
)

// Quoted is the header an ICMP/ICMPv6 error message quotes: the packet that
// caused the error.
type Quoted struct {
	Valid            bool
	Proto            uint8
	ID               uint32
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
	TotalLen         uint16
}

// Transport is the header after an IP level (TCP, UDP, ICMP, ICMPv6).
type Transport struct {
	Proto            uint8 // 6, 17, 1, 58, or 0 when absent/unknown
	SrcPort, DstPort uint16
	// TCP
	Seq, Ack    uint32
	Flags       uint8
	Window      uint16
	MSS         uint16 // from the SYN's MSS option, 0 if absent
	WindowScale int8   // -1 if absent
	// ICMP/ICMPv6
	ICMPType, ICMPCode uint8
	EchoID, EchoSeq    uint16
	MTU                uint32 // next-hop MTU of frag-needed / packet-too-big
	Quoted             Quoted
	// PayloadLen is the transport payload length from the headers (may exceed
	// what was captured); Payload is the captured part, without link padding.
	// For a protocol the decoder has no transport for (Proto 0: GRE, ESP,
	// IP-in-IP, L2TPv3, OSPF, ...) and for non-first fragments they cover
	// the whole IP payload, so PayloadHash also works for encrypted tunnels.
	PayloadLen int
	Payload    []byte
}

// Level is one IP header and the transport header that follows it.
type Level struct {
	IP IP
	L4 Transport
}

// IKE is an IKE/ISAKMP header (UDP 500, or 4500 after the non-ESP marker).
type IKE struct {
	Valid        bool
	Version      uint8 // major version: 1 or 2
	Exchange     uint8 // exchange type (IKEv2: 34 SA_INIT, 35 AUTH, 36 CREATE_CHILD_SA, 37 INFORMATIONAL; IKEv1: 2 main, 4 aggressive, 5 info, 32 quick)
	Flags        uint8
	InitiatorSPI uint64
	ResponderSPI uint64
	MessageID    uint32
	Length       uint32
	NATT         bool // carried on UDP 4500 with a non-ESP marker
}

// Response reports whether an IKEv2 message is a response (flag R).
func (k *IKE) Response() bool { return k.Version == 2 && k.Flags&0x20 != 0 }

// WireGuard message types.
const (
	WGHandshakeInit     = 1
	WGHandshakeResponse = 2
	WGCookieReply       = 3
	WGTransportData     = 4
)

// WireGuard is a WireGuard message header.
type WireGuard struct {
	Type     uint8 // 0 when absent
	Sender   uint32
	Receiver uint32
	Counter  uint64
}

// ARP is an ARP packet (Ethernet/IPv4). The decoder records ARP wherever it
// finds it: on the link itself (Level 0) or inside a tunnel that carries
// Ethernet (VXLAN, GENEVE, GRE TEB/ERSPAN, L2TPv3), where Level is the number
// of enclosing IP levels.
type ARP struct {
	Valid     bool
	Level     uint8  // enclosing IP levels: 0 on the link, n inside the tunnel carried by Levels[n-1]
	Op        uint16 // 1 request, 2 reply
	SenderMAC [6]byte
	TargetMAC [6]byte
	SenderIP  netip.Addr
	TargetIP  netip.Addr
}

// Gratuitous reports whether the ARP announces the sender's own address.
func (a *ARP) Gratuitous() bool { return a.Valid && a.SenderIP == a.TargetIP }

// Reason says why a frame could not be decoded completely.
type Reason uint8

// Reasons a frame is not fully decoded. ReasonNone means decoded.
const (
	ReasonNone                 Reason = iota
	ReasonUnknownLinkType             // link type not supported
	ReasonTruncatedLink               // frame shorter than its link header
	ReasonUnknownEtherType            // ethertype (or NULL/LOOP family, SLL protocol) not IP/ARP/VLAN/PPPoE/MPLS
	ReasonTruncatedIP                 // shorter than the IP header it announces
	ReasonBadIPHeader                 // bad version or header length
	ReasonTruncatedL4                 // shorter than its TCP/UDP/ICMP header
	ReasonTruncatedTunnel             // tunnel, IKE or WireGuard header cut short
	ReasonTooDeep                     // more tunnel levels than MaxLevels (or absurd nesting of link headers)
	ReasonLLC                         // IEEE 802.3 length-field frame (LLC/SNAP: STP, CDP, ...), not IP
	ReasonUnknownPPP                  // PPP protocol other than IPv4/IPv6/MPLS (LCP, IPCP, ...)
	ReasonUnknownTunnelPayload        // tunnel payload type not decoded (GRE/GENEVE protocol, MPLS payload, L2TPv3 pseudowire)
	ReasonBadTunnelHeader             // unsupported version or malformed tunnel/IKE header
	ReasonBadTransportHeader          // TCP data offset < 20 or UDP length < 8
	ReasonBadARP                      // ARP not Ethernet/IPv4, or cut short
	numReasons
)

var reasonNames = [...]string{"", "unknown-link-type", "truncated-link-header", "unknown-ethertype",
	"truncated-ip", "bad-ip-header", "truncated-transport", "truncated-tunnel", "too-many-tunnel-levels",
	"llc-frame", "unknown-ppp-protocol", "unknown-tunnel-payload", "bad-tunnel-header",
	"bad-transport-header", "bad-arp"}

// String returns the reason's report name.
func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "unknown"
}

// NumReasons is the number of Reason values, for fixed-size counters.
const NumReasons = int(numReasons)

// NumTunnelKinds is the number of TunnelKind values, for fixed-size counters.
const NumTunnelKinds = int(numTunnelKinds)

// Record is everything vpndiag keeps of one frame. Decoder.Decode resets and
// refills it; nothing in it is allocated per frame.
type Record struct {
	Frame    uint64 // 1-based frame number within its input, as in Wireshark
	Input    int    // index of the input (file or live source) the frame came from
	Iface    int    // index of the capture interface (capture.Frame.Iface)
	Time     int64  // capture time, Unix nanoseconds
	Link     LinkType
	CapLen   int    // bytes captured
	WireLen  int    // bytes on the wire
	EthType  uint16 // outermost ethertype after VLAN tags (SLL protocol); 0x0800/0x86dd on links without one
	SrcMAC   [6]byte
	DstMAC   [6]byte
	VLANs    [2]uint16 // 802.1Q / QinQ IDs, outermost first
	NumVLANs uint8

	// Levels[:NumLevels] are valid; the decoder keeps the others zero.
	Levels    [MaxLevels]Level
	NumLevels uint8             // IP levels decoded; 0 for non-IP frames
	Tunnels   [MaxLevels]Tunnel // Tunnels[:NumTunnel] are valid, outermost first
	NumTunnel uint8

	ARP       ARP
	IKE       IKE
	WireGuard WireGuard

	Reason Reason // ReasonNone when fully decoded
}

// Outer returns the outermost IP level, or nil for non-IP frames.
func (r *Record) Outer() *Level {
	if r.NumLevels == 0 {
		return nil
	}
	return &r.Levels[0]
}

// Inner returns the innermost decoded IP level (the outer one when the frame
// is not tunnelled), or nil for non-IP frames.
func (r *Record) Inner() *Level {
	if r.NumLevels == 0 {
		return nil
	}
	return &r.Levels[r.NumLevels-1]
}

// Tunnelled reports whether the frame passed through at least one tunnel.
func (r *Record) Tunnelled() bool { return r.NumTunnel > 0 }

var payloadSeed = maphash.MakeSeed()

// PayloadHash returns a hash of the innermost transport payload, for matching
// the same packet across capture points. It is stable within one process run,
// not across runs. It returns 0 for an empty payload.
func (r *Record) PayloadHash() uint64 {
	l := r.Inner()
	if l == nil || len(l.L4.Payload) == 0 {
		return 0
	}
	return maphash.Bytes(payloadSeed, l.L4.Payload)
}
