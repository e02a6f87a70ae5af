package flood

import (
	"testing"

	"github.com/vpndiag/vpndiag/analyze/analyzetest"
	"github.com/vpndiag/vpndiag/analyze/decode"
)

// floodRecords are a generated IKE flood (real message bytes) plus the
// WireGuard and IKE corpus captures, decoded.
func floodRecords(t testing.TB) []decode.Record {
	return analyzetest.Records(t, writeFlood(t, 3000, 500, 200), analyzetest.Corpus(t, "ntop_nDPI/wireguard.pcap"),
		analyzetest.Corpus(t, "the-tcpdump-group_tcpdump/ikev2four.pcap"))
}

// TestPacketAllocs proves Packet does not allocate once targets and sources
// are known.
func TestPacketAllocs(t *testing.T) {
	recs := floodRecords(t)
	if n := analyzetest.PassAllocs(New(), recs, 1); n != 0 {
		t.Fatalf("Packet allocated %.1f times per pass over %d records", n, len(recs))
	}
}

// BenchmarkPacket measures the analyzer over a decoded flood (every
// packet an attempt or an answer) and the IKE/WireGuard corpus.
func BenchmarkPacket(b *testing.B) {
	analyzetest.BenchPasses(b, New(), floodRecords(b))
}
