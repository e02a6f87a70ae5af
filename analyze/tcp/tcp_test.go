package tcp

import (
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/vpndiag/vpndiag/analyze"
	"github.com/vpndiag/vpndiag/analyze/analyzetest"
	"github.com/vpndiag/vpndiag/analyze/decode"
	"github.com/vpndiag/vpndiag/report"
)

// TestCorpusAgainstTshark runs the analyzer through the analyze pipeline over
// real captures and compares its counts with tshark's TCP analysis of the
// same files, run in this test: retransmissions (Wireshark's
// retransmission plus out-of-order, which vpndiag does not tell apart),
// duplicate ACKs, zero windows and RST segments. The example frames must be
// frames tshark flags too. None of these captures warrants a warning.
func TestCorpusAgainstTshark(t *testing.T) {
	files := []string{
		"zeek_zeek/smtp.pcap", "zeek_zeek/retransmit-fast009.pcap", "ntop_nDPI/vxlan.pcap",
		"ntop_nDPI/dns_fragmented.pcap", "the-tcpdump-group_tcpdump/bgp-4byte-asn.pcap",
		"zeek_zeek/vxlan-encapsulated-http.pcap",
	}
	for _, rel := range files {
		t.Run(rel, func(t *testing.T) {
			file := analyzetest.Corpus(t, rel)
			frameSet := func(filter string) map[uint64]bool {
				m := map[uint64]bool{}
				for _, row := range analyzetest.Tshark(t, file, filter) {
					n, _ := strconv.ParseUint(row[0], 10, 64)
					m[n] = true
				}
				return m
			}
			retrans := frameSet("tcp.analysis.retransmission || tcp.analysis.out_of_order")
			dup := frameSet("tcp.analysis.duplicate_ack")
			zero := frameSet("tcp.analysis.zero_window")
			rst := frameSet("tcp.flags.reset==1")

			r := analyzetest.Run(t, New(), file)
			res := r.Data["tcp"].(Result)
			var got totals
			if len(res.Inputs) == 1 {
				got = res.Inputs[0].totals
			}
			t.Logf("tshark: %d retransmitted/out-of-order, %d dup ACKs, %d zero windows, %d RST; vpndiag %+v",
				len(retrans), len(dup), len(zero), len(rst), got)
			if got.Retrans != uint64(len(retrans)) || got.DupAcks != uint64(len(dup)) ||
				got.ZeroWindows != uint64(len(zero)) || got.Resets != uint64(len(rst)) {
				t.Errorf("vpndiag retrans %d dup %d zero %d rst %d; tshark %d %d %d %d",
					got.Retrans, got.DupAcks, got.ZeroWindows, got.Resets, len(retrans), len(dup), len(zero), len(rst))
			}
			for _, f := range analyzetest.Findings(r, IDRetransmissions) {
				for _, fr := range f.Frames {
					if !retrans[fr.Frame] {
						t.Errorf("example frame %d is not a retransmission for tshark", fr.Frame)
					}
				}
				if f.Evidence["retransmissions"] != uint64(len(retrans)) {
					t.Errorf("evidence %v", f.Evidence)
				}
			}
			if len(retrans) > 0 && len(analyzetest.Findings(r, IDRetransmissions)) != 1 {
				t.Errorf("want one %s finding, got %+v", IDRetransmissions, r.Findings)
			}
			for _, f := range analyzetest.Findings(r, IDResets) {
				if f.Frames[0].Frame == 0 || !rst[f.Frames[0].Frame] {
					t.Errorf("reset example %v not a RST for tshark", f.Frames)
				}
			}
			analyzetest.NoWarnings(t, r, rel)
		})
	}
}

// TestRetransmitFast checks retransmit-fast009.pcap in detail: tshark's three
// retransmitted frames and five duplicate ACKs, all from the server's side
// and the client's side respectively, one reset by the client.
func TestRetransmitFast(t *testing.T) {
	file := analyzetest.Corpus(t, "zeek_zeek/retransmit-fast009.pcap")
	want := analyzetest.Tshark(t, file, "tcp.analysis.retransmission", "frame.number", "ip.src")
	if len(want) != 3 {
		t.Fatalf("tshark finds %d retransmissions, the test expects the corpus file's 3", len(want))
	}
	r := analyzetest.Run(t, New(), file)
	f := analyzetest.Findings(r, IDRetransmissions)
	if len(f) != 1 || f[0].Severity != report.SeverityInfo {
		t.Fatalf("findings %+v", r.Findings)
	}
	for i, fr := range f[0].Frames {
		if strconv.FormatUint(fr.Frame, 10) != want[i][0] || fr.File != "retransmit-fast009.pcap" {
			t.Errorf("frame %d = %+v, want tshark's %s", i, fr, want[i][0])
		}
	}
	pt := analyzetest.Table(r, "tcp_peers")
	if pt == nil || len(pt.Rows) != 2 {
		t.Fatalf("peers table %+v", pt)
	}
	// The server (the tshark retransmissions' source) leads the table.
	if pt.Rows[0][1] != want[0][1] || pt.Rows[0][4] != uint64(3) {
		t.Errorf("top peer %v, want %s with 3 retransmissions", pt.Rows[0], want[0][1])
	}
	if rs := analyzetest.Findings(r, IDResets); len(rs) != 1 || rs[0].Evidence["aborted"] != uint64(1) {
		t.Errorf("resets %+v", rs)
	}
}

var (
	cli   = netip.MustParseAddr("198.18.0.1")
	srv   = netip.MustParseAddr("198.18.1.1")
	tBase = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
)

// seg fills rec with one TCP segment.
func seg(rec *decode.Record, frame uint64, t int64, src, dst netip.Addr, sp, dp uint16, flags uint8, seq, ack uint32, win uint16, plen int) {
	*rec = decode.Record{Frame: frame, Time: t, NumLevels: 1, WireLen: 54 + plen}
	l := &rec.Levels[0]
	l.IP = decode.IP{Version: 4, Proto: 6, Src: src, Dst: dst, TotalLen: uint16(40 + plen), HeaderLen: 20}
	l.L4 = decode.Transport{Proto: 6, SrcPort: sp, DstPort: dp, Flags: flags, Seq: seq, Ack: ack, Window: win, PayloadLen: plen}
}

// conn feeds one connection: handshake, n data segments of 1000 bytes from
// the server (each retransmitted when retx(i)), ACKs, then FIN.
func conn(a analyze.Analyzer, port uint16, t0 int64, n int, retx func(int) bool, frame *uint64) {
	var rec decode.Record
	next := func() uint64 { *frame++; return *frame }
	const A, PA, S = decode.TCPAck, decode.TCPAck | decode.TCPPsh, decode.TCPSyn
	seg(&rec, next(), t0, cli, srv, port, 443, S, 100, 0, 64000, 0)
	a.Packet(&rec)
	seg(&rec, next(), t0+1e6, srv, cli, 443, port, S|A, 500, 101, 64000, 0)
	a.Packet(&rec)
	seg(&rec, next(), t0+2e6, cli, srv, port, 443, A, 101, 501, 64000, 0)
	a.Packet(&rec)
	seq := uint32(501)
	for i := 0; i < n; i++ {
		ts := t0 + int64(3+i)*1e6
		seg(&rec, next(), ts, srv, cli, 443, port, PA, seq, 101, 64000, 1000)
		a.Packet(&rec)
		if retx(i) {
			seg(&rec, next(), ts+5e5, srv, cli, 443, port, PA, seq, 101, 64000, 1000)
			a.Packet(&rec)
		}
		seq += 1000
		seg(&rec, next(), ts+7e5, cli, srv, port, 443, A, 101, seq, 64000, 0)
		a.Packet(&rec)
	}
}

// TestThresholds checks the severities on synthetic connections: a 5%
// retransmission ratio warns, 0.5% does not; a 2 s zero window warns and
// 10 ms does not; 12 refused connections out of 20 warn.
func TestThresholds(t *testing.T) {
	inputs := []analyze.InputInfo{{Name: "gw.pcap"}}
	finish := func(a *Analyzer) *report.Report {
		r := report.New("analyze", "test", time.Now())
		a.Finish(r, inputs)
		return r
	}
	cases := []struct {
		name   string
		every  int
		wantSv report.Severity
		wantN  uint64
	}{{"5pct", 20, report.SeverityWarning, 20}, {"half-pct", 200, report.SeverityInfo, 2}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := New()
			var frame uint64
			conn(a, 40000, tBase, 400, func(i int) bool { return i%c.every == 0 }, &frame)
			r := finish(a)
			f := analyzetest.Findings(r, IDRetransmissions)
			if len(f) != 1 || f[0].Severity != c.wantSv || f[0].Evidence["retransmissions"] != c.wantN {
				t.Fatalf("findings %+v", r.Findings)
			}
			if f[0].Frames[0] != (report.FrameRef{File: "gw.pcap", Frame: 5}) {
				t.Errorf("first example %+v, want gw.pcap#5", f[0].Frames[0])
			}
		})
	}
	t.Run("zero-window", func(t *testing.T) {
		for _, c := range []struct {
			stall time.Duration
			want  report.Severity
		}{{2 * time.Second, report.SeverityWarning}, {10 * time.Millisecond, report.SeverityInfo}} {
			a := New()
			var frame uint64
			conn(a, 40001, tBase, 3, func(int) bool { return false }, &frame)
			var rec decode.Record
			seg(&rec, 100, tBase+1e9, cli, srv, 40001, 443, decode.TCPAck, 101, 3501, 0, 0)
			a.Packet(&rec)
			seg(&rec, 101, tBase+1e9+int64(c.stall), cli, srv, 40001, 443, decode.TCPAck, 101, 3501, 8000, 0)
			a.Packet(&rec)
			r := finish(a)
			f := analyzetest.Findings(r, IDZeroWindow)
			if len(f) != 1 || f[0].Severity != c.want || f[0].Frames[0].Frame != 100 ||
				f[0].Evidence["longest_seconds"] != round4(c.stall.Seconds()) {
				t.Errorf("stall %v: findings %+v", c.stall, r.Findings)
			}
		}
	})
	t.Run("resets", func(t *testing.T) {
		a := New()
		var rec decode.Record
		for i := 0; i < 20; i++ {
			p := uint16(41000 + i)
			ts := tBase + int64(i)*1e7
			seg(&rec, uint64(2*i+1), ts, cli, srv, p, 22, decode.TCPSyn, 7, 0, 64000, 0)
			a.Packet(&rec)
			if i < 12 {
				seg(&rec, uint64(2*i+2), ts+1e5, srv, cli, 22, p, decode.TCPRst|decode.TCPAck, 0, 8, 0, 0)
			} else {
				seg(&rec, uint64(2*i+2), ts+1e5, srv, cli, 22, p, decode.TCPSyn|decode.TCPAck, 9, 8, 64000, 0)
			}
			a.Packet(&rec)
		}
		r := finish(a)
		f := analyzetest.Findings(r, IDResets)
		if len(f) != 1 || f[0].Severity != report.SeverityWarning || f[0].Evidence["refused"] != uint64(12) ||
			f[0].Evidence["connections"] != uint64(20) {
			t.Fatalf("findings %+v", r.Findings)
		}
	})
}

// TestEviction bounds the table at 64 connections, feeds 300 and checks that
// eviction is reported and no counts are lost from the totals.
func TestEviction(t *testing.T) {
	a := New()
	a.Limit = 64
	var frame uint64
	for i := 0; i < 300; i++ {
		conn(a, uint16(30000+i), tBase+int64(i)*1e8, 10, func(j int) bool { return j == 0 }, &frame)
	}
	r := report.New("analyze", "test", time.Now())
	a.Finish(r, []analyze.InputInfo{{Name: "x"}})
	res := r.Data["tcp"].(Result)
	if res.Evicted == 0 || len(a.flows) > 64 {
		t.Fatalf("evicted %d, held %d", res.Evicted, len(a.flows))
	}
	in := res.Inputs[0]
	if in.Flows != 300 || in.Retrans != 300 || in.FlowsRetrans != 300 {
		t.Errorf("totals %+v, want 300 flows with one retransmission each", in.totals)
	}
	if ft := analyzetest.Table(r, "tcp_flows"); ft == nil || ft.Note == "" {
		t.Errorf("flows table does not report the eviction: %+v", ft)
	}
}

// TestPacketAllocs proves a segment of a known connection allocates nothing.
func TestPacketAllocs(t *testing.T) {
	if avg := analyzetest.PacketAllocs(New(), analyzetest.BenchRecords(t)); avg != 0 {
		t.Errorf("Packet allocates %.2f times per packet in steady state", avg)
	}
}

// BenchmarkPacket measures the analyzer over the decoded corpus mix.
func BenchmarkPacket(b *testing.B) {
	analyzetest.BenchPackets(b, New(), analyzetest.BenchRecords(b))
}
