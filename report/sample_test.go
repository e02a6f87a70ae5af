package report

import (
	"math"
	"time"
)

var t0 = time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)

// sampleReport has one of everything the renderers draw: findings of every
// severity, a long table, and a line chart with a gap, a mark and a limit,
// a bar chart and a histogram.
func sampleReport() *Report {
	r := New("natcheck", "1.2.3", t0)
	r.Title = "NAT port pools <test> & more"
	r.Host = "gw1"
	r.Args = []string{"--outside", "gw-out.pcap"}
	first, last := t0.Add(time.Second), t0.Add(6*time.Second)
	drops := uint64(0)
	r.Inputs = []Input{{Name: "gw-out.pcap", Source: "testdata/gw-out.pcap", Format: "pcap", Packets: 408, Bytes: 34288, First: &first, Last: &last, Drops: &drops}}
	when := t0.Add(3 * time.Second)
	r.Add(
		Finding{ID: "nat.port-exhaustion", Severity: SeverityError, Title: "NAT port pool exhausted",
			Summary: "298 of 498 new UDP flows were dropped while 200 mappings were live.", Time: &when,
			Where:    &Where{Hop: "gw-out.pcap", Segment: &Segment{From: "gw-in", To: "gw-out"}, Class: "udp"},
			Evidence: map[string]any{"dropped": 298, "ports": "20000-20199", "buckets": []any{1, 2, 3}},
			Frames:   []FrameRef{{File: "gw-in.pcap", Frame: 465}, {File: "gw-in.pcap", Frame: 476}},
			Remedy:   "Widen the range: masquerade to :1024-65535 fully-random."},
		Finding{ID: "nat.range-small", Severity: SeverityWarning, Title: "Small range", Summary: "only 200 ports",
			Where: &Where{Hop: "gw-out.pcap"}},
		Finding{ID: "nat.info", Severity: SeverityInfo, Title: "Info", Summary: "an informational note"},
	)
	r.Sort()
	long := Table{Name: "nat-mappings", Title: "Mappings", Columns: []string{"frame", "inside", "outside"}}
	for i := 0; i < 40; i++ {
		long.Rows = append(long.Rows, []any{i + 1, "198.18.1.2:1000", "198.18.2.1:20000"})
	}
	r.AddTable(Table{Name: "nat-pools", Title: "Pools | per destination", Columns: []string{"nat address", "flows", "dense"},
		Rows: [][]any{{"198.18.2.1", 200, true}}, Note: "one pool"})
	r.AddTable(long)
	base := UnixSeconds(t0)
	r.AddChart(Chart{Name: "nat-pool-usage", Title: "Port pool usage", Kind: ChartLine, XUnit: XUnitTime, YLabel: "mappings",
		Series: []Series{
			{Name: "live mappings", Points: []Point{{X: base + 1, Y: 91}, {X: base + 2, Y: 191}, {X: base + 3, Y: 200}, {X: base + 5, Y: 200, Gap: true}, {X: base + 6, Y: math.NaN()}}},
			{Name: "dropped flows/s", Points: []Point{{X: base + 1, Y: 0}, {X: base + 2, Y: 0}, {X: base + 3, Y: 91}, {X: base + 5, Y: 98}}},
		},
		Marks:  []Mark{{From: base + 3, To: base + 2, Label: "flows dropped"}, {From: math.Inf(1), To: 0}},
		Limits: []Limit{{Y: 200, Label: "port range: 200 ports"}}})
	r.AddChart(Chart{Name: "protocol-share", Title: "Protocol share", Kind: ChartBar, YUnit: "%", Categories: []string{"outer ipv4", "inner tcp", "inner udp"},
		Series: []Series{{Name: "packets", Points: []Point{{X: 0, Y: 97.85}, {X: 1, Y: 63.4}, {X: 2, Y: 21.5}}},
			{Name: "bytes", Points: []Point{{X: 0, Y: 99}, {X: 1, Y: 80}, {X: 2, Y: 6}}}}})
	r.AddChart(DelayHistogram([]HopDelays{{Name: "gw-in", DelaysMs: []float64{0.01, 0.02, 0.02, 0.03, 0.5}}, {Name: "dns", DelaysMs: []float64{0.01, 0.011}}}, 10))
	r.Checks = []string{"nat", "dns"}
	return r
}
