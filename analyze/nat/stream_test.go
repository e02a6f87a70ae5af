package nat

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vpndiag/vpndiag/analyze"
	"github.com/vpndiag/vpndiag/analyze/decode"
	"github.com/vpndiag/vpndiag/report"
)

// tcp fills rec with one TCP segment.
func tcp(rec *decode.Record, input int, frame uint64, t int64, src netip.Addr, sport uint16, dst netip.Addr, dport uint16, flags uint8, seq uint32) {
	*rec = decode.Record{Frame: frame, Input: input, Time: t, NumLevels: 1}
	l := &rec.Levels[0]
	l.IP = decode.IP{Version: 4, Proto: 6, Src: src, Dst: dst, ID: uint32(frame)}
	l.L4 = decode.Transport{Proto: 6, SrcPort: sport, DstPort: dport, Flags: flags, Seq: seq}
}

const (
	syn    = decode.TCPSyn
	synAck = decode.TCPSyn | decode.TCPAck
	ack    = decode.TCPAck
	rst    = decode.TCPRst
	finAck = decode.TCPFin | decode.TCPAck
)

var web = netip.MustParseAddr("198.18.66.80")

// simulateTCP runs a NAT with a pool of poolSize ports (from port0) through
// n connection attempts, 1 ms apart, to web:80. The first poolSize get a
// port, are accepted and held (SYN, SYN-ACK, ACK); the rest are dropped
// inside the NAT and the client retransmits their SYN once, 1 s later, with
// the same sequence number. The outside rewrites the source but keeps the
// sequence number (Linux does not randomize it).
func simulateTCP(a analyze.Analyzer, n, poolSize int, port0 uint16, withInside bool) {
	type ev struct {
		t      int64
		input  int
		src    netip.Addr
		sport  uint16
		dst    netip.Addr
		dport  uint16
		flags  uint8
		seq    uint32
		answer bool
	}
	var evs []ev
	for i := 0; i < n; i++ {
		ts := t0 + int64(i)*int64(time.Millisecond)
		seq := uint32(1_000_000 + i*7919)
		cport := uint16(30000 + i)
		if withInside {
			evs = append(evs, ev{t: ts, input: 1, src: client, sport: cport, dst: web, dport: 80, flags: syn, seq: seq})
		}
		if i < poolSize {
			np := port0 + uint16(i)
			evs = append(evs,
				ev{t: ts + 1000, src: natAddr, sport: np, dst: web, dport: 80, flags: syn, seq: seq},
				ev{t: ts + 2000, src: web, sport: 80, dst: natAddr, dport: np, flags: synAck, seq: 7},
				ev{t: ts + 3000, src: natAddr, sport: np, dst: web, dport: 80, flags: ack, seq: seq + 1})
			if withInside {
				evs = append(evs,
					ev{t: ts + 2500, input: 1, src: web, sport: 80, dst: client, dport: cport, flags: synAck, seq: 7},
					ev{t: ts + 2800, input: 1, src: client, sport: cport, dst: web, dport: 80, flags: ack, seq: seq + 1})
			}
		} else if withInside {
			evs = append(evs, ev{t: ts + int64(time.Second), input: 1, src: client, sport: cport, dst: web, dport: 80, flags: syn, seq: seq})
		}
	}
	// Each input in time order, outside first (as Pass reads them).
	var rec decode.Record
	for input := 0; input <= 1; input++ {
		var sel []ev
		for _, e := range evs {
			if e.input == input {
				sel = append(sel, e)
			}
		}
		sortEvents(sel, func(e ev) int64 { return e.t })
		for i, e := range sel {
			tcp(&rec, input, uint64(i+1), e.t, e.src, e.sport, e.dst, e.dport, e.flags, e.seq)
			a.Packet(&rec)
		}
	}
}

func sortEvents[E any](s []E, key func(E) int64) {
	// insertion-friendly: the events are nearly sorted
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && key(s[j]) < key(s[j-1]); j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func TestTCPPairProof(t *testing.T) {
	a := New(Options{Roles: map[int]Role{0: RoleOutside, 1: RoleInside}})
	simulateTCP(a, 3000, 1976, 20000, true)
	res := a.Result()
	if len(res.Drops) != 1 {
		t.Fatalf("drops %+v", res.Drops)
	}
	d := res.Drops[0]
	// The retransmitted SYNs (same ports) are the same flows: 1024 dropped.
	if d.NewFlows != 3000 || d.Mapped != 1976 || d.Dropped != 1024 || d.Proto != 6 ||
		d.Dst != netip.AddrPortFrom(web, 80) || d.LiveAtFirstDrop != 1976 || d.LiveMinAtDrop != 1976 {
		t.Errorf("drops %+v", d)
	}
	if d.DroppedFrames[0] != 1977*3-2 { // SYN, SYN-ACK, ACK per mapped flow before it
		t.Errorf("first dropped frame %d", d.DroppedFrames[0])
	}
	// Sequence matching: flow i left the NAT on port 20000+i.
	for _, i := range []int{0, 5, 1975} {
		m := res.Mappings[i]
		if m.Proto != 6 || m.Inside != netip.AddrPortFrom(client, uint16(30000+i)) || m.Outside != netip.AddrPortFrom(natAddr, uint16(20000+i)) {
			t.Errorf("mapping %d = %+v", i, m)
		}
	}
	p := d.Pool
	if p.Flows != 1976 || p.DistinctPorts != 1976 || p.PeakMappings != 1976 || p.Unanswered != 0 || !p.Dense {
		t.Errorf("pool %+v", p)
	}
	fs := Findings(res, names)
	if len(fs) != 1 || fs[0].ID != IDPortExhaustion || fs[0].Severity != report.SeverityError {
		t.Fatalf("findings %+v", fs)
	}
	want := "1024 of 3000 new TCP flows to 198.18.66.80:80 were dropped inside the NAT while 1976 mappings (ports 20000-21975) were live"
	if fs[0].Summary != want || fs[0].Evidence["protocol"] != "tcp" || fs[0].Evidence["dropped_flows"] != 1024 {
		t.Errorf("finding %q %v", fs[0].Summary, fs[0].Evidence)
	}
	if !strings.Contains(fs[0].Remedy, "masquerade to :1024-65535") {
		t.Errorf("remedy %q", fs[0].Remedy)
	}
	for _, tb := range Tables(res, names) {
		if tb.Name == "nat-drops" && tb.Rows[0][9] != "exhausted" {
			t.Errorf("verdict %v", tb.Rows[0])
		}
	}
}

func TestTCPOutsideOnly(t *testing.T) {
	a := New(Options{})
	simulateTCP(a, 3000, 1976, 20000, false)
	res := a.Result()
	fs := Findings(res, names)
	if len(res.Pools) != 1 || len(fs) != 1 || fs[0].ID != IDPortExhaustion || fs[0].Severity != report.SeverityWarning ||
		fs[0].Evidence["protocol"] != "tcp" || fs[0].Evidence["port_min"] != uint16(20000) || fs[0].Evidence["port_max"] != uint16(21975) {
		t.Fatalf("pools %+v findings %+v", res.Pools, fs)
	}
	// Established mappings outlive the capture: nothing was evicted.
	if res.Evicted != 0 || res.PeakTracked != 1976 {
		t.Errorf("evicted %d, peak tracked %d", res.Evicted, res.PeakTracked)
	}
}

// TestTCPTimeouts: a mapping's life depends on the connection's state: an
// unanswered SYN lives TCPTimeout, an answered one TCPEstablishedTimeout, a
// reset one TCPCloseTimeout, a closing one TCPTimeout.
func TestTCPTimeouts(t *testing.T) {
	sec := int64(time.Second)
	cases := []struct {
		name  string
		steps []struct {
			dt    int64
			fwd   bool
			flags uint8
		}
		// live at these offsets after the last packet
		liveAt, deadAt int64
		answered       bool
	}{
		{"syn-unanswered", []struct {
			dt    int64
			fwd   bool
			flags uint8
		}{{0, true, syn}}, 119 * sec, 120 * sec, false},
		{"established", []struct {
			dt    int64
			fwd   bool
			flags uint8
		}{{0, true, syn}, {1e6, false, synAck}, {2e6, true, ack}}, 4 * 24 * 3600 * sec, 5 * 24 * 3600 * sec, true},
		{"reset", []struct {
			dt    int64
			fwd   bool
			flags uint8
		}{{0, true, syn}, {1e6, false, synAck}, {2e6, true, ack}, {3e6, false, rst}}, 9 * sec, 10 * sec, true},
		{"fin", []struct {
			dt    int64
			fwd   bool
			flags uint8
		}{{0, true, syn}, {1e6, false, synAck}, {2e6, true, finAck}, {3e6, false, finAck}}, 119 * sec, 120 * sec, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := New(Options{MinFlows: 1})
			var rec decode.Record
			var last int64
			for i, st := range tc.steps {
				last = t0 + st.dt
				if st.fwd {
					tcp(&rec, 0, uint64(i+1), last, natAddr, 20000, web, 80, st.flags, 100)
				} else {
					tcp(&rec, 0, uint64(i+1), last, web, 80, natAddr, 20000, st.flags, 200)
				}
				a.Packet(&rec)
			}
			s := a.sides[0]
			a.expire(s, last+tc.liveAt)
			if s.live != 1 {
				t.Fatalf("mapping gone %s after the last packet", time.Duration(tc.liveAt))
			}
			a.expire(s, last+tc.deadAt)
			if s.live != 0 || s.evicted != 1 {
				t.Fatalf("mapping still live %s after the last packet", time.Duration(tc.deadAt))
			}
			p := a.Result().Pools[0]
			if (p.Unanswered == 0) != tc.answered || p.Flows != 1 {
				t.Errorf("pool %+v", p)
			}
		})
	}
}

// TestTCPFlowStarts: a SYN-ACK or a mid-stream segment starts no flow; a
// SYN of a new connection on a port whose mapping expired is a new flow.
func TestTCPFlowStarts(t *testing.T) {
	a := New(Options{MinFlows: 1})
	var rec decode.Record
	tcp(&rec, 0, 1, t0, web, 80, natAddr, 20001, synAck, 1)
	a.Packet(&rec)
	tcp(&rec, 0, 2, t0+1, natAddr, 20002, web, 80, ack, 1)
	a.Packet(&rec)
	if len(a.sides[0].flows) != 0 {
		t.Fatalf("flows %+v", a.sides[0].flows)
	}
	tcp(&rec, 0, 3, t0+2, natAddr, 20003, web, 80, syn, 1)
	a.Packet(&rec)
	tcp(&rec, 0, 4, t0+3, web, 80, natAddr, 20003, rst|ack, 0)
	a.Packet(&rec)
	// 11 s later the reset mapping has expired: the same 5-tuple is new.
	tcp(&rec, 0, 5, t0+11*int64(time.Second), natAddr, 20003, web, 80, syn, 2)
	a.Packet(&rec)
	res := a.Result()
	p := res.Pools[0]
	if p.Flows != 2 || p.DistinctPorts != 1 || p.Reused != 1 || p.PeakMappings != 1 || res.Evicted != 1 {
		t.Errorf("pool %+v, evicted %d", p, res.Evicted)
	}
}

// TestEviction streams a million UDP flows (1000 per second for 1000 s)
// through a 30 s timeout: only the live ones are tracked, slots are reused,
// and the pool's counts are exact. A mapping lives on [first, last+30 s):
// flow i-30000 ends exactly when flow i starts, so 30000 are live at once.
func TestEviction(t *testing.T) {
	a := New(Options{})
	var rec decode.Record
	payload := make([]byte, 8)
	const n = 1_000_000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := 0; i < n; i++ {
		binary.BigEndian.PutUint64(payload, uint64(i))
		// 60000 ports in turn: a port comes back after 60 s, past the timeout.
		udp(&rec, 0, uint64(i+1), t0+int64(i)*int64(time.Millisecond), natAddr, uint16(1024+i%60000), server, 53, payload)
		a.Packet(&rec)
	}
	res := a.Result()
	runtime.GC()
	runtime.ReadMemStats(&after)
	s := a.sides[0]
	if res.PeakTracked != 30000 || s.live != 30000 || len(s.flows) != 30000 || res.Evicted != n-30000 || res.Untracked != 0 {
		t.Errorf("peak tracked %d, live %d, slots %d, evicted %d, untracked %d", res.PeakTracked, s.live, len(s.flows), res.Evicted, res.Untracked)
	}
	p := res.Pools[0]
	if p.Flows != n || p.DistinctPorts != 60000 || p.Reused != n-60000 || p.PeakMappings != 30000 || p.Unanswered != n || p.MaxNewPerSecond != 1000 {
		t.Errorf("pool %+v", p)
	}
	heap := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("heap after %d flows: %.1f MB", n, float64(heap)/1e6)
	if heap > 20<<20 {
		t.Errorf("heap grew by %d bytes for 30000 live flows", heap)
	}
	runtime.KeepAlive(a)
}

// TestFlowLimit: beyond MaxFlows live flows, new flows are counted as
// untracked and reported as an info finding and a table note.
func TestFlowLimit(t *testing.T) {
	a := New(Options{MaxFlows: 1000})
	// 3000 queries and answers, 1 ms apart (30 s timeout): the answers of
	// the 2000 untracked queries look like new flows and are untracked too.
	simulate(t, a, 3000, 3000, 20000, false)
	res := a.Result()
	if res.Untracked != 4000 || res.PeakTracked != 1000 || res.Pools[0].Flows != 1000 {
		t.Fatalf("untracked %d, peak tracked %d, pool %+v", res.Untracked, res.PeakTracked, res.Pools[0])
	}
	var got *report.Finding
	fs := Findings(res, names)
	for i := range fs {
		if fs[i].ID == IDFlowLimit {
			got = &fs[i]
		}
	}
	if got == nil || got.Severity != report.SeverityInfo || got.Evidence["untracked_flows"] != uint64(4000) || got.Evidence["max_flows"] != 1000 {
		t.Fatalf("findings %+v", fs)
	}
	for _, tb := range Tables(res, names) {
		if tb.Name == "nat-pools" && !strings.Contains(tb.Note, "4000 new flows not tracked: flow limit 1000") {
			t.Errorf("note %q", tb.Note)
		}
	}
	if d := Data(res, names); d["max_flows"] != 1000 || d["untracked_flows"] != uint64(4000) {
		t.Errorf("data %v", d)
	}
	// Once the early flows expire, new ones are tracked again.
	var rec decode.Record
	udp(&rec, 0, 9999, t0+40*int64(time.Second), natAddr, 30000, server, 53, []byte("late"))
	a.Packet(&rec)
	if res := a.Result(); res.Untracked != 4000 || res.Pools[0].Flows != 1001 {
		t.Errorf("after expiry: untracked %d, flows %d", res.Untracked, res.Pools[0].Flows)
	}
}

func TestDefaults(t *testing.T) {
	a := New(Options{})
	if a.opt.MaxFlows != 100_000 || a.opt.MaxPools != 100_000 || a.opt.TCPEstablishedTimeout != 5*24*time.Hour || a.opt.TCPCloseTimeout != 10*time.Second {
		t.Errorf("defaults %+v", a.opt)
	}
}

// TestRangeSmall: ports spread at random over 20000-21975 with more than half
// of them mapped at once is a range small for the traffic; the same load
// from ascending (kept client) ports, or a full pool, is not.
func TestRangeSmall(t *testing.T) {
	cases := []struct {
		name  string
		n     int
		ports func(i int) uint16
		want  string // finding id, "" for none
	}{
		{"random-1200-of-1976", 1200, nil, IDRangeSmall},
		{"random-600-of-1976", 600, nil, ""},
		{"ascending-1200", 1200, func(i int) uint16 { return uint16(30000 + i*2) }, ""},
		{"full-1976", 1976, func(i int) uint16 { return uint16(20000 + (i*811)%1976) }, IDPortExhaustion},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ports := tc.ports
			if ports == nil {
				perm := rand.New(rand.NewPCG(1, 2)).Perm(1976)
				// make the span exactly 20000-21975
				for i, v := range perm {
					if v == 0 {
						perm[0], perm[i] = perm[i], perm[0]
					}
				}
				for i, v := range perm {
					if v == 1975 {
						perm[1], perm[i] = perm[i], perm[1]
					}
				}
				ports = func(i int) uint16 { return uint16(20000 + perm[i]) }
			}
			a := New(Options{})
			var rec decode.Record
			payload := make([]byte, 8)
			for i := 0; i < tc.n; i++ {
				binary.BigEndian.PutUint64(payload, uint64(i))
				ts := t0 + int64(i)*int64(time.Millisecond)
				udp(&rec, 0, uint64(2*i+1), ts, natAddr, ports(i), server, 53, payload)
				a.Packet(&rec)
				udp(&rec, 0, uint64(2*i+2), ts+1000, server, 53, natAddr, ports(i), payload)
				a.Packet(&rec)
			}
			fs := Findings(a.Result(), names)
			got := ""
			if len(fs) == 1 {
				got = fs[0].ID
			}
			if len(fs) > 1 || got != tc.want {
				t.Fatalf("findings %+v", fs)
			}
			if got != IDRangeSmall {
				return
			}
			ev := fs[0].Evidence
			if ev["port_min"] != uint16(20000) || ev["port_max"] != uint16(21975) || ev["peak_mappings"] != 1200 || ev["observed_range_size"] != 1976 ||
				ev["max_new_flows_per_second"] != 1000 || ev["seconds_to_fill_at_peak_rate"] != 0.776 || fs[0].Severity != report.SeverityWarning {
				t.Errorf("evidence %v", ev)
			}
			want := "NAT address 198.18.66.1 spread 1200 udp ports over 20000-21975 (1976 ports) towards 198.18.66.53:53 and had 1200 mappings live at once (61% of that range); at the busiest second's 1000 new flows/s the other 776 ports last 0.8 s"
			if fs[0].Summary != want {
				t.Errorf("summary %q\nwant    %q", fs[0].Summary, want)
			}
		})
	}
}

// TestControlClassClean: inside flows to a destination that the outside
// capture carries untranslated (a path without NAT) all leave: the class is
// named clean and raises nothing.
func TestControlClassClean(t *testing.T) {
	a := New(Options{Roles: map[int]Role{0: RoleOutside, 1: RoleInside}})
	var rec decode.Record
	payload := make([]byte, 8)
	ctl := netip.MustParseAddr("198.18.77.53")
	for input := 0; input <= 1; input++ {
		for i := 0; i < 3000; i++ {
			binary.BigEndian.PutUint64(payload, uint64(i))
			udp(&rec, input, uint64(i+1), t0+int64(i)*int64(time.Millisecond)+int64(1-input)*1000, client, uint16(30000+i), ctl, 53, payload)
			a.Packet(&rec)
		}
	}
	res := a.Result()
	if len(res.Drops) != 1 || res.Drops[0].Dropped != 0 || res.Drops[0].Mapped != 3000 {
		t.Fatalf("drops %+v", res.Drops)
	}
	if fs := Findings(res, names); len(fs) != 0 {
		t.Errorf("findings %+v", fs)
	}
	for _, tb := range Tables(res, names) {
		if tb.Name == "nat-drops" && (tb.Rows[0][1] != "198.18.77.53:53" || tb.Rows[0][9] != "clean") {
			t.Errorf("row %v", tb.Rows[0])
		}
	}
}

// TestMemoryAtFlowLimit fills the flow table past its default limit
// (DefaultMaxFlows+50,000 new UDP flows from 4 NAT addresses to 2,000
// destinations, all live at once): DefaultMaxFlows are tracked and the heap
// stays far below analyze's 100 MB budget.
func TestMemoryAtFlowLimit(t *testing.T) {
	a := New(Options{})
	var rec decode.Record
	payload := make([]byte, 8)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const n = DefaultMaxFlows + 50_000
	for i := 0; i < n; i++ {
		binary.BigEndian.PutUint64(payload, uint64(i))
		src := netip.AddrFrom4([4]byte{198, 18, 66, byte(1 + i%4)})
		dst := netip.AddrFrom4([4]byte{198, 19, byte(i / 4 % 2000 / 250), byte(i / 4 % 250)})
		udp(&rec, 0, uint64(i+1), t0+int64(i)*int64(time.Microsecond), src, uint16(1024+i/4), dst, 53, payload)
		a.Packet(&rec)
	}
	res := a.Result()
	runtime.GC()
	runtime.ReadMemStats(&after)
	heap := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("heap with %d tracked flows in %d pools: %.1f MB", res.PeakTracked, len(res.Pools), float64(heap)/1e6)
	if res.PeakTracked != DefaultMaxFlows || res.Untracked != n-DefaultMaxFlows || len(res.Pools) != 4*2000 {
		t.Errorf("tracked %d, untracked %d, pools %d", res.PeakTracked, res.Untracked, len(res.Pools))
	}
	if heap > 50<<20 {
		t.Errorf("heap %d bytes at the flow limit", heap)
	}
	runtime.KeepAlive(a)
}

func TestPacketAllocsTCP(t *testing.T) {
	a := New(Options{})
	simulateTCP(a, 100, 100, 20000, false)
	var rec decode.Record
	fwd := true
	if n := testing.AllocsPerRun(1000, func() {
		if fwd {
			tcp(&rec, 0, 1, t0+int64(time.Second), natAddr, 20005, web, 80, ack, 5)
		} else {
			tcp(&rec, 0, 1, t0+int64(time.Second), web, 80, natAddr, 20005, ack, 6)
		}
		fwd = !fwd
		a.Packet(&rec)
	}); n != 0 {
		t.Errorf("Packet on a known TCP flow allocates %.1f times", n)
	}
}

// TestCeilingAscendingNote: an outside-only ceiling whose ports were used in
// ascending order (a sequential allocator, or a client's own consecutive
// ports on a path without NAT) says so; random order (Linux) does not.
func TestCeilingAscendingNote(t *testing.T) {
	for _, tc := range []struct {
		name      string
		port      func(i int) uint16
		ascending bool
	}{
		{"sequential", func(i int) uint16 { return uint16(40000 + i) }, true},
		{"random", func(i int) uint16 { return uint16(20000 + (i*811)%1976) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := New(Options{})
			var rec decode.Record
			payload := make([]byte, 8)
			for i := 0; i < 1976; i++ {
				binary.BigEndian.PutUint64(payload, uint64(i))
				udp(&rec, 0, uint64(i+1), t0+int64(i)*int64(time.Millisecond), natAddr, tc.port(i), server, 53, payload)
				a.Packet(&rec)
			}
			fs := Findings(a.Result(), names)
			if len(fs) != 1 || fs[0].ID != IDPortExhaustion {
				t.Fatalf("findings %+v", fs)
			}
			_, has := fs[0].Evidence["ascending_share"]
			note := strings.Contains(fs[0].Evidence["note"].(string), "ascending order")
			if has != tc.ascending || note != tc.ascending {
				t.Errorf("evidence %v", fs[0].Evidence)
			}
		})
	}
}
