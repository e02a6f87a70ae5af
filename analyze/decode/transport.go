package decode

import "net/netip"

// UDP ports with a decoder behind them.
const (
	portIKE     = 500
	portNATT    = 4500
	portL2TP    = 1701
	portVXLAN   = 4789
	portVXLANLx = 8472 // Linux kernel's historical VXLAN port
	portGENEVE  = 6081
)

// tcp decodes a TCP header; MSS and window scale are read from SYN options.
func tcp(t *Transport, b []byte, want int) Reason {
	t.Proto = protoTCP
	if len(b) >= 4 {
		t.SrcPort = be16(b)
		t.DstPort = be16(b[2:])
	}
	if len(b) < 20 {
		return ReasonTruncatedL4
	}
	t.Seq = be32(b[4:])
	t.Ack = be32(b[8:])
	doff := int(b[12]>>4) * 4
	t.Flags = b[13]
	t.Window = be16(b[14:])
	t.WindowScale = -1
	if doff < 20 {
		return ReasonBadTransportHeader
	}
	if len(b) < doff {
		return ReasonTruncatedL4
	}
	if doff > 20 && t.Flags&TCPSyn != 0 {
		tcpOptions(t, b[20:doff])
	}
	t.Payload = b[doff:]
	if want -= doff; want > 0 {
		t.PayloadLen = want
	}
	return ReasonNone
}

// tcpOptions reads MSS and window scale.
func tcpOptions(t *Transport, o []byte) {
	for i := 0; i < len(o); {
		switch o[i] {
		case 0: // end of options
			return
		case 1: // no-op
			i++
			continue
		}
		if i+1 >= len(o) {
			return
		}
		n := int(o[i+1])
		if n < 2 || i+n > len(o) {
			return
		}
		switch {
		case o[i] == 2 && n == 4:
			t.MSS = be16(o[i+2:])
		case o[i] == 3 && n == 3:
			ws := o[i+2]
			if ws > 14 { // RFC 7323: larger values are treated as 14
				ws = 14
			}
			t.WindowScale = int8(ws)
		}
		i += n
	}
}

// udp decodes a UDP header, then the tunnel or VPN protocol it may carry.
func (d *Decoder) udp(t *Transport, b []byte, r *Record) Reason {
	t.Proto = protoUDP
	if len(b) >= 4 {
		t.SrcPort = be16(b)
		t.DstPort = be16(b[2:])
	}
	if len(b) < 8 {
		return ReasonTruncatedL4
	}
	ulen := int(be16(b[4:]))
	if ulen < 8 {
		return ReasonBadTransportHeader
	}
	end := ulen
	if end > len(b) {
		end = len(b)
	}
	p := b[8:end]
	t.Payload = p
	t.PayloadLen = ulen - 8
	sp, dp := t.SrcPort, t.DstPort
	switch {
	case dp == portVXLAN || dp == portVXLANLx:
		return d.vxlan(p, r)
	case dp == portGENEVE:
		return d.geneve(p, r)
	case sp == portNATT || dp == portNATT:
		return natt(p, r)
	case sp == portIKE || dp == portIKE:
		return ike(p, false, r)
	case sp == portL2TP || dp == portL2TP:
		return d.l2tpUDP(p, r)
	}
	return d.wireguard(p, sp, dp, ulen-8, r)
}

// icmp decodes an ICMP or ICMPv6 header: echo identifiers, the MTU of
// frag-needed and packet-too-big, and the header quoted by error messages.
func icmp(t *Transport, b []byte, want int, v6 bool) Reason {
	t.Proto = protoICMP
	if v6 {
		t.Proto = protoICMPv6
	}
	if len(b) >= 2 {
		t.ICMPType = b[0]
		t.ICMPCode = b[1]
	}
	if len(b) < 8 {
		return ReasonTruncatedL4
	}
	t.Payload = b[8:]
	if want -= 8; want > 0 {
		t.PayloadLen = want
	}
	typ := b[0]
	if !v6 {
		switch typ {
		case 0, 8, 13, 14, 15, 16: // echo, timestamp, information
			t.EchoID = be16(b[4:])
			t.EchoSeq = be16(b[6:])
		case 3:
			if b[1] == 4 {
				t.MTU = uint32(be16(b[6:]))
			}
			quote4(&t.Quoted, b[8:])
		case 4, 5, 11, 12:
			quote4(&t.Quoted, b[8:])
		}
		return ReasonNone
	}
	switch typ {
	case 128, 129:
		t.EchoID = be16(b[4:])
		t.EchoSeq = be16(b[6:])
	case 2:
		t.MTU = be32(b[4:])
		quote6(&t.Quoted, b[8:])
	case 1, 3, 4:
		quote6(&t.Quoted, b[8:])
	}
	return ReasonNone
}

// quote4 reads the IPv4 header (and ports) quoted by an ICMP error.
func quote4(q *Quoted, b []byte) {
	if len(b) < 20 || b[0]>>4 != 4 {
		return
	}
	ihl := int(b[0]&0x0f) * 4
	if ihl < 20 {
		return
	}
	q.Valid = true
	q.Proto = b[9]
	q.ID = uint32(be16(b[4:]))
	q.TotalLen = be16(b[2:])
	q.Src = netip.AddrFrom4([4]byte(b[12:16]))
	q.Dst = netip.AddrFrom4([4]byte(b[16:20]))
	if be16(b[6:])&0x1fff == 0 {
		quotePorts(q, b, ihl)
	}
}

// quote6 reads the IPv6 header (and ports) quoted by an ICMPv6 error.
func quote6(q *Quoted, b []byte) {
	if len(b) < 40 || b[0]>>4 != 6 {
		return
	}
	q.Valid = true
	if pl := be16(b[4:]); pl <= 0xffff-40 {
		q.TotalLen = pl + 40
	} else {
		q.TotalLen = 0xffff
	}
	q.Src = netip.AddrFrom16([16]byte(b[8:24]))
	q.Dst = netip.AddrFrom16([16]byte(b[24:40]))
	var ip IP
	next, off, _ := ext6(b, b[6], 40, &ip)
	q.Proto = next
	q.ID = ip.ID
	if ip.FragOffset == 0 {
		quotePorts(q, b, off)
	}
}

// quotePorts reads the TCP/UDP ports of a quoted header, when present.
func quotePorts(q *Quoted, b []byte, off int) {
	switch q.Proto {
	case protoTCP, protoUDP, 132, 136: // TCP, UDP, SCTP, UDP-Lite
		if off+4 <= len(b) {
			q.SrcPort = be16(b[off:])
			q.DstPort = be16(b[off+2:])
		}
	}
}
