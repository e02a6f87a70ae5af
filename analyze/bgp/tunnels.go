package bgp

import (
	"net/netip"

	"github.com/vpndiag/vpndiag/analyze/decode"
)

// Tunnel is a tunnel seen in the capture: two outer endpoints and a kind.
// IKE, ESP and ESP-in-UDP between the same endpoints are one "ipsec" tunnel.
type Tunnel struct {
	Kind      string // ipsec, wireguard, vxlan, geneve, gre, ipip, l2tpv3, or "declared" (--endpoint)
	A, B      netip.Addr
	Packets   uint64
	First     FrameID
	FirstTime int64
	LastTime  int64
	// Inner holds addresses seen inside the tunnel (unencrypted kinds), at
	// most maxInner.
	Inner map[netip.Addr]bool
	// Renegotiations are times of key exchanges: IKE messages, new ESP SPIs,
	// WireGuard handshakes (at most maxRenego kept; Rekeys counts all).
	Renegotiations []int64
	RenegoFrames   []FrameID
	Rekeys         int
	spis           map[uint32]bool
}

const (
	maxInner  = 256
	maxRenego = 1024
	maxSPIs   = 4096
)

// Endpoints returns the tunnel's outer addresses.
func (t *Tunnel) Endpoints() []netip.Addr { return []netip.Addr{t.A, t.B} }

type tunnelKey struct {
	kind string
	a, b netip.Addr
}

// Tunnels learns tunnels and their endpoints from packet records.
type Tunnels struct {
	List  []*Tunnel
	index map[tunnelKey]int

	// The previous packet's tunnel and inner address pair: a run of
	// packets through one tunnel skips the map lookups (tunnels and inner
	// addresses are never forgotten, so what is remembered stays true).
	last   tunnelKey
	lastG  decode.TunnelKind // kind group of last
	lastI  int               // -1: none
	innerI int               // tunnel whose inner addresses innerA, innerB are recorded; -1: none
	innerA netip.Addr
	innerB netip.Addr

	// run is the shape of the previous frame when it had exactly one
	// tunnel, not ESP, and no key exchange: a frame of the same shape
	// through the same tunnel, between the same inner addresses, changes
	// nothing but the tunnel's Packets and LastTime (see fast).
	run    *Tunnel // nil: no run
	runK   decode.TunnelKind
	runLv  uint8 // the tunnel's Level
	runN   uint8 // the frame's NumLevels
	runSrc netip.Addr
	runDst netip.Addr
	runIn  [2]netip.Addr // inner Src, Dst (zero without an inner level)
	noRun  bool          // tests: always take the slow path
}

func newTunnels() *Tunnels { return &Tunnels{index: map[tunnelKey]int{}, lastI: -1, innerI: -1} }

// fast counts a frame of the current run and reports true, or reports false
// (and changes nothing) when the frame is not of the run: then observe must
// see it. A frame of the run would take observe's cached paths only (the
// previous tunnel, the recorded inner pair), and carried stays as observe
// left it for the previous frame.
func (ts *Tunnels) fast(rec *decode.Record) bool {
	t := ts.run
	if t == nil || rec.NumTunnel != 1 || rec.NumLevels != ts.runN {
		return false
	}
	tn := &rec.Tunnels[0]
	if tn.Kind != ts.runK || tn.Level != ts.runLv || rec.IKE.Valid || rec.WireGuard.Type != 0 && rec.WireGuard.Type != decode.WGTransportData {
		return false
	}
	out := &rec.Levels[tn.Level].IP
	if !(out.Src == ts.runSrc && out.Dst == ts.runDst || out.Src == ts.runDst && out.Dst == ts.runSrc) {
		return false
	}
	if in := int(tn.Level) + 1; in < int(rec.NumLevels) {
		ip := &rec.Levels[in].IP
		if !(ip.Src == ts.runIn[0] && ip.Dst == ts.runIn[1] || ip.Src == ts.runIn[1] && ip.Dst == ts.runIn[0]) {
			return false
		}
	}
	t.Packets++
	if rec.Time > t.LastTime {
		t.LastTime = rec.Time
	}
	return true
}

// startRun makes rec's shape the current run if it qualifies (see run).
// observe has just seen rec, so its tunnel is the previous tunnel and its
// inner pair (if any) the recorded one.
func (ts *Tunnels) startRun(rec *decode.Record) {
	ts.run = nil
	if ts.noRun || rec.NumTunnel != 1 || rec.IKE.Valid || rec.WireGuard.Type != 0 && rec.WireGuard.Type != decode.WGTransportData {
		return
	}
	tn := &rec.Tunnels[0]
	if tn.Kind == decode.TunnelESP || tn.Kind == decode.TunnelESPinUDP || int(tn.Level) >= int(rec.NumLevels) {
		return
	}
	out := &rec.Levels[tn.Level].IP
	ts.runK, ts.runLv, ts.runN, ts.runSrc, ts.runDst = tn.Kind, tn.Level, rec.NumLevels, out.Src, out.Dst
	ts.runIn = [2]netip.Addr{}
	if in := int(tn.Level) + 1; in < int(rec.NumLevels) {
		ts.runIn = [2]netip.Addr{rec.Levels[in].IP.Src, rec.Levels[in].IP.Dst}
	}
	ts.run = ts.List[ts.lastI]
}

// kindGroup returns the group of a tunnel kind: ESP and ESP-in-UDP are one
// group (IKE, too), named "ipsec"; every other kind is its own.
func kindGroup(k decode.TunnelKind) decode.TunnelKind {
	if k == decode.TunnelESPinUDP {
		return decode.TunnelESP
	}
	return k
}

// groupName is the Tunnel.Kind of a kind group.
func groupName(g decode.TunnelKind) string {
	if g == decode.TunnelESP {
		return "ipsec"
	}
	return g.String()
}

func (ts *Tunnels) get(g decode.TunnelKind, a, b netip.Addr, rec *decode.Record) (int, *Tunnel) {
	i := ts.lastI
	if i < 0 || ts.lastG != g || !(ts.last.a == a && ts.last.b == b || ts.last.a == b && ts.last.b == a) {
		if b.Less(a) {
			a, b = b, a
		}
		kind := groupName(g)
		k := tunnelKey{kind, a, b}
		var ok bool
		i, ok = ts.index[k]
		if !ok {
			i = len(ts.List)
			ts.List = append(ts.List, &Tunnel{Kind: kind, A: a, B: b, First: FrameID{rec.Input, rec.Frame}, FirstTime: rec.Time})
			ts.index[k] = i
		}
		ts.last, ts.lastI, ts.lastG = k, i, g
	}
	t := ts.List[i]
	t.Packets++
	if rec.Time > t.LastTime {
		t.LastTime = rec.Time
	}
	return i, t
}

func (t *Tunnel) renegotiated(rec *decode.Record) {
	t.Rekeys++
	if len(t.Renegotiations) < maxRenego {
		t.Renegotiations = append(t.Renegotiations, rec.Time)
		t.RenegoFrames = append(t.RenegoFrames, FrameID{rec.Input, rec.Frame})
	}
}

// observe records the tunnels of one frame and returns, for each level, the
// index of the tunnel that carries it (-1 for none) in carried.
func (ts *Tunnels) observe(rec *decode.Record, carried *[decode.MaxLevels]int) {
	ts.see(rec, carried)
	ts.startRun(rec)
}

func (ts *Tunnels) see(rec *decode.Record, carried *[decode.MaxLevels]int) {
	for i := range carried {
		carried[i] = -1
	}
	for i := 0; i < int(rec.NumTunnel); i++ {
		tn := &rec.Tunnels[i]
		if int(tn.Level) >= int(rec.NumLevels) {
			continue
		}
		outer := &rec.Levels[tn.Level].IP
		id, t := ts.get(kindGroup(tn.Kind), outer.Src, outer.Dst, rec)
		switch tn.Kind {
		case decode.TunnelESP, decode.TunnelESPinUDP:
			if t.spis == nil {
				t.spis = map[uint32]bool{}
			}
			if !t.spis[tn.ID] && len(t.spis) < maxSPIs {
				t.spis[tn.ID] = true
				if len(t.spis) > 2 { // the first SA pair is the initial negotiation
					t.renegotiated(rec)
				}
			}
		}
		inner := int(tn.Level) + 1
		if inner < int(rec.NumLevels) {
			carried[inner] = id
			in := &rec.Levels[inner].IP
			if id == ts.innerI && (in.Src == ts.innerA && in.Dst == ts.innerB || in.Src == ts.innerB && in.Dst == ts.innerA) {
				continue // recorded for the previous packet
			}
			if t.Inner == nil {
				t.Inner = map[netip.Addr]bool{}
			}
			for _, a := range [2]netip.Addr{in.Src, in.Dst} {
				if !t.Inner[a] && len(t.Inner) < maxInner {
					t.Inner[a] = true
				}
			}
			ts.innerI, ts.innerA, ts.innerB = id, in.Src, in.Dst
		}
	}
	if rec.IKE.Valid || (rec.WireGuard.Type != 0 && rec.WireGuard.Type != decode.WGTransportData) {
		// The key exchange rides in the innermost UDP level.
		l := rec.Inner()
		if l == nil {
			return
		}
		g := decode.TunnelESP // ipsec
		if !rec.IKE.Valid {
			g = decode.TunnelWireGuard
		}
		_, t := ts.get(g, l.IP.Src, l.IP.Dst, rec)
		if rec.IKE.Valid {
			// IKE_SA_INIT, CREATE_CHILD_SA (IKEv2) or main/quick mode
			// requests (IKEv1) are (re)negotiations.
			switch rec.IKE.Exchange {
			case 34, 36, 2, 4, 32:
				if !rec.IKE.Response() {
					t.renegotiated(rec)
				}
			}
		} else if rec.WireGuard.Type == decode.WGHandshakeInit {
			t.renegotiated(rec)
		}
	}
}

// ofInner returns the tunnel whose inner traffic used address a, or -1.
func (ts *Tunnels) ofInner(a netip.Addr) int {
	for i, t := range ts.List {
		if t.Inner[a] {
			return i
		}
	}
	return -1
}

// isOuter reports whether a is an outer endpoint of any tunnel.
func (ts *Tunnels) isOuter(a netip.Addr) bool {
	for _, t := range ts.List {
		if t.A == a || t.B == a {
			return true
		}
	}
	return false
}
