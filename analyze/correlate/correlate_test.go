package correlate

import (
	"math"
	"strings"
	"testing"

	"github.com/vpndiag/vpndiag/report"
)

const t0 = int64(1_700_000_000_000_000_000)

// TestPlainMatching: the same 200 UDP packets at two hops, 50 µs apart:
// all matched, none lost, the delay is 50 µs.
func TestPlainMatching(t *testing.T) {
	var a, b []pk
	for i := 0; i < 200; i++ {
		p := pk{t: t0 + int64(i)*ms1, src: "198.18.1.2", dst: "198.18.3.2", sport: 40000, dport: 5000, id: uint16(i + 1), ttl: 64, payload: payloadN(i)}
		a = append(a, p)
		p.t += 50_000
		p.ttl = 63
		b = append(b, p)
	}
	r := correlate(t, []string{"a", "b"}, hopsOf(a, b), Options{})
	s := seg(t, r, "a", "b", "UDP to 198.18.3.2:5000")
	if s.Sent != 200 || s.Received != 200 || s.Lost != 0 || s.NAT || s.Tunnel != "" {
		t.Errorf("segment %+v, want 200 sent and received, no NAT, no tunnel", s)
	}
	// One direction only: the offset is bounded (at most 50 µs); zero fits,
	// so the clocks are taken as synchronised and the delay is kept.
	if h := r.Hops[1]; h.OffsetMethod != MethodOneWay || h.OffsetNs != 0 || h.OffsetUncNs != -1 {
		t.Errorf("b's offset %d ns ±%d %s, want 0 one-way, uncertainty unknown", h.OffsetNs, h.OffsetUncNs, h.OffsetMethod)
	}
	if math.Abs(s.DelayP50ms-0.05) > 0.002 || math.Abs(s.DelayP99ms-0.05) > 0.002 || s.Delayed != 200 {
		t.Errorf("delay p50 %v p99 %v ms over %d packets, want 0.05 over 200", s.DelayP50ms, s.DelayP99ms, s.Delayed)
	}
	if r.Hops[0].Matched != 200 || r.Hops[1].Matched != 200 || len(r.Segments) != 1 {
		t.Errorf("matched %d/%d, %d segments; want 200/200 and 1", r.Hops[0].Matched, r.Hops[1].Matched, len(r.Segments))
	}
}

// natPair builds a DNS-like exchange through a source NAT: inside the
// client's address and port, outside 198.18.2.1 and a port from 20000; IP
// ID and payload unchanged. Answers come back the reverse way.
func natPair(n int, lost func(i int) bool) (in, out []pk) {
	for i := 0; i < n; i++ {
		ts := t0 + int64(i)*10*ms1
		q := pk{t: ts, src: "198.18.1.2", dst: "198.18.2.53", sport: uint16(30000 + i), dport: 53, id: uint16(100 + i), ttl: 64, payload: payloadN(i)}
		in = append(in, q)
		if lost != nil && lost(i) {
			continue
		}
		o := q
		o.t, o.src, o.sport, o.ttl = ts+30_000, "198.18.2.1", uint16(20000+i), 63
		out = append(out, o)
		ans := pk{t: ts + 500_000, src: "198.18.2.53", dst: "198.18.2.1", sport: 53, dport: uint16(20000 + i), id: uint16(900 + i), ttl: 64, payload: payloadN(10000 + i)}
		out = append(out, ans)
		back := ans
		back.t, back.dst, back.dport, back.ttl = ans.t+30_000, "198.18.1.2", uint16(30000+i), 63
		in = append(in, back)
	}
	return
}

// TestNATMatching: addresses and ports rewritten, IP ID and payload kept:
// every query and answer matches, the mappings and the port pool are learned.
func TestNATMatching(t *testing.T) {
	in, out := natPair(100, nil)
	r := correlate(t, []string{"gw-in", "gw-out"}, hopsOf(in, out), Options{})
	q := seg(t, r, "gw-in", "gw-out", "UDP to 198.18.2.53:53")
	a := seg(t, r, "gw-out", "gw-in", "UDP from 198.18.2.53:53")
	if q.Sent != 100 || q.Received != 100 || !q.NAT || a.Sent != 100 || a.Received != 100 || !a.NAT {
		t.Errorf("queries %+v answers %+v, want 100/100 each, NAT'd", q, a)
	}
	if r.NATMappingsTotal != 100 || len(r.NAT) != 100 {
		t.Fatalf("%d mappings (%d listed), want 100", r.NATMappingsTotal, len(r.NAT))
	}
	m := r.NAT[0]
	if m.Before != "198.18.1.2:30000 -> 198.18.2.53:53" || m.After != "198.18.2.1:20000 -> 198.18.2.53:53" || m.Packets != 1 || m.Replies != 1 {
		t.Errorf("first mapping %+v", m)
	}
	if len(r.NATPools) != 1 {
		t.Fatalf("pools %+v, want 1", r.NATPools)
	}
	p := r.NATPools[0]
	if p.Outside != "198.18.2.1" || p.DistinctPorts != 100 || p.PortMin != 20000 || p.PortMax != 20099 || p.InsideHosts != 1 {
		t.Errorf("pool %+v, want 198.18.2.1 ports 20000-20099 (100), 1 inside host", p)
	}
}

// TestVXLANInnerMatchesPlain: the packet inside VXLAN at the underlay hop
// matches the plain packet at the LAN hop.
func TestVXLANInnerMatchesPlain(t *testing.T) {
	var lan, under []pk
	for i := 0; i < 50; i++ {
		p := pk{t: t0 + int64(i)*ms1, src: "198.18.100.1", dst: "198.18.100.2", sport: 41000, dport: 7000, id: uint16(i + 7), ttl: 64, payload: payloadN(i)}
		lan = append(lan, p)
		p.t += 20_000
		p.vxlanOver = [2]string{"198.18.1.1", "198.18.1.2"}
		under = append(under, p)
	}
	r := correlate(t, []string{"lan", "underlay"}, hopsOf(lan, under), Options{})
	s := seg(t, r, "lan", "underlay", "UDP to 198.18.100.2:7000")
	if s.Sent != 50 || s.Received != 50 || s.Tunnel != "vxlan" || s.NAT {
		t.Errorf("segment %+v, want 50/50 through vxlan, not NAT'd", s)
	}
}

// TestClockOffset: three hops with traffic both ways; hop b's clock is
// 2.5 s ahead: its offset is found within 1 ms, delays are corrected.
func TestClockOffset(t *testing.T) {
	const shift = 2500 * ms1
	var a, b, c []pk
	for i := 0; i < 300; i++ {
		ts := t0 + int64(i)*2*ms1
		q := pk{t: ts, src: "198.18.1.2", dst: "198.18.3.2", sport: 40000, dport: 5000, id: uint16(i + 1), ttl: 64, payload: payloadN(i)}
		a = append(a, q)
		q.t, q.ttl = ts+200_000+shift, 63
		b = append(b, q)
		q.t, q.ttl = ts+400_000, 62
		c = append(c, q)
		ans := pk{t: ts + ms1, src: "198.18.3.2", dst: "198.18.1.2", sport: 5000, dport: 40000, id: uint16(5000 + i), ttl: 64, payload: payloadN(9000 + i)}
		c = append(c, ans)
		ans.t, ans.ttl = ts+ms1+200_000+shift, 63
		b = append(b, ans)
		ans.t, ans.ttl = ts+ms1+400_000, 62
		a = append(a, ans)
	}
	sortPk(a)
	sortPk(b)
	sortPk(c)
	// Give the hops in another order than the path.
	r := correlate(t, []string{"c", "a", "b"}, hopsOf(c, a, b), Options{Reference: 1})
	hb := r.Hops[2]
	if math.Abs(float64(hb.OffsetNs-shift)) > float64(ms1) || hb.OffsetMethod != MethodTwoWay || hb.OffsetUncNs < 0 || hb.OffsetUncNs > ms1 {
		t.Errorf("offset of b %d ns ±%d (%s), want %d within 1 ms, two-way", hb.OffsetNs, hb.OffsetUncNs, hb.OffsetMethod, shift)
	}
	if hc := r.Hops[0]; math.Abs(float64(hc.OffsetNs)) > float64(ms1) {
		t.Errorf("offset of c %d ns, want 0", hc.OffsetNs)
	}
	s := seg(t, r, "a", "b", "UDP to 198.18.3.2:5000")
	if s.Sent != 300 || s.Lost != 0 || math.Abs(s.DelayP50ms-0.2) > 0.05 {
		t.Errorf("a->b %+v, want 300 sent, none lost, delay 0.2 ms", s)
	}
	if s := seg(t, r, "b", "c", "UDP to 198.18.3.2:5000"); s.Sent != 300 || s.Lost != 0 {
		t.Errorf("b->c %+v, want path a->b->c", s)
	}
	if s := seg(t, r, "c", "b", "UDP from 198.18.3.2:5000"); s.Sent != 300 || s.Lost != 0 {
		t.Errorf("c->b %+v, want the answers' path c->b->a", s)
	}
}

func sortPk(l []pk) {
	for i := 1; i < len(l); i++ {
		for j := i; j > 0 && l[j].t < l[j-1].t; j-- {
			l[j], l[j-1] = l[j-1], l[j]
		}
	}
}

func findings(r *Result, id string) []report.Finding {
	rep := report.New("trace", "test", report.New("x", "", timeZero()).Started)
	r.Fill(rep, Options{})
	var out []report.Finding
	for _, f := range rep.Findings {
		if f.ID == id {
			out = append(out, f)
		}
	}
	return out
}

// TestLossInOneClass: every third NAT'd query is lost inside the gateway;
// a second class through the same hops loses none: one trace.loss finding
// naming the segment and class, with the other class as control.
func TestLossInOneClass(t *testing.T) {
	in, out := natPair(300, func(i int) bool { return i%3 == 1 })
	for i := 0; i < 100; i++ {
		ts := t0 + int64(i)*10*ms1 + 3*ms1
		p := pk{t: ts, src: "198.18.1.2", dst: "198.18.2.54", sport: 31000, dport: 53, id: uint16(20000 + i), ttl: 64, payload: payloadN(50000 + i)}
		in = append(in, p)
		p.t, p.ttl = ts+30_000, 63
		out = append(out, p)
	}
	sortPk(in)
	sortPk(out)
	r := correlate(t, []string{"gw-in", "gw-out"}, hopsOf(in, out), Options{})
	s := seg(t, r, "gw-in", "gw-out", "UDP to 198.18.2.53:53")
	if s.Sent != 300 || s.Lost != 100 || s.Received != 200 {
		t.Fatalf("lossy class %+v, want 300 sent, 100 lost", s)
	}
	if c := seg(t, r, "gw-in", "gw-out", "UDP to 198.18.2.54:53"); c.Sent != 100 || c.Lost != 0 {
		t.Errorf("control class %+v, want 100 sent, none lost", c)
	}
	fs := findings(r, "trace.loss")
	if len(fs) != 1 {
		t.Fatalf("%d trace.loss findings, want 1: %+v", len(fs), fs)
	}
	f := fs[0]
	if f.Where.Segment.From != "gw-in" || f.Where.Segment.To != "gw-out" || f.Where.Class != "UDP to 198.18.2.53:53" {
		t.Errorf("where %+v %+v", f.Where, f.Where.Segment)
	}
	if f.Evidence["lost"] != uint64(100) || f.Evidence["control_class"] != "UDP to 198.18.2.54:53" || f.Evidence["control_lost"] != uint64(0) {
		t.Errorf("evidence %v", f.Evidence)
	}
	want := "33.3% of UDP to 198.18.2.53:53 is lost inside gw between gw-in and gw-out (100 of 300 packets); UDP to 198.18.2.54:53 through the same gw loses none"
	if f.Summary != want {
		t.Errorf("summary\n %q\nwant\n %q", f.Summary, want)
	}
	if len(f.Frames) == 0 || f.Frames[0].Frame != 4 {
		t.Errorf("frames %+v, want the first lost query (frame 4 at gw-in)", f.Frames)
	}
}

// TestNoLossNoFinding: nothing lost, no trace.loss (and no other error).
func TestNoLossNoFinding(t *testing.T) {
	in, out := natPair(200, nil)
	r := correlate(t, []string{"gw-in", "gw-out"}, hopsOf(in, out), Options{})
	rep := report.New("trace", "test", timeZero())
	r.Fill(rep, Options{})
	if n := rep.CountAtLeast(report.SeverityWarning); n != 0 {
		t.Errorf("%d findings at warning or above: %+v", n, rep.Findings)
	}
}

// TestRetransmissionsNotLoss: a TCP segment retransmitted (same sequence
// and payload, new IP ID) whose first copy was lost is not a lost packet;
// the second copy at the first hop counts as a duplicate.
func TestRetransmissionsNotLoss(t *testing.T) {
	var a, b []pk
	for i := 0; i < 100; i++ {
		ts := t0 + int64(i)*ms1
		p := pk{t: ts, src: "198.18.1.2", dst: "198.18.3.2", sport: 40000, dport: 443, proto: 6, seq: uint32(1000 + 100*i), id: uint16(i + 1), ttl: 64, payload: payloadN(i)}
		a = append(a, p)
		if i%10 == 0 { // first copy lost, retransmitted 300 ms later
			p.id += 30000
			p.t += 300 * ms1
			a = append(a, p)
		}
		p.t += 50_000
		p.ttl = 63
		b = append(b, p)
	}
	sortPk(a)
	sortPk(b)
	r := correlate(t, []string{"a", "b"}, hopsOf(a, b), Options{})
	s := seg(t, r, "a", "b", "TCP to 198.18.3.2:443")
	if s.Sent != 100 || s.Lost != 0 {
		t.Errorf("segment %+v, want 100 sent, none lost", s)
	}
	if r.Hops[0].Duplicates != 10 {
		t.Errorf("duplicates at a: %d, want 10", r.Hops[0].Duplicates)
	}
	if fs := findings(r, "trace.loss"); len(fs) != 0 {
		t.Errorf("trace.loss findings %+v, want none", fs)
	}
}

// TestEndOfCaptureWindow: b's capture stops 1 s before a's: packets a saw
// after b stopped, or just before it, are not lost; a real loss in the
// middle still is.
func TestEndOfCaptureWindow(t *testing.T) {
	var a, b []pk
	for i := 0; i < 2000; i++ {
		ts := t0 + int64(i)*ms1
		p := pk{t: ts, src: "198.18.1.2", dst: "198.18.3.2", sport: 40000, dport: 5000, id: uint16(i + 1), ttl: 64, payload: payloadN(i)}
		a = append(a, p)
		p.t += 100_000
		p.ttl = 63
		if ts+100_000 < t0+1000*ms1 && !(i >= 500 && i < 510) {
			b = append(b, p)
		}
	}
	// b's last packet is i=999; a goes on to i=1999.
	r := correlate(t, []string{"a", "b"}, hopsOf(a, b), Options{})
	s := seg(t, r, "a", "b", "UDP to 198.18.3.2:5000")
	if s.Lost != 10 || s.Sent != 1000 {
		t.Errorf("segment %+v, want 10 lost of 1000 (the rest censored by b's end)", s)
	}
	// With b ending 0.5 ms after a packet it did not see (inside the
	// window, but past twice the observed delay + 10 ms? no: within it),
	// that packet is not counted.
	var a2, b2 []pk
	for i := 0; i < 100; i++ {
		ts := t0 + int64(i)*ms1
		p := pk{t: ts, src: "198.18.1.2", dst: "198.18.3.2", sport: 40000, dport: 5000, id: uint16(i + 1), ttl: 64, payload: payloadN(i)}
		a2 = append(a2, p)
		p.t += 100_000
		if i < 99 {
			b2 = append(b2, p)
		}
	}
	// a's last packet (i=99) is 0.9 ms before b's last frame ends? b's last
	// is i=98 at +98.1 ms; a's i=99 at +99 ms: b stopped first: censored.
	r = correlate(t, []string{"a", "b"}, hopsOf(a2, b2), Options{})
	if s := seg(t, r, "a", "b", "UDP to 198.18.3.2:5000"); s.Lost != 0 || s.Sent != 99 {
		t.Errorf("segment %+v, want 99 sent, none lost", s)
	}
}

// TestCaptureMiss: a packet seen before and after a hop but not at it was
// missed by that hop's capture: capture loss, not network loss.
func TestCaptureMiss(t *testing.T) {
	var a, b, c []pk
	for i := 0; i < 100; i++ {
		ts := t0 + int64(i)*ms1
		p := pk{t: ts, src: "198.18.1.2", dst: "198.18.3.2", sport: 40000, dport: 5000, id: uint16(i + 1), ttl: 64, payload: payloadN(i)}
		a = append(a, p)
		p.t, p.ttl = ts+100_000, 63
		if i%20 != 5 {
			b = append(b, p)
		}
		p.t, p.ttl = ts+200_000, 62
		c = append(c, p)
	}
	r := correlate(t, []string{"a", "b", "c"}, hopsOf(a, b, c), Options{})
	if r.Hops[1].Missed != 5 {
		t.Errorf("b missed %d, want 5", r.Hops[1].Missed)
	}
	if s := seg(t, r, "a", "b", "UDP to 198.18.3.2:5000"); s.Lost != 0 || s.Sent != 100 {
		t.Errorf("a->b %+v, want 100 sent, none lost", s)
	}
	if fs := findings(r, "trace.capture-loss"); len(fs) != 1 || fs[0].Where.Hop != "b" {
		t.Errorf("capture-loss findings %+v, want one at b", fs)
	}
	if fs := findings(r, "trace.loss"); len(fs) != 0 {
		t.Errorf("trace.loss %+v, want none", fs)
	}
}

// TestNoCommonPackets: two hops that share nothing are named.
func TestNoCommonPackets(t *testing.T) {
	var a, b []pk
	for i := 0; i < 10; i++ {
		a = append(a, pk{t: t0 + int64(i)*ms1, src: "198.18.1.2", dst: "198.18.3.2", sport: 1, dport: 2, id: uint16(i + 1), payload: payloadN(i)})
		b = append(b, pk{t: t0 + int64(i)*ms1, src: "198.18.1.2", dst: "198.18.3.2", sport: 1, dport: 2, id: uint16(i + 100), payload: payloadN(i + 100)})
	}
	r := correlate(t, []string{"a", "b"}, hopsOf(a, b), Options{})
	if nc := r.NoCommon(); strings.Join(nc, ",") != "a,b" {
		t.Errorf("NoCommon = %v, want a,b", nc)
	}
	if fs := findings(r, "trace.no-common-packets"); len(fs) != 1 {
		t.Errorf("findings %+v", fs)
	}
}
