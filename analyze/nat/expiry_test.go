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
// reports must be identical.
func TestLazyExpirySame(t *testing.T) {
	opt := Options{UDPTimeout: 2 * time.Second, TCPTimeout: 3 * time.Second,
		TCPEstablishedTimeout: 5 * time.Second, TCPCloseTimeout: time.Second, MinFlows: 4}
	for _, roles := range []map[int]Role{nil, {1: RoleInside}} {
		opt.Roles = roles
		lazy, eager := New(opt), New(opt)
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
			dst := dsts[rng.IntN(len(dsts))]
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
		rl, re := report.New("analyze", "t", time.Unix(0, 0)), report.New("analyze", "t", time.Unix(0, 0))
		lazy.Finish(rl, ins)
		eager.Finish(re, ins)
		bl, _ := json.Marshal(rl)
		be, _ := json.Marshal(re)
		if string(bl) != string(be) {
			t.Errorf("roles %v: lazy expiry changed the report (%d mappings expired)", roles, evicted)
		}
		t.Logf("roles %v: %d mappings expired, %d bytes of report", roles, evicted, len(bl))
	}
}
