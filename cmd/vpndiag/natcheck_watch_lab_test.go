package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vpndiag/vpndiag/report"
	"github.com/vpndiag/vpndiag/report/schematest"
	"github.com/vpndiag/vpndiag/testdata/lab"
)

// TestNatcheckWatchChartLab: natcheck --watch on a real gateway (nftables
// masquerade with ports 20000-20199) while 600 new UDP flows go through it:
// the report's pool chart shows the pool going from nothing to all 200
// ports of the range (the limit line), the samples in which the kernel
// dropped the other flows are marked, and the conntrack chart has
// nf_conntrack_max as its limit.
func TestNatcheckWatchChartLab(t *testing.T) {
	lab.Require(t, "conntrack")
	topo := lab.New(t, natLabTopo+"nat gw masquerade oif eth1 ports 20000-20199\n")
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	type result struct {
		out, errOut string
		code        int
	}
	done := make(chan result, 1)
	go func() {
		out, errOut, code := vpndiag(t, "natcheck", "--netns", topo.NS("gw"), "--format", "json", "--watch", "250ms", "--count", "14")
		done <- result{out, errOut, code}
	}()
	time.Sleep(800 * time.Millisecond) // a few samples before the flood
	p, err := topo.Start(ctx, "client", "env", "VDNAT_FLOOD=udp", "VDNAT_N=600", "VDNAT_PORT0=30000", "VDNAT_DST=198.18.66.53:53",
		os.Args[0], "-test.run=^TestNatcheckFloodHelper$")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WaitFor(ctx, "flooded"); err != nil {
		t.Fatal(err)
	}
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		t.Fatal("natcheck --watch did not end")
	}
	if r.code != exitFindings {
		t.Fatalf("exit %d, want 1 (exhaustion): %s", r.code, tail(r.errOut, 2000))
	}
	if err := schematest.Validate([]byte(r.out)); err != nil {
		t.Error(err)
	}
	rep := natDecodeReport(t, r.out)
	var pool, ct *report.Chart
	for i := range rep.Charts {
		switch c := &rep.Charts[i]; c.Name {
		case "nat-pool-usage-1":
			pool = c
		case "nat-conntrack-usage":
			ct = c
		}
	}
	if pool == nil || ct == nil {
		t.Fatalf("charts %v, want nat-pool-usage-1 and nat-conntrack-usage", chartNames(rep.Charts))
	}
	if !strings.Contains(pool.Title, "udp 198.18.66.1 > 198.18.66.53:53") || len(pool.Limits) != 1 || pool.Limits[0].Y != 200 ||
		!strings.HasPrefix(pool.Limits[0].Label, "port range 20000-20199: 200 ports") {
		t.Errorf("pool chart %q, limits %+v", pool.Title, pool.Limits)
	}
	pts := pool.Series[0].Points
	var top float64
	for _, p := range pts {
		top = max(top, p.Y)
	}
	t.Logf("%d samples; ports in use %v; marks %+v", len(pts), pointsY(pts), pool.Marks)
	if len(pts) != 14 || pts[0].Y != 0 || top != 200 || pts[len(pts)-1].Y != 200 {
		t.Errorf("ports in use %v: want 14 samples from 0 to all 200", pointsY(pts))
	}
	if len(pool.Marks) == 0 {
		t.Error("no drop marked: the kernel dropped 400 flows")
	}
	if len(ct.Limits) != 1 || ct.Limits[0].Y <= 200 || len(ct.Series[0].Points) != 14 {
		t.Errorf("conntrack chart limits %+v, %d points", ct.Limits, len(ct.Series[0].Points))
	}
}

func pointsY(ps []report.Point) []float64 {
	out := make([]float64, len(ps))
	for i, p := range ps {
		out[i] = p.Y
	}
	return out
}
