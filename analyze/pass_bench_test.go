package analyze_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vpndiag/vpndiag/analyze"
	_ "github.com/vpndiag/vpndiag/analyze/arp"
	_ "github.com/vpndiag/vpndiag/analyze/bgp"
	_ "github.com/vpndiag/vpndiag/analyze/dns"
	_ "github.com/vpndiag/vpndiag/analyze/flood"
	_ "github.com/vpndiag/vpndiag/analyze/flow"
	_ "github.com/vpndiag/vpndiag/analyze/ipsec"
	_ "github.com/vpndiag/vpndiag/analyze/mtu"
	_ "github.com/vpndiag/vpndiag/analyze/nat"
	_ "github.com/vpndiag/vpndiag/analyze/tcp"
	_ "github.com/vpndiag/vpndiag/analyze/wireguard"
	"github.com/vpndiag/vpndiag/report"
)

// benchPassFile is the capture BenchmarkPass reads: $VPNDIAG_BENCH_FILE (e.g.
// the 1M-packet lab capture of testdata/lab/bench.sh), else the committed
// VXLAN fixture.
func benchPassFile(b *testing.B) string {
	if f := os.Getenv("VPNDIAG_BENCH_FILE"); f != "" {
		return f
	}
	return filepath.Join("..", "testdata", "fixtures", "vxlan", "vxlan.pcap")
}

// BenchmarkPass times one whole Pass (read, decode, analyze, finish) over the
// benchmark capture with the summary analyzer alone and with every analyzer:
// the target is all <= 1.5 x summary. all-sequential runs every
// analyzer on the reading goroutine (the cost in CPU time).
func BenchmarkPass(b *testing.B) {
	file := benchPassFile(b)
	for _, bc := range []struct {
		name  string
		names []string
		seq   bool
	}{{"summary", []string{"summary"}, false}, {"all", nil, false}, {"all-sequential", nil, true}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			inputs := []analyze.InputInfo{{Name: filepath.Base(file), Source: file}}
			var packets uint64
			for b.Loop() {
				as, bad, ok := analyze.New(bc.names...)
				if !ok {
					b.Fatalf("unknown analyzer %s", bad)
				}
				r := report.New("analyze", "bench", time.Unix(0, 0))
				p := &analyze.Pass{Analyzers: as, Sequential: bc.seq}
				if err := p.Run(context.Background(), inputs, r); err != nil {
					b.Fatalf("analyze %s: %v", file, err)
				}
				packets = r.Inputs[0].Packets
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(uint64(b.N)*packets), "ns/packet")
		})
	}
}
