package flow

import (
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vpndiag/vpndiag/analyze"
	"github.com/vpndiag/vpndiag/analyze/analyzetest"
	"github.com/vpndiag/vpndiag/analyze/decode"
	"github.com/vpndiag/vpndiag/report"
)

// conv is one tshark conversation: the two endpoints and the frames each sent.
type conv struct {
	a, b         netip.AddrPort
	fromB, fromA int // tshark prints frames "<-" (b to a) then "->" (a to b)
}

// tsharkConvs parses tshark -q -z conv,udp|tcp.
func tsharkConvs(t *testing.T, file, proto string) []conv {
	t.Helper()
	rows := analyzetest.TsharkWith(t, []string{"-q", "-z", "conv," + proto}, file, "frame.number==0")
	var out []conv
	for _, row := range rows {
		f := strings.Fields(strings.Join(row, " "))
		if len(f) < 8 || f[1] != "<->" {
			continue
		}
		a, err1 := netip.ParseAddrPort(f[0])
		b, err2 := netip.ParseAddrPort(f[2])
		if err1 != nil || err2 != nil {
			continue
		}
		// f[3] frames b->a, f[4..5] bytes, f[6] frames a->b
		n1, _ := strconv.Atoi(f[3])
		n2, _ := strconv.Atoi(f[6])
		out = append(out, conv{a: a, b: b, fromB: n1, fromA: n2})
	}
	return out
}

// TestCorpusAgainstTshark runs the analyzer over every corpus capture and
// compares with tshark's conversation tables: every UDP DNS/IKE/NAT-T
// conversation tshark shows one way only with at least MinPackets frames
// must be reported, and nothing else; every TCP flow reported must be one
// tshark shows one way only. Only espudp1.pcap (ESP over UDP 4500 captured
// one way) warrants a warning.
func TestCorpusAgainstTshark(t *testing.T) {
	root := analyzetest.CorpusDir(t)
	var files []string
	for _, pat := range []string{"*/*.pcap", "*/*.pcapng"} {
		m, _ := filepath.Glob(filepath.Join(root, pat))
		files = append(files, m...)
	}
	sort.Strings(files)
	if len(files) < 20 {
		t.Fatalf("only %d corpus captures found", len(files))
	}
	for _, file := range files {
		rel, _ := filepath.Rel(root, file)
		if _, err := os.Stat(file); err != nil {
			t.Fatal(err)
		}
		t.Run(rel, func(t *testing.T) {
			want := map[string]bool{}
			for _, c := range tsharkConvs(t, file, "udp") {
				if !servicePort(c.a.Port()) && !servicePort(c.b.Port()) {
					continue
				}
				switch {
				case c.fromA >= MinPackets && c.fromB == 0:
					want[c.a.Addr().String()+">"+c.b.Addr().String()] = true
				case c.fromB >= MinPackets && c.fromA == 0:
					want[c.b.Addr().String()+">"+c.a.Addr().String()] = true
				}
			}
			tcpOneWay := map[string]bool{}
			for _, c := range tsharkConvs(t, file, "tcp") {
				if c.fromA == 0 || c.fromB == 0 {
					tcpOneWay[c.a.String()+">"+c.b.String()] = true
					tcpOneWay[c.b.String()+">"+c.a.String()] = true
				}
			}
			r := analyzetest.Run(t, New(), file)
			res := r.Data["flow"].(Result)
			got := map[string]bool{}
			for _, w := range res.OneWay {
				if w.Proto == "tcp" {
					if !tcpOneWay[w.Src+">"+w.Dst] {
						t.Errorf("TCP %s > %s reported one-way; tshark sees both directions", w.Src, w.Dst)
					}
					continue
				}
				src, _, _ := strings.Cut(w.Src, ":")
				dst, _ := netip.ParseAddrPort(w.Dst)
				got[src+">"+dst.Addr().String()] = true
			}
			for k := range want {
				if !got[k] {
					t.Errorf("tshark: UDP service conversation %s one way only, not reported", k)
				}
			}
			for k := range got {
				if !want[k] {
					t.Errorf("reported %s, tshark sees it both ways (or too few frames)", k)
				}
			}
			if rel == "the-tcpdump-group_tcpdump/espudp1.pcap" {
				f := analyzetest.Findings(r, IDAsymmetric)
				if len(want) != 1 || len(f) != 1 || f[0].Severity != report.SeverityWarning || f[0].Evidence["no_reply"] != 1 {
					t.Errorf("espudp1: %+v", f)
				}
				return
			}
			analyzetest.NoWarnings(t, r, rel)
		})
	}
}

var (
	cli  = netip.MustParseAddr("198.18.1.2")
	srv  = netip.MustParseAddr("198.18.3.2")
	bcst = netip.MustParseAddr("198.18.1.255")
	t0   = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
)

type feeder struct {
	a     *Analyzer
	frame uint64
}

func (f *feeder) tcp(ts int64, src, dst netip.Addr, sp, dp uint16, flags uint8, seq, ack uint32, plen int) {
	f.frame++
	rec := decode.Record{Frame: f.frame, Time: ts, NumLevels: 1}
	l := &rec.Levels[0]
	l.IP = decode.IP{Version: 4, Proto: 6, Src: src, Dst: dst}
	l.L4 = decode.Transport{Proto: 6, SrcPort: sp, DstPort: dp, Flags: flags, Seq: seq, Ack: ack, PayloadLen: plen}
	f.a.Packet(&rec)
}

func (f *feeder) udp(ts int64, src, dst netip.Addr, sp, dp uint16, wg uint8) {
	f.frame++
	rec := decode.Record{Frame: f.frame, Time: ts, NumLevels: 1}
	l := &rec.Levels[0]
	l.IP = decode.IP{Version: 4, Proto: 17, Src: src, Dst: dst}
	l.L4 = decode.Transport{Proto: 17, SrcPort: sp, DstPort: dp}
	rec.WireGuard.Type = wg
	f.a.Packet(&rec)
}

// TestScenarios checks each kind of one-way flow and the exclusions.
func TestScenarios(t *testing.T) {
	const S, A, PA = decode.TCPSyn, decode.TCPAck, decode.TCPAck | decode.TCPPsh
	ms := int64(time.Millisecond)
	f := &feeder{a: New()}
	// 1. Client side only: ACK numbers advance for server data never seen.
	f.tcp(t0, cli, srv, 40001, 443, S, 0, 0, 0)
	f.tcp(t0+ms, cli, srv, 40001, 443, A, 1, 1, 0)
	for i := 0; i < 5; i++ {
		f.tcp(t0+int64(2+i)*ms, cli, srv, 40001, 443, A, 1, uint32(1+1448*(i+1)), 0)
	}
	// 2. SYN, then data with ACK: the SYN-ACK went another way (no ACK advance).
	f.tcp(t0, cli, srv, 40002, 443, S, 0, 0, 0)
	for i := 0; i < 3; i++ {
		f.tcp(t0+int64(1+i)*ms, cli, srv, 40002, 443, PA, uint32(1+100*i), 1, 100)
	}
	// 3. SYN retries, no answer.
	for i := 0; i < 4; i++ {
		f.tcp(t0+int64(i)*int64(time.Second), cli, srv, 40003, 22, S, 0, 0, 0)
	}
	// 4. Too short: two SYNs.
	f.tcp(t0, cli, srv, 40004, 22, S, 0, 0, 0)
	f.tcp(t0+ms, cli, srv, 40004, 22, S, 0, 0, 0)
	// 5. A normal connection: both ways.
	f.tcp(t0, cli, srv, 40005, 80, S, 0, 0, 0)
	f.tcp(t0+ms, srv, cli, 80, 40005, S|A, 0, 1, 0)
	for i := 0; i < 5; i++ {
		f.tcp(t0+int64(2+i)*ms, cli, srv, 40005, 80, A, 1, 1, 0)
	}
	// 6. DNS from fresh ports to one server, never answered: one service pair.
	for i := 0; i < 6; i++ {
		f.udp(t0+int64(i)*ms, cli, srv, uint16(50000+i), 53, 0)
	}
	// 7. Broadcast DNS and WireGuard handshakes answered once.
	for i := 0; i < 6; i++ {
		f.udp(t0+int64(i)*ms, cli, bcst, 50100, 53, 0)
		f.udp(t0+int64(i)*ms, cli, srv, 51820, 51820, decode.WGHandshakeInit)
	}
	f.udp(t0+10*ms, srv, cli, 51820, 51820, decode.WGHandshakeResponse)
	// 8. WireGuard initiations to a dead peer.
	for i := 0; i < 5; i++ {
		f.udp(t0+int64(i)*5*int64(time.Second), cli, netip.MustParseAddr("198.18.9.9"), 51820, 51820, decode.WGHandshakeInit)
	}
	r := report.New("analyze", "test", time.Now())
	f.a.Finish(r, []analyze.InputInfo{{Name: "gw.pcap"}})
	res := r.Data["flow"].(Result)
	got := map[string]string{}
	for _, w := range res.OneWay {
		got[w.Proto+" "+w.Src+" > "+w.Dst] = w.Kind
	}
	want := map[string]string{
		"tcp 198.18.1.2:40001 > 198.18.3.2:443":             kindElsewhere,
		"tcp 198.18.1.2:40002 > 198.18.3.2:443":             kindElsewhere,
		"tcp 198.18.1.2:40003 > 198.18.3.2:22":              kindNoReply,
		"dns 198.18.1.2 > 198.18.3.2:53":                    kindNoReply,
		"wireguard-handshake 198.18.1.2 > 198.18.9.9:51820": kindNoReply,
	}
	if len(got) != len(want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
	fs := analyzetest.Findings(r, IDAsymmetric)
	if len(fs) != 1 || fs[0].Evidence["answered_elsewhere"] != 2 || fs[0].Evidence["no_reply"] != 3 || fs[0].Frames[0].Frame != 1 {
		t.Errorf("finding %+v", fs)
	}
}

// TestEvictionJudges: with more connections than the table holds, flows
// evicted while idle are still judged.
func TestEvictionJudges(t *testing.T) {
	f := &feeder{a: New()}
	for i := 0; i < maxFlows+10; i++ {
		ts := t0 + int64(i)*int64(time.Millisecond)
		port := uint16(1024 + i%60000)
		dst := netip.AddrFrom4([4]byte{198, 18, byte(4 + i/60000), 1})
		if i == 0 {
			for j := 0; j < 5; j++ {
				f.tcp(ts+int64(j), cli, srv, 999, 22, decode.TCPSyn, 0, 0, 0)
			}
			continue
		}
		f.tcp(ts, cli, dst, port, 80, decode.TCPSyn, 0, 0, 0)
	}
	r := report.New("analyze", "test", time.Now())
	f.a.Finish(r, nil)
	res := r.Data["flow"].(Result)
	if res.Evicted == 0 || len(res.OneWay) != 1 || res.OneWay[0].Src != "198.18.1.2:999" {
		t.Errorf("evicted %d, one-way %+v", res.Evicted, res.OneWay)
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
