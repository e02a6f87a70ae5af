package compare

import (
	"testing"
	"time"

	"github.com/vpndiag/vpndiag/probe/ping"
	"github.com/vpndiag/vpndiag/report"
)

func TestFindings(t *testing.T) {
	stats := func(sent, recv int, p50 time.Duration) *ping.Stats {
		return &ping.Stats{Sent: sent, Received: recv, LossPercent: 100 * float64(sent-recv) / float64(sent), P50: p50}
	}
	for _, tc := range []struct {
		name string
		res  Result
		want map[string]report.Severity
	}{
		{"tunnel loses 20%, underlay clean", Result{Tunnel: Path{Role: "tunnel", Ping: stats(500, 400, time.Millisecond)}, Underlay: Path{Role: "underlay", Ping: stats(500, 500, time.Millisecond)}, LossZ: 10.5,
			Overhead: &Overhead{Median: 10 * time.Microsecond, Low: -5 * time.Microsecond, High: 20 * time.Microsecond, Reason: "includes zero"}},
			map[string]report.Severity{"probe.tunnel-loss": report.SeverityError, "probe.tunnel-overhead": report.SeverityInfo}},
		{"1% loss is a warning", Result{Tunnel: Path{Ping: stats(2000, 1980, time.Millisecond)}, Underlay: Path{Ping: stats(2000, 2000, time.Millisecond)}, LossZ: 4.5},
			map[string]report.Severity{"probe.tunnel-loss": report.SeverityWarning}},
		{"not significant", Result{Tunnel: Path{Ping: stats(10, 8, time.Millisecond)}, Underlay: Path{Ping: stats(10, 10, time.Millisecond)}, LossZ: 1.5},
			map[string]report.Severity{}},
		{"throughput ratio 0.01", Result{Tunnel: Path{Ping: stats(10, 10, 0), BitsPerSecond: 47e6}, Underlay: Path{Ping: stats(10, 10, 0), BitsPerSecond: 4.7e9}, ThroughputRatio: 0.01},
			map[string]report.Severity{"probe.tunnel-throughput": report.SeverityWarning}},
		{"ratio 0.7 is fine", Result{Tunnel: Path{Ping: stats(10, 10, 0)}, Underlay: Path{Ping: stats(10, 10, 0)}, ThroughputRatio: 0.7},
			map[string]report.Severity{}},
		{"tunnel dead", Result{Tunnel: Path{Ping: stats(10, 0, 0)}, Underlay: Path{Ping: stats(10, 10, 0)}, LossZ: 20},
			map[string]report.Severity{"probe.unreachable": report.SeverityError}},
		{"server missing", Result{Tunnel: Path{Ping: stats(10, 10, 0), ThroughputError: "connection refused"}, Underlay: Path{Ping: stats(10, 10, 0)}},
			map[string]report.Severity{"probe.error": report.SeverityError}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := map[string]report.Severity{}
			for _, f := range Findings(&tc.res) {
				got[f.ID] = f.Severity
			}
			if len(got) != len(tc.want) {
				t.Fatalf("findings %v, want %v", got, tc.want)
			}
			for id, sev := range tc.want {
				if s, ok := got[id]; !ok || s != sev {
					t.Errorf("%s: %v (present %v), want %v", id, s, ok, sev)
				}
			}
		})
	}
}
