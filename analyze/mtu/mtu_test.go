package mtu

import (
	"context"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vpndiag/vpndiag/analyze"
	"github.com/vpndiag/vpndiag/analyze/analyzetest"
	"github.com/vpndiag/vpndiag/analyze/decode"
	"github.com/vpndiag/vpndiag/report"
)

func atoi(t testing.TB, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("tshark value %q: %v", s, err)
	}
	return n
}

// fragFilter selects IPv4 and IPv6 fragments in tshark.
const fragFilter = "ip.flags.mf==1 || ip.frag_offset>0 || ipv6.fraghdr"

// TestFragmentsAgainstTshark counts fragments and reassembled packets per
// capture with tshark (frames carrying ip/ipv6.fragment.count are where
// tshark completed a reassembly) and compares them with the mtu_fragments
// numbers; these captures hold no failed train and warrant no warning.
func TestFragmentsAgainstTshark(t *testing.T) {
	for _, rel := range []string{"ntop_nDPI/dns_fragmented.pcap", "zeek_zeek/fragmented-1.pcap"} {
		t.Run(rel, func(t *testing.T) {
			file := analyzetest.Corpus(t, rel)
			frags := len(analyzetest.Tshark(t, file, fragFilter))
			reassembled := len(analyzetest.Tshark(t, file, "ip.fragment.count || ipv6.fragment.count"))
			r := analyzetest.Run(t, New(), file)
			res := r.Data["mtu"].(Result)
			var gotFrags, gotPackets uint64
			for _, f := range res.Fragments {
				gotFrags += f.Fragments
				gotPackets += f.Packets
			}
			if gotFrags != uint64(frags) || gotPackets != uint64(reassembled) || res.ReassemblyFailed != 0 {
				t.Errorf("fragments %d packets %d failed %d; tshark %d fragments, %d reassembled", gotFrags, gotPackets,
					res.ReassemblyFailed, frags, reassembled)
			}
			if f := analyzetest.Findings(r, IDFragmented); len(f) != 1 || f[0].Evidence["fragments"] != uint64(frags) {
				t.Errorf("fragmented finding %+v", f)
			}
			analyzetest.NoWarnings(t, r, rel)
		})
	}
}

// TestReassemblyFailed deletes the first fragment of one train from
// dns_fragmented.pcap (editcap), so that its last fragment never completes:
// tshark then reassembles one packet fewer, and vpndiag reports exactly that
// train as failed, with the missing first 1480 bytes and tshark's frame.
func TestReassemblyFailed(t *testing.T) {
	if _, err := exec.LookPath("editcap"); err != nil {
		t.Fatal("editcap not found: apt-get install wireshark-common")
	}
	src := analyzetest.Corpus(t, "ntop_nDPI/dns_fragmented.pcap")
	file := filepath.Join(t.TempDir(), "cut.pcap")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "editcap", src, file, "2").CombinedOutput(); err != nil {
		t.Fatalf("editcap: %v: %s", err, out)
	}
	all := analyzetest.Tshark(t, file, fragFilter, "frame.number", "ip.id", "ip.frag_offset")
	reassembled := analyzetest.Tshark(t, file, "ip.fragment.count || ipv6.fragment.count")
	if len(all)-2*len(reassembled) != 1 {
		t.Fatalf("tshark: %d fragments, %d reassembled; want exactly one orphan fragment", len(all), len(reassembled))
	}
	// The orphan is the fragment whose ID occurs once.
	ids := map[string]int{}
	for _, row := range all {
		ids[row[1]]++
	}
	var orphan []string
	for _, row := range all {
		if ids[row[1]] == 1 {
			orphan = row
		}
	}
	r := analyzetest.Run(t, New(), file)
	f := analyzetest.Findings(r, IDReassemblyFailed)
	if len(f) != 1 || f[0].Severity != report.SeverityWarning || f[0].Evidence["failed"] != 1 ||
		strconv.FormatUint(f[0].Frames[0].Frame, 10) != orphan[0] {
		t.Fatalf("findings %+v; tshark orphan %v", f, orphan)
	}
	wantMissing := "missing bytes 0-" + strconv.Itoa(atoi(t, orphan[2])*8-1)
	if ex := f[0].Evidence["examples"].([]string)[0]; !strings.Contains(ex, wantMissing) {
		t.Errorf("example %q, want %q", ex, wantMissing)
	}
}

// TestFragNeededSMTP: smtp.pcap holds four ICMP fragmentation-needed
// messages (tshark: icmp.type==3 && icmp.code==4, with icmp.mtu and the
// sender); vpndiag reports the same sender, MTU and count, no sender that
// ignored them (tshark shows the client's packets shrink to the MTU), and
// MSS too large for the server whose SYN-ACK announced an MSS that does not
// fit the advertised MTU.
func TestFragNeededSMTP(t *testing.T) {
	file := analyzetest.Corpus(t, "zeek_zeek/smtp.pcap")
	rows := analyzetest.Tshark(t, file, "icmp.type==3 && icmp.code==4", "ip.src", "icmp.mtu")
	if len(rows) == 0 {
		t.Fatal("tshark finds no fragmentation-needed in smtp.pcap")
	}
	sender := strings.Split(rows[0][0], ",")[0]
	mtu := atoi(t, rows[0][1])
	for _, row := range rows {
		if strings.Split(row[0], ",")[0] != sender || atoi(t, row[1]) != mtu {
			t.Fatalf("tshark rows differ: %v", rows)
		}
	}
	r := analyzetest.Run(t, New(), file)
	fn := analyzetest.Findings(r, IDFragNeeded)
	if len(fn) != 1 || fn[0].Severity != report.SeverityInfo || fn[0].Evidence["sender"] != sender ||
		fn[0].Evidence["mtu"] != uint32(mtu) || fn[0].Evidence["count"] != uint64(len(rows)) || fn[0].Evidence["too_big_packets_after"] != uint64(0) {
		t.Fatalf("frag-needed %+v; tshark %d from %s mtu %d", fn, len(rows), sender, mtu)
	}
	// Which SYN announced an MSS too big for the advertised path MTU?
	var want []string
	quotedDst := strings.Split(analyzetest.Tshark(t, file, "icmp.type==3 && icmp.code==4", "ip.dst")[0][0], ",")[1]
	for _, row := range analyzetest.Tshark(t, file, "tcp.flags.syn==1 && tcp.options.mss_val", "ip.src", "tcp.options.mss_val", "frame.number") {
		if row[0] == quotedDst && atoi(t, row[1])+40 > mtu {
			want = row
		}
	}
	ms := analyzetest.Findings(r, IDMSSTooLarge)
	if want == nil || len(ms) != 1 || ms[0].Evidence["host"] != want[0] || ms[0].Evidence["mss"] != uint16(atoi(t, want[1])) ||
		strconv.FormatUint(ms[0].Frames[0].Frame, 10) != want[2] || ms[0].Evidence["clamp_to"] != uint32(mtu-40) {
		t.Errorf("mss-too-large %+v, tshark %v", ms, want)
	}
	if len(analyzetest.Findings(r, IDBlackhole)) != 0 {
		t.Error("PMTUD worked in smtp.pcap: no black hole")
	}
}

// TestTunnelOverhead compares the measured overhead per tunnel with tshark's
// outer and inner IP lengths (ip.len "outer,inner") for every packet.
func TestTunnelOverhead(t *testing.T) {
	for _, c := range []struct{ file, tunnel string }{
		{"ntop_nDPI/vxlan.pcap", "vxlan"}, {"zeek_zeek/geneve.pcap", "geneve"}, {"zeek_zeek/gre-sample.pcap", "gre"},
		{"ntop_nDPI/4in4tunnel.pcap", "ipip"}, {"zeek_zeek/vxlan-encapsulated-http.pcap", "vxlan"},
	} {
		t.Run(c.file, func(t *testing.T) {
			file := analyzetest.Corpus(t, c.file)
			lo, hi, n := 1<<30, 0, 0
			for _, row := range analyzetest.Tshark(t, file, "ip", "ip.len") {
				v := strings.Split(row[0], ",") // outer, inner (, header quoted by an inner ICMP error)
				if len(v) < 2 {
					continue
				}
				d := atoi(t, v[0]) - atoi(t, v[1])
				lo, hi, n = min(lo, d), max(hi, d), n+1
			}
			r := analyzetest.Run(t, New(), file)
			res := r.Data["mtu"].(Result)
			if len(res.Overhead) != 1 {
				t.Fatalf("overhead %+v", res.Overhead)
			}
			o := res.Overhead[0]
			if o.Tunnel != c.tunnel || int(o.Min) != lo || int(o.Max) != hi || o.Nominal || int(o.Packets) != n ||
				o.EffectiveMTU != int(o.BaseMTU)-hi {
				t.Errorf("overhead %+v; tshark %d packets, %d-%d", o, n, lo, hi)
			}
			analyzetest.NoWarnings(t, r, c.file)
		})
	}
	// Encrypted tunnels get the nominal overhead.
	for _, c := range []struct {
		file, tunnel string
		oh           uint16
	}{{"ntop_nDPI/esp.pcapng", "esp", 73}, {"corelight_zeek-spicy-wireguard/wireguard.pcap", "wireguard", 60}} {
		r := analyzetest.Run(t, New(), analyzetest.Corpus(t, c.file))
		res := r.Data["mtu"].(Result)
		if len(res.Overhead) != 1 || res.Overhead[0].Tunnel != c.tunnel || !res.Overhead[0].Nominal || res.Overhead[0].Max != c.oh {
			t.Errorf("%s: overhead %+v", c.file, res.Overhead)
		}
		f := analyzetest.Findings(r, IDTunnelOverhead)
		want := "Ethernet default 1500 - " + strings.ToUpper(c.tunnel) + " overhead " + strconv.Itoa(int(c.oh)) + " = " + strconv.Itoa(1500-int(c.oh)) + " effective"
		if len(f) != 1 || !strings.Contains(f[0].Summary, want) {
			t.Errorf("%s: %+v, want %q", c.file, f, want)
		}
		analyzetest.NoWarnings(t, r, c.file)
	}
}

// TestCleanCaptures: captures without MTU trouble give no warning.
func TestCleanCaptures(t *testing.T) {
	for _, rel := range []string{"zeek_zeek/retransmit-fast009.pcap", "the-tcpdump-group_tcpdump/bgp-4byte-asn.pcap",
		"zeek_zeek/linuxsll-arp.pcap", "the-tcpdump-group_tcpdump/various_gre.pcap", "zeek_zeek/ip6_esp.pcap"} {
		analyzetest.NoWarnings(t, analyzetest.Run(t, New(), analyzetest.Corpus(t, rel)), rel)
	}
}

// --- synthetic traffic ---

var (
	cli    = netip.MustParseAddr("198.18.1.2")
	srv    = netip.MustParseAddr("198.18.3.2")
	router = netip.MustParseAddr("198.18.1.1")
	t0     = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
)

type feeder struct {
	a     analyze.Analyzer
	frame uint64
}

func (f *feeder) tcp(ts int64, src, dst netip.Addr, sp, dp uint16, flags uint8, seq, ack uint32, plen int, mss uint16) uint64 {
	f.frame++
	rec := decode.Record{Frame: f.frame, Time: ts, NumLevels: 1}
	l := &rec.Levels[0]
	l.IP = decode.IP{Version: 4, Proto: 6, Src: src, Dst: dst, TotalLen: uint16(52 + plen), HeaderLen: 20, DontFrag: true}
	l.L4 = decode.Transport{Proto: 6, SrcPort: sp, DstPort: dp, Flags: flags, Seq: seq, Ack: ack, Window: 1000, PayloadLen: plen, MSS: mss}
	f.a.Packet(&rec)
	return f.frame
}

func (f *feeder) fragNeeded(ts int64, mtu uint32, qsrc, qdst netip.Addr, qlen uint16) uint64 {
	f.frame++
	rec := decode.Record{Frame: f.frame, Time: ts, NumLevels: 1}
	l := &rec.Levels[0]
	l.IP = decode.IP{Version: 4, Proto: 1, Src: router, Dst: qsrc, TotalLen: 576, HeaderLen: 20}
	l.L4 = decode.Transport{Proto: 1, ICMPType: 3, ICMPCode: 4, MTU: mtu,
		Quoted: decode.Quoted{Valid: true, Proto: 6, Src: qsrc, Dst: qdst, SrcPort: 40000, DstPort: 80, TotalLen: qlen}}
	f.a.Packet(&rec)
	return f.frame
}

func finish(a analyze.Analyzer) *report.Report {
	r := report.New("analyze", "test", time.Now())
	a.Finish(r, []analyze.InputInfo{{Name: "client.pcap"}})
	return r
}

const ms = int64(time.Millisecond)

// TestBlackhole: small writes are acknowledged, then a full-size DF segment
// is retransmitted four times without an ACK (no ICMP seen): a black hole.
// The same with an ACK after the second retransmission is just loss.
func TestBlackhole(t *testing.T) {
	for _, acked := range []bool{false, true} {
		f := &feeder{a: New()}
		const S, A, PA = decode.TCPSyn, decode.TCPAck, decode.TCPAck | decode.TCPPsh
		f.tcp(t0, cli, srv, 40000, 80, S, 0, 0, 0, 1460)
		f.tcp(t0+ms, srv, cli, 80, 40000, S|A, 0, 1, 0, 1460)
		f.tcp(t0+2*ms, cli, srv, 40000, 80, A, 1, 1, 0, 0)
		f.tcp(t0+3*ms, cli, srv, 40000, 80, PA, 1, 1, 100, 0)
		f.tcp(t0+4*ms, srv, cli, 80, 40000, A, 1, 101, 0, 0)
		first := f.tcp(t0+5*ms, cli, srv, 40000, 80, PA, 101, 1, 1448, 0)
		var last uint64
		for i := 1; i <= 4; i++ {
			last = f.tcp(t0+int64(i)*200*ms, cli, srv, 40000, 80, PA, 101, 1, 1448, 0)
			if acked && i == 2 {
				f.tcp(t0+int64(i)*200*ms+ms, srv, cli, 80, 40000, A, 1, 1549, 0, 0)
				break
			}
		}
		r := finish(f.a)
		h := analyzetest.Findings(r, IDBlackhole)
		if acked {
			if len(h) != 0 {
				t.Errorf("acknowledged retransmission reported as black hole: %+v", h)
			}
			continue
		}
		if len(h) != 1 || h[0].Evidence["size"] != uint16(1500) || h[0].Evidence["largest_acked"] != uint16(152) ||
			h[0].Evidence["sends"] != uint8(5) || h[0].Frames[0].Frame != first || h[0].Frames[1].Frame != last {
			t.Fatalf("black hole %+v", r.Findings)
		}
	}
}

// TestIgnoredFragNeeded: the sender keeps sending 1500-byte DF packets long
// after the router said MTU 1400: a warning naming the count.
func TestIgnoredFragNeeded(t *testing.T) {
	f := &feeder{a: New()}
	f.tcp(t0, cli, srv, 40000, 80, decode.TCPAck, 1, 1, 1448, 0)
	f.fragNeeded(t0+ms, 1400, cli, srv, 1500)
	f.tcp(t0+2*ms, cli, srv, 40000, 80, decode.TCPAck, 1449, 1, 1448, 0) // in flight: not counted
	for i := 0; i < 4; i++ {
		f.tcp(t0+int64(100+i)*ms, cli, srv, 40000, 80, decode.TCPAck, uint32(2897+i*1448), 1, 1448, 0)
	}
	f.tcp(t0+200*ms, cli, srv, 40000, 80, decode.TCPAck, 9000, 1, 1000, 0) // fits
	fn := analyzetest.Findings(finish(f.a), IDFragNeeded)
	if len(fn) != 1 || fn[0].Severity != report.SeverityWarning || fn[0].Evidence["too_big_packets_after"] != uint64(4) {
		t.Fatalf("frag-needed %+v", fn)
	}
}

// TestTunnelFragments: ESP packets fragmented on the outer level make
// mtu.fragmented a warning; a train still open at the end is pending.
func TestTunnelFragments(t *testing.T) {
	f := &feeder{a: New()}
	frag := func(ts int64, id uint32, off uint16, more bool, total uint16) {
		f.frame++
		rec := decode.Record{Frame: f.frame, Time: ts, NumLevels: 1}
		rec.Levels[0].IP = decode.IP{Version: 4, Proto: 50, Src: cli, Dst: srv, ID: id, FragOffset: off, MoreFrags: more,
			Fragment: true, TotalLen: total, HeaderLen: 20}
		f.a.Packet(&rec)
	}
	for i := uint32(0); i < 10; i++ {
		ts := t0 + int64(i)*10*ms
		frag(ts, i, 0, true, 1500)
		frag(ts+ms, i, 1480, false, 120)
	}
	frag(t0+time.Second.Nanoseconds(), 99, 0, true, 1500) // open at the end
	r := finish(f.a)
	fr := analyzetest.Findings(r, IDFragmented)
	res := r.Data["mtu"].(Result)
	if len(fr) != 1 || fr[0].Severity != report.SeverityWarning || fr[0].Evidence["tunnel_flows"] != uint64(1) ||
		len(res.Fragments) != 1 || res.Fragments[0].Packets != 10 || res.Fragments[0].Pending != 1 || res.ReassemblyFailed != 0 {
		t.Fatalf("fragmented %+v; flows %+v", fr, res.Fragments)
	}
}

func TestTrainSpans(t *testing.T) {
	var tr train
	tr.total = -1
	for _, s := range [][2]uint32{{1480, 2960}, {0, 100}, {100, 200}, {500, 600}, {2960, 3000}} {
		tr.add(s[0], s[1])
	}
	if tr.complete() || tr.missing() != "200-499, 600-1479, 3000-end (last fragment never seen)" {
		t.Errorf("missing %q", tr.missing())
	}
	tr.add(150, 1500)
	tr.total = 3000
	if !tr.complete() || tr.ns != 1 {
		t.Errorf("spans %v", tr.spans[:tr.ns])
	}
}

// TestPacketAllocs proves steady-state packets allocate nothing.
func TestPacketAllocs(t *testing.T) {
	if avg := analyzetest.PacketAllocs(New(), analyzetest.BenchRecords(t)); avg != 0 {
		t.Errorf("Packet allocates %.2f times per packet in steady state", avg)
	}
}

// BenchmarkPacket measures the analyzer over the decoded corpus mix.
func BenchmarkPacket(b *testing.B) {
	analyzetest.BenchPackets(b, New(), analyzetest.BenchRecords(b))
}
