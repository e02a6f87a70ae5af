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
func TestTrackerSilentTeardown(t *testing.T) {
	near, far := netip.MustParseAddr("198.18.100.1"), netip.MustParseAddr("198.18.100.2")
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
	nh, _ := gobgp.NewPathAttributeNextHop(far)
	def, _ := gobgp.NewIPAddrPrefix(netip.MustParsePrefix("0.0.0.0/0"))
	update := ser(gobgp.NewBGPUpdateMessage(nil, []gobgp.PathAttributeInterface{gobgp.NewPathAttributeOrigin(0),
		gobgp.NewPathAttributeAsPath([]gobgp.AsPathParamInterface{gobgp.NewAs4PathParam(2, []uint32{65002})}), nh},
		[]gobgp.PathNLRI{{NLRI: def}}))
	ka := ser(gobgp.NewBGPKeepAliveMessage())
	openNear, openFar := open(65001, near), open(65002, far)

	tr := NewTracker()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	frame := uint64(0)
	seq := map[uint16][2]uint32{} // far port -> next seq (from far, from near)
	send := func(at float64, fromFar bool, port uint16, flags uint8, payload []byte) uint64 {
		frame++
		s := seq[port]
		d := 1
		src, dst := netip.AddrPortFrom(near, 179), netip.AddrPortFrom(far, port)
		if fromFar {
			d = 0
			src, dst = dst, src
		}
		tr.Segment(&Segment{Src: src, Dst: dst, Seq: s[d], Flags: flags, Payload: payload,
			Frame: frame, Time: t0 + int64(at*1e9), Tunnel: -1})
		n := uint32(len(payload))
		if flags&(flagSyn|flagFin) != 0 {
			n++
		}
		s[d] += n
		seq[port] = s
		return frame
	}
	const psh = flagAck | 0x08
	// Session 1 (far port 53457): established, the default announced.
	send(0, true, 53457, flagSyn, nil)
	send(0, false, 53457, flagSyn|flagAck, nil)
	send(0, true, 53457, psh, openFar)
	send(0, false, 53457, psh, openNear)
	send(0, false, 53457, psh, ka)
	send(0, true, 53457, psh, ka)
	upd1 := send(0.1, true, 53457, psh, update)
	// The near side goes silent; the far side's next KEEPALIVE is
	// retransmitted (same sequence number) and never acknowledged.
	send(0.8, true, 53457, psh, ka)
	s := seq[53457]
	s[0] -= uint32(len(ka))
	seq[53457] = s
	send(1.0, true, 53457, psh, ka)
	// A reconnection the near side resets before Established.
	send(4.8, true, 60531, flagSyn, nil)
	send(5.8, false, 60531, flagSyn|flagAck, nil)
	send(5.8, true, 60531, psh, openFar)
	send(5.8, false, 60531, flagRst|flagAck, nil)
	// Session 2 (far port 42059).
	send(6.6, true, 42059, flagSyn, nil)
	send(6.6, false, 42059, flagSyn|flagAck, nil)
	send(6.6, false, 42059, psh, openNear)
	send(6.6, true, 42059, psh, openFar)
	send(6.6, false, 42059, psh, ka)
	up2 := send(6.6, true, 42059, psh, ka)
	send(7.1, true, 42059, psh, update)
	// The first connection's retransmission, after its end was inferred.
	s = seq[53457]
	s[0] -= uint32(len(ka))
	seq[53457] = s
	send(7.5, true, 53457, psh, ka)
	tr.Finish()

	ps := tr.Pairs()
	if len(ps) != 1 {
		t.Fatalf("%d pairs, want 1", len(ps))
	}
	p := ps[0]
	if p.Established != 2 || p.Downs != 1 || p.Failed != 1 || p.Connections != 3 {
		t.Errorf("established %d downs %d failed %d connections %d, want 2 1 1 3", p.Established, p.Downs, p.Failed, p.Connections)
	}
	var downs []Event
	for _, e := range p.Events {
		if e.Kind == "down" {
			downs = append(downs, e)
		}
	}
	if len(downs) != 1 || downs[0].Cause != "hold-expired" || downs[0].At.Frame != up2 || downs[0].Time != t0+6_600_000_000 {
		t.Fatalf("down events %+v, want one hold-expired at frame %d", downs, up2)
	}
	if len(p.DownTimes) != 1 || p.DownTimes[0] < p.Speaker(far).Routes[def.Prefix].FirstTime {
		t.Errorf("down times %v", p.DownTimes)
	}
	rt := p.Speaker(far).Routes[def.Prefix]
	if rt == nil || rt.First.Frame != upd1 || rt.Announced != 2 || rt.Withdrawn {
		t.Errorf("default route %+v, want first announced in frame %d, twice, not withdrawn", rt, upd1)
	}
}
