package dns

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vpndiag/vpndiag/analyze"
	"github.com/vpndiag/vpndiag/analyze/analyzetest"
	"github.com/vpndiag/vpndiag/analyze/decode"
	"github.com/vpndiag/vpndiag/report"
)

// tsharkDNS are the tshark options that make Wireshark's DNS matching agree
// with vpndiag's definitions: two passes (so queries learn their response),
// and a repeated query within RetryWindow counts as a retransmission.
var tsharkDNS = []string{"-2", "-o", "dns.retransmission_timer:" + strconv.Itoa(int(RetryWindow/time.Second))}

// TestCorpusAgainstTshark compares, per capture, the DNS numbers with
// tshark's DNS analysis of the same file run in this test: query and
// response messages, retransmitted queries, unanswered queries, SERVFAIL,
// REFUSED and TC answers, and per server the p50/p99 latency computed from
// tshark's dns.time. None of these captures warrants a warning.
func TestCorpusAgainstTshark(t *testing.T) {
	for _, rel := range []string{"ntop_nDPI/dns_fragmented.pcap", "ntop_nDPI/vxlan.pcap", "zeek_zeek/smtp.pcap"} {
		t.Run(rel, func(t *testing.T) {
			file := analyzetest.Corpus(t, rel)
			count := func(filter string) uint64 {
				return uint64(len(analyzetest.TsharkWith(t, tsharkDNS, file, filter)))
			}
			wantQueries := count("dns.flags.response==0")
			wantResponses := count("dns.flags.response==1")
			wantRetrans := count("dns.flags.response==0 && dns.retransmission")
			wantUnanswered := count("dns.flags.response==0 && !dns.response_in && !dns.retransmission")
			wantServfail := count("dns.flags.response==1 && dns.flags.rcode==2")
			wantRefused := count("dns.flags.response==1 && dns.flags.rcode==5")
			wantTC := count("dns.flags.response==1 && dns.flags.truncated==1")
			lat := map[string][]int64{}
			for _, row := range analyzetest.TsharkWith(t, tsharkDNS, file, "dns.flags.response==1 && dns.time", "ip.src", "ipv6.src", "dns.time") {
				src := row[0] + row[1]
				if i := strings.LastIndex(src, ","); i >= 0 { // tunnelled: innermost address last
					src = src[i+1:]
				}
				sec, err := strconv.ParseFloat(row[2], 64)
				if err != nil {
					t.Fatal(err)
				}
				lat[src] = append(lat[src], int64(math.Round(sec*1e9)))
			}

			r := analyzetest.Run(t, New(), file)
			res := r.Data["dns"].(Result)
			var got ServerResult
			for _, s := range res.Servers {
				got.Queries += s.Queries
				got.Resends += s.Resends
				got.Answered += s.Answered
				got.Orphans += s.Orphans
				got.Duplicates += s.Duplicates
				got.Unanswered += s.Unanswered
				got.Pending += s.Pending
				got.Servfail += s.Servfail
				got.Refused += s.Refused
				got.Truncated += s.Truncated
				want, ok := lat[s.Server]
				if !ok {
					continue
				}
				slices.Sort(want)
				p50, p99 := ms(percentile(want, 0.5)), ms(percentile(want, 0.99))
				// Responses that were fragmented are timed from their first
				// fragment (tshark: the reassembling last one, microseconds later).
				if math.Abs(p50-s.P50ms) > 0.05 || math.Abs(p99-s.P99ms) > 0.05 {
					t.Errorf("server %s: latency p50 %.3f p99 %.3f ms, tshark %.3f %.3f", s.Server, s.P50ms, s.P99ms, p50, p99)
				}
			}
			t.Logf("tshark: %d queries, %d responses, %d retransmitted, %d unanswered, %d SERVFAIL, %d REFUSED, %d TC; vpndiag %+v",
				wantQueries, wantResponses, wantRetrans, wantUnanswered, wantServfail, wantRefused, wantTC, got)
			if got.Queries+got.Resends != wantQueries || got.Answered+got.Orphans+got.Duplicates != wantResponses ||
				got.Resends != wantRetrans || got.Unanswered+got.Pending != wantUnanswered || got.Servfail != wantServfail ||
				got.Refused != wantRefused || got.Truncated != wantTC {
				t.Errorf("mismatch with tshark")
			}
			analyzetest.NoWarnings(t, r, rel)
		})
	}
}

// TestFragmentedDetails pins what dns_fragmented.pcap holds, by tshark:
// the SERVFAIL answer's frame, and the query re-sent after 5 s (frames 36 and
// 37, answered in 39), reported as one retransmission and no unanswered query.
func TestFragmentedDetails(t *testing.T) {
	file := analyzetest.Corpus(t, "ntop_nDPI/dns_fragmented.pcap")
	fail := analyzetest.TsharkWith(t, tsharkDNS, file, "dns.flags.rcode==2", "frame.number", "ipv6.src", "dns.qry.name")
	retx := analyzetest.TsharkWith(t, tsharkDNS, file, "dns.retransmission && dns.flags.response==0", "frame.number", "dns.retransmit_request_in")
	if len(fail) != 1 || len(retx) != 1 {
		t.Fatalf("tshark: SERVFAIL %v, retransmissions %v; the test expects one of each", fail, retx)
	}
	r := analyzetest.Run(t, New(), file)
	sf := analyzetest.Findings(r, IDServfail)
	if len(sf) != 1 || sf[0].Severity != report.SeverityInfo || strconv.FormatUint(sf[0].Frames[0].Frame, 10) != fail[0][0] ||
		sf[0].Evidence["server"] != fail[0][1] {
		t.Errorf("servfail %+v, tshark %v", sf, fail)
	}
	rt := analyzetest.Findings(r, IDRetransmitted)
	if len(rt) != 1 || strconv.FormatUint(rt[0].Frames[0].Frame, 10) != retx[0][0] || rt[0].Evidence["resends"] != uint64(1) {
		t.Errorf("retransmitted %+v, tshark %v", rt, retx)
	}
	if u := analyzetest.Findings(r, IDUnanswered); len(u) != 0 {
		t.Errorf("unanswered %+v", u)
	}
	if res := r.Data["dns"].(Result); res.TCPGaps != 0 {
		t.Errorf("TCP DNS gaps %d: the two TCP answers each fit one segment", res.TCPGaps)
	}
}

// TestVXLANAAAA: in vxlan.pcap the client 10.10.20.4 talks only through an
// IPv4-only VXLAN tunnel and gets AAAA answers with global addresses (by
// tshark: dns.aaaa). That is reported as info: nothing shows the client
// actually reaching the addresses outside the tunnel.
func TestVXLANAAAA(t *testing.T) {
	file := analyzetest.Corpus(t, "ntop_nDPI/vxlan.pcap")
	rows := analyzetest.Tshark(t, file, "dns.aaaa", "ip.dst", "dns.aaaa")
	want := map[string]bool{}
	client := ""
	for _, row := range rows {
		dst := strings.Split(row[0], ",")
		client = dst[len(dst)-1]
		for _, a := range strings.Split(row[1], ",") {
			want[a] = true
		}
	}
	if len(rows) == 0 {
		t.Fatal("tshark finds no AAAA answer in vxlan.pcap")
	}
	r := analyzetest.Run(t, New(), file)
	f := analyzetest.Findings(r, IDAAAAEscape)
	if len(f) != 1 || f[0].Severity != report.SeverityInfo || f[0].Evidence["client"] != client ||
		f[0].Evidence["aaaa_answers"] != len(rows) || f[0].Evidence["untunnelled_ipv6_packets"] != uint64(0) {
		t.Fatalf("aaaa-escape %+v (tshark: client %s, %d answers)", f, client, len(rows))
	}
	for _, a := range f[0].Evidence["ipv6_addresses"].([]string) {
		if !want[a] {
			t.Errorf("address %s not among tshark's %v", a, want)
		}
	}
}

// --- synthetic traffic ---

var (
	client  = netip.MustParseAddr("198.18.10.2")
	dnsSrv  = netip.MustParseAddr("198.18.20.53")
	tunA    = netip.MustParseAddr("198.18.0.1")
	tunB    = netip.MustParseAddr("198.18.0.2")
	web6    = netip.MustParseAddr("2a03:2880:f165:81:face:b00c:0:25de")
	client6 = netip.MustParseAddr("2a01:4f8::1234")
	t0      = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
)

// msg builds a DNS message with one question and the given AAAA answers.
func msg(id uint16, resp bool, rcode uint8, tc bool, name string, qtype uint16, aaaa ...netip.Addr) []byte {
	b := make([]byte, 12)
	binary.BigEndian.PutUint16(b, id)
	var fl uint16 = 0x0100
	if resp {
		fl |= 0x8000 | uint16(rcode)
	}
	if tc {
		fl |= flagTC
	}
	binary.BigEndian.PutUint16(b[2:], fl)
	binary.BigEndian.PutUint16(b[4:], 1)
	binary.BigEndian.PutUint16(b[6:], uint16(len(aaaa)))
	for _, l := range strings.Split(strings.TrimSuffix(name, "."), ".") {
		b = append(b, byte(len(l)))
		b = append(b, l...)
	}
	b = append(b, 0, byte(qtype>>8), byte(qtype), 0, 1)
	for _, a := range aaaa {
		b = append(b, 0xc0, 12, 0, typeAAAA, 0, 1, 0, 0, 1, 0, 0, 16)
		s := a.As16()
		b = append(b, s[:]...)
	}
	return b
}

type feeder struct {
	a     analyze.Analyzer
	frame uint64
	rec   decode.Record
}

// udp sends one UDP datagram, optionally inside a VXLAN tunnel.
func (f *feeder) udp(t int64, src, dst netip.Addr, sp, dp uint16, payload []byte, tunnelled bool) uint64 {
	f.frame++
	f.rec = decode.Record{Frame: f.frame, Time: t, NumLevels: 1}
	l := &f.rec.Levels[0]
	if tunnelled {
		l.IP = decode.IP{Version: 4, Proto: 17, Src: tunA, Dst: tunB}
		l.L4 = decode.Transport{Proto: 17, SrcPort: 40000, DstPort: 4789}
		f.rec.Tunnels[0] = decode.Tunnel{Kind: decode.TunnelVXLAN, ID: 42}
		f.rec.NumTunnel, f.rec.NumLevels = 1, 2
		l = &f.rec.Levels[1]
	}
	v := uint8(4)
	if src.Is6() {
		v = 6
	}
	l.IP = decode.IP{Version: v, Proto: 17, Src: src, Dst: dst}
	l.L4 = decode.Transport{Proto: 17, SrcPort: sp, DstPort: dp, Payload: payload, PayloadLen: len(payload)}
	f.a.Packet(&f.rec)
	return f.frame
}

// tcpSeg sends one TCP segment on port 53 carrying payload.
func (f *feeder) tcpSeg(t int64, src, dst netip.Addr, sp, dp uint16, payload []byte) {
	f.frame++
	f.rec = decode.Record{Frame: f.frame, Time: t, NumLevels: 1}
	l := &f.rec.Levels[0]
	l.IP = decode.IP{Version: 4, Proto: 6, Src: src, Dst: dst}
	l.L4 = decode.Transport{Proto: 6, SrcPort: sp, DstPort: dp, Flags: decode.TCPAck | decode.TCPPsh, Payload: payload, PayloadLen: len(payload)}
	f.a.Packet(&f.rec)
}

func lenPrefixed(m []byte) []byte { return append([]byte{byte(len(m) >> 8), byte(len(m))}, m...) }

func finish(a analyze.Analyzer) *report.Report {
	r := report.New("analyze", "test", time.Now())
	a.Finish(r, []analyze.InputInfo{{Name: "client.pcap"}})
	r.Sort()
	return r
}

// TestUnansweredThresholds: 100 queries 50 ms apart, every n-th
// unanswered, then one more 1 s before the end of the capture, which is
// pending, not unanswered.
func TestUnansweredThresholds(t *testing.T) {
	for _, c := range []struct {
		every int
		want  uint64
		sev   report.Severity
	}{{1, 100, report.SeverityError}, {10, 10, report.SeverityWarning}, {50, 2, report.SeverityWarning}, {1000, 1, report.SeverityInfo}} {
		f := &feeder{a: New()}
		var lostFrames []uint64
		for i := 0; i < 100; i++ {
			ts := t0 + int64(i)*int64(50*time.Millisecond)
			q := msg(uint16(i), false, 0, false, "q"+strconv.Itoa(i)+".lab.test", 1)
			fr := f.udp(ts, client, dnsSrv, uint16(30000+i), 53, q, false)
			if i%c.every != 0 {
				f.udp(ts+int64(time.Millisecond), dnsSrv, client, 53, uint16(30000+i), msg(uint16(i), true, 0, false, "q"+strconv.Itoa(i)+".lab.test", 1), false)
			} else {
				lostFrames = append(lostFrames, fr)
			}
		}
		last := t0 + int64(100*50*time.Millisecond) + int64(2500*time.Millisecond)
		f.udp(last, client, dnsSrv, 29999, 53, msg(999, false, 0, false, "late.lab.test", 1), false)
		f.udp(last+int64(time.Second), tunA, tunB, 1, 2, nil, false)
		r := finish(f.a)
		u := analyzetest.Findings(r, IDUnanswered)
		if len(u) != 1 || u[0].Severity != c.sev || u[0].Evidence["unanswered"] != c.want || u[0].Evidence["pending_at_end"] != uint64(1) {
			t.Errorf("every %d: %+v", c.every, u)
			continue
		}
		for i, fr := range u[0].Frames {
			if fr.Frame != lostFrames[i] {
				t.Errorf("every %d: frames %v, want the first of %v", c.every, u[0].Frames, lostFrames)
				break
			}
		}
		if u[0].Evidence["example_names"].([]string)[0] != "q0.lab.test." {
			t.Errorf("names %v", u[0].Evidence["example_names"])
		}
	}
}

// TestRetransmissionsAndFallback covers same-ID and new-ID retries, a
// truncated answer retried over TCP, one not retried, and a TCP message
// spanning segments.
func TestRetransmissionsAndFallback(t *testing.T) {
	f := &feeder{a: New()}
	ts := t0
	step := func(d time.Duration) int64 { ts += int64(d); return ts }
	// Same ID re-sent twice, then answered.
	f.udp(step(0), client, dnsSrv, 5000, 53, msg(1, false, 0, false, "a.lab.test", 1), false)
	f.udp(step(time.Second), client, dnsSrv, 5000, 53, msg(1, false, 0, false, "A.lab.test", 1), false)
	f.udp(step(time.Second), client, dnsSrv, 5000, 53, msg(1, false, 0, false, "a.lab.test", 1), false)
	f.udp(step(time.Millisecond), dnsSrv, client, 53, 5000, msg(1, true, 0, false, "a.lab.test", 1), false)
	// New ID for the same question 5 s later: a retry, and the first is unanswered.
	f.udp(step(time.Second), client, dnsSrv, 5001, 53, msg(2, false, 0, false, "b.lab.test", 1), false)
	f.udp(step(5*time.Second), client, dnsSrv, 5002, 53, msg(3, false, 0, false, "b.lab.test", 1), false)
	f.udp(step(time.Millisecond), dnsSrv, client, 53, 5002, msg(3, true, 2, false, "b.lab.test", 1), false)
	// Truncated, retried over TCP and answered.
	f.udp(step(time.Second), client, dnsSrv, 5003, 53, msg(4, false, 0, false, "big.lab.test", 16), false)
	tcFrame := f.udp(step(time.Millisecond), dnsSrv, client, 53, 5003, msg(4, true, 0, true, "big.lab.test", 16), false)
	f.tcpSeg(step(time.Millisecond), client, dnsSrv, 6000, 53, lenPrefixed(msg(5, false, 0, false, "big.lab.test", 16)))
	f.tcpSeg(step(time.Millisecond), dnsSrv, client, 53, 6000, lenPrefixed(msg(5, true, 0, false, "big.lab.test", 16)))
	// Truncated and never retried.
	f.udp(step(time.Second), client, dnsSrv, 5004, 53, msg(6, false, 0, false, "huge.lab.test", 16), false)
	noFB := f.udp(step(time.Millisecond), dnsSrv, client, 53, 5004, msg(6, true, 0, true, "huge.lab.test", 16), false)
	// A TCP answer cut across two segments.
	f.tcpSeg(step(time.Millisecond), dnsSrv, client, 53, 6001, lenPrefixed(msg(7, true, 0, false, "x.lab.test", 1))[:10])
	step(10 * time.Second)
	f.udp(ts, tunA, tunB, 1, 2, nil, false)
	r := finish(f.a)
	res := r.Data["dns"].(Result)
	s := res.Servers[0]
	if s.Queries != 6 || s.Resends != 3 || s.Retransmitted != 2 || s.Unanswered != 1 || s.Servfail != 1 ||
		s.Truncated != 2 || s.NoFallback != 1 || s.TCPQueries != 1 || res.TCPGaps != 1 {
		t.Errorf("server %+v gaps %d", s, res.TCPGaps)
	}
	tr := analyzetest.Findings(r, IDTruncated)
	if len(tr) != 1 || tr[0].Severity != report.SeverityWarning || tr[0].Frames[0].Frame != tcFrame ||
		tr[0].Frames[len(tr[0].Frames)-1].Frame != noFB {
		t.Errorf("truncated %+v", tr)
	}
	if rt := analyzetest.Findings(r, IDRetransmitted); len(rt) != 1 || rt[0].Severity != report.SeverityInfo {
		t.Errorf("retransmitted %+v", rt)
	}
}

// TestAAAAEscape: a tunnelled IPv4-only client gets a AAAA answer; a later
// untunnelled IPv6 packet to that address makes it a warning. A client with
// IPv6 in the tunnel, or not tunnelled at all, gets no finding.
func TestAAAAEscape(t *testing.T) {
	for _, c := range []struct {
		name        string
		tunnelled   bool
		v6InTunnel  bool
		escape      bool
		wantFinding bool
		sev         report.Severity
	}{
		{"escape", true, false, true, true, report.SeverityWarning},
		{"possible", true, false, false, true, report.SeverityInfo},
		{"v6-tunnel", true, true, true, false, 0},
		{"not-tunnelled", false, false, true, false, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := &feeder{a: New()}
			f.udp(t0, client, dnsSrv, 7000, 53, msg(9, false, 0, false, "www.example.com", typeAAAA), c.tunnelled)
			ans := f.udp(t0+1e6, dnsSrv, client, 53, 7000, msg(9, true, 0, false, "www.example.com", typeAAAA,
				web6, netip.MustParseAddr("fd00::1"), netip.MustParseAddr("2001:db8::1")), c.tunnelled)
			if c.v6InTunnel {
				f.udp(t0+2e6, client6, web6, 1, 2, []byte{1}, true)
			}
			var esc uint64
			if c.escape {
				esc = f.udp(t0+3e6, client6, web6, 50000, 443, []byte{1}, false)
			}
			r := finish(f.a)
			fs := analyzetest.Findings(r, IDAAAAEscape)
			if !c.wantFinding {
				if len(fs) != 0 {
					t.Fatalf("unexpected %+v", fs)
				}
				return
			}
			if len(fs) != 1 || fs[0].Severity != c.sev || fs[0].Frames[0].Frame != ans {
				t.Fatalf("findings %+v", fs)
			}
			addrs := fs[0].Evidence["ipv6_addresses"].([]string)
			if len(addrs) != 1 || addrs[0] != web6.String() {
				t.Errorf("addresses %v: only the global one counts", addrs)
			}
			if c.escape && fs[0].Frames[len(fs[0].Frames)-1].Frame != esc {
				t.Errorf("frames %v, want the escaping packet %d", fs[0].Frames, esc)
			}
		})
	}
}

// TestEviction holds at most 1000 queries while 5000 unanswered queries
// stream by, 10 ms apart: every one is still counted.
func TestEviction(t *testing.T) {
	a := New()
	a.Limit = 1000
	f := &feeder{a: a}
	for i := 0; i < 5000; i++ {
		f.udp(t0+int64(i)*int64(10*time.Millisecond), client, dnsSrv, uint16(1024+i), 53, msg(uint16(i), false, 0, false, "e"+strconv.Itoa(i)+".lab.test", 1), false)
	}
	f.udp(t0+int64(5000)*int64(10*time.Millisecond)+int64(3*time.Second), tunA, tunB, 1, 2, nil, false)
	if len(a.queries) > 1000 {
		t.Fatalf("held %d queries", len(a.queries))
	}
	res := finish(a).Data["dns"].(Result)
	if s := res.Servers[0]; s.Queries != 5000 || s.Unanswered+res.Evicted != 5000 {
		t.Errorf("server %+v evicted %d", s, res.Evicted)
	}
}

// TestPacketAllocs proves that known queries, their responses and other
// packets allocate nothing.
func TestPacketAllocs(t *testing.T) {
	if avg := analyzetest.PacketAllocs(New(), analyzetest.BenchRecords(t)); avg != 0 {
		t.Errorf("Packet allocates %.2f times per packet in steady state", avg)
	}
}

// BenchmarkPacket measures the analyzer over the decoded corpus mix.
func BenchmarkPacket(b *testing.B) {
	analyzetest.BenchPackets(b, New(), analyzetest.BenchRecords(b))
}

// TestFixtureNATDNS reads the lab fixture of the NAT DNS incident
// (testdata/fixtures/nat-dns, made by the lab with ground truth in
// truth.json): at the client, the queries through the exhausted NAT that
// timed out are exactly the unanswered plus those still pending at the end
// of the capture, and the answered ones match.
func TestFixtureNATDNS(t *testing.T) {
	dir := filepath.Join("..", "..", "testdata", "fixtures", "nat-dns")
	raw, err := os.ReadFile(filepath.Join(dir, "truth.json"))
	if err != nil {
		t.Fatal(err)
	}
	var truth struct {
		Did map[string]int `json:"did"`
	}
	if err := json.Unmarshal(raw, &truth); err != nil {
		t.Fatal(err)
	}
	r := analyzetest.Run(t, New(), filepath.Join(dir, "client.pcap"))
	res := r.Data["dns"].(Result)
	var nat ServerResult
	for _, s := range res.Servers {
		if s.Queries == uint64(truth.Did["queries_nat_sent"]) {
			nat = s
		}
	}
	if nat.Answered != uint64(truth.Did["queries_nat_answered"]) ||
		nat.Unanswered+nat.Pending != uint64(truth.Did["queries_nat_timeouts"]) || nat.Unanswered == 0 {
		t.Errorf("NAT server %+v; truth %v", nat, truth.Did)
	}
	f := analyzetest.Findings(r, IDUnanswered)
	if len(f) != 1 || f[0].Severity != report.SeverityWarning || !strings.Contains(f[0].Summary, strconv.FormatUint(nat.Pending, 10)+" more") {
		t.Errorf("findings %+v", f)
	}
}
