package decode

import (
	"encoding/binary"
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Test frame builders: gopacket serializes the common layers, tunnel and VPN
// headers are written by hand.

var (
	macA = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0a}
	macB = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0b}
	macC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0c}
	macD = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0d}
)

func build(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true}, ls...); err != nil {
		t.Fatalf("serialize: %v", err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func u16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// ethHdr is a bare Ethernet header (gopacket pads a lone header to 60 bytes).
func ethHdr(dst, src net.HardwareAddr, et layers.EthernetType) []byte {
	return cat(dst, src, u16(uint16(et)))
}

func eth(et layers.EthernetType) *layers.Ethernet {
	return &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: et}
}

func v4(src, dst string, proto layers.IPProtocol) *layers.IPv4 {
	return &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: proto, Id: 0x1234,
		SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP(dst).To4()}
}

func v6(src, dst string, next layers.IPProtocol) *layers.IPv6 {
	return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: next,
		SrcIP: net.ParseIP(src), DstIP: net.ParseIP(dst)}
}

func tcpSeg(sp, dp uint16) *layers.TCP {
	return &layers.TCP{SrcPort: layers.TCPPort(sp), DstPort: layers.TCPPort(dp), Seq: 1000, Ack: 2000,
		ACK: true, PSH: true, Window: 512}
}

func udpDgram(sp, dp uint16) *layers.UDP {
	return &layers.UDP{SrcPort: layers.UDPPort(sp), DstPort: layers.UDPPort(dp)}
}

// Inner packets used by several tunnels.
func innerIPv4TCP(t testing.TB) []byte {
	return build(t, v4("198.18.1.1", "198.18.1.2", layers.IPProtocolTCP), tcpSeg(40000, 443), gopacket.Payload("hello"))
}

func innerIPv6UDP(t testing.TB) []byte {
	return build(t, v6("2001:db8::1", "2001:db8::2", layers.IPProtocolUDP), udpDgram(5353, 53), gopacket.Payload("query"))
}

func innerEthIPv4TCP(t testing.TB) []byte {
	return cat(ethHdr(macD, macC, layers.EthernetTypeIPv4), innerIPv4TCP(t))
}

// udpFrame is Ethernet/IPv4/UDP carrying payload, outer 198.18.0.1 -> .2.
func udpFrame(t testing.TB, sp, dp uint16, payload []byte) []byte {
	return build(t, eth(layers.EthernetTypeIPv4), v4("198.18.0.1", "198.18.0.2", layers.IPProtocolUDP),
		udpDgram(sp, dp), gopacket.Payload(payload))
}

// ipFrame is Ethernet/IPv4 with the given protocol and payload.
func ipFrame(t testing.TB, proto layers.IPProtocol, payload []byte) []byte {
	return build(t, eth(layers.EthernetTypeIPv4), v4("198.18.0.1", "198.18.0.2", proto), gopacket.Payload(payload))
}

func ip6Frame(t testing.TB, proto layers.IPProtocol, payload []byte) []byte {
	return build(t, eth(layers.EthernetTypeIPv6), v6("2001:db8::a", "2001:db8::b", proto), gopacket.Payload(payload))
}

// wgMsg builds a WireGuard message of the given type and total length.
func wgMsg(typ byte, length int, a, b uint32, counter uint64) []byte {
	m := make([]byte, length)
	m[0] = typ
	switch typ {
	case 1:
		binary.LittleEndian.PutUint32(m[4:], a)
	case 2:
		binary.LittleEndian.PutUint32(m[4:], a)
		binary.LittleEndian.PutUint32(m[8:], b)
	case 3:
		binary.LittleEndian.PutUint32(m[4:], b)
	case 4:
		binary.LittleEndian.PutUint32(m[4:], b)
		binary.LittleEndian.PutUint64(m[8:], counter)
	}
	return m
}

// ikeHdr builds a 28-byte IKE header followed by body.
func ikeHdr(ispi, rspi uint64, version, exch, flags byte, msgID uint32, body []byte) []byte {
	h := make([]byte, 28)
	binary.BigEndian.PutUint64(h, ispi)
	binary.BigEndian.PutUint64(h[8:], rspi)
	h[16] = 33 // next payload SA
	h[17] = version
	h[18] = exch
	h[19] = flags
	binary.BigEndian.PutUint32(h[20:], msgID)
	binary.BigEndian.PutUint32(h[24:], uint32(28+len(body)))
	return cat(h, body)
}
