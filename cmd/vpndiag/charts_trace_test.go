package main

import (
	"context"
	"encoding/json"
	"math"
	"path/filepath"
	"testing"

	"github.com/vpndiag/vpndiag/analyze/correlate"
	"github.com/vpndiag/vpndiag/report"
)

// TestTraceChartsNATDNS checks trace's charts on the NAT DNS fixture
// against its truth: the NAT'd class's intervals add up to 500 sent and
// 298 lost; the first two seconds (the 200-port pool filling at 100
// queries/s) lose nothing, every later second loses at least 90%; the
// control class (the direct resolver) loses nothing in any second; the
// delay distribution has one series per hop pair in path order (queries
// out, answers back), each summing to 100% of the packets timed there.
func TestTraceChartsNATDNS(t *testing.T) {
	dir := fixture(t, "nat-dns")
	var hops []correlate.Hop
	for _, h := range []string{"client", "gw-in", "gw-out", "dns"} {
		hops = append(hops, correlate.FileHop(h, filepath.Join(dir, h+".pcap")))
	}
	opt := correlate.Options{}
	res, err := correlate.Run(context.Background(), hops, opt)
	if err != nil {
		t.Fatal(err)
	}
	var nat *correlate.Segment
	for i := range res.Segments {
		s := &res.Segments[i]
		if s.From == "gw-in" && s.To == "gw-out" && s.Class == "UDP to 198.18.2.53:53" {
			nat = s
		}
	}
	if nat == nil {
		t.Fatal("no gw-in -> gw-out segment for UDP to 198.18.2.53:53")
	}
	b, complete := res.LossOverTime(nat)
	sent, lost := 0, 0
	for i, x := range b {
		sent += x.Sent
		lost += x.Lost
		switch {
		case i < 2 && x.Lost != 0:
			t.Errorf("second %d: %d of %d lost before the pool filled", i, x.Lost, x.Sent)
		case i >= 2 && x.Sent > 0 && float64(x.Lost) < 0.9*float64(x.Sent):
			t.Errorf("second %d: %d of %d lost, want at least 90%% once the pool is full", i, x.Lost, x.Sent)
		}
	}
	if !complete || sent != 500 || lost != 298 || len(b) != 6 {
		t.Errorf("intervals: %d sent, %d lost over %d (complete %v); want 500, 298 (truth) over 6", sent, lost, len(b), complete)
	}

	charts := traceCharts(res, opt)
	if len(charts) != 2 || charts[0].Name != "trace-loss-over-time" || charts[1].Name != "trace-delay-histogram" {
		t.Fatalf("charts %v, want trace-loss-over-time and trace-delay-histogram", chartNames(charts))
	}
	loss := charts[0]
	if len(loss.Series) != 2 || loss.Series[0].Name != "gw-in → gw-out, UDP to 198.18.2.53:53" ||
		loss.Series[1].Name != "client → gw-in, UDP to 198.18.3.53:53 (control)" {
		t.Fatalf("loss series %v", seriesNames(loss))
	}
	for _, p := range loss.Series[1].Points {
		if p.Y != 0 {
			t.Errorf("control class lost %v%% at %v", p.Y, report.FromUnixSeconds(p.X))
		}
	}
	if first := report.FromUnixSeconds(loss.Series[0].Points[0].X); first.Unix() != b[0].Start.Unix() || first.Nanosecond() != 0 {
		t.Errorf("first point at %v, want %v (a whole second)", first, b[0].Start)
	}
	delay := charts[1]
	if len(delay.Series) != 6 || delay.BinWidth <= 0 {
		t.Fatalf("delay series %v (bin width %v), want 6 hop pairs", seriesNames(delay), delay.BinWidth)
	}
	want := []string{"client → gw-in", "gw-in → gw-out", "gw-out → dns", "dns → gw-out", "gw-out → gw-in", "gw-in → client"}
	for i, s := range delay.Series {
		if s.Name != want[i] {
			t.Errorf("delay series %v, want path order %v", seriesNames(delay), want)
			break
		}
	}
	timed := map[string]uint64{}
	for _, s := range res.Segments {
		timed[s.From+" → "+s.To] += s.Delayed
	}
	hd := res.HopDelays()
	for i, s := range delay.Series {
		sum := 0.0
		for _, p := range s.Points {
			sum += p.Y
			if p.X < 0 || p.X > 0.1 {
				t.Errorf("%s: bin at %v ms, want all within 0..0.1 ms (one machine)", s.Name, p.X)
			}
		}
		if math.Abs(sum-100) > 0.05 {
			t.Errorf("%s: bins sum to %v%%, want 100", s.Name, sum)
		}
		var n uint64
		for _, x := range hd[i].Bins {
			n += x.Packets
		}
		if n != timed[s.Name] || n != hd[i].Packets || n == 0 {
			t.Errorf("%s: %d packets in the bins, %d in HopDelays, segments timed %d", s.Name, n, hd[i].Packets, timed[s.Name])
		}
	}
}

// TestTraceDelayChartBins: the engine's bins are spread over the chart's
// common bins; delays above the 99.5th percentile go into the last bin.
func TestTraceDelayChartBins(t *testing.T) {
	hops := []correlate.HopDelays{
		{From: "a", To: "b", Packets: 1000, Bins: []correlate.DelayBin{{LoMs: 1, HiMs: 1.032, Packets: 600}, {LoMs: 2, HiMs: 2.064, Packets: 400}}},
		{From: "b", To: "c", Packets: 201, Bins: []correlate.DelayBin{{LoMs: 1.5, HiMs: 1.548, Packets: 200}, {LoMs: 500, HiMs: 516, Packets: 1}}},
	}
	c, ok := traceDelayChart(hops, 30)
	if !ok || len(c.Series) != 2 {
		t.Fatalf("chart %+v", c)
	}
	if c.BinWidth != 0.05 {
		t.Errorf("bin width %v, want 0.05 ms (about 30 bins over 1..2.064 ms)", c.BinWidth)
	}
	var last report.Point
	sum := 0.0
	for _, p := range c.Series[1].Points {
		sum += p.Y
		last = p
	}
	if math.Abs(sum-100) > 0.01 || last.X < 2 || last.X > 2.1 || math.Abs(last.Y-100.0/201) > 0.01 {
		t.Errorf("b → c: sum %v, last bin %+v; want 100%%, the 500 ms outlier (0.5%%) in the last bin near 2.05 ms", sum, last)
	}
	if c.Note == "" || c.Series[0].Name != "a → b" {
		t.Errorf("note %q, series %q", c.Note, c.Series[0].Name)
	}
	// a → b: 60% in [1, 1.05), 40% in [2, 2.064) spread over two bins.
	got := map[float64]float64{}
	for _, p := range c.Series[0].Points {
		got[p.X] = p.Y
	}
	if got[1] != 60 || math.Abs(got[2]+got[2.05]-40) > 0.01 || got[2.05] <= 0 {
		t.Errorf("a → b bins %v", got)
	}
}

// TestTraceCommandCharts: trace --format json carries both charts, valid
// against the schema.
func TestTraceCommandCharts(t *testing.T) {
	out, errOut, code := vpndiag(t, append([]string{"trace", "--format", "json"}, natDNSArgs(t)...)...)
	if code != exitFindings {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rep report.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if n := chartNames(rep.Charts); len(n) != 2 || n[0] != "trace-loss-over-time" || n[1] != "trace-delay-histogram" {
		t.Errorf("charts %v", n)
	}
	for _, c := range rep.Charts {
		if c.Points() == 0 {
			t.Errorf("chart %s has no points", c.Name)
		}
	}
}

func chartNames(cs []report.Chart) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

func seriesNames(c report.Chart) []string {
	var out []string
	for _, s := range c.Series {
		out = append(out, s.Name)
	}
	return out
}
