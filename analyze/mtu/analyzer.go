// Package mtu finds MTU problems in captures: IP fragmentation by flow and
// fragment trains that never complete, ICMP fragmentation-needed and ICMPv6
// packet-too-big messages (who sent them, the MTU they advertise, and
// whether the sender then kept sending packets that are too big), TCP MSS
// values too large for an advertised path MTU, PMTU black holes (large
// DF segments retransmitted and never acknowledged while smaller ones get
// through), and the overhead each tunnel adds, with the effective MTU left
// inside it.
//
// The analyzer is registered as "mtu".
package mtu

import (
	"net/netip"
	"time"

	"github.com/vpndiag/vpndiag/analyze"
	"github.com/vpndiag/vpndiag/analyze/decode"
)

func init() { analyze.Register("mtu", func() analyze.Analyzer { return New() }) }

const (
	// ReassemblyTimeout is how long a fragment train may stay incomplete
	// (Linux ipfrag_time is 30 s).
	ReassemblyTimeout = 30 * time.Second
	// EndGrace: trains and segments this close to the end of their capture
	// are not judged (the rest may simply not have been captured).
	EndGrace = 2 * time.Second
	// IgnoredAfter: packets larger than an advertised MTU sent this long
	// after the ICMP count as the sender ignoring it (earlier ones were in
	// flight).
	IgnoredAfter = 50 * time.Millisecond
	// IgnoredWarn such packets make mtu.frag-needed a warning.
	IgnoredWarn = 3
	// BlackholeSends: a DF segment sent this many times and never
	// acknowledged is a black-hole candidate.
	BlackholeSends = 3
	// Limits on state.
	maxTrains    = 16384
	maxFragFlows = 4096
	maxICMP      = 4096
	maxTCPFlows  = 65536
	maxMSS       = 65536
	maxExamples  = 5
)

// pathKey is a one-way path at one capture point.
type pathKey struct {
	input    int
	src, dst netip.Addr
}

// Analyzer is the MTU and fragmentation analyzer.
type Analyzer struct {
	ends   []int64
	pppoe  []bool // input carries PPPoE
	maxLen []uint16

	frag     fragState
	icmp     icmpState
	tcp      tcpState
	overhead overheadState
}

// New returns an empty MTU analyzer.
func New() *Analyzer {
	a := &Analyzer{}
	a.frag.init()
	a.icmp.init()
	a.tcp.init()
	return a
}

// Name implements analyze.Analyzer.
func (a *Analyzer) Name() string { return "mtu" }

// Packet implements analyze.Analyzer.
func (a *Analyzer) Packet(rec *decode.Record) {
	for rec.Input >= len(a.ends) {
		a.ends = append(a.ends, 0)
		a.pppoe = append(a.pppoe, false)
		a.maxLen = append(a.maxLen, 0)
	}
	if rec.Time > a.ends[rec.Input] {
		a.ends[rec.Input] = rec.Time
	}
	if rec.NumLevels == 0 {
		return
	}
	if rec.EthType == 0x8864 && !a.pppoe[rec.Input] {
		a.pppoe[rec.Input] = true
	}
	if l0 := &rec.Levels[0]; l0.IP.TotalLen > a.maxLen[rec.Input] {
		a.maxLen[rec.Input] = l0.IP.TotalLen
	}
	for i := 0; i < int(rec.NumLevels); i++ {
		l := &rec.Levels[i]
		if l.IP.Fragment {
			a.frag.fragment(rec, i, l)
		}
		switch {
		case l.L4.Proto == 1 && l.L4.ICMPType == 3 && l.L4.ICMPCode == 4,
			l.L4.Proto == 58 && l.L4.ICMPType == 2:
			a.icmp.tooBig(rec, l)
		}
		if a.icmp.watching() {
			a.icmp.check(rec, l)
		}
	}
	if rec.NumTunnel > 0 {
		a.overhead.packet(rec)
	}
	if l := rec.Inner(); l.L4.Proto == 6 && l.IP.FragOffset == 0 {
		a.tcp.segment(rec, l, &a.icmp)
	}
}
