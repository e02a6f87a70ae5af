package wireguard

import (
	"net/netip"
	"testing"
	"time"

	"github.com/vpndiag/vpndiag/analyze"
	"github.com/vpndiag/vpndiag/analyze/analyzetest"
	"github.com/vpndiag/vpndiag/analyze/decode"
	"github.com/vpndiag/vpndiag/report"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano()

// transportRec fills rec with a WireGuard transport message.
func transportRec(rec *decode.Record, frame uint64, at time.Duration, src, dst netip.AddrPort, receiver uint32, counter uint64, size int) {
	*rec = decode.Record{Frame: frame, Time: t0 + int64(at), NumLevels: 1, NumTunnel: 1, WireLen: size + 28}
	l := &rec.Levels[0]
	l.IP = decode.IP{Version: 4, Proto: 17, Src: src.Addr(), Dst: dst.Addr()}
	l.L4 = decode.Transport{Proto: 17, SrcPort: src.Port(), DstPort: dst.Port(), PayloadLen: size}
	rec.Tunnels[0] = decode.Tunnel{Kind: decode.TunnelWireGuard, ID: receiver, Counter: counter}
	rec.WireGuard = decode.WireGuard{Type: decode.WGTransportData, Receiver: receiver, Counter: counter}
}

// TestRoaming: a session whose source endpoint flips between two NAT
// mappings three times is a roaming warning; keepalives every 25 s are
// measured.
func TestRoaming(t *testing.T) {
	a := New()
	server := netip.MustParseAddrPort("198.18.0.1:51820")
	nat1 := netip.MustParseAddrPort("198.18.9.9:40001")
	nat2 := netip.MustParseAddrPort("198.18.9.9:40002")
	var rec decode.Record
	eps := []netip.AddrPort{nat1, nat1, nat2, nat2, nat1, nat2}
	for i, ep := range eps {
		transportRec(&rec, uint64(i+1), time.Duration(i)*25*time.Second, ep, server, 0x1234, uint64(i), keepaliveLen)
		a.Packet(&rec)
	}
	rep := report.New("analyze", "test", time.Now())
	a.Finish(rep, []analyze.InputInfo{{Name: "synthetic.pcap"}})
	fs := analyzetest.Findings(rep, "wireguard.roaming")
	if len(fs) != 1 || analyzetest.Num(fs[0].Evidence["roams"]) != 3 || fs[0].Severity != report.SeverityWarning || len(fs[0].Frames) != 3 {
		t.Fatalf("want one roaming warning with 3 roams, got %+v", fs)
	}
	row := analyzetest.MustTable(t, rep, "wireguard-sessions").Rows[0]
	if analyzetest.Num(row[9]) != 6 || row[10] != 25.0 {
		t.Errorf("keepalives %v interval %v, want 6 every 25 s", row[9], row[10])
	}
}

func corpusRecords(t testing.TB) []decode.Record {
	return analyzetest.Records(t, analyzetest.Corpus(t, "ntop_nDPI/wireguard.pcap"), analyzetest.Corpus(t, "corelight_zeek-spicy-wireguard/wireguard.pcap"))
}

// TestPacketAllocs proves Packet does not allocate in steady state: once
// sessions are known and the bounded per-peer time lists are full.
func TestPacketAllocs(t *testing.T) {
	recs := corpusRecords(t)
	if n := analyzetest.PassAllocs(New(), recs, 300); n != 0 {
		t.Fatalf("Packet allocated %.1f times per pass over %d records", n, len(recs))
	}
}

// BenchmarkPacket measures the analyzer over the decoded WireGuard corpus.
func BenchmarkPacket(b *testing.B) {
	analyzetest.BenchPasses(b, New(), corpusRecords(b))
}
