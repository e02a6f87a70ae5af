package report

import (
	"encoding/json"
	"math"
	"testing"
	"time"
)

func TestAddChartSanitizes(t *testing.T) {
	r := New("x", "v", t0)
	r.AddChart(Chart{Series: []Series{{Name: "a", Points: []Point{{X: 1, Y: math.NaN()}, {X: 2, Y: 3}, {X: math.Inf(-1), Y: 1}}}, {Name: "empty"}},
		Marks: []Mark{{From: 5, To: 2}, {From: math.NaN(), To: 1}}, Limits: []Limit{{Y: math.Inf(1)}, {Y: 7}}, BinWidth: math.NaN()})
	c := r.Charts[0]
	if c.Name != "chart-1" || c.Kind != ChartLine {
		t.Errorf("defaults: name %q kind %q", c.Name, c.Kind)
	}
	if len(c.Series[0].Points) != 1 || c.Series[0].Points[0] != (Point{X: 2, Y: 3}) {
		t.Errorf("points %+v, want only {2 3}", c.Series[0].Points)
	}
	if c.Series[1].Points == nil {
		t.Error("empty series has nil points (encodes as null)")
	}
	if len(c.Marks) != 1 || c.Marks[0].From != 2 || c.Marks[0].To != 5 {
		t.Errorf("marks %+v, want one [2,5]", c.Marks)
	}
	if len(c.Limits) != 1 || c.Limits[0].Y != 7 || c.BinWidth != 0 {
		t.Errorf("limits %+v bin width %v", c.Limits, c.BinWidth)
	}
	if _, err := json.Marshal(r); err != nil {
		t.Fatalf("sanitized report does not encode: %v", err)
	}
}

func TestUnixSecondsRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 21, 8, 42, 12, 94560000, time.UTC)
	if got := FromUnixSeconds(UnixSeconds(at)); got.Sub(at).Abs() > time.Microsecond {
		t.Errorf("round trip %v -> %v", at, got)
	}
}

func TestLossOverTime(t *testing.T) {
	segs := []SegmentLoss{
		{Name: "gw-in → gw-out", Buckets: []LossBucket{{Start: t0, Sent: 100, Lost: 0}, {Start: t0.Add(time.Second), Sent: 100, Lost: 91},
			{Start: t0.Add(2 * time.Second), Sent: 0}, {Start: t0.Add(3 * time.Second), Sent: 9, Lost: 9}}},
		{Name: "client → gw-in", Buckets: []LossBucket{{Start: t0, Sent: 100}}},
	}
	c := LossOverTime(time.Second, segs)
	if c.Kind != ChartLine || c.XUnit != XUnitTime || c.YUnit != "%" || len(c.Series) != 2 {
		t.Fatalf("chart %+v", c)
	}
	p := c.Series[0].Points
	want := []Point{{X: UnixSeconds(t0), Y: 0}, {X: UnixSeconds(t0) + 1, Y: 91}, {X: UnixSeconds(t0) + 3, Y: 100, Gap: true}}
	if len(p) != len(want) {
		t.Fatalf("points %+v, want %+v", p, want)
	}
	for i := range want {
		if p[i] != want[i] {
			t.Errorf("point %d = %+v, want %+v", i, p[i], want[i])
		}
	}
	// More than six segments: the ones without loss are left out.
	var many []SegmentLoss
	for i := 0; i < 8; i++ {
		lost := 0
		if i == 3 {
			lost = 5
		}
		many = append(many, SegmentLoss{Name: string(rune('a' + i)), Buckets: []LossBucket{{Start: t0, Sent: 10, Lost: lost}}})
	}
	c = LossOverTime(0, many)
	if len(c.Series) != 1 || c.Series[0].Name != "d" || c.Series[0].Points[0].Y != 50 {
		t.Errorf("lossy series only: %+v", c.Series)
	}
}

func TestDelayHistogram(t *testing.T) {
	var a, b []float64
	for i := 0; i < 1000; i++ {
		a = append(a, 1+float64(i%10)*0.1) // 1.0 .. 1.9 ms, 100 each
	}
	a = append(a, 250) // one outlier
	for i := 0; i < 10; i++ {
		b = append(b, 5)
	}
	c := DelayHistogram([]HopDelays{{Name: "gw-in", DelaysMs: a}, {Name: "dns", DelaysMs: b}}, 20)
	if c.Kind != ChartHistogram || c.BinWidth <= 0 || len(c.Series) != 2 {
		t.Fatalf("chart %+v", c)
	}
	sum := func(s Series) float64 {
		t := 0.0
		for _, p := range s.Points {
			t += p.Y
		}
		return t
	}
	for _, s := range c.Series {
		if got := sum(s); math.Abs(got-100) > 0.01 {
			t.Errorf("%s: shares sum to %v%%, want 100", s.Name, got)
		}
	}
	// The outlier is clipped into the last bin, which the note says.
	last := c.Series[0].Points[len(c.Series[0].Points)-1]
	if last.X > 6 || c.Note == "" {
		t.Errorf("last bin at %v ms (outlier not clipped?), note %q", last.X, c.Note)
	}
	// dns: all 10 samples at 5 ms in one bin.
	if len(c.Series[1].Points) != 1 || c.Series[1].Points[0].Y != 100 {
		t.Errorf("dns bins %+v", c.Series[1].Points)
	}
	if e := DelayHistogram(nil, 0); len(e.Series) != 0 || e.Series == nil {
		t.Errorf("empty histogram %+v", e)
	}
}

func TestNiceStep(t *testing.T) {
	for _, c := range []struct{ in, want float64 }{{0.7, 1}, {1, 1}, {1.2, 2}, {3, 5}, {7, 10}, {0.013, 0.02}, {4500, 5000}} {
		if got := niceStep(c.in); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("niceStep(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}
