package correlate

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"

	"github.com/vpndiag/vpndiag/analyze/decode"
)

// wgRecord is a WireGuard transport data packet over the underlay
// 198.18.41.1 -> 198.18.41.2 (UDP 51820) carrying an inner IP packet of
// innerLen bytes: 32 + innerLen padded to 16 bytes of UDP payload, unique
// (ciphertext) per counter.
func wgRecord(t int64, counter uint64, innerLen int, ttl uint8) decode.Record {
	var r decode.Record
	r.Time = t
	m := 32 + (innerLen+15)&^15
	payload := make([]byte, m)
	payload[0] = 4
	binary.LittleEndian.PutUint32(payload[4:], 0x1234)
	binary.LittleEndian.PutUint64(payload[8:], counter)
	binary.BigEndian.PutUint64(payload[16:], counter*0x9e3779b97f4a7c15)
	r.WireLen = 14 + 28 + m
	l := &r.Levels[0]
	l.IP = decode.IP{Version: 4, Proto: 17, TTL: ttl, HeaderLen: 20, TotalLen: uint16(28 + m),
		Src: netip.MustParseAddr("198.18.41.1"), Dst: netip.MustParseAddr("198.18.41.2")}
	l.L4 = decode.Transport{Proto: 17, SrcPort: 51820, DstPort: 51820, PayloadLen: m, Payload: payload}
	r.NumLevels = 1
	r.Tunnels[0] = decode.Tunnel{Kind: decode.TunnelWireGuard, ID: 0x1234, Counter: counter}
	r.NumTunnel = 1
	return r
}

// wgScenario: n datagrams from LAN host c (198.18.40.2) to d (198.18.42.2)
// through a WireGuard tunnel a -> b: the plain packet at c at i*gap, the
// encrypted one at a-under 100 µs later and at b-under 150 µs later unless
// lost(i), the plain one at d 300 µs after c unless lost. twin(i) adds a
// second plain packet of the same size 20 µs after the first, with its own
// encrypted packet 20 µs after the first's: two candidates too close to
// tell apart.
func wgScenario(n int, gap int64, lost, twin func(i int) bool, encExtra int) [][]decode.Record {
	recs := make([][]decode.Record, 4)
	var counter uint64
	add := func(h int, r decode.Record) {
		r.Frame = uint64(len(recs[h]) + 1)
		recs[h] = append(recs[h], r)
	}
	type ev struct {
		hop int
		r   decode.Record
	}
	var evs []ev
	for i := 0; i < n; i++ {
		for k := 0; k < 2; k++ {
			if k == 1 && (twin == nil || !twin(i)) {
				break
			}
			ts := t0 + int64(i)*gap + int64(k)*20_000
			id := uint16(i*2 + k)
			p := pk{t: ts, src: "198.18.40.2", dst: "198.18.42.2", sport: 40000, dport: 9000, id: id, ttl: 64, payload: payloadN(int(id))}
			evs = append(evs, ev{0, p.record()})
			inner := 28 + len(p.payload)
			counter++
			evs = append(evs, ev{1, wgRecord(ts+100_000, counter, inner+encExtra, 64)})
			if lost != nil && lost(i) && k == 0 {
				continue
			}
			evs = append(evs, ev{2, wgRecord(ts+150_000, counter, inner+encExtra, 63)})
			q := p
			q.t, q.ttl = ts+300_000, 62
			evs = append(evs, ev{3, q.record()})
		}
	}
	// Per hop in time order.
	for h := 0; h < 4; h++ {
		var hs []decode.Record
		for _, e := range evs {
			if e.hop == h {
				hs = append(hs, e.r)
			}
		}
		for i := 1; i < len(hs); i++ {
			for j := i; j > 0 && hs[j].Time < hs[j-1].Time; j-- {
				hs[j], hs[j-1] = hs[j-1], hs[j]
			}
		}
		for _, r := range hs {
			add(h, r)
		}
	}
	return recs
}

var wgHops = []string{"c", "a-under", "b-under", "d"}

// TestPairWireGuard: 300 datagrams 1 ms apart, 100 µs from c to a-under:
// every plain packet pairs with its WireGuard packet (300 pairs), so the
// class UDP to 198.18.42.2:9000 gets the path c -> a-under -> b-under -> d
// and the 29 packets the underlay lost are lost on a-under -> b-under for
// that class (tunnel wireguard, not NAT'd), none between c and d; the
// counters at b-under miss the same 29.
func TestPairWireGuard(t *testing.T) {
	recs := wgScenario(300, ms1, func(i int) bool { return i%10 == 5 && i < 290 }, nil, 0)
	r := correlate(t, wgHops, recs, Options{})
	if r.TunnelPairs != 300 {
		t.Errorf("%d pairs, want 300", r.TunnelPairs)
	}
	const class = "UDP to 198.18.42.2:9000"
	s := seg(t, r, "a-under", "b-under", class)
	if s.Sent != 300 || s.Lost != 29 || s.Tunnel != "wireguard" || s.NAT {
		t.Errorf("underlay segment %+v, want 300 sent, 29 lost, tunnel wireguard, not NAT'd", s)
	}
	if s := seg(t, r, "c", "a-under", class); s.Sent != 300 || s.Lost != 0 || s.DelayP50ms < 0.099 || s.DelayP50ms > 0.101 {
		t.Errorf("c -> a-under %+v, want 300 sent, none lost, 0.1 ms", s)
	}
	if s := seg(t, r, "b-under", "d", class); s.Sent != 271 || s.Lost != 0 {
		t.Errorf("b-under -> d %+v, want 271 sent, none lost", s)
	}
	for _, x := range r.Segments {
		if x.From == "c" && x.To == "d" {
			t.Errorf("segment c -> d %+v: every packet should be paired", x)
		}
	}
	lf := findings(r, "trace.loss")
	if len(lf) != 1 || lf[0].Where.Segment.From != "a-under" || lf[0].Where.Class != class {
		t.Errorf("trace.loss %+v, want one, on a-under -> b-under for %s", lf, class)
	}
	for _, tc := range r.Tunnels {
		if tc.Hop == "b-under" && tc.Missing != 29 {
			t.Errorf("b-under counters %+v, want 29 missing", tc)
		}
	}
	if len(r.NAT) != 0 {
		t.Errorf("NAT mappings %+v from pairing: a tunnel is not NAT", r.NAT)
	}
}

// TestPairAmbiguous: the same traffic, but every packet has a twin of the
// same size 20 µs later (its WireGuard packet too): no pairing is certain,
// none is made, and the loss stays where the plain matching puts it,
// between c and d (29 lost), and on the underlay for the WireGuard class.
// A size that does not fit WireGuard's (16 bytes too many) pairs nothing.
func TestPairAmbiguous(t *testing.T) {
	recs := wgScenario(300, ms1, func(i int) bool { return i%10 == 5 && i < 290 }, func(int) bool { return true }, 0)
	r := correlate(t, wgHops, recs, Options{})
	if r.TunnelPairs != 0 {
		t.Errorf("%d pairs of twins 20 µs apart, want 0", r.TunnelPairs)
	}
	if s := seg(t, r, "c", "d", "UDP to 198.18.42.2:9000"); s.Sent != 600 || s.Lost != 29 {
		t.Errorf("c -> d %+v, want 600 sent, 29 lost", s)
	}
	if s := seg(t, r, "a-under", "b-under", "UDP to 198.18.41.2:51820"); s.Sent != 600 || s.Lost != 29 || s.Tunnel != "wireguard" {
		t.Errorf("underlay %+v, want 600 sent, 29 lost, wireguard", s)
	}
	r = correlate(t, wgHops, wgScenario(300, ms1, nil, nil, 16), Options{})
	if r.TunnelPairs != 0 {
		t.Errorf("%d pairs with a size WireGuard cannot make, want 0", r.TunnelPairs)
	}
	// Dense traffic (40 µs apart: the next packet is nearer than 4x the
	// 100 µs delay) is not paired either.
	r = correlate(t, wgHops, wgScenario(300, 40_000, nil, nil, 0), Options{})
	if r.TunnelPairs != 0 {
		t.Errorf("%d pairs at 25000 packets/s, want 0", r.TunnelPairs)
	}
}

// TestPairable: WireGuard adds exactly 32 bytes after padding to 16; ESP
// 22 to 60.
func TestPairable(t *testing.T) {
	wg, esp := uint8(decode.TunnelWireGuard), uint8(decode.TunnelESP)
	for _, c := range []struct {
		l, m uint16
		kind uint8
		want bool
	}{
		{228, 272, wg, true}, {240, 272, wg, true}, {224, 256, wg, true}, {225, 272, wg, true},
		{228, 260, wg, true}, // padding capped at the MTU
		{228, 259, wg, false}, {228, 288, wg, false}, {228, 256, wg, false},
		{100, 122, esp, true}, {100, 160, esp, true}, {100, 121, esp, false}, {100, 161, esp, false},
		{100, 140, uint8(decode.TunnelVXLAN), false},
	} {
		if got := pairable(c.l, c.m, c.kind); got != c.want {
			t.Errorf("pairable(%d, %d, %s) = %v, want %v", c.l, c.m, decode.TunnelKind(c.kind), got, c.want)
		}
	}
}

// TestTunnelLossRekey: a WireGuard tunnel that rekeys halfway (receiver
// index 0x1234, then 0x5678) losing 10 packets under each index between
// a-under and b-under gives one trace.tunnel-loss for the tunnel direction
// (20 of 400 missing, both indexes named), not one per index.
func TestTunnelLossRekey(t *testing.T) {
	var a, b []decode.Record
	for i := 0; i < 400; i++ {
		id, ctr := uint32(0x1234), uint64(i)
		if i >= 200 {
			id, ctr = 0x5678, uint64(i-200)
		}
		r := wgRecord(t0+int64(i)*ms1, uint64(i+1), 228, 64)
		r.Tunnels[0].ID, r.Tunnels[0].Counter = id, ctr
		r.Frame = uint64(len(a) + 1)
		a = append(a, r)
		if i%20 == 10 {
			continue
		}
		r.Time += 50_000
		r.Frame = uint64(len(b) + 1)
		b = append(b, r)
	}
	r := correlate(t, []string{"a-under", "b-under"}, [][]decode.Record{a, b}, Options{})
	fs := findings(r, "trace.tunnel-loss")
	if len(fs) != 1 {
		t.Fatalf("%d trace.tunnel-loss findings, want 1: %+v", len(fs), fs)
	}
	f := fs[0]
	if f.Evidence["missing"] != uint64(20) || f.Evidence["expected"] != uint64(400) || f.Where.Hop != "b-under" ||
		f.Where.Segment == nil || f.Where.Segment.From != "a-under" ||
		!strings.Contains(f.Summary, "receiver indexes 0x00001234, 0x00005678") {
		t.Errorf("finding %+v (%s)", f.Evidence, f.Summary)
	}
	if len(r.Tunnels) != 4 {
		t.Errorf("%d tunnel rows, want 4 (2 indexes x 2 hops)", len(r.Tunnels))
	}
}
