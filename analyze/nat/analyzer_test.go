package nat

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vpndiag/vpndiag/analyze"
	"github.com/vpndiag/vpndiag/analyze/decode"
	"github.com/vpndiag/vpndiag/report"
)

var (
	client  = netip.MustParseAddr("198.18.10.2")
	natAddr = netip.MustParseAddr("198.18.66.1")
	server  = netip.MustParseAddr("198.18.66.53")
	t0      = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano()
)

// udp fills rec with one UDP datagram.
func udp(rec *decode.Record, input int, frame uint64, t int64, src netip.Addr, sport uint16, dst netip.Addr, dport uint16, payload []byte) {
	*rec = decode.Record{Frame: frame, Input: input, Time: t, NumLevels: 1}
	l := &rec.Levels[0]
	l.IP = decode.IP{Version: 4, Proto: 17, Src: src, Dst: dst, ID: 0}
	l.L4 = decode.Transport{Proto: 17, SrcPort: sport, DstPort: dport, Payload: payload, PayloadLen: len(payload)}
}

// simulate runs a NAT with a pool of poolSize ports (from port0) through n
// new UDP flows, 1 ms apart: the first poolSize leave the NAT and are
// answered, the rest are dropped inside.
func simulate(t *testing.T, a analyze.Analyzer, n, poolSize int, port0 uint16, withInside bool) {
	t.Helper()
	var rec decode.Record
	var inFrame, outFrame uint64
	payload := make([]byte, 12)
	for i := 0; i < n; i++ {
		ts := t0 + int64(i)*int64(time.Millisecond)
		binary.BigEndian.PutUint64(payload, uint64(i))
		if withInside {
			inFrame++
			udp(&rec, 1, inFrame, ts, client, uint16(30000+i), server, 53, payload)
			a.Packet(&rec)
		}
		if i < poolSize {
			outFrame++
			udp(&rec, 0, outFrame, ts+1000, natAddr, port0+uint16(i), server, 53, payload)
			a.Packet(&rec)
			outFrame++
			udp(&rec, 0, outFrame, ts+2000, server, 53, natAddr, port0+uint16(i), payload)
			a.Packet(&rec)
		}
	}
}

func names(i int) string { return []string{"gw-outside.pcap", "gw-inside.pcap"}[i] }

func TestPairProof(t *testing.T) {
	a := New(Options{Roles: map[int]Role{0: RoleOutside, 1: RoleInside}})
	simulate(t, a, 5000, 1976, 20000, true)
	res := a.Result()
	if len(res.Drops) != 1 {
		t.Fatalf("drops %+v", res.Drops)
	}
	d := res.Drops[0]
	if d.NewFlows != 5000 || d.Dropped != 3024 || d.Mapped != 1976 || d.LiveAtFirstDrop != 1976 || d.LiveMinAtDrop != 1976 || d.NAT != natAddr {
		t.Errorf("drops %+v", d)
	}
	if d.DroppedFrames[0] != 1977 || len(d.DroppedFrames) != maxDroppedFrames {
		t.Errorf("dropped frames %v", d.DroppedFrames)
	}
	// 1 ms apart: 1000 flows per second; the pool fills in the second second.
	want := []Bucket{{New: 1000, Live: 1000}, {New: 1000, Dropped: 24, Live: 1976}, {New: 1000, Dropped: 1000, Live: 1976}}
	for i, w := range want {
		b := d.Buckets[i]
		if b.New != w.New || b.Dropped != w.Dropped || b.Live != w.Live {
			t.Errorf("bucket %d = %+v, want %+v", i, b, w)
		}
	}
	m := res.Mappings[5]
	if m.Inside != netip.AddrPortFrom(client, 30005) || m.Outside != netip.AddrPortFrom(natAddr, 20005) {
		t.Errorf("mapping 5 = %+v", m)
	}
	fs := Findings(res, names)
	if len(fs) != 1 || fs[0].ID != IDPortExhaustion || fs[0].Severity != report.SeverityError {
		t.Fatalf("findings %+v", fs)
	}
	f := fs[0]
	wantSummary := "3024 of 5000 new UDP flows to 198.18.66.53:53 were dropped inside the NAT while 1976 mappings (ports 20000-21975) were live"
	if f.Summary != wantSummary {
		t.Errorf("summary %q\nwant     %q", f.Summary, wantSummary)
	}
	ev := f.Evidence
	if ev["nat_address"] != "198.18.66.1" || ev["protocol"] != "udp" || ev["port_min"] != uint16(20000) || ev["port_max"] != uint16(21975) ||
		ev["distinct_ports"] != 1976 || ev["peak_mappings"] != 1976 || ev["dropped_flows"] != 3024 {
		t.Errorf("evidence %v", ev)
	}
	if f.Frames[0] != (report.FrameRef{File: "gw-inside.pcap", Frame: 1977}) {
		t.Errorf("frames %v", f.Frames)
	}
	if !strings.Contains(f.Remedy, "masquerade to :1024-65535 fully-random") {
		t.Errorf("remedy %q", f.Remedy)
	}
}

func TestOutsideOnly(t *testing.T) {
	cases := []struct {
		name        string
		n, pool     int
		port0       uint16
		wantFinding bool
		rras        bool
	}{
		{"linux-1976", 5000, 1976, 20000, true, true},
		{"rras-1025-3000", 3000, 1976, 1025, true, true},
		{"small-4000", 5000, 4000, 10000, true, false},
		{"wide", 5000, 5000, 0, false, false}, // port0 0: scattered ports below
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := New(Options{})
			if tc.port0 == 0 {
				var rec decode.Record
				payload := make([]byte, 8)
				for i := 0; i < tc.n; i++ {
					binary.BigEndian.PutUint64(payload, uint64(i))
					udp(&rec, 0, uint64(i+1), t0+int64(i)*1e6, natAddr, uint16(1024+i*12), server, 53, payload)
					a.Packet(&rec)
				}
			} else {
				simulate(t, a, tc.n, tc.pool, tc.port0, false)
			}
			res := a.Result()
			p := res.Pools[0]
			if p.DistinctPorts != tc.pool || p.PeakMappings != tc.pool {
				t.Errorf("pool %+v", p)
			}
			fs := Findings(res, names)
			if got := len(fs) == 1; got != tc.wantFinding {
				t.Fatalf("findings %+v", fs)
			}
			if !tc.wantFinding {
				return
			}
			if fs[0].Severity != report.SeverityWarning || fs[0].Evidence["port_min"] != tc.port0 {
				t.Errorf("finding %+v", fs[0])
			}
			if got := strings.Contains(fs[0].Remedy, `HKLM\SYSTEM\CurrentControlSet\Services\IPNAT\Parameters`); got != tc.rras {
				t.Errorf("RRAS remedy %v, want %v", got, tc.rras)
			}
			if len(res.Addresses) != 1 || res.Addresses[0].DistinctPorts != tc.pool {
				t.Errorf("addresses %+v", res.Addresses)
			}
		})
	}
}

func TestRegisteredAndFinish(t *testing.T) {
	as, _, ok := analyze.New("nat")
	if !ok {
		t.Fatal("nat analyzer not registered")
	}
	simulate(t, as[0], 3000, 1976, 20000, false)
	r := report.New("analyze", "test", time.Now())
	as[0].Finish(r, []analyze.InputInfo{{Name: "gw-outside.pcap"}})
	if len(r.Findings) != 1 || len(r.Tables) != 2 || r.Data["nat"] == nil {
		t.Errorf("findings %d tables %d data %v", len(r.Findings), len(r.Tables), r.Data)
	}
}

func TestPacketAllocs(t *testing.T) {
	a := New(Options{})
	simulate(t, a, 100, 100, 20000, false)
	var rec decode.Record
	payload := []byte("steady")
	udp(&rec, 0, 1, t0, natAddr, 20005, server, 53, payload)
	if n := testing.AllocsPerRun(1000, func() { a.Packet(&rec) }); n != 0 {
		t.Errorf("Packet on a known flow allocates %.1f times", n)
	}
	_ = fmt.Sprint
}

func BenchmarkPacket(b *testing.B) {
	a := New(Options{})
	var rec decode.Record
	payload := []byte("steady state packet")
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		udp(&rec, 0, uint64(i+1), t0+int64(i), natAddr, uint16(20000+i%1976), server, 53, payload)
		a.Packet(&rec)
	}
}
