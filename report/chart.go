package report

import (
	"fmt"
	"math"
	"time"
)

// ChartKind is how a chart draws its series.
type ChartKind string

// Chart kinds.
const (
	// ChartLine draws each series as a line through its points (X ascending).
	ChartLine ChartKind = "line"
	// ChartBar draws one bar per point; X is the index into Chart.Categories
	// (several series are grouped side by side).
	ChartBar ChartKind = "bar"
	// ChartHistogram draws each point as a bin [X, X+BinWidth) of height Y.
	ChartHistogram ChartKind = "histogram"
)

// X units with a meaning for the renderers; any other value is a unit name
// printed after the numbers (e.g. "ms").
const (
	// XUnitTime means X is a Unix time in seconds (UTC, fractions allowed);
	// axes print clock times and merged reports put marks on the timeline.
	XUnitTime = "time"
	// XUnitSeconds means X is seconds since the start of the measurement.
	XUnitSeconds = "s"
)

// Chart is one figure of a report. Every command adds its charts the same
// way (Report.AddChart); the HTML renderer draws them as inline SVG, text and
// Markdown show a sparkline per series, JSON keeps the numbers.
type Chart struct {
	Name   string    `json:"name"` // stable machine name, e.g. "rtt"
	Title  string    `json:"title"`
	Kind   ChartKind `json:"kind"`
	XLabel string    `json:"x_label,omitempty"`
	YLabel string    `json:"y_label,omitempty"`
	// XUnit is XUnitTime, XUnitSeconds or a unit name; YUnit a unit name
	// ("ms", "bit/s", "%", "ports" ...). Units "bit/s" and "B" get SI
	// prefixes on the axis.
	XUnit string `json:"x_unit,omitempty"`
	YUnit string `json:"y_unit,omitempty"`
	// Categories label the X positions 0..n-1 of a bar chart.
	Categories []string `json:"categories,omitempty"`
	// BinWidth is the width of every histogram bin, in X units.
	BinWidth float64  `json:"bin_width,omitempty"`
	Series   []Series `json:"series"`
	// Marks shade X intervals (outages, drops); Limits draw horizontal
	// lines (a port range size, a threshold).
	Marks  []Mark  `json:"marks,omitempty"`
	Limits []Limit `json:"limits,omitempty"`
	Note   string  `json:"note,omitempty"`
	// Source is the Source.ID of the report the chart came from, set only
	// in merged reports.
	Source string `json:"source,omitempty"`
}

// Series is one named set of points.
type Series struct {
	Name   string  `json:"name"`
	Points []Point `json:"points"`
}

// Point is one value. Gap breaks a line before the point (no data between
// the previous point and this one).
type Point struct {
	X   float64 `json:"x"`
	Y   float64 `json:"y"`
	Gap bool    `json:"gap,omitempty"`
}

// Mark shades the interval [From, To] of the X axis, with a label.
type Mark struct {
	From  float64 `json:"from"`
	To    float64 `json:"to"`
	Label string  `json:"label,omitempty"`
	// Severity colours the mark: "error" (default for outages), "warning"
	// or "info".
	Severity string `json:"severity,omitempty"`
}

// Limit is a horizontal line at Y, with a label.
type Limit struct {
	Y     float64 `json:"y"`
	Label string  `json:"label,omitempty"`
}

// AddChart appends a chart after making it safe to encode: points, marks and
// limits with NaN or infinite numbers are dropped (JSON has no such
// numbers), nil slices become empty, and marks are ordered From <= To.
// A chart without a name is given "chart-N".
func (r *Report) AddChart(c Chart) {
	if c.Name == "" {
		c.Name = fmt.Sprintf("chart-%d", len(r.Charts)+1)
	}
	if c.Kind == "" {
		c.Kind = ChartLine
	}
	if c.Series == nil {
		c.Series = []Series{}
	}
	for i := range c.Series {
		pts := c.Series[i].Points[:0:0]
		for _, p := range c.Series[i].Points {
			if finite(p.X) && finite(p.Y) {
				pts = append(pts, p)
			}
		}
		c.Series[i].Points = pts
		if c.Series[i].Points == nil {
			c.Series[i].Points = []Point{}
		}
	}
	var marks []Mark
	for _, m := range c.Marks {
		if !finite(m.From) || !finite(m.To) {
			continue
		}
		if m.To < m.From {
			m.From, m.To = m.To, m.From
		}
		marks = append(marks, m)
	}
	c.Marks = marks
	var limits []Limit
	for _, l := range c.Limits {
		if finite(l.Y) {
			limits = append(limits, l)
		}
	}
	c.Limits = limits
	if !finite(c.BinWidth) || c.BinWidth < 0 {
		c.BinWidth = 0
	}
	r.Charts = append(r.Charts, c)
}

// Points counts the points of all series.
func (c *Chart) Points() int {
	n := 0
	for _, s := range c.Series {
		n += len(s.Points)
	}
	return n
}

// UnixSeconds converts a time to the X value of an XUnitTime chart.
func UnixSeconds(t time.Time) float64 {
	return float64(t.UnixNano()) / 1e9
}

// FromUnixSeconds converts an XUnitTime X value back to a time (UTC).
func FromUnixSeconds(x float64) time.Time {
	sec, frac := math.Modf(x)
	return time.Unix(int64(sec), int64(math.Round(frac*1e9))).UTC()
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
