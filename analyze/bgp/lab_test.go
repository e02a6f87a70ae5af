package bgp

import (
	"net/netip"
	"testing"
	"time"

	gobgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

// TestTrackerSilentTeardown replays, segment by segment, what the routecheck
// lab (cmd/vpndiag TestRoutecheckLab, vxlan-default) captured on the near
// router's underlay: once the default learned over the tunnel is installed,
// the near router's packets no longer leave, both hold timers expire, and
// neither NOTIFICATION nor FIN reaches the wire. The far side reconnects
// (one attempt reset, the next one established) while the old connection
// still retransmits. The old session must count as down, from hold-timer
// expiry, at the frame where the new one is established.
// replay feeds hand-made TCP segments of BGP sessions between near
// (198.18.100.1, AS 65001) and far (198.18.100.2, AS 65002) to a Tracker.
type replay struct {
	t                  *testing.T
	tr                 *Tracker
	near, far          netip.Addr
	t0                 int64
	frame              uint64
	seq                map[uint16][2]uint32 // far port -> next seq (from far, from near)
	openNear, openFar  []byte
	ka, update, holdNo []byte
	def                netip.Prefix
}

const psh = flagAck | 0x08

func newReplay(t *testing.T) *replay {
	r := &replay{t: t, tr: NewTracker(), near: netip.MustParseAddr("198.18.100.1"), far: netip.MustParseAddr("198.18.100.2"),
		t0: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano(), seq: map[uint16][2]uint32{},
		def: netip.MustParsePrefix("0.0.0.0/0")}
	ser := func(m *gobgp.BGPMessage) []byte {
		b, err := m.Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	open := func(as uint32, id netip.Addr) []byte {
		caps := []gobgp.ParameterCapabilityInterface{gobgp.NewCapMultiProtocol(gobgp.RF_IPv4_UC), gobgp.NewCapFourOctetASNumber(as)}
		m, err := gobgp.NewBGPOpenMessage(uint16(as), 3, id, []gobgp.OptionParameterInterface{gobgp.NewOptionParameterCapability(caps)})
		if err != nil {
			t.Fatal(err)
		}
		return ser(m)
	}
	nh, _ := gobgp.NewPathAttributeNextHop(r.far)
	def, _ := gobgp.NewIPAddrPrefix(r.def)
	r.update = ser(gobgp.NewBGPUpdateMessage(nil, []gobgp.PathAttributeInterface{gobgp.NewPathAttributeOrigin(0),
		gobgp.NewPathAttributeAsPath([]gobgp.AsPathParamInterface{gobgp.NewAs4PathParam(2, []uint32{65002})}), nh},
		[]gobgp.PathNLRI{{NLRI: def}}))
	r.ka = ser(gobgp.NewBGPKeepAliveMessage())
	r.holdNo = ser(gobgp.NewBGPNotificationMessage(4, 0, nil))
	r.openNear, r.openFar = open(65001, r.near), open(65002, r.far)
	return r
}

// send feeds one segment at second at; it returns its frame number.
func (r *replay) send(at float64, fromFar bool, port uint16, flags uint8, payload []byte) uint64 {
	r.frame++
	s := r.seq[port]
	d := 1
	src, dst := netip.AddrPortFrom(r.near, 179), netip.AddrPortFrom(r.far, port)
	if fromFar {
		d = 0
		src, dst = dst, src
	}
	r.tr.Segment(&Segment{Src: src, Dst: dst, Seq: s[d], Flags: flags, Payload: payload,
		Frame: r.frame, Time: r.t0 + int64(at*1e9), Tunnel: -1})
	n := uint32(len(payload))
	if flags&(flagSyn|flagFin) != 0 {
		n++
	}
	s[d] += n
	r.seq[port] = s
	return r.frame
}

// back moves a direction's next sequence number back by n bytes (for a
// retransmission) or, with a negative n, forward (bytes the capture missed).
func (r *replay) back(fromFar bool, port uint16, n int) {
	s := r.seq[port]
	d := 1
	if fromFar {
		d = 0
	}
	s[d] -= uint32(n)
	r.seq[port] = s
}

func (r *replay) pair() *Pair {
	r.t.Helper()
	r.tr.Finish()
	ps := r.tr.Pairs()
	if len(ps) != 1 {
		r.t.Fatalf("%d pairs, want 1", len(ps))
	}
	return ps[0]
}

func downEvents(p *Pair) []Event {
	var downs []Event
	for _, e := range p.Events {
		if e.Kind == "down" {
			downs = append(downs, e)
		}
	}
	return downs
}

func TestTrackerSilentTeardown(t *testing.T) {
	r := newReplay(t)
	// Session 1 (far port 53457): established, the default announced.
	r.send(0, true, 53457, flagSyn, nil)
	r.send(0, false, 53457, flagSyn|flagAck, nil)
	r.send(0, true, 53457, psh, r.openFar)
	r.send(0, false, 53457, psh, r.openNear)
	r.send(0, false, 53457, psh, r.ka)
	r.send(0, true, 53457, psh, r.ka)
	upd1 := r.send(0.1, true, 53457, psh, r.update)
	// The near side goes silent; the far side's next KEEPALIVE is
	// retransmitted and never acknowledged.
	r.send(0.8, true, 53457, psh, r.ka)
	r.back(true, 53457, len(r.ka))
	r.send(1.0, true, 53457, psh, r.ka)
	// A reconnection the near side resets before Established.
	r.send(4.8, true, 60531, flagSyn, nil)
	r.send(5.8, false, 60531, flagSyn|flagAck, nil)
	r.send(5.8, true, 60531, psh, r.openFar)
	r.send(5.8, false, 60531, flagRst|flagAck, nil)
	// Session 2 (far port 42059).
	r.send(6.6, true, 42059, flagSyn, nil)
	r.send(6.6, false, 42059, flagSyn|flagAck, nil)
	r.send(6.6, false, 42059, psh, r.openNear)
	r.send(6.6, true, 42059, psh, r.openFar)
	r.send(6.6, false, 42059, psh, r.ka)
	up2 := r.send(6.6, true, 42059, psh, r.ka)
	r.send(7.1, true, 42059, psh, r.update)
	// The first connection's retransmission, after its end was inferred.
	r.back(true, 53457, len(r.ka))
	r.send(7.5, true, 53457, psh, r.ka)

	p := r.pair()
	if p.Established != 2 || p.Downs != 1 || p.Failed != 1 || p.Connections != 3 {
		t.Errorf("established %d downs %d failed %d connections %d, want 2 1 1 3", p.Established, p.Downs, p.Failed, p.Connections)
	}
	downs := downEvents(p)
	if len(downs) != 1 || downs[0].Cause != "hold-expired" || downs[0].At.Frame != up2 || downs[0].Time != r.t0+6_600_000_000 {
		t.Fatalf("down events %+v, want one hold-expired at frame %d", downs, up2)
	}
	rt := p.Speaker(r.far).Routes[r.def]
	if rt == nil || rt.First.Frame != upd1 || rt.Announced != 2 || rt.Withdrawn {
		t.Fatalf("default route %+v, want first announced in frame %d, twice, not withdrawn", rt, upd1)
	}
	if len(p.DownTimes) != 1 || p.DownTimes[0] < rt.FirstTime {
		t.Errorf("down times %v", p.DownTimes)
	}
}

// TestTrackerHoleBeforeClose replays what the lab captured on the near
// router's WireGuard (TUN) device: one of the far side's KEEPALIVEs is
// missing from the capture, so everything the far side sent after it waits
// behind the hole; the far side's hold-timer NOTIFICATION and FIN, then the
// near side's RST, end the connection. The held messages must count before
// the end: the session was established, announced the default, and went
// down from hold-timer expiry (not "failed before Established"), and the
// route's first announcement is in session 1.
func TestTrackerHoleBeforeClose(t *testing.T) {
	r := newReplay(t)
	r.send(0, true, 33115, flagSyn, nil)
	r.send(0, false, 33115, flagSyn|flagAck, nil)
	r.send(0, false, 33115, psh, r.openNear)
	r.send(0, true, 33115, psh, r.openFar)
	r.send(0, false, 33115, psh, r.ka)
	r.back(true, 33115, -len(r.ka)) // the far KEEPALIVE the capture missed
	upd1 := r.send(0.1, true, 33115, psh, r.update)
	end := r.send(3.5, true, 33115, psh|flagFin, append(append(append([]byte(nil), r.ka...), r.ka...), r.holdNo...))
	r.send(3.5, false, 33115, flagRst, nil)
	// Session 2, complete.
	r.send(4.7, true, 60633, flagSyn, nil)
	r.send(4.7, false, 60633, flagSyn|flagAck, nil)
	r.send(4.7, false, 60633, psh, r.openNear)
	r.send(4.7, true, 60633, psh, r.openFar)
	r.send(4.7, false, 60633, psh, r.ka)
	r.send(4.7, true, 60633, psh, r.ka)
	upd2 := r.send(5.0, true, 60633, psh, r.update)

	p := r.pair()
	if p.Established != 2 || p.Downs != 1 || p.Failed != 0 {
		t.Errorf("established %d downs %d failed %d, want 2 1 0", p.Established, p.Downs, p.Failed)
	}
	downs := downEvents(p)
	if len(downs) != 1 || downs[0].Cause != "hold-expired" || downs[0].At.Frame != end {
		t.Errorf("down events %+v, want one hold-expired at frame %d", downs, end)
	}
	rt := p.Speaker(r.far).Routes[r.def]
	if rt == nil || rt.First.Frame != upd1 || rt.Last.Frame != upd2 || rt.Announced != 2 {
		t.Fatalf("default route %+v, want first announced in frame %d, last in %d", rt, upd1, upd2)
	}
	if len(p.DownTimes) != 1 || p.DownTimes[0] < rt.FirstTime {
		t.Errorf("down times %v, first announcement %d", p.DownTimes, rt.FirstTime)
	}
}
