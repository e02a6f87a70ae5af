package mtu

import "github.com/vpndiag/vpndiag/analyze/decode"

// ohStat is what one tunnel kind added to its packets at one capture point,
// for one outer IP version.
type ohStat struct {
	packets  uint64
	measured uint64 // packets whose inner IP length was readable
	min, max uint16 // outer minus inner IP total length
	maxOuter uint16
	maxInner uint16
	frame    uint64 // first packet
}

type overheadState struct {
	stats [][decode.NumTunnelKinds][2]ohStat // by input, kind, outer IPv6
}

// nominal is the overhead of an encrypted tunnel whose inner packet cannot be
// measured: ESP tunnel mode with AES-CBC and HMAC-SHA1-96 at its worst
// (IP 20 + SPI/seq 8 + IV 16 + pad 15 + pad length/next header 2 + ICV 12),
// NAT-T adding a UDP header, and WireGuard (IP + UDP 8 + 32), all for an
// IPv4 outer header; IPv6 adds 20.
func nominal(k decode.TunnelKind, v6 bool) uint16 {
	var n uint16
	switch k {
	case decode.TunnelESP:
		n = 73
	case decode.TunnelESPinUDP:
		n = 81
	case decode.TunnelWireGuard:
		n = 60
	default:
		return 0
	}
	if v6 {
		n += 20
	}
	return n
}

func (s *overheadState) packet(rec *decode.Record) {
	for rec.Input >= len(s.stats) {
		s.stats = append(s.stats, [decode.NumTunnelKinds][2]ohStat{})
	}
	for j := 0; j < int(rec.NumTunnel); j++ {
		t := &rec.Tunnels[j]
		if int(t.Kind) >= decode.NumTunnelKinds || int(t.Level) >= int(rec.NumLevels) || t.Control {
			continue
		}
		outer := &rec.Levels[t.Level].IP
		v6 := 0
		if outer.Version == 6 {
			v6 = 1
		}
		st := &s.stats[rec.Input][t.Kind][v6]
		if st.packets == 0 {
			st.frame = rec.Frame
		}
		st.packets++
		st.maxOuter = max(st.maxOuter, outer.TotalLen)
		if t.Kind.Encrypted() || int(t.Level)+1 >= int(rec.NumLevels) || outer.Fragment {
			continue
		}
		inner := &rec.Levels[t.Level+1].IP
		if outer.TotalLen <= inner.TotalLen || inner.TotalLen == 0 {
			continue
		}
		oh := outer.TotalLen - inner.TotalLen
		if st.measured == 0 || oh < st.min {
			st.min = oh
		}
		st.max = max(st.max, oh)
		st.measured++
		st.maxInner = max(st.maxInner, inner.TotalLen)
	}
}
