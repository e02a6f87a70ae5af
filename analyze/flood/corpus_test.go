package flood

import (
	"encoding/binary"
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/vpndiag/vpndiag/analyze/analyzetest"
	"github.com/vpndiag/vpndiag/report"
)

// TestCorpusAttempts counts IKE first messages and WireGuard initiations on
// real captures and compares them with tshark; these are not floods, so
// there must be no finding.
func TestCorpusAttempts(t *testing.T) {
	for _, tc := range []struct {
		file, filter string
		want         int
	}{
		{"the-tcpdump-group_tcpdump/ikev2four.pcap", "isakmp.exchangetype == 34 && isakmp.rspi == 00:00:00:00:00:00:00:00 && isakmp.flag_r == 0", 2},
		{"the-tcpdump-group_tcpdump/ISAKMP_sa_setup.pcap", "isakmp.exchangetype == 2 && isakmp.rspi == 00:00:00:00:00:00:00:00", 1},
		{"the-tcpdump-group_tcpdump/isakmp4500.pcap", "isakmp.exchangetype == 2 && isakmp.rspi == 00:00:00:00:00:00:00:00", 1},
		{"ntop_nDPI/wireguard.pcap", "wg.type == 1", 2},
		{"corelight_zeek-spicy-wireguard/wireguard.pcap", "wg.type == 1", 1},
	} {
		t.Run(tc.file, func(t *testing.T) {
			path := analyzetest.Corpus(t, tc.file)
			rows := analyzetest.Tshark(t, path, tc.filter, "frame.number")
			if len(rows) != tc.want {
				t.Fatalf("tshark: %d attempts, want %d", len(rows), tc.want)
			}
			rep := analyzetest.Run(t, New(), path)
			var got uint64
			for _, row := range analyzetest.MustTable(t, rep, "flood-targets").Rows {
				got += analyzetest.Num(row[2])
			}
			if got != uint64(len(rows)) {
				t.Errorf("%d attempts, tshark counts %d", got, len(rows))
			}
			if len(rep.Findings) != 0 {
				t.Errorf("findings on a capture without a flood: %+v", rep.Findings)
			}
		})
	}
}

// writeFlood writes a pcap of n copies of a real IKEv1 main mode first
// message (frame 1 of ISAKMP_sa_setup.pcap) from sources distinct source
// addresses in 198.18.0.0/15, rate per second, plus an answer (frame 2) to
// every tenth.
func writeFlood(t testing.TB, n, sources int, rate float64) string {
	t.Helper()
	src, err := os.Open(analyzetest.Corpus(t, "the-tcpdump-group_tcpdump/ISAKMP_sa_setup.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	r, err := pcapgo.NewReader(src)
	if err != nil {
		t.Fatal(err)
	}
	req, _, err := r.ReadPacketData()
	if err != nil {
		t.Fatal(err)
	}
	resp, _, err := r.ReadPacketData()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "flood.pcap")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	base := netip.MustParseAddr("198.18.0.1").As4()
	for i := 0; i < n; i++ {
		a := binary.BigEndian.Uint32(base[:]) + uint32(i%sources)
		at := t0.Add(time.Duration(float64(i) / rate * float64(time.Second)))
		p := append([]byte(nil), req...)
		binary.BigEndian.PutUint32(p[14+12:], a) // IPv4 source
		binary.BigEndian.PutUint64(p[14+20+8:], uint64(i+1))
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: at, CaptureLength: len(p), Length: len(p)}, p); err != nil {
			t.Fatal(err)
		}
		if i%10 == 0 {
			q := append([]byte(nil), resp...)
			binary.BigEndian.PutUint32(q[14+16:], a) // IPv4 destination
			binary.BigEndian.PutUint64(q[14+20+8:], uint64(i+1))
			if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: at.Add(time.Millisecond), CaptureLength: len(q), Length: len(q)}, q); err != nil {
				t.Fatal(err)
			}
		}
	}
	return out
}

// TestFloodMatchesTshark floods 10.0.0.2:500 with 1500 IKEv1 first messages
// from 300 sources at 100 per second (and 1 in 10 answered), and at 400 per
// second; attempts, distinct sources, answers and the peak one-second rate
// come from tshark.
func TestFloodMatchesTshark(t *testing.T) {
	for _, tc := range []struct {
		rate float64
		sev  report.Severity
	}{{100, report.SeverityWarning}, {400, report.SeverityError}} {
		t.Run(fmt.Sprint(tc.rate), func(t *testing.T) {
			path := writeFlood(t, 1500, 300, tc.rate)
			rows := analyzetest.Tshark(t, path, "isakmp.rspi == 00:00:00:00:00:00:00:00 && udp.dstport == 500", "ip.src", "frame.time_epoch")
			answers := analyzetest.Tshark(t, path, "isakmp && isakmp.rspi != 00:00:00:00:00:00:00:00 && ip.src == 10.0.0.2", "frame.number")
			srcs := map[string]int{}
			perSec := map[int64]int{}
			peak := 0
			for _, r := range rows {
				srcs[r[0]]++
				ts, _ := strconv.ParseFloat(r[1], 64)
				s := int64(math.Floor(ts))
				perSec[s]++
				peak = max(peak, perSec[s])
			}
			rep := analyzetest.Run(t, New(), path)
			fs := analyzetest.Findings(rep, "flood.vpn-port")
			if len(fs) != 1 {
				t.Fatalf("want one flood.vpn-port finding, got %+v", rep.Findings)
			}
			f := fs[0]
			if f.Severity != tc.sev || analyzetest.Num(f.Evidence["attempts"]) != uint64(len(rows)) || analyzetest.Num(f.Evidence["distinct_sources"]) != uint64(len(srcs)) ||
				analyzetest.Num(f.Evidence["answered"]) != uint64(len(answers)) || analyzetest.Num(f.Evidence["peak_rate"]) != uint64(peak) {
				t.Errorf("finding %s %v: want %s, tshark: %d attempts, %d sources, %d answered, peak %d/s", f.Severity, f.Evidence, tc.sev, len(rows), len(srcs), len(answers), peak)
			}
			if f.Where == nil || f.Where.Class != "ike" || f.Where.Flow != "10.0.0.2/500" {
				t.Errorf("where %+v", f.Where)
			}
			top := f.Evidence["top_sources"].([]map[string]any)
			if len(top) != TopSources || analyzetest.Num(top[0]["attempts"]) != uint64(srcs[top[0]["source"].(string)]) {
				t.Errorf("top sources %v; tshark counts %d for the first", top, srcs[fmt.Sprint(top[0]["source"])])
			}
			if len(analyzetest.MustTable(t, rep, "flood-rate").Rows) == 0 {
				t.Error("no rate-over-time rows")
			}
		})
	}
}
