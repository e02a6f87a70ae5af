package decode

import "net/netip"

// IP protocol numbers the decoder dispatches on.
const (
	protoICMP   = 1
	protoIPIP   = 4
	protoTCP    = 6
	protoUDP    = 17
	protoIPv6   = 41
	protoGRE    = 47
	protoESP    = 50
	protoAH     = 51
	protoICMPv6 = 58
	protoL2TP   = 115
)

// maxExtHeaders bounds the IPv6 extension header chain walked per packet.
const maxExtHeaders = 8

// ip decodes an IPv4 or IPv6 packet, chosen by the version nibble.
func (d *Decoder) ip(b []byte, r *Record) Reason {
	if len(b) == 0 {
		return ReasonTruncatedIP
	}
	switch b[0] >> 4 {
	case 4:
		return d.ipv4(b, r)
	case 6:
		return d.ipv6(b, r)
	}
	return ReasonBadIPHeader
}

// ipv4 decodes an IPv4 header into a new level, then its payload.
func (d *Decoder) ipv4(b []byte, r *Record) Reason {
	if len(b) < 20 {
		return ReasonTruncatedIP
	}
	ihl := int(b[0]&0x0f) * 4
	if b[0]>>4 != 4 || ihl < 20 {
		return ReasonBadIPHeader
	}
	if len(b) < ihl {
		return ReasonTruncatedIP
	}
	l := r.pushLevel()
	if l == nil {
		return ReasonTooDeep
	}
	if r.NumLevels == 1 && r.EthType == 0 {
		r.EthType = etherIPv4
	}
	ip := &l.IP
	ip.Version = 4
	ip.TOS = b[1]
	total := be16(b[2:])
	ip.TotalLen = total
	ip.ID = uint32(be16(b[4:]))
	ff := be16(b[6:])
	ip.DontFrag = ff&0x4000 != 0
	ip.MoreFrags = ff&0x2000 != 0
	ip.FragOffset = (ff & 0x1fff) * 8
	ip.Fragment = ip.MoreFrags || ip.FragOffset != 0
	ip.TTL = b[8]
	ip.Proto = b[9]
	ip.HeaderLen = uint16(ihl)
	ip.Src = netip.AddrFrom4([4]byte(b[12:16]))
	ip.Dst = netip.AddrFrom4([4]byte(b[16:20]))

	end := int(total)
	if total == 0 { // segmentation offload: the length is not filled in
		end = len(b)
	} else if end < ihl {
		return ReasonBadIPHeader
	}
	want := end - ihl
	if end > len(b) {
		end = len(b)
	}
	payload := b[ihl:end]
	proto := b[9]
	if proto == protoAH {
		if len(payload) < 2 {
			return ReasonTruncatedIP
		}
		al := (int(payload[1]) + 2) * 4
		if len(payload) < al {
			return ReasonTruncatedIP
		}
		proto = payload[0]
		payload = payload[al:]
		want -= al
		ip.Proto = proto
		ip.HeaderLen += uint16(al)
	}
	if ip.FragOffset != 0 {
		l.L4.Payload = payload
		l.L4.PayloadLen = want
		return ReasonNone
	}
	return d.transport(l, proto, payload, want, r)
}

// ipv6 decodes an IPv6 header and its extension headers into a new level,
// then its payload.
func (d *Decoder) ipv6(b []byte, r *Record) Reason {
	if len(b) < 40 {
		return ReasonTruncatedIP
	}
	if b[0]>>4 != 6 {
		return ReasonBadIPHeader
	}
	l := r.pushLevel()
	if l == nil {
		return ReasonTooDeep
	}
	if r.NumLevels == 1 && r.EthType == 0 {
		r.EthType = etherIPv6
	}
	ip := &l.IP
	ip.Version = 6
	ip.TOS = b[0]<<4 | b[1]>>4
	ip.FlowLabel = uint32(b[1]&0x0f)<<16 | uint32(b[2])<<8 | uint32(b[3])
	plen := int(be16(b[4:]))
	if plen+40 > 0xffff {
		ip.TotalLen = 0xffff
	} else {
		ip.TotalLen = uint16(plen + 40)
	}
	ip.TTL = b[7]
	ip.Src = netip.AddrFrom16([16]byte(b[8:24]))
	ip.Dst = netip.AddrFrom16([16]byte(b[24:40]))

	end := 40 + plen
	if plen == 0 { // jumbogram or offload: use what was captured
		end = len(b)
	}
	want := end - 40
	if end > len(b) {
		end = len(b)
	}
	next, off, ok := ext6(b[:end], b[6], 40, ip)
	ip.Proto = next
	ip.HeaderLen = uint16(off)
	if !ok {
		return ReasonTruncatedIP
	}
	payload := b[off:end]
	want -= off - 40
	if ip.FragOffset != 0 {
		l.L4.Payload = payload
		l.L4.PayloadLen = want
		return ReasonNone
	}
	return d.transport(l, next, payload, want, r)
}

// ext6 walks the IPv6 extension headers in b starting at off with next
// header next. It fills the fragment fields of ip (when not nil) and returns
// the upper-layer protocol and its offset; ok is false when a header is cut.
func ext6(b []byte, next uint8, off int, ip *IP) (uint8, int, bool) {
	for i := 0; i < maxExtHeaders; i++ {
		switch next {
		case 0, 43, 60, 135, 139, 140, protoAH: // hop-by-hop, routing, destination, mobility, HIP, shim6, AH
			if off+2 > len(b) {
				return next, off, false
			}
			hl := (int(b[off+1]) + 1) * 8
			if next == protoAH {
				hl = (int(b[off+1]) + 2) * 4
			}
			if off+hl > len(b) {
				return next, off, false
			}
			next = b[off]
			off += hl
		case 44: // fragment
			if off+8 > len(b) {
				return next, off, false
			}
			if ip != nil {
				fo := be16(b[off+2:])
				ip.FragOffset = fo &^ 7
				ip.MoreFrags = fo&1 != 0
				ip.ID = be32(b[off+4:])
				ip.Fragment = true
			}
			next = b[off]
			off += 8
		default:
			return next, off, true
		}
	}
	return next, off, true
}

// transport decodes what follows an IP header. want is the payload length the
// IP header announces.
func (d *Decoder) transport(l *Level, proto uint8, b []byte, want int, r *Record) Reason {
	switch proto {
	case protoTCP:
		return tcp(&l.L4, b, want)
	case protoUDP:
		return d.udp(&l.L4, b, r)
	case protoICMP:
		return icmp(&l.L4, b, want, false)
	case protoICMPv6:
		return icmp(&l.L4, b, want, true)
	}
	l.L4.Payload = b
	l.L4.PayloadLen = want
	switch proto {
	case protoGRE:
		return d.gre(b, r)
	case protoIPIP, protoIPv6:
		if r.pushTunnel(TunnelIPIP) == nil {
			return ReasonTooDeep
		}
		if proto == protoIPIP {
			return d.ipv4(b, r)
		}
		return d.ipv6(b, r)
	case protoESP:
		return esp(b, r, TunnelESP)
	case protoL2TP:
		return d.l2tpv3IP(b, r)
	}
	return ReasonNone
}
