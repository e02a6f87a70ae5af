package decode

// esp records an ESP header (SPI and sequence); the payload is encrypted.
func esp(p []byte, r *Record, kind TunnelKind) Reason {
	t := r.pushTunnel(kind)
	if t == nil {
		return ReasonTooDeep
	}
	if len(p) >= 4 {
		t.ID = be32(p)
	}
	if len(p) < 8 {
		return ReasonTruncatedTunnel
	}
	t.Seq = be32(p[4:])
	return ReasonNone
}

// natt decodes UDP 4500 (RFC 3948): a one-byte 0xff NAT keepalive, IKE after
// a four-byte zero non-ESP marker, or else UDP-encapsulated ESP.
func natt(p []byte, r *Record) Reason {
	if len(p) == 1 && p[0] == 0xff {
		return ReasonNone
	}
	if len(p) < 4 {
		return ReasonTruncatedTunnel
	}
	if be32(p) == 0 {
		return ike(p[4:], true, r)
	}
	return esp(p, r, TunnelESPinUDP)
}

// ike decodes the 28-byte IKE/ISAKMP header.
func ike(p []byte, natt bool, r *Record) Reason {
	if len(p) < 28 {
		return ReasonTruncatedTunnel
	}
	v := p[17] >> 4
	if v != 1 && v != 2 {
		return ReasonBadTunnelHeader
	}
	k := &r.IKE
	k.Valid = true
	k.Version = v
	k.Exchange = p[18]
	k.Flags = p[19]
	k.InitiatorSPI = be64(p)
	k.ResponderSPI = be64(p[8:])
	k.MessageID = be32(p[20:])
	k.Length = be32(p[24:])
	k.NATT = natt
	return ReasonNone
}

// Fixed WireGuard message lengths (UDP payload).
const (
	wgInitLen     = 148
	wgResponseLen = 92
	wgCookieLen   = 64
	wgMinDataLen  = 32 // header 16 + empty payload's 16-byte tag (keepalive)
)

// portWireGuard is WireGuard's customary port.
const portWireGuard = 51820

// wgKnownIndexes is how many recent WireGuard session indexes a Decoder
// remembers for recognising full-MTU transport messages.
const wgKnownIndexes = 32

// wgIndexes is a small ring of WireGuard session indexes seen recently.
type wgIndexes struct {
	idx [wgKnownIndexes]uint32
	n   int // filled entries
	pos int // next slot to overwrite
}

func (w *wgIndexes) add(i uint32) {
	if w.has(i) {
		return
	}
	w.idx[w.pos] = i
	w.pos = (w.pos + 1) % wgKnownIndexes
	if w.n < wgKnownIndexes {
		w.n++
	}
}

func (w *wgIndexes) has(i uint32) bool {
	for _, v := range w.idx[:w.n] {
		if v == i {
			return true
		}
	}
	return false
}

// wireguard recognises a WireGuard message on any UDP port by its type byte,
// three reserved zero bytes and the exact length of its type; ulen is the
// UDP payload length from the UDP header. Anything else is left alone.
//
// Transport data is 16 bytes of header plus the encrypted packet padded to a
// multiple of 16 plus a 16-byte tag, except that WireGuard never pads beyond
// the tunnel MTU: a full-size packet (1420 bytes inside a 1420 MTU) breaks
// the multiple-of-16 rule. Such a message is accepted on port 51820, or when
// its receiver index was seen recently in a handshake or an aligned
// transport message.
func (d *Decoder) wireguard(p []byte, sp, dp uint16, ulen int, r *Record) Reason {
	if len(p) < 4 || p[1]|p[2]|p[3] != 0 {
		return ReasonNone
	}
	typ := p[0]
	switch typ {
	case WGHandshakeInit:
		if ulen != wgInitLen {
			return ReasonNone
		}
	case WGHandshakeResponse:
		if ulen != wgResponseLen {
			return ReasonNone
		}
	case WGCookieReply:
		if ulen != wgCookieLen {
			return ReasonNone
		}
	case WGTransportData:
		if ulen < wgMinDataLen {
			return ReasonNone
		}
		if (ulen-16)%16 != 0 && sp != portWireGuard && dp != portWireGuard &&
			(len(p) < 8 || !d.wg.has(le32(p[4:]))) {
			return ReasonNone
		}
	default:
		return ReasonNone
	}
	w := &r.WireGuard
	w.Type = typ
	switch typ {
	case WGHandshakeInit:
		if len(p) < 8 {
			return ReasonTruncatedTunnel
		}
		w.Sender = le32(p[4:])
		d.wg.add(w.Sender)
	case WGHandshakeResponse:
		if len(p) < 12 {
			return ReasonTruncatedTunnel
		}
		w.Sender = le32(p[4:])
		w.Receiver = le32(p[8:])
		d.wg.add(w.Sender)
		d.wg.add(w.Receiver)
	case WGCookieReply:
		if len(p) < 8 {
			return ReasonTruncatedTunnel
		}
		w.Receiver = le32(p[4:])
	case WGTransportData:
		t := r.pushTunnel(TunnelWireGuard)
		if t == nil {
			return ReasonTooDeep
		}
		if len(p) < 16 {
			return ReasonTruncatedTunnel
		}
		w.Receiver = le32(p[4:])
		w.Counter = le64(p[8:])
		t.ID = w.Receiver
		t.Counter = w.Counter
		if (ulen-16)%16 == 0 {
			d.wg.add(w.Receiver)
		}
	}
	return ReasonNone
}
