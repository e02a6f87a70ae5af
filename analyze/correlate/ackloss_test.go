package correlate

import (
	"testing"
)

// tcpFlow builds a TCP bulk transfer client -> server seen at two hops:
// n data segments of 32 bytes, 1 ms apart, each acknowledged by the server
// 200 µs after it reaches the server's hop. The client hop sees everything.
// At the server hop, segments for which capMiss is true are absent from the
// capture although the server received and acknowledged them; segments for
// which netLoss is true never arrived (the server keeps acknowledging the
// data before them, duplicate ACKs, until the transfer ends).
func tcpFlow(n int, sport uint16, start int64, capMiss, netLoss func(i int) bool) (cl, sv []pk) {
	const seg = 32
	isn := uint32(1_000_000)
	acked := isn // highest in-order byte the server received
	holes := false
	for i := 0; i < n; i++ {
		ts := start + int64(i)*ms1
		seq := isn + uint32(i*seg)
		p := pk{t: ts, src: "198.18.1.2", dst: "198.18.3.2", sport: sport, dport: 443, proto: 6, seq: seq, ack: 5000,
			ttl: 64, id: uint16(i), payload: payloadN(int(sport)*100000 + i)}
		cl = append(cl, p)
		lost := netLoss != nil && netLoss(i)
		if lost {
			holes = true
		} else if !holes {
			acked = seq + seg
		}
		if !lost && !(capMiss != nil && capMiss(i)) {
			q := p
			q.t, q.ttl = ts+50_000, 63
			sv = append(sv, q)
		}
		if lost {
			continue
		}
		a := pk{t: ts + 250_000, src: "198.18.3.2", dst: "198.18.1.2", sport: 443, dport: sport, proto: 6, seq: 5000,
			ack: acked, ttl: 64, id: uint16(30000 + i)}
		sv = append(sv, a)
		b := a
		b.t, b.ttl = a.t+50_000, 63
		cl = append(cl, b)
	}
	return cl, sv
}

// TestAckedNotSeen: in flow A the server hop's capture misses 5 of 200 data
// segments that the server acknowledged: capture loss at the server hop
// (acked_not_seen 5, trace.capture-loss), no network loss. In flow B 4 of
// 200 segments are really lost (never acknowledged): network loss, 4 lost on
// client -> server, not capture loss.
func TestAckedNotSeen(t *testing.T) {
	clA, svA := tcpFlow(200, 40001, t0, func(i int) bool { return i%40 == 7 }, nil)
	r := correlate(t, []string{"client", "server"}, hopsOf(sortedPk(clA), sortedPk(svA)), Options{})
	s := seg(t, r, "client", "server", "TCP to 198.18.3.2:443")
	if s.Sent != 200 || s.Received != 200 || s.Lost != 0 {
		t.Errorf("flow A segment %+v, want 200 sent, 200 received, none lost", s)
	}
	if h := r.Hops[1]; h.AckedNotSeen != 5 || h.Missed != 0 {
		t.Errorf("server hop acked-not-seen %d missed %d, want 5 and 0", h.AckedNotSeen, h.Missed)
	}
	if r.Hops[0].AckedNotSeen != 0 {
		t.Errorf("client hop acked-not-seen %d, want 0", r.Hops[0].AckedNotSeen)
	}
	cf := findings(r, "trace.capture-loss")
	if len(cf) != 1 || cf[0].Where.Hop != "server" || cf[0].Evidence["acked_not_seen"] != uint64(5) || len(findings(r, "trace.loss")) != 0 {
		t.Errorf("findings: capture-loss %+v, loss %+v; want one capture-loss at server with 5 acked, no trace.loss", cf, findings(r, "trace.loss"))
	}

	clB, svB := tcpFlow(200, 40002, t0, nil, func(i int) bool { return i >= 100 && i < 150 && i%10 == 3 })
	r = correlate(t, []string{"client", "server"}, hopsOf(sortedPk(clB), sortedPk(svB)), Options{})
	s = seg(t, r, "client", "server", "TCP to 198.18.3.2:443")
	if s.Sent != 200 || s.Lost != 5 {
		t.Errorf("flow B segment %+v, want 200 sent, 5 lost", s)
	}
	if h := r.Hops[1]; h.AckedNotSeen != 0 {
		t.Errorf("flow B: server acked-not-seen %d, want 0 (network loss is not capture loss)", h.AckedNotSeen)
	}
	if len(findings(r, "trace.loss")) != 1 || len(findings(r, "trace.capture-loss")) != 0 {
		t.Errorf("flow B findings %+v, want one trace.loss, no capture-loss", r)
	}
}

func sortedPk(l []pk) []pk {
	sortPk(l)
	return l
}
