package main

import (
	"encoding/json"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vpndiag/vpndiag/probe/nat"
	"github.com/vpndiag/vpndiag/report"
	"github.com/vpndiag/vpndiag/report/schematest"
)

// TestNatcheckOutsideChart: natcheck on the NAT DNS fixture's outside
// capture alone charts the pool's live mappings per second against the 200
// ports it was seen using (20000-20199): 91 in the first (partial) second,
// then 191, then 200 (the ceiling) to the end. With --inside the drop
// timeline chart covers that pool and no second chart is drawn.
func TestNatcheckOutsideChart(t *testing.T) {
	dir := fixture(t, "nat-dns")
	out, errOut, code := vpndiag(t, "natcheck", "--format", "json", "--outside", filepath.Join(dir, "gw-out.pcap"))
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
	if len(rep.Charts) != 1 {
		t.Fatalf("charts %v, want one", chartNames(rep.Charts))
	}
	c := rep.Charts[0]
	if c.Name != "nat-pool-usage-1" || c.Title != "NAT port pool usage: udp 198.18.2.1 to 198.18.2.53:53 (outside capture)" ||
		len(c.Limits) != 1 || c.Limits[0].Y != 200 || c.Limits[0].Label != "ports seen 20000-20199: 200" || !strings.Contains(c.Note, "ceiling") {
		t.Errorf("chart %s %q limits %+v note %q", c.Name, c.Title, c.Limits, c.Note)
	}
	var ys []float64
	for _, p := range c.Series[0].Points {
		ys = append(ys, p.Y)
	}
	if len(ys) != 5 || ys[0] != 91 || ys[1] != 191 || ys[2] != 200 || ys[4] != 200 {
		t.Errorf("live mappings per second %v, want 91 191 200 200 200", ys)
	}

	out, _, _ = vpndiag(t, "natcheck", "--format", "json", "--outside", filepath.Join(dir, "gw-out.pcap"), "--inside", filepath.Join(dir, "gw-in.pcap"))
	rep = report.Report{}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if n := chartNames(rep.Charts); len(n) != 1 || !strings.HasSuffix(rep.Charts[0].Title, "(exhausted)") {
		t.Errorf("with --inside: charts %v", n)
	}
}

// TestNatWatchCharts: a watch's history becomes one chart per followed pool
// (ports in use against the range) and one of the conntrack entries
// against nf_conntrack_max; consecutive intervals with drops merge into one
// mark.
func TestNatWatchCharts(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	pool := func(n int) nat.Pool {
		return nat.Pool{NAT: netip.MustParseAddr("198.18.66.1"), Proto: 17, Dst: netip.MustParseAddrPort("198.18.66.53:53"),
			InUse: n, RangeMin: 20000, RangeMax: 20199, RangeFrom: "nft ip nat postrouting #1"}
	}
	var h nat.History
	for i, n := range []int{0, 80, 160, 200, 200, 120} {
		s := nat.Sample{Snapshot: &nat.Snapshot{Time: t0.Add(time.Duration(i) * time.Second), Conntrack: nat.Conntrack{Entries: uint64(n + 5), Max: 262144}},
			Analysis: &nat.Analysis{}}
		if n > 0 {
			s.Analysis.Pools = []nat.Pool{pool(n)}
		}
		if i == 3 || i == 4 {
			s.Delta = &nat.Delta{Stats: nat.CPUStats{InsertFailed: 40, Drop: 40}}
		}
		h.Add(s)
	}
	if natWatchCharts(&nat.History{}) != nil {
		t.Error("charts without samples")
	}
	cs := natWatchCharts(&h)
	if n := chartNames(cs); len(n) != 2 || n[0] != "nat-pool-usage-1" || n[1] != "nat-conntrack-usage" {
		t.Fatalf("charts %v", n)
	}
	p := cs[0]
	if p.Title != "NAT port pool usage: udp 198.18.66.1 > 198.18.66.53:53 (live)" || len(p.Limits) != 1 || p.Limits[0].Y != 200 ||
		p.Limits[0].Label != "port range 20000-20199: 200 ports (nft ip nat postrouting #1)" {
		t.Errorf("pool chart %q limits %+v", p.Title, p.Limits)
	}
	if len(p.Marks) != 1 || p.Marks[0].From != report.UnixSeconds(t0.Add(2*time.Second)) || p.Marks[0].To != report.UnixSeconds(t0.Add(4*time.Second)) {
		t.Errorf("marks %+v, want one from 2 s to 4 s", p.Marks)
	}
	var ys []float64
	for _, pt := range p.Series[0].Points {
		ys = append(ys, pt.Y)
	}
	if len(ys) != 6 || ys[0] != 0 || ys[3] != 200 || ys[5] != 120 {
		t.Errorf("ports in use %v", ys)
	}
	if c := cs[1]; len(c.Limits) != 1 || c.Limits[0].Y != 262144 || c.Series[0].Points[3].Y != 205 {
		t.Errorf("conntrack chart %+v", c)
	}
}
