package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/vpndiag/vpndiag/report"
	"github.com/vpndiag/vpndiag/report/schematest"
	"github.com/vpndiag/vpndiag/testdata/lab"
)

// TestProbeCompareChartsLab: probe compare --throughput over a VXLAN
// tunnel whose underlay drops 20% of the encapsulated packets, against
// iperf3 -s: the RTT chart has one series per path with a point per echo
// that was answered (40 echoes, 20 ms apart) and the tunnel's lost echoes
// shaded; the throughput chart has each path's test per one-second
// interval.
func TestProbeCompareChartsLab(t *testing.T) {
	lab.Require(t, "iperf3")
	topo := lab.New(t, `
host a
host b
link a:eth0=198.18.34.1/24 b:eth0=198.18.34.2/24
vxlan a:vx0 vni 9 local 198.18.34.1 remote 198.18.34.2 dev eth0 addr 198.18.35.1/24 neigh static
vxlan b:vx0 vni 9 local 198.18.34.2 remote 198.18.34.1 dev eth0 addr 198.18.35.2/24 neigh static
loss b input udp dport 4789 20%
`)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	srv, err := topo.Start(ctx, "b", "iperf3", "-s", "--forceflush")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.WaitFor(ctx, "Server listening"); err != nil {
		t.Fatalf("iperf3 -s: %v", err)
	}
	code, out, errOut := runCLI(t, ctx, "probe", "compare", "--netns", topo.NS("a"), "--tunnel", "198.18.35.2", "--underlay", "198.18.34.2",
		"-c", "40", "-i", "0.02", "--throughput", "-t", "2", "--format", "json")
	if code != exitOK && code != exitFindings {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if err := schematest.Validate([]byte(out)); err != nil {
		t.Error(err)
	}
	var rep report.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	var d struct {
		Tunnel, Underlay struct {
			Ping            struct{ Sent, Received int }
			ThroughputError string `json:"throughput_error"`
		}
	}
	b, _ := json.Marshal(rep.Data["compare"])
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if n := chartNames(rep.Charts); len(n) != 2 || n[0] != "compare-rtt" || n[1] != "compare-throughput" {
		t.Fatalf("charts %v", n)
	}
	rtt, tp := rep.Charts[0], rep.Charts[1]
	if len(rtt.Series) != 2 || rtt.Series[0].Name != "tunnel 198.18.35.2" || rtt.Series[1].Name != "underlay 198.18.34.2" {
		t.Fatalf("RTT series %v", seriesNames(rtt))
	}
	if len(rtt.Series[0].Points) != d.Tunnel.Ping.Received || len(rtt.Series[1].Points) != d.Underlay.Ping.Received || d.Underlay.Ping.Received != 40 {
		t.Errorf("RTT points %d and %d, replies %+v", len(rtt.Series[0].Points), len(rtt.Series[1].Points), d)
	}
	lostMarks := 0
	for _, m := range rtt.Marks {
		if !strings.HasPrefix(m.Label, "tunnel") {
			t.Errorf("mark %+v on the underlay, which loses nothing", m)
		}
		lostMarks++
	}
	if d.Tunnel.Ping.Received < d.Tunnel.Ping.Sent && lostMarks == 0 {
		t.Errorf("tunnel lost %d echoes, nothing shaded", d.Tunnel.Ping.Sent-d.Tunnel.Ping.Received)
	}
	if len(tp.Series) != 2 || !strings.HasPrefix(tp.Series[0].Name, "tunnel") || !strings.HasPrefix(tp.Series[1].Name, "underlay") {
		t.Fatalf("throughput series %v; errors: tunnel %q, underlay %q", seriesNames(tp), d.Tunnel.ThroughputError, d.Underlay.ThroughputError)
	}
	for _, s := range tp.Series {
		if len(s.Points) < 2 || s.Points[0].X < 0.9 || s.Points[0].X > 1.1 || s.Points[0].Y <= 0 {
			t.Errorf("%s: points %+v, want one per second of the 2 s test", s.Name, s.Points)
		}
	}
	t.Logf("tunnel %d/%d echoes answered, %d marks; throughput points %d and %d", d.Tunnel.Ping.Received, d.Tunnel.Ping.Sent,
		lostMarks, len(tp.Series[0].Points), len(tp.Series[1].Points))
}
