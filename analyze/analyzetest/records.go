package analyzetest

import (
	"errors"
	"io"
	"testing"
	"time"

	"github.com/vpndiag/vpndiag/analyze"
	"github.com/vpndiag/vpndiag/analyze/decode"
	"github.com/vpndiag/vpndiag/capture"
)

// Records reads and decodes every frame of the capture files (paths, input
// i for files[i]) the way analyze.Pass does. Each record points into its own
// copy of the frame, so payloads stay valid: for allocation tests and
// benchmarks that feed the records to Analyzer.Packet again and again.
func Records(tb testing.TB, files ...string) []decode.Record {
	tb.Helper()
	var recs []decode.Record
	var dec decode.Decoder
	for in, f := range files {
		src, err := capture.Open(f)
		if err != nil {
			tb.Fatalf("open %s: %v", f, err)
		}
		var fr capture.Frame
		for {
			err := src.Next(&fr)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				src.Close()
				tb.Fatalf("read %s: %v", f, err)
			}
			data := append([]byte(nil), fr.Data...)
			var rec decode.Record
			rec.Frame, rec.Input, rec.Time, rec.CapLen, rec.WireLen = fr.Number, in, fr.Time, len(data), fr.WireLen
			dec.Decode(decode.LinkType(fr.LinkType), data, &rec)
			recs = append(recs, rec)
		}
		src.Close()
	}
	return recs
}

// benchFiles is the corpus mix of BenchRecords: SMTP, TCP retransmissions,
// fragmented DNS, VXLAN, ARP on Linux SLL, IP fragments, BGP and HTTP in VXLAN.
var benchFiles = []string{
	"zeek_zeek/smtp.pcap", "zeek_zeek/retransmit-fast009.pcap", "ntop_nDPI/dns_fragmented.pcap",
	"ntop_nDPI/vxlan.pcap", "zeek_zeek/linuxsll-arp.pcap", "zeek_zeek/fragmented-1.pcap",
	"the-tcpdump-group_tcpdump/bgp-4byte-asn.pcap", "zeek_zeek/vxlan-encapsulated-http.pcap",
}

// BenchRecords returns the Records of a fixed mix of corpus captures, the
// common input of the analyzers' allocation tests and BenchPackets.
func BenchRecords(tb testing.TB) []decode.Record {
	tb.Helper()
	files := make([]string, len(benchFiles))
	for i, f := range benchFiles {
		files[i] = Corpus(tb, f)
	}
	return Records(tb, files...)
}

// BenchPackets feeds recs to a.Packet over and over, reporting allocations
// and ns/packet. Record times advance by the span of recs plus a second every
// cycle, so the analyzer sees one long capture rather than the same instants
// again. One untimed pass first creates the state of every flow.
func BenchPackets(b *testing.B, a analyze.Analyzer, recs []decode.Record) {
	b.ReportAllocs()
	var span int64
	for i := range recs {
		span = max(span, recs[i].Time-recs[0].Time)
	}
	base := make([]int64, len(recs))
	for i := range recs {
		base[i] = recs[i].Time
	}
	for i := range recs {
		a.Packet(&recs[i])
	}
	n, cycle, count := 0, int64(1), 0
	for b.Loop() {
		count++
		r := &recs[n]
		r.Time = base[n] + cycle*(span+int64(time.Second))
		a.Packet(r)
		if n++; n == len(recs) {
			n = 0
			cycle++
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(count), "ns/packet")
}

// PacketAllocs feeds recs to a.Packet once to create the state of every
// flow, then returns the average allocations of one Packet call over 2000
// calls cycling through recs: zero for an analyzer whose hot path is
// allocation-free in steady state.
func PacketAllocs(a analyze.Analyzer, recs []decode.Record) float64 {
	for i := range recs {
		a.Packet(&recs[i])
	}
	n := 0
	return testing.AllocsPerRun(2000, func() {
		a.Packet(&recs[n%len(recs)])
		n++
	})
}

// PassAllocs feeds recs to a.Packet warm times (filling per-flow state and
// bounded lists), then returns the average allocations of one more pass
// over all of recs, measured over 20 passes.
func PassAllocs(a analyze.Analyzer, recs []decode.Record, warm int) float64 {
	for range warm {
		for i := range recs {
			a.Packet(&recs[i])
		}
	}
	return testing.AllocsPerRun(20, func() {
		for i := range recs {
			a.Packet(&recs[i])
		}
	})
}

// BenchPasses feeds all of recs to a.Packet b.N times with their own times
// (so repeated passes look like replays, not one long capture), reporting
// allocations and ns/packet.
func BenchPasses(b *testing.B, a analyze.Analyzer, recs []decode.Record) {
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range recs {
			a.Packet(&recs[j])
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(recs)), "ns/packet")
}
