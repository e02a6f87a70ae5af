package nat

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/vpndiag/vpndiag/analyze"
	"github.com/vpndiag/vpndiag/analyze/decode"
	"github.com/vpndiag/vpndiag/report"
)

// TestLazyExpirySame feeds random TCP and UDP traffic with out-of-order
// timestamps and short timeouts (so thousands of mappings expire, in every
// class) to two analyzers: one skipping expiry rounds before expBound, one
// forced to check every list head at every packet (the eager rule). Their
// reports must be identical. A third analyzer moves flows to the tails of
// their lists by unlink and pushBack only (no swap of the two newest): half
// the packets belong to one of the two latest flows, as a tunnel's two outer
// flows take turns, so that swap is taken often; its report must be the same
// too.
func TestLazyExpirySame(t *testing.T) {
	opt := Options{UDPTimeout: 2 * time.Second, TCPTimeout: 3 * time.Second,
		TCPEstablishedTimeout: 5 * time.Second, TCPCloseTimeout: time.Second, MinFlows: 4}
	for _, roles := range []map[int]Role{nil, {1: RoleInside}} {
		opt.Roles = roles
		lazy, eager, moved := New(opt), New(opt), New(opt)
		moved.noSwap = true
		var recent [2]uint16
		rng := rand.New(rand.NewPCG(1, 2))
		nat := netip.MustParseAddr("198.18.0.1")
		dsts := []netip.Addr{netip.MustParseAddr("198.18.5.1"), netip.MustParseAddr("198.18.5.2")}
		var rec decode.Record
		var now int64 = 1e18
		for n := uint64(1); n <= 60000; n++ {
			// Mostly forward in time, sometimes up to 400 ms back.
			now += int64(rng.IntN(3_000_000))
			ts := now - int64(rng.IntN(10))*int64(rng.IntN(40_000_000))
			sport := uint16(40000 + rng.IntN(300))
			if rng.IntN(2) == 0 {
				sport = recent[rng.IntN(2)] // one of the two latest flows
			}
			if recent[0] != sport {
				recent = [2]uint16{sport, recent[0]}
			}
			dst := dsts[int(sport)%len(dsts)]
			in := 0
			if roles != nil {
				in = rng.IntN(2)
			}
			src, sp, d, dp := nat, sport, dst, uint16(443)
			if rng.IntN(2) == 0 {
				src, sp, d, dp = d, dp, src, sp // the answer
			}
			if rng.IntN(3) == 0 {
				udp(&rec, in, n, ts, src, sp, d, dp+1000, []byte{byte(n)})
			} else {
				flags := []uint8{syn, synAck, ack, ack, ack, finAck, rst}[rng.IntN(7)]
				tcp(&rec, in, n, ts, src, sp, d, dp, flags, uint32(n))
			}
			lazy.Packet(&rec)
			eager.Packet(&rec)
			moved.Packet(&rec)
			for _, s := range eager.sides {
				s.expBound = math.MinInt64
			}
		}
		var evicted uint64
		for _, s := range lazy.sides {
			evicted += s.evicted
		}
		if evicted < 1000 {
			t.Fatalf("roles %v: only %d mappings expired: the test proves little", roles, evicted)
		}
		ins := []analyze.InputInfo{{Name: "out.pcap"}, {Name: "in.pcap"}}
		rl, re, rm := report.New("analyze", "t", time.Unix(0, 0)), report.New("analyze", "t", time.Unix(0, 0)), report.New("analyze", "t", time.Unix(0, 0))
		lazy.Finish(rl, ins)
		eager.Finish(re, ins)
		moved.Finish(rm, ins)
		bl, _ := json.Marshal(rl)
		be, _ := json.Marshal(re)
		bm, _ := json.Marshal(rm)
		if string(bl) != string(be) {
			t.Errorf("roles %v: lazy expiry changed the report (%d mappings expired)", roles, evicted)
		}
		if string(bl) != string(bm) {
			t.Errorf("roles %v: swapping the two newest flows changed the report (%d mappings expired)", roles, evicted)
		}
		t.Logf("roles %v: %d mappings expired, %d bytes of report", roles, evicted, len(bl))
	}
}

// TestSwapTwoFlowsSame: tunnel-like traffic, where a few outer flows (each
// direction its own UDP flow, as VXLAN's hashed source ports make them) take
// turns, often the only two live flows of their list, with timestamps a
// little out of order and pauses past the timeout. Swapping the two newest
// flows must give the report that unlink and pushBack give, with lazy and
// with eager expiry.
func TestSwapTwoFlowsSame(t *testing.T) {
	opt := Options{UDPTimeout: 2 * time.Second, MinFlows: 1}
	swap, moved, eager := New(opt), New(opt), New(opt)
	moved.noSwap = true
	rng := rand.New(rand.NewPCG(5, 6))
	a, b := netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2")
	var rec decode.Record
	var now int64 = 1e18
	var base uint16
	dirs := 0
	for n := uint64(1); n <= 60000; n++ {
		now += int64(rng.IntN(40_000_000))
		if rng.IntN(400) == 0 {
			now += int64(rng.IntN(3)) * int64(time.Second) // a pause: mappings expire
		}
		ts := now - int64(rng.IntN(4))*int64(rng.IntN(300_000_000))
		if n%256 == 0 {
			// Another stretch: the flows move on (the old ones expire
			// while the new ones run), and one direction may fall silent.
			base += uint16(rng.IntN(3))
			dirs = rng.IntN(4)
		}
		pair := base // mostly one pair of flows
		if rng.IntN(100) == 0 {
			pair += 1 + uint16(rng.IntN(2))
		}
		if d := rng.IntN(2); dirs < 2 && d == 0 || dirs == 2 {
			udp(&rec, 0, n, ts, a, 40000+pair, b, 4789, []byte{byte(n)})
		} else {
			udp(&rec, 0, n, ts, b, 50000+pair, a, 4789, []byte{byte(n)})
		}
		swap.Packet(&rec)
		moved.Packet(&rec)
		eager.Packet(&rec)
		for _, s := range eager.sides {
			s.expBound = math.MinInt64
		}
	}
	evicted := swap.sides[0].evicted
	if evicted < 50 {
		t.Fatalf("only %d mappings expired: the test proves little", evicted)
	}
	var out [3]string
	for i, an := range []*Analyzer{swap, moved, eager} {
		r := report.New("analyze", "t", time.Unix(0, 0))
		an.Finish(r, []analyze.InputInfo{{Name: "out.pcap"}})
		bs, _ := json.Marshal(r)
		out[i] = string(bs)
	}
	if out[0] != out[1] || out[0] != out[2] {
		t.Errorf("swapping the two newest flows changed the report (%d mappings expired)", evicted)
	}
	t.Logf("%d mappings expired, %d bytes of report", evicted, len(out[0]))
}
