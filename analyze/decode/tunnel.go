package decode

// GRE flag bits (first 16 bits of the header).
const (
	greChecksum = 0x8000
	greRouting  = 0x4000
	greKey      = 0x2000
	greSeq      = 0x1000
	greAck      = 0x0080 // enhanced GRE (version 1) acknowledgment present
)

// vxlan decodes a VXLAN header (8 bytes, VNI) and the Ethernet frame inside.
func (d *Decoder) vxlan(p []byte, r *Record) Reason {
	t := r.pushTunnel(TunnelVXLAN)
	if t == nil {
		return ReasonTooDeep
	}
	if len(p) < 8 {
		return ReasonTruncatedTunnel
	}
	t.ID = be32(p[4:]) >> 8
	return d.ethernet(p[8:], r)
}

// geneve decodes a GENEVE header (8 bytes plus options, VNI) and the
// Ethernet frame or IP packet inside.
func (d *Decoder) geneve(p []byte, r *Record) Reason {
	t := r.pushTunnel(TunnelGENEVE)
	if t == nil {
		return ReasonTooDeep
	}
	if len(p) < 8 {
		return ReasonTruncatedTunnel
	}
	t.GREProt = be16(p[2:])
	t.ID = be32(p[4:]) >> 8
	if p[0]>>6 != 0 {
		return ReasonBadTunnelHeader
	}
	hl := 8 + int(p[0]&0x3f)*4
	if len(p) < hl {
		return ReasonTruncatedTunnel
	}
	return d.ethertype(t.GREProt, p[hl:], r, ReasonUnknownTunnelPayload)
}

// gre decodes a GRE header (RFC 2784/2890, and PPTP's enhanced GRE version
// 1) and what it carries: IP, Ethernet (TEB), ERSPAN II/III, PPP, MPLS, Cisco
// metadata.
func (d *Decoder) gre(p []byte, r *Record) Reason {
	t := r.pushTunnel(TunnelGRE)
	if t == nil {
		return ReasonTooDeep
	}
	if len(p) < 4 {
		return ReasonTruncatedTunnel
	}
	flags := be16(p)
	prot := be16(p[2:])
	t.GREProt = prot
	off := 4
	switch flags & 7 {
	case 0:
		if flags&(greChecksum|greRouting) != 0 {
			off += 4
		}
		if flags&greKey != 0 {
			if len(p) < off+4 {
				return ReasonTruncatedTunnel
			}
			t.HasKey = true
			t.ID = be32(p[off:])
			off += 4
		}
		if flags&greSeq != 0 {
			if len(p) < off+4 {
				return ReasonTruncatedTunnel
			}
			t.HasSeq = true
			t.Seq = be32(p[off:])
			off += 4
		}
		if flags&greRouting != 0 {
			// Source route entries: address family, offset, length, data;
			// the list ends with an entry of length 0.
			for i := 0; ; i++ {
				if i == 16 {
					return ReasonBadTunnelHeader
				}
				if len(p) < off+4 {
					return ReasonTruncatedTunnel
				}
				n := int(p[off+3])
				off += 4 + n
				if n == 0 {
					break
				}
			}
		}
	case 1: // enhanced GRE (PPTP): key is payload length and call ID
		t.Version = 1
		if flags&greKey == 0 || prot != etherPPP {
			return ReasonBadTunnelHeader
		}
		if len(p) < 8 {
			return ReasonTruncatedTunnel
		}
		t.HasKey = true
		t.ID = be32(p[4:])
		t.Session = uint32(be16(p[6:]))
		off = 8
		if flags&greSeq != 0 {
			if len(p) < off+4 {
				return ReasonTruncatedTunnel
			}
			t.HasSeq = true
			t.Seq = be32(p[off:])
			off += 4
		}
		if flags&greAck != 0 {
			off += 4
		}
	default:
		return ReasonBadTunnelHeader
	}
	if len(p) < off {
		return ReasonTruncatedTunnel
	}
	in := p[off:]
	switch prot {
	case etherERSPAN2:
		if !t.HasSeq { // ERSPAN type I: no header
			return d.ethernet(in, r)
		}
		if len(in) < 8 {
			return ReasonTruncatedTunnel
		}
		t.Session = uint32(be16(in[2:]) & 0x03ff)
		return d.ethernet(in[8:], r)
	case etherERSPAN3:
		if len(in) < 12 {
			return ReasonTruncatedTunnel
		}
		t.Session = uint32(be16(in[2:]) & 0x03ff)
		hl := 12
		if in[11]&1 != 0 { // platform-specific subheader
			hl += 8
		}
		if len(in) < hl {
			return ReasonTruncatedTunnel
		}
		return d.ethernet(in[hl:], r)
	case etherCMD:
		// Cisco MetaData in GRE: ethertype, version, length, option, SGT.
		if len(in) < 8 {
			return ReasonTruncatedTunnel
		}
		return d.ethertype(be16(in), in[8:], r, ReasonUnknownTunnelPayload)
	case 0:
		if len(in) == 0 { // keepalive
			return ReasonNone
		}
		return ReasonUnknownTunnelPayload
	}
	return d.ethertype(prot, in, r, ReasonUnknownTunnelPayload)
}

// l2tpv3IP decodes L2TPv3 over IP (protocol 115): session ID, 0 for control
// messages, then the data session's pseudowire.
func (d *Decoder) l2tpv3IP(p []byte, r *Record) Reason {
	t := r.pushTunnel(TunnelL2TPv3)
	if t == nil {
		return ReasonTooDeep
	}
	if len(p) < 4 {
		return ReasonTruncatedTunnel
	}
	t.ID = be32(p)
	if t.ID == 0 {
		t.Control = true
		return ReasonNone
	}
	return d.l2tpv3Data(p[4:], r)
}

// l2tpv3Data finds the Ethernet pseudowire after an L2TPv3 session ID. The
// cookie (0, 4 or 8 bytes) and L2-specific sublayer (0 or 4) are configured,
// not signalled in the packet, so each candidate offset is tried and the
// first that holds a plausible Ethernet header wins.
func (d *Decoder) l2tpv3Data(p []byte, r *Record) Reason {
	for off := 0; off <= 12; off += 4 {
		if off < len(p) && looksEthernet(p[off:]) {
			return d.ethernet(p[off:], r)
		}
	}
	if len(p) < 14 {
		return ReasonTruncatedTunnel
	}
	return ReasonUnknownTunnelPayload
}

// looksEthernet reports whether b starts with an Ethernet header carrying IP,
// ARP or a VLAN tag, checking the version nibble of IP.
func looksEthernet(b []byte) bool {
	if len(b) < 15 {
		return false
	}
	switch be16(b[12:]) {
	case etherIPv4:
		return b[14]>>4 == 4 && b[14]&0x0f >= 5
	case etherIPv6:
		return b[14]>>4 == 6
	case etherARP:
		return len(b) >= 16 && be16(b[14:]) == 1
	case etherVLAN, etherQinQ:
		return true
	}
	return false
}

// l2tpUDP decodes L2TP on UDP 1701: version 3 (session ID, pseudowire) or
// version 2 (tunnel and session IDs, then PPP).
func (d *Decoder) l2tpUDP(p []byte, r *Record) Reason {
	if len(p) < 2 {
		return ReasonTruncatedTunnel
	}
	flags := be16(p)
	control := flags&0x8000 != 0
	switch flags & 0x0f {
	case 3:
		t := r.pushTunnel(TunnelL2TPv3)
		if t == nil {
			return ReasonTooDeep
		}
		if control {
			t.Control = true
			return ReasonNone
		}
		if len(p) < 8 {
			return ReasonTruncatedTunnel
		}
		t.ID = be32(p[4:])
		return d.l2tpv3Data(p[8:], r)
	case 2:
		t := r.pushTunnel(TunnelL2TPv2)
		if t == nil {
			return ReasonTooDeep
		}
		t.Control = control
		off := 2
		if flags&0x4000 != 0 { // length
			off += 2
		}
		if len(p) < off+4 {
			return ReasonTruncatedTunnel
		}
		t.ID = uint32(be16(p[off:]))
		t.Session = uint32(be16(p[off+2:]))
		off += 4
		if flags&0x0800 != 0 { // Ns, Nr
			off += 4
		}
		if flags&0x0200 != 0 { // offset size, padding
			if len(p) < off+2 {
				return ReasonTruncatedTunnel
			}
			off += 2 + int(be16(p[off:]))
		}
		if control {
			return ReasonNone
		}
		if len(p) < off {
			return ReasonTruncatedTunnel
		}
		return d.ppp(p[off:], r)
	}
	return ReasonBadTunnelHeader
}
