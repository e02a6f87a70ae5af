package main

import (
	"fmt"
	"math"
	"sort"
	"strconv"

	"github.com/vpndiag/vpndiag/analyze/correlate"
	"github.com/vpndiag/vpndiag/report"
)

// Trace's charts: loss per segment over time and the one-way delay
// distribution per hop.

const (
	// traceLossSeries bounds the lossy segments drawn over time (the
	// control class comes on top).
	traceLossSeries = 5
	// traceDelaySeries bounds the hop pairs in the delay distribution.
	traceDelaySeries = 8
	// traceDelayBins is about how many bins the distribution has.
	traceDelayBins = 30
)

// traceCharts returns trace's charts: "trace-loss-over-time" (the lossy
// segments and the control class of the worst, when any packet was lost)
// and "trace-delay-histogram" (when packets were timed between hops).
func traceCharts(res *correlate.Result, opt correlate.Options) []report.Chart {
	var out []report.Chart
	if c, ok := traceLossChart(res, opt); ok {
		out = append(out, c)
	}
	if c, ok := traceDelayChart(res.HopDelays(), traceDelayBins); ok {
		out = append(out, c)
	}
	return out
}

// segmentName labels a segment's series: "gw-in → gw-out, UDP to 198.18.2.53:53".
func segmentName(s *correlate.Segment) string {
	return fmt.Sprintf("%s → %s, %s", s.From, s.To, s.Class)
}

// traceLossChart draws loss over time for the segments above the loss
// thresholds (the worst traceLossSeries by packets lost; without any, the
// worst three with some loss) and the control class of the worst one, the
// class that shows the loss is specific to it.
func traceLossChart(res *correlate.Result, opt correlate.Options) (report.Chart, bool) {
	var lossy, some []*correlate.Segment
	for i := range res.Segments {
		s := &res.Segments[i]
		switch {
		case opt.Lossy(s):
			lossy = append(lossy, s)
		case s.Lost > 0:
			some = append(some, s)
		}
	}
	byLost := func(l []*correlate.Segment) {
		sort.SliceStable(l, func(i, j int) bool { return l[i].Lost > l[j].Lost })
	}
	byLost(lossy)
	byLost(some)
	pick := lossy
	if len(pick) > traceLossSeries {
		pick = pick[:traceLossSeries]
	}
	if len(pick) == 0 {
		pick = some[:min(len(some), 3)]
	}
	if len(pick) == 0 {
		return report.Chart{}, false
	}
	var segs []report.SegmentLoss
	incomplete := 0
	add := func(s *correlate.Segment, name string) {
		b, complete := res.LossOverTime(s)
		if !complete {
			incomplete++
		}
		if len(b) > 0 {
			segs = append(segs, report.SegmentLoss{Name: name, Buckets: b})
		}
	}
	for _, s := range pick {
		add(s, segmentName(s))
	}
	if c, _ := res.Control(pick[0]); c != nil {
		add(c, segmentName(c)+" (control)")
	}
	if len(segs) == 0 {
		return report.Chart{}, false
	}
	c := report.LossOverTime(res.LossIntervalWidth(), segs)
	c.Title = "Loss per segment and class over time"
	note := "Packets by when they were first seen on their path."
	if len(lossy) > len(pick) {
		note += fmt.Sprintf(" The %d segments losing most of %d above the thresholds are drawn.", len(pick), len(lossy))
	}
	if incomplete > 0 {
		note += " Some packets of the drawn segments are not in the intervals (too many path patterns to keep a series for each)."
	}
	c.Note = note + " " + c.Note
	return c, true
}

// traceDelayChart is the one-way delay distribution per hop pair (all
// classes), from the engine's histograms: one histogram series per pair
// over common bins (about bins of them, nice widths), in percent of the
// pair's packets. Delays above the 99.5th percentile of all pairs go into
// the last bin (the note says so), so one outlier does not squash the
// chart. At most traceDelaySeries pairs, those with the most packets, in
// the order given (HopDelays gives path order).
func traceDelayChart(hops []correlate.HopDelays, bins int) (report.Chart, bool) {
	c := report.Chart{Name: "trace-delay-histogram", Title: "One-way delay distribution per hop", Kind: report.ChartHistogram,
		XLabel: "delay", XUnit: "ms", YLabel: "share of packets", YUnit: "%"}
	var keep []correlate.HopDelays
	for _, h := range hops {
		if h.Packets > 0 && len(h.Bins) > 0 {
			keep = append(keep, h)
		}
	}
	if len(keep) == 0 {
		return c, false
	}
	if len(keep) > traceDelaySeries {
		// The pairs with the most packets, still in path order.
		idx := make([]int, len(keep))
		for i := range idx {
			idx[i] = i
		}
		sort.SliceStable(idx, func(i, j int) bool { return keep[idx[i]].Packets > keep[idx[j]].Packets })
		idx = idx[:traceDelaySeries]
		sort.Ints(idx)
		c.Note = fmt.Sprintf("The %d of %d hop pairs with the most packets.", traceDelaySeries, len(keep))
		top := make([]correlate.HopDelays, 0, len(idx))
		for _, i := range idx {
			top = append(top, keep[i])
		}
		keep = top
	}
	// Common range: the lowest delay to the 99.5th percentile of all.
	type wbin struct {
		lo, hi float64
		n      float64
	}
	var all []wbin
	var total float64
	for _, h := range keep {
		for _, b := range h.Bins {
			all = append(all, wbin{b.LoMs, b.HiMs, float64(b.Packets)})
			total += float64(b.Packets)
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].lo < all[j].lo })
	lo := all[0].lo
	hi := all[len(all)-1].hi
	var seen float64
	for _, b := range all {
		seen += b.n
		if seen >= 0.995*total {
			hi = b.hi
			break
		}
	}
	// Bins no narrower than the engine's (1 µs below 64 µs).
	width := chartStep(math.Max((hi-lo)/float64(bins), 0.001))
	start := math.Floor(lo/width) * width
	n := max(int(math.Ceil((hi-start)/width-1e-9)), 1)
	c.BinWidth = width
	var clipped float64
	for _, h := range keep {
		counts := make([]float64, n)
		var sum float64
		for _, b := range h.Bins {
			k := float64(b.Packets)
			sum += k
			// Spread the engine's bin over the chart's bins it overlaps.
			span := b.HiMs - b.LoMs
			for x := b.LoMs; x < b.HiMs-1e-12; {
				i := max(int(math.Floor((x-start)/width+1e-9)), 0)
				if i >= n {
					clipped += k * (b.HiMs - x) / span
					counts[n-1] += k * (b.HiMs - x) / span
					break
				}
				end := math.Min(start+float64(i+1)*width, b.HiMs)
				if end <= x {
					end = math.Min(x+width, b.HiMs)
				}
				counts[i] += k * (end - x) / span
				x = end
			}
		}
		ser := report.Series{Name: fmt.Sprintf("%s → %s", h.From, h.To), Points: []report.Point{}}
		for i, k := range counts {
			if v := round3(100 * k / sum); v > 0 {
				ser.Points = append(ser.Points, report.Point{X: roundTo(start+float64(i)*width, 9), Y: v})
			}
		}
		c.Series = append(c.Series, ser)
	}
	if clipped >= 0.5 {
		c.Note = joinNote(c.Note, fmt.Sprintf("%.0f delays above %s ms are counted in the last bin.", clipped,
			strconv.FormatFloat(roundTo(start+float64(n-1)*width, 9), 'g', -1, 64)))
	}
	c.Note = joinNote(c.Note, "All classes between each pair of consecutive hops, after clock correction.")
	return c, true
}

func joinNote(a, b string) string {
	if a == "" {
		return b
	}
	return a + " " + b
}

// chartStep rounds a positive step up to 1, 2 or 5 times a power of ten.
func chartStep(raw float64) float64 {
	if raw <= 0 || math.IsNaN(raw) || math.IsInf(raw, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw*(1-1e-9) {
			return roundTo(m*p, 12)
		}
	}
	return 10 * p
}

func roundTo(f float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(f*p) / p
}
