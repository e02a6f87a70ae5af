package analyze

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"net/netip"
)

// CommunityID computes the Community ID v1 flow hash (seed 0) of a flow, as
// Zeek, Suricata and Wireshark do, so a flow in a vpndiag report can be found
// in those tools. For ICMP/ICMPv6, sport and dport carry the type and code.
func CommunityID(proto uint8, src, dst netip.Addr, sport, dport uint16) string {
	return communityID(0, proto, src, dst, sport, dport)
}

func communityID(seed uint16, proto uint8, src, dst netip.Addr, sport, dport uint16) string {
	oneWay := false
	switch proto {
	case 1:
		dport, oneWay = icmpCounterpart(uint8(sport), uint8(dport), icmp4Pairs)
	case 58:
		dport, oneWay = icmpCounterpart(uint8(sport), uint8(dport), icmp6Pairs)
	}
	if !oneWay && !flowOrdered(src, dst, sport, dport) {
		src, dst, sport, dport = dst, src, dport, sport
	}
	var buf [2 + 16 + 16 + 2 + 4]byte
	b := buf[:0]
	b = binary.BigEndian.AppendUint16(b, seed)
	s, d := src.AsSlice(), dst.AsSlice()
	b = append(b, s...)
	b = append(b, d...)
	b = append(b, proto, 0)
	switch proto {
	case 1, 58, 6, 17, 132:
		b = binary.BigEndian.AppendUint16(b, sport)
		b = binary.BigEndian.AppendUint16(b, dport)
	}
	sum := sha1.Sum(b)
	return "1:" + base64.StdEncoding.EncodeToString(sum[:])
}

// flowOrdered reports whether (src, sport) sorts before (dst, dport).
func flowOrdered(src, dst netip.Addr, sport, dport uint16) bool {
	if c := src.Compare(dst); c != 0 {
		return c < 0
	}
	return sport <= dport
}

// ICMP request/response type pairs per the Community ID spec. For a type
// with a counterpart, the code position holds the counterpart type.
var icmp4Pairs = map[uint8]uint8{8: 0, 0: 8, 13: 14, 14: 13, 15: 16, 16: 15, 10: 9, 9: 10, 17: 18, 18: 17}
var icmp6Pairs = map[uint8]uint8{128: 129, 129: 128, 133: 134, 134: 133, 135: 136, 136: 135, 130: 131, 131: 130, 144: 145, 145: 144}

func icmpCounterpart(typ, code uint8, pairs map[uint8]uint8) (uint16, bool) {
	if c, ok := pairs[typ]; ok {
		return uint16(c), false
	}
	return uint16(code), true
}
