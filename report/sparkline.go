package report

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// sparkWidth is the most characters a sparkline uses.
const sparkWidth = 40

var sparkRunes = []rune("▁▂▃▄▅▆▇█")

// sparkline draws a series' Y values, in X order, as block characters
// scaled from lo to hi; longer series are averaged into sparkWidth columns.
func sparkline(pts []Point, lo, hi float64) string {
	if len(pts) == 0 {
		return ""
	}
	sorted := append([]Point(nil), pts...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].X < sorted[j].X })
	cols := len(sorted)
	if cols > sparkWidth {
		cols = sparkWidth
	}
	var b strings.Builder
	for c := 0; c < cols; c++ {
		from, to := c*len(sorted)/cols, (c+1)*len(sorted)/cols
		sum := 0.0
		for _, p := range sorted[from:to] {
			sum += p.Y
		}
		v := sum / float64(to-from)
		i := 0
		if hi > lo {
			i = int(math.Round((v - lo) / (hi - lo) * float64(len(sparkRunes)-1)))
		}
		i = max(0, min(len(sparkRunes)-1, i))
		b.WriteRune(sparkRunes[i])
	}
	return b.String()
}

// chartLines summarizes a chart for text and Markdown: one line per series
// with a sparkline, the range and the number of points, then the marks and
// limits.
func chartLines(c *Chart) []string {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range c.Series {
		for _, p := range s.Points {
			lo, hi = math.Min(lo, p.Y), math.Max(hi, p.Y)
		}
	}
	if lo > 0 {
		lo = 0
	}
	var out []string
	width := 0
	for _, s := range c.Series {
		width = max(width, len([]rune(s.Name)))
	}
	for _, s := range c.Series {
		if len(s.Points) == 0 {
			out = append(out, fmt.Sprintf("%-*s  (no data)", width, s.Name))
			continue
		}
		smin, smax := math.Inf(1), math.Inf(-1)
		for _, p := range s.Points {
			smin, smax = math.Min(smin, p.Y), math.Max(smax, p.Y)
		}
		out = append(out, fmt.Sprintf("%-*s  %s  %s .. %s (%d points)", width, s.Name, sparkline(s.Points, lo, hi),
			valueText(smin, c.YUnit), valueText(smax, c.YUnit), len(s.Points)))
	}
	if c.Kind == ChartBar && len(c.Categories) > 0 && len(c.Series) > 0 {
		var parts []string
		for _, p := range c.Series[0].Points {
			if k := int(p.X); k >= 0 && k < len(c.Categories) {
				parts = append(parts, c.Categories[k]+" "+valueText(p.Y, c.YUnit))
			}
		}
		out = append(out, strings.Join(parts, ", "))
	}
	for _, m := range c.Marks {
		out = append(out, "marked: "+markTitle(c, m))
	}
	for _, l := range c.Limits {
		out = append(out, fmt.Sprintf("limit: %s at %s", l.Label, valueText(l.Y, c.YUnit)))
	}
	if c.Note != "" {
		out = append(out, c.Note)
	}
	return out
}

// eventLine renders a timeline event on one line.
func eventLine(e Event) string {
	s := e.Time.UTC().Format("2006-01-02 15:04:05.000") + "  " + e.Kind
	if e.Source != "" {
		s += "  [" + e.Source + "]"
	}
	s += "  " + e.Text
	if e.DurationSeconds > 0 {
		s += " (" + time.Duration(e.DurationSeconds*float64(time.Second)).Round(time.Millisecond).String() + ")"
	}
	return s
}

// humanTables is the tables text and Markdown print: the report's tables,
// titled with their source, so the answer comes right after the verdict; then
// the inputs (per source in a merged report, where they are already among
// the tables).
func humanTables(r *Report) []Table {
	var ts []Table
	for _, t := range r.Tables {
		if t.Source != "" {
			t.Title = "[" + t.Source + "] " + t.Title
		}
		ts = append(ts, t)
	}
	if len(r.Sources) == 0 && len(r.Inputs) > 0 {
		ts = append(ts, inputsTable(r))
	}
	return ts
}
