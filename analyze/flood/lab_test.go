package flood

import (
	"context"
	"encoding/json"
	"math"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/vpndiag/vpndiag/analyze/analyzetest"
	"github.com/vpndiag/vpndiag/report"
	"github.com/vpndiag/vpndiag/testdata/lab"
)

const floodTopo = `
host attacker
host vpn
link attacker:eth0=198.18.50.1/24 vpn:eth0=198.18.50.2/24
`

// TestLabIKEFlood: a bounded generator in the attacker namespace sends 600
// IKE_SA_INIT-shaped datagrams at 100/s from 120 source addresses
// (198.19.0.1-120, an AnyIP route) to the VPN host's UDP 500, which runs no
// IKE daemon. The capture on the VPN host is checked with tshark (attempts,
// distinct sources, peak second), and the analyzer must report a warning
// (100/s is above 20/s but below the 200/s error level) with those numbers.
func TestLabIKEFlood(t *testing.T) {
	lab.Require(t, "tshark", "go")
	dir := t.TempDir()
	gen := filepath.Join(dir, "ikeflood")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", gen, "./testdata/ikeflood").CombinedOutput(); err != nil {
		t.Fatalf("build generator: %v\n%s", err, out)
	}
	topo := lab.New(t, floodTopo)
	if out, err := topo.Exec(ctx, "attacker", "ip", "route", "add", "local", "198.19.0.0/24", "dev", "lo"); err != nil {
		t.Fatalf("anyip route: %v %s", err, out)
	}
	c, err := topo.Capture(ctx, "vpn", "eth0", filepath.Join(dir, "vpn.pcap"), "udp dst port 500")
	if err != nil {
		t.Fatal(err)
	}
	out, err := topo.Exec(ctx, "attacker", gen, "-to", "198.18.50.2:500", "-base", "198.19.0.1", "-sources", "120", "-count", "600", "-rate", "100")
	if err != nil {
		t.Fatalf("generator: %v %s", err, out)
	}
	var res struct{ Sent, Sources int }
	if err := json.Unmarshal(out, &res); err != nil || res.Sent != 600 {
		t.Fatalf("generator said %q (%v), want 600 sent", out, err)
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	rows := analyzetest.Tshark(t, c.File, "isakmp.exchangetype == 34 && isakmp.rspi == 00:00:00:00:00:00:00:00", "ip.src", "frame.time_epoch")
	srcs := map[string]bool{}
	perSec := map[int64]int{}
	peak := 0
	for _, r := range rows {
		srcs[r[0]] = true
		ts, _ := strconv.ParseFloat(r[1], 64)
		s := int64(math.Floor(ts))
		perSec[s]++
		peak = max(peak, perSec[s])
	}
	if len(rows) != res.Sent || len(srcs) != res.Sources {
		t.Fatalf("tshark: %d SA_INIT from %d sources in the capture; the generator sent %d from %d", len(rows), len(srcs), res.Sent, res.Sources)
	}
	rep := analyzetest.Run(t, New(), c.File)
	fs := analyzetest.Findings(rep, "flood.vpn-port")
	if len(fs) != 1 {
		t.Fatalf("want one flood.vpn-port finding, got %+v", rep.Findings)
	}
	f := fs[0]
	sus := f.Evidence["sustained_rate"].(float64)
	if f.Severity != report.SeverityWarning || analyzetest.Num(f.Evidence["attempts"]) != uint64(len(rows)) || analyzetest.Num(f.Evidence["distinct_sources"]) != uint64(len(srcs)) ||
		analyzetest.Num(f.Evidence["peak_rate"]) != uint64(peak) || analyzetest.Num(f.Evidence["answered"]) != 0 || sus < 80 || sus > 110 {
		t.Errorf("finding %s %v: want warning, %d attempts, %d sources, peak %d/s (tshark), none answered, ~100/s sustained",
			f.Severity, f.Evidence, len(rows), len(srcs), peak)
	}
	if f.Where.Flow != "198.18.50.2/500" || f.Where.Class != "ike" {
		t.Errorf("where %+v", f.Where)
	}
	t.Log(f.Summary)
}
