package bgp

import (
	"net/netip"

	"github.com/vpndiag/vpndiag/analyze"
	"github.com/vpndiag/vpndiag/analyze/decode"
	"github.com/vpndiag/vpndiag/report"
)

func init() {
	analyze.Register("bgp", func() analyze.Analyzer { return New() })
}

// Analyzer is the "bgp" analyzer: it follows BGP sessions in the capture,
// learns tunnel endpoints from tunnel packets, and reports default routes
// and endpoint-covering prefixes learned over tunnels, and flapping
// sessions.
type Analyzer struct {
	// Endpoints are tunnel endpoint addresses given by the user
	// (--endpoint). BGP sessions not seen inside a tunnel of the capture
	// are taken to run inside the tunnel to these endpoints (the capture
	// was taken on the tunnel interface), unless they run between tunnel
	// endpoints themselves.
	Endpoints []netip.Addr
	// TunnelPeers are BGP peer addresses whose sessions run inside a tunnel
	// (--tunnel-peer).
	TunnelPeers []netip.Addr

	tracker *Tracker
	tunnels *Tunnels
	seg     Segment
	carried [decode.MaxLevels]int
}

// New returns an analyzer with no user-given endpoints.
func New() *Analyzer {
	return &Analyzer{tracker: NewTracker(), tunnels: newTunnels()}
}

// Name implements analyze.Analyzer.
func (a *Analyzer) Name() string { return "bgp" }

// Tracker returns the session tracker (for tests and tools).
func (a *Analyzer) Tracker() *Tracker { return a.tracker }

// Tunnels returns the tunnels learned so far.
func (a *Analyzer) Tunnels() []*Tunnel { return a.tunnels.List }

// Wants implements analyze.Selective: BGP (TCP port 179 at any level) and
// the tunnels whose routes it checks (tunnelled packets, IKE, WireGuard).
func (a *Analyzer) Wants() analyze.Interest {
	return analyze.WantPort179 | analyze.WantTunnel | analyze.WantIKE | analyze.WantWireGuard
}

// InputEnd implements analyze.Selective.
func (a *Analyzer) InputEnd(_ int, last int64) { a.tracker.End = max(a.tracker.End, last) }

// Packet implements analyze.Analyzer. Frames without tunnels or BGP cost a
// few comparisons and no allocation.
func (a *Analyzer) Packet(rec *decode.Record) {
	if rec.Time > a.tracker.End {
		a.tracker.End = rec.Time
	}
	if rec.NumTunnel > 0 || rec.IKE.Valid || rec.WireGuard.Type != 0 {
		// A frame of the current run leaves carried as the previous
		// frame's, which had the same shape and tunnel.
		if !a.tunnels.fast(rec) {
			a.tunnels.observe(rec, &a.carried)
		}
	} else {
		a.carried[0] = -1
	}
	for i := 0; i < int(rec.NumLevels); i++ {
		l := &rec.Levels[i]
		if l.L4.Proto != 6 || (l.L4.SrcPort != 179 && l.L4.DstPort != 179) || l.IP.Fragment && l.IP.FragOffset > 0 {
			continue
		}
		tunnel := -1
		if rec.NumTunnel > 0 {
			tunnel = a.carried[i]
		}
		a.seg = Segment{
			Src: netip.AddrPortFrom(l.IP.Src, l.L4.SrcPort), Dst: netip.AddrPortFrom(l.IP.Dst, l.L4.DstPort),
			Seq: l.L4.Seq, Flags: l.L4.Flags, Payload: l.L4.Payload,
			Input: rec.Input, Frame: rec.Frame, Time: rec.Time, Tunnel: tunnel,
		}
		a.tracker.Segment(&a.seg)
		a.seg.Payload = nil
	}
}

// Finish implements analyze.Analyzer.
func (a *Analyzer) Finish(r *report.Report, inputs []analyze.InputInfo) {
	a.tracker.Finish()
	if len(a.tracker.Pairs()) == 0 && len(a.Endpoints) == 0 {
		// No BGP in these inputs: stay out of the report (vpndiag analyze
		// runs every analyzer).
		return
	}
	c := &checker{endpoints: a.Endpoints, tunnelPeers: a.TunnelPeers, tunnels: a.tunnels,
		names: func(in int) string {
			if in >= 0 && in < len(inputs) {
				return inputs[in].Name
			}
			return ""
		}}
	c.capture(r, a.tracker)
}
