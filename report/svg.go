package report

import (
	"fmt"
	"html"
	"math"
	"sort"
	"strings"
	"time"
)

// Chart geometry, in SVG user units (the figure scales to the page width).
const (
	svgWidth   = 760
	svgHeight  = 320
	plotLeft   = 70
	plotRight  = 24
	plotTop    = 44
	plotBottom = 54
	maxDots    = 150 // draw a circle per point up to this many points in a chart
	maxLegend  = 10
	seriesPal  = 8 // CSS series colours s0..s7
)

// RenderSVG writes one chart as an inline SVG element (no XML declaration,
// no namespace: it is meant to sit in an HTML page whose stylesheet gives
// the classes their colours). id must be unique in the page.
func RenderSVG(b *strings.Builder, c *Chart, id string) {
	pw := float64(svgWidth - plotLeft - plotRight)
	ph := float64(svgHeight - plotTop - plotBottom)
	fmt.Fprintf(b, `<svg class="chart chart-%s" id="%s" viewBox="0 0 %d %d" role="img" aria-labelledby="%s-t">`,
		esc(string(c.Kind)), esc(id), svgWidth, svgHeight, esc(id))
	fmt.Fprintf(b, `<title id="%s-t">%s</title>`, esc(id), esc(chartAlt(c)))
	sx, sy, xt, yt, ok := chartScales(c, pw, ph)
	// Plot frame and grid.
	fmt.Fprintf(b, `<rect class="plot" x="%d" y="%d" width="%s" height="%s"/>`, plotLeft, plotTop, num(pw), num(ph))
	if !ok {
		fmt.Fprintf(b, `<text class="empty" x="%s" y="%s" text-anchor="middle">no data</text></svg>`,
			num(plotLeft+pw/2), num(plotTop+ph/2))
		return
	}
	b.WriteString(`<g class="grid">`)
	for _, t := range yt {
		y := sy(t.v)
		fmt.Fprintf(b, `<line x1="%d" x2="%s" y1="%s" y2="%s"/>`, plotLeft, num(plotLeft+pw), num(y), num(y))
	}
	b.WriteString(`</g>`)
	// Marks under the data.
	if len(c.Marks) > 0 && c.Kind != ChartBar {
		b.WriteString(`<g class="marks">`)
		for _, m := range c.Marks {
			x0, x1 := clamp(sx(m.From), plotLeft, plotLeft+pw), clamp(sx(m.To), plotLeft, plotLeft+pw)
			if x1-x0 < 2 {
				x1 = math.Min(x0+2, plotLeft+pw)
				x0 = x1 - 2
			}
			fmt.Fprintf(b, `<rect class="mark mark-%s" x="%s" y="%d" width="%s" height="%s"><title>%s</title></rect>`,
				markSeverity(m), num(x0), plotTop, num(x1-x0), num(ph), esc(markTitle(c, m)))
		}
		b.WriteString(`</g>`)
	}
	// Data.
	b.WriteString(`<g class="data">`)
	switch c.Kind {
	case ChartBar:
		drawBars(b, c, sx, sy, ph)
	case ChartHistogram:
		drawHistogram(b, c, sx, sy)
	default:
		drawLines(b, c, sx, sy)
	}
	b.WriteString(`</g>`)
	// Limits over the data.
	for _, l := range c.Limits {
		y := sy(l.Y)
		if y < plotTop-0.5 || y > plotTop+ph+0.5 {
			continue
		}
		fmt.Fprintf(b, `<g class="limit"><line x1="%d" x2="%s" y1="%s" y2="%s"/><text x="%s" y="%s" text-anchor="end">%s</text></g>`,
			plotLeft, num(plotLeft+pw), num(y), num(y), num(plotLeft+pw-4), num(y-4), esc(l.Label))
	}
	// Axes.
	fmt.Fprintf(b, `<g class="axis"><line x1="%d" x2="%d" y1="%d" y2="%s"/><line x1="%d" x2="%s" y1="%s" y2="%s"/>`,
		plotLeft, plotLeft, plotTop, num(plotTop+ph), plotLeft, num(plotLeft+pw), num(plotTop+ph), num(plotTop+ph))
	for _, t := range yt {
		y := sy(t.v)
		fmt.Fprintf(b, `<line x1="%d" x2="%d" y1="%s" y2="%s"/><text x="%d" y="%s" text-anchor="end" dominant-baseline="middle">%s</text>`,
			plotLeft-4, plotLeft, num(y), num(y), plotLeft-7, num(y), esc(t.label))
	}
	for _, t := range xt {
		x := sx(t.v)
		fmt.Fprintf(b, `<line x1="%s" x2="%s" y1="%s" y2="%s"/><text x="%s" y="%s" text-anchor="middle">%s</text>`,
			num(x), num(x), num(plotTop+ph), num(plotTop+ph+4), num(x), num(plotTop+ph+17), esc(t.label))
	}
	b.WriteString(`</g>`)
	// Axis labels.
	if xl := axisLabel(c.XLabel, c.XUnit, true); xl != "" {
		fmt.Fprintf(b, `<text class="label" x="%s" y="%d" text-anchor="middle">%s</text>`, num(plotLeft+pw/2), svgHeight-10, esc(xl))
	}
	if yl := axisLabel(c.YLabel, c.YUnit, false); yl != "" {
		fmt.Fprintf(b, `<text class="label" transform="translate(16 %s) rotate(-90)" text-anchor="middle">%s</text>`, num(plotTop+ph/2), esc(yl))
	}
	drawLegend(b, c)
	b.WriteString(`</svg>`)
}

type tick struct {
	v     float64
	label string
}

// chartScales returns the X and Y scales and ticks; ok is false when the
// chart has nothing to draw.
func chartScales(c *Chart, pw, ph float64) (sx, sy func(float64) float64, xt, yt []tick, ok bool) {
	xmin, xmax := math.Inf(1), math.Inf(-1)
	ymin, ymax := 0.0, math.Inf(-1)
	for _, s := range c.Series {
		for _, p := range s.Points {
			xmin, xmax = math.Min(xmin, p.X), math.Max(xmax, p.X)
			ymin, ymax = math.Min(ymin, p.Y), math.Max(ymax, p.Y)
		}
	}
	if math.IsInf(xmin, 1) {
		// No points: marks alone still make a time line.
		if len(c.Marks) == 0 || c.Kind == ChartBar {
			return nil, nil, nil, nil, false
		}
		ymax = 1
	}
	if c.Kind != ChartBar {
		for _, m := range c.Marks {
			xmin, xmax = math.Min(xmin, m.From), math.Max(xmax, m.To)
		}
	}
	for _, l := range c.Limits {
		ymin, ymax = math.Min(ymin, l.Y), math.Max(ymax, l.Y)
	}
	switch c.Kind {
	case ChartBar:
		n := len(c.Categories)
		if k := int(xmax) + 1; k > n {
			n = k
		}
		if n < 1 {
			n = 1
		}
		band := pw / float64(n)
		sx = func(x float64) float64 { return plotLeft + (x+0.5)*band }
		step := 1
		if n > 16 {
			step = (n + 15) / 16
		}
		for i := 0; i < n; i += step {
			label := fmt.Sprint(i)
			if i < len(c.Categories) {
				label = c.Categories[i]
			}
			xt = append(xt, tick{float64(i), shorten(label, int(band*float64(step)/6.5))})
		}
	default:
		if c.Kind == ChartHistogram {
			xmax += c.BinWidth
		}
		if c.XUnit == XUnitSeconds && xmin > 0 {
			xmin = 0 // seconds since the start: the axis starts at the start
		}
		if xmax <= xmin {
			xmin, xmax = xmin-0.5, xmax+0.5
		}
		if c.XUnit == XUnitTime {
			xt = timeTicks(xmin, xmax)
		} else {
			var lo, hi float64
			xt, lo, hi = numTicks(xmin, xmax, 7, c.XUnit, false)
			if c.Kind == ChartHistogram || c.XUnit == XUnitSeconds {
				// Keep the data edge to edge; ticks outside are dropped.
				lo, hi = xmin, xmax
			}
			xmin, xmax = lo, hi
			xt = within(xt, xmin, xmax)
		}
		span := xmax - xmin
		sx = func(x float64) float64 { return plotLeft + (x-xmin)/span*pw }
	}
	if ymax <= ymin {
		ymax = ymin + 1
	}
	yt, ylo, yhi := numTicks(ymin, ymax*1.04, 5, c.YUnit, true)
	if ymin >= 0 && ylo < 0 {
		ylo = 0
	}
	yspan := yhi - ylo
	sy = func(y float64) float64 { return plotTop + ph - (y-ylo)/yspan*ph }
	return sx, sy, xt, yt, true
}

func drawLines(b *strings.Builder, c *Chart, sx, sy func(float64) float64) {
	dots := c.Points() <= maxDots
	for i, s := range c.Series {
		if len(s.Points) == 0 {
			continue
		}
		pts := append([]Point(nil), s.Points...)
		sort.SliceStable(pts, func(a, b int) bool { return pts[a].X < pts[b].X })
		var d strings.Builder
		for j, p := range pts {
			cmd := "L"
			if j == 0 || p.Gap {
				cmd = "M"
			}
			fmt.Fprintf(&d, "%s%s %s", cmd, num(sx(p.X)), num(sy(p.Y)))
		}
		fmt.Fprintf(b, `<path class="line s%d" d="%s"><title>%s</title></path>`, i%seriesPal, d.String(), esc(s.Name))
		if dots || len(pts) == 1 {
			fmt.Fprintf(b, `<g class="dots s%d">`, i%seriesPal)
			for _, p := range pts {
				fmt.Fprintf(b, `<circle cx="%s" cy="%s" r="2.5"><title>%s</title></circle>`, num(sx(p.X)), num(sy(p.Y)), esc(pointTitle(c, s.Name, p)))
			}
			b.WriteString(`</g>`)
		}
	}
}

func drawBars(b *strings.Builder, c *Chart, sx, sy func(float64) float64, ph float64) {
	n := len(c.Series)
	if n == 0 {
		return
	}
	band := sx(1) - sx(0)
	inner := band * 0.8 / float64(n)
	base := sy(0)
	for i, s := range c.Series {
		for _, p := range s.Points {
			x := sx(p.X) - band*0.4 + float64(i)*inner
			y := sy(p.Y)
			top, h := math.Min(y, base), math.Abs(base-y)
			if h < 0.5 && p.Y != 0 {
				h = 0.5
			}
			label := s.Name
			if k := int(p.X); k >= 0 && k < len(c.Categories) {
				label = c.Categories[k]
				if n > 1 {
					label = s.Name + ", " + label
				}
			}
			fmt.Fprintf(b, `<rect class="bar s%d" x="%s" y="%s" width="%s" height="%s"><title>%s: %s</title></rect>`,
				i%seriesPal, num(x), num(top), num(math.Max(inner-1, 1)), num(h), esc(label), esc(valueText(p.Y, c.YUnit)))
		}
	}
}

func drawHistogram(b *strings.Builder, c *Chart, sx, sy func(float64) float64) {
	w := c.BinWidth
	for i, s := range c.Series {
		pts := s.Points
		for j, p := range pts {
			bw := w
			if bw <= 0 {
				if j+1 < len(pts) {
					bw = pts[j+1].X - p.X
				} else if j > 0 {
					bw = p.X - pts[j-1].X
				} else {
					bw = 1
				}
			}
			x0, x1 := sx(p.X), sx(p.X+bw)
			y, base := sy(p.Y), sy(0)
			fmt.Fprintf(b, `<rect class="bin s%d" x="%s" y="%s" width="%s" height="%s"><title>%s: %s–%s %s: %s</title></rect>`,
				i%seriesPal, num(x0), num(math.Min(y, base)), num(math.Max(x1-x0-0.5, 0.5)), num(math.Abs(base-y)),
				esc(s.Name), formatFloat(p.X), formatFloat(p.X+bw), esc(c.XUnit), esc(valueText(p.Y, c.YUnit)))
		}
	}
}

func drawLegend(b *strings.Builder, c *Chart) {
	type item struct{ class, label string }
	var items []item
	if len(c.Series) > 1 || (len(c.Series) == 1 && c.Series[0].Name != "") {
		for i, s := range c.Series {
			if i == maxLegend {
				items = append(items, item{"", fmt.Sprintf("+%d more", len(c.Series)-maxLegend)})
				break
			}
			items = append(items, item{fmt.Sprintf("sw s%d", i%seriesPal), s.Name})
		}
	}
	seen := map[string]bool{}
	for _, m := range c.Marks {
		l := m.Label
		if l == "" {
			l = "marked"
		}
		if key := markSeverity(m) + "|" + l; !seen[key] && len(seen) < 3 {
			seen[key] = true
			items = append(items, item{"sw mark mark-" + markSeverity(m), l})
		}
	}
	if len(items) == 0 {
		return
	}
	b.WriteString(`<g class="legend">`)
	x, y := float64(plotLeft), 14.0
	for _, it := range items {
		label := shorten(it.label, 48)
		w := 18 + 6.6*float64(len([]rune(label))) + 14
		if x+w > svgWidth-plotRight && x > plotLeft {
			x, y = plotLeft, y+15
		}
		if y > plotTop-8 {
			break
		}
		if it.class != "" {
			fmt.Fprintf(b, `<rect class="%s" x="%s" y="%s" width="12" height="10"/>`, it.class, num(x), num(y-8))
		}
		fmt.Fprintf(b, `<text x="%s" y="%s">%s</text>`, num(x+16), num(y+1), esc(label))
		x += w
	}
	b.WriteString(`</g>`)
}

// numTicks returns about n nice ticks covering [lo, hi] and the rounded
// range.
func numTicks(lo, hi float64, n int, unit string, yAxis bool) ([]tick, float64, float64) {
	step := niceStep((hi - lo) / float64(n))
	start := math.Floor(lo/step+1e-9) * step
	end := math.Ceil(hi/step-1e-9) * step
	var ts []tick
	for i := 0; i <= 100; i++ {
		v := start + float64(i)*step
		if v > end+step*1e-6 {
			break
		}
		if math.Abs(v) < step*1e-9 {
			v = 0
		}
		ts = append(ts, tick{v, tickLabel(v, step, unit, yAxis)})
	}
	return ts, start, end
}

func within(ts []tick, lo, hi float64) []tick {
	var out []tick
	eps := (hi - lo) * 1e-9
	for _, t := range ts {
		if t.v >= lo-eps && t.v <= hi+eps {
			out = append(out, t)
		}
	}
	return out
}

// siUnits get k/M/G prefixes on the axes.
var siUnits = map[string]bool{"bit/s": true, "B": true, "B/s": true, "packets/s": true, "pps": true}

func tickLabel(v, step float64, unit string, yAxis bool) string {
	if siUnits[unit] {
		return siText(v, step)
	}
	return trimFloat(v, decimals(step))
}

// siText prints v with an SI prefix chosen from the step.
func siText(v, step float64) string {
	scale, prefix := 1.0, ""
	switch m := math.Max(math.Abs(v), step); {
	case m >= 1e9:
		scale, prefix = 1e9, "G"
	case m >= 1e6:
		scale, prefix = 1e6, "M"
	case m >= 1e3:
		scale, prefix = 1e3, "k"
	}
	return trimFloat(v/scale, decimals(step/scale)) + prefix
}

func decimals(step float64) int {
	if step <= 0 || step >= 1 {
		return 0
	}
	d := int(math.Ceil(-math.Log10(step) - 1e-9))
	if d > 9 {
		d = 9
	}
	return d
}

func trimFloat(v float64, dec int) string {
	s := fmt.Sprintf("%.*f", dec, v)
	if s == "-0" {
		s = "0"
	}
	return s
}

// timeTicks picks clock-time ticks for a Unix-seconds axis.
func timeTicks(lo, hi float64) []tick {
	steps := []float64{0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800,
		3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800}
	step := steps[len(steps)-1]
	for _, s := range steps {
		if (hi-lo)/s <= 8 {
			step = s
			break
		}
	}
	layout := "15:04:05"
	switch {
	case step < 0.01:
		layout = "15:04:05.000"
	case step < 0.1:
		layout = "15:04:05.00"
	case step < 1:
		layout = "15:04:05.0"
	case step >= 86400:
		layout = "Jan 2"
	case hi-lo > 86400:
		layout = "Jan 2 15:04"
	}
	var ts []tick
	start := math.Ceil(lo/step-1e-9) * step
	for i := 0; i < 100; i++ {
		v := start + float64(i)*step
		if v > hi+step*1e-6 {
			break
		}
		ts = append(ts, tick{v, FromUnixSeconds(v).Format(layout)})
	}
	return ts
}

func axisLabel(label, unit string, xAxis bool) string {
	switch {
	case unit == XUnitTime && xAxis:
		if label == "" {
			return "time (UTC)"
		}
		return label
	case unit == "" || unit == XUnitTime:
		return label
	case label == "":
		return unit
	}
	return label + " (" + unit + ")"
}

func chartAlt(c *Chart) string {
	var parts []string
	for _, s := range c.Series {
		if len(s.Points) == 0 {
			continue
		}
		lo, hi := s.Points[0].Y, s.Points[0].Y
		for _, p := range s.Points {
			lo, hi = math.Min(lo, p.Y), math.Max(hi, p.Y)
		}
		parts = append(parts, fmt.Sprintf("%s: %d points from %s to %s", s.Name, len(s.Points), valueText(lo, c.YUnit), valueText(hi, c.YUnit)))
	}
	alt := c.Title
	if len(parts) > 0 {
		alt += " — " + strings.Join(parts, "; ")
	}
	if len(c.Marks) > 0 {
		alt += fmt.Sprintf("; %d marked interval(s)", len(c.Marks))
	}
	return alt
}

func pointTitle(c *Chart, series string, p Point) string {
	x := formatFloat(p.X)
	if c.XUnit == XUnitTime {
		x = FromUnixSeconds(p.X).Format("15:04:05.000")
	} else if c.XUnit != "" {
		x += " " + c.XUnit
	}
	if series != "" {
		series += ": "
	}
	return series + x + ", " + valueText(p.Y, c.YUnit)
}

func markTitle(c *Chart, m Mark) string {
	label := m.Label
	if label == "" {
		label = "marked"
	}
	if c.XUnit == XUnitTime {
		from, to := FromUnixSeconds(m.From), FromUnixSeconds(m.To)
		return fmt.Sprintf("%s %s – %s (%v)", label, from.Format("15:04:05.000"), to.Format("15:04:05.000"),
			to.Sub(from).Round(time.Millisecond))
	}
	return fmt.Sprintf("%s %s – %s %s", label, formatFloat(m.From), formatFloat(m.To), c.XUnit)
}

func markSeverity(m Mark) string {
	switch m.Severity {
	case "warning", "info":
		return m.Severity
	}
	return "error"
}

// valueText prints a value with its unit.
func valueText(v float64, unit string) string {
	if siUnits[unit] {
		scale, prefix := 1.0, ""
		switch a := math.Abs(v); {
		case a >= 1e9:
			scale, prefix = 1e9, "G"
		case a >= 1e6:
			scale, prefix = 1e6, "M"
		case a >= 1e3:
			scale, prefix = 1e3, "k"
		}
		return formatFloat(v/scale) + prefix + unit
	}
	s := formatFloat(v)
	if unit == "%" {
		return s + "%"
	}
	if unit != "" {
		return s + " " + unit
	}
	return s
}

func shorten(s string, max int) string {
	if max < 4 {
		max = 4
	}
	r := []rune(s)
	if len(r) <= max {
		return s
	}
	return string(r[:max-1]) + "…"
}

func clamp(v, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, v)) }

// num prints a coordinate with one decimal.
func num(f float64) string {
	s := fmt.Sprintf("%.1f", f)
	s = strings.TrimSuffix(s, ".0")
	if s == "-0" {
		return "0"
	}
	return s
}

func esc(s string) string { return html.EscapeString(s) }
