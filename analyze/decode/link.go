package decode

import "net/netip"

// Ethertypes and PPP protocols the decoder dispatches on.
const (
	etherIPv4     = 0x0800
	etherARP      = 0x0806
	etherIPv6     = 0x86dd
	etherVLAN     = 0x8100
	etherQinQ     = 0x88a8
	etherQinQ9100 = 0x9100
	etherQinQ9200 = 0x9200
	etherPPPoE    = 0x8864
	etherMPLS     = 0x8847
	etherMPLSMC   = 0x8848
	etherTEB      = 0x6558 // transparent Ethernet bridging (GRE, GENEVE)
	etherPPP      = 0x880b // PPP in (enhanced) GRE
	etherERSPAN2  = 0x88be
	etherERSPAN3  = 0x22eb
	etherCMD      = 0x8909 // Cisco MetaData

	pppIPv4 = 0x0021
	pppIPv6 = 0x0057
	pppMPLS = 0x0281
)

// link decodes the link-layer header of the given type.
func (d *Decoder) link(link LinkType, b []byte, r *Record) Reason {
	switch link {
	case LinkEthernet:
		return d.ethernet(b, r)
	case LinkLinuxSLL:
		return d.sll(b, r)
	case LinkSLL2:
		return d.sll2(b, r)
	case LinkRaw, LinkRaw12, LinkRaw14:
		if len(b) == 0 {
			return ReasonTruncatedLink
		}
		return d.ip(b, r)
	case LinkIPv4:
		return d.ipv4(b, r)
	case LinkIPv6:
		return d.ipv6(b, r)
	case LinkNull:
		if len(b) < 4 {
			return ReasonTruncatedLink
		}
		fam := le32(b)
		if fam > 0xffff { // written big-endian
			fam = be32(b)
		}
		return d.family(fam, b[4:], r)
	case LinkLoop:
		if len(b) < 4 {
			return ReasonTruncatedLink
		}
		return d.family(be32(b), b[4:], r)
	case LinkPPP, LinkPPPHDLC:
		return d.ppp(b, r)
	}
	return ReasonUnknownLinkType
}

// family dispatches on a BSD address family (DLT_NULL, DLT_LOOP): 2 is
// AF_INET everywhere; 24, 28 and 30 are AF_INET6 on NetBSD/OpenBSD, FreeBSD
// and Darwin.
func (d *Decoder) family(fam uint32, b []byte, r *Record) Reason {
	switch fam {
	case 2:
		return d.ipv4(b, r)
	case 24, 28, 30:
		return d.ipv6(b, r)
	}
	return ReasonUnknownEtherType
}

// ethernet decodes an Ethernet II (or 802.3) header and what it carries. The
// outermost Ethernet header sets the record's MAC addresses.
func (d *Decoder) ethernet(b []byte, r *Record) Reason {
	if len(b) < 14 {
		return r.truncated()
	}
	if r.NumLevels == 0 && r.EthType == 0 {
		copy(r.DstMAC[:], b[0:6])
		copy(r.SrcMAC[:], b[6:12])
	}
	et := be16(b[12:])
	if et < 0x0600 {
		return ReasonLLC
	}
	return d.ethertype(et, b[14:], r, ReasonUnknownEtherType)
}

// sll decodes a Linux cooked capture v1 header (16 bytes).
func (d *Decoder) sll(b []byte, r *Record) Reason {
	if len(b) < 16 {
		return ReasonTruncatedLink
	}
	if be16(b[4:]) == 6 {
		copy(r.SrcMAC[:], b[6:12])
	}
	if be16(b[2:]) == 824 { // ARPHRD_NETLINK: protocol is a netlink family
		return ReasonUnknownEtherType
	}
	return d.ethertype(be16(b[14:]), b[16:], r, ReasonUnknownEtherType)
}

// sll2 decodes a Linux cooked capture v2 header (20 bytes).
func (d *Decoder) sll2(b []byte, r *Record) Reason {
	if len(b) < 20 {
		return ReasonTruncatedLink
	}
	if b[11] == 6 {
		copy(r.SrcMAC[:], b[12:18])
	}
	if be16(b[8:]) == 824 {
		return ReasonUnknownEtherType
	}
	return d.ethertype(be16(b[0:]), b[20:], r, ReasonUnknownEtherType)
}

// ethertype dispatches on an ethertype (or a GRE/GENEVE protocol type, which
// share its number space), skipping VLAN tags first. unknown is the reason to
// give for a type the decoder does not handle.
func (d *Decoder) ethertype(et uint16, b []byte, r *Record, unknown Reason) Reason {
	d.steps++
	if d.steps > maxSteps {
		return ReasonTooDeep
	}
	outer := r.NumLevels == 0 && r.EthType == 0
	for et == etherVLAN || et == etherQinQ || et == etherQinQ9100 || et == etherQinQ9200 {
		if len(b) < 4 {
			return r.truncated()
		}
		if outer && r.NumVLANs < 2 {
			r.VLANs[r.NumVLANs] = be16(b) & 0x0fff
			r.NumVLANs++
		}
		et = be16(b[2:])
		b = b[4:]
	}
	if outer {
		r.EthType = et
	}
	switch et {
	case etherIPv4:
		return d.ipv4(b, r)
	case etherIPv6:
		return d.ipv6(b, r)
	case etherARP:
		return d.arp(b, r)
	case etherPPPoE:
		// PPPoE session: version/type, code, session ID, length, then PPP.
		if len(b) < 6 {
			return r.truncated()
		}
		return d.ppp(b[6:], r)
	case etherMPLS, etherMPLSMC:
		return d.mpls(b, r)
	case etherTEB:
		return d.ethernet(b, r)
	case etherPPP:
		return d.ppp(b, r)
	}
	if et < 0x0600 {
		return ReasonLLC
	}
	return unknown
}

// ppp decodes a PPP frame: optional HDLC address/control (ff 03), a one- or
// two-byte protocol, then IPv4, IPv6 or MPLS.
func (d *Decoder) ppp(b []byte, r *Record) Reason {
	if len(b) >= 2 && b[0] == 0xff && b[1] == 0x03 {
		b = b[2:]
	}
	if len(b) == 0 {
		return r.truncated()
	}
	var proto uint16
	if b[0]&1 == 1 { // protocol field compression
		proto = uint16(b[0])
		b = b[1:]
	} else {
		if len(b) < 2 {
			return r.truncated()
		}
		proto = be16(b)
		b = b[2:]
	}
	switch proto {
	case pppIPv4:
		return d.ipv4(b, r)
	case pppIPv6:
		return d.ipv6(b, r)
	case pppMPLS:
		return d.mpls(b, r)
	}
	return ReasonUnknownPPP
}

// mpls skips an MPLS label stack and guesses the payload from its first
// nibble: 4 IPv4, 6 IPv6, 0 a pseudowire control word before Ethernet.
func (d *Decoder) mpls(b []byte, r *Record) Reason {
	for i := 0; i < 16; i++ {
		if len(b) < 4 {
			return r.truncated()
		}
		bottom := b[2]&1 != 0
		b = b[4:]
		if !bottom {
			continue
		}
		if len(b) == 0 {
			return r.truncated()
		}
		switch b[0] >> 4 {
		case 4:
			return d.ipv4(b, r)
		case 6:
			return d.ipv6(b, r)
		case 0:
			if len(b) < 4 {
				return r.truncated()
			}
			return d.ethernet(b[4:], r)
		}
		return ReasonUnknownTunnelPayload
	}
	return ReasonTooDeep
}

// arp decodes an Ethernet/IPv4 ARP packet.
func (d *Decoder) arp(b []byte, r *Record) Reason {
	if len(b) < 28 {
		return ReasonBadARP
	}
	if ht := be16(b); (ht != 1 && ht != 6) || be16(b[2:]) != etherIPv4 || b[4] != 6 || b[5] != 4 {
		return ReasonBadARP
	}
	a := &r.ARP
	a.Valid = true
	a.Level = r.NumLevels
	a.Op = be16(b[6:])
	copy(a.SenderMAC[:], b[8:14])
	a.SenderIP = netip.AddrFrom4([4]byte(b[14:18]))
	copy(a.TargetMAC[:], b[18:24])
	a.TargetIP = netip.AddrFrom4([4]byte(b[24:28]))
	return ReasonNone
}
