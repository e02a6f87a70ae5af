package analyze

import "github.com/vpndiag/vpndiag/analyze/decode"

// Interest is a set of record properties. The Pass computes a record's
// properties once (InterestOf) and shows the record only to the analyzers
// that want one of them (Selective), so an analyzer that cares about a few
// protocols costs nothing on the other packets.
type Interest uint32

// Record properties. "Any level" means any decoded IP level, outer or inner.
const (
	WantARP           Interest = 1 << iota // rec.ARP.Valid (on the link or inside a tunnel)
	WantIKE                                // rec.IKE.Valid
	WantWireGuard                          // rec.WireGuard.Type != 0
	WantESP                                // a tunnel of kind ESP or ESP-in-UDP
	WantTunnel                             // at least one tunnel (rec.NumTunnel > 0)
	WantInnerTCPSyn                        // innermost level is TCP with SYN set
	WantInnerPort4500                      // innermost level is UDP from or to port 4500
	WantInnerPort53                        // innermost level is TCP or UDP from or to port 53
	WantInnerIPv6                          // innermost level is IPv6
	WantPort179                            // any level is TCP from or to port 179
	// WantAll is every record, including non-IP ones.
	WantAll Interest = 1<<31 | (1<<31 - 1)
)

// Selective is an Analyzer that reacts only to some records. Its Packet must
// do nothing (no state change at all) for a record whose InterestOf does not
// intersect Wants, except remember the input's latest time, which the Pass
// gives it with InputEnd instead: a Pass then skips such records.
//
// Called directly (tests, tools) with every record, a Selective analyzer
// behaves the same without InputEnd.
type Selective interface {
	Analyzer
	// Wants returns the properties of the records Packet reacts to. It is
	// called once per Pass.
	Wants() Interest
	// InputEnd tells the analyzer the latest capture time (Unix ns) of
	// all frames of an input, before Finish.
	InputEnd(input int, last int64)
}

// InterestOf returns the properties of one record. Every record has WantAll's
// extra bit, so analyzers that are not Selective see everything.
func InterestOf(rec *decode.Record) Interest {
	in := Interest(1 << 31)
	if rec.ARP.Valid {
		in |= WantARP
	}
	if rec.IKE.Valid {
		in |= WantIKE
	}
	if rec.WireGuard.Type != 0 {
		in |= WantWireGuard
	}
	if rec.NumTunnel > 0 {
		in |= WantTunnel
		for i := range rec.Tunnels[:min(int(rec.NumTunnel), decode.MaxLevels)] {
			if k := rec.Tunnels[i].Kind; k == decode.TunnelESP || k == decode.TunnelESPinUDP {
				in |= WantESP
			}
		}
	}
	n := int(rec.NumLevels)
	if n == 0 || n > decode.MaxLevels {
		return in
	}
	for i := range n - 1 {
		if t := &rec.Levels[i].L4; t.Proto == 6 && (t.SrcPort == 179 || t.DstPort == 179) {
			in |= WantPort179
		}
	}
	l := &rec.Levels[n-1]
	if l.IP.Version == 6 {
		in |= WantInnerIPv6
	}
	t := &l.L4
	if t.Proto != 6 && t.Proto != 17 {
		return in
	}
	sp, dp := t.SrcPort, t.DstPort
	if sp == 53 || dp == 53 {
		in |= WantInnerPort53
	}
	if t.Proto == 6 {
		if t.Flags&decode.TCPSyn != 0 {
			in |= WantInnerTCPSyn
		}
		if sp == 179 || dp == 179 {
			in |= WantPort179
		}
	} else if sp == 4500 || dp == 4500 {
		in |= WantInnerPort4500
	}
	return in
}
