package report

import (
	"fmt"
	"math"
	"sort"
	"time"
)

// LossBucket is what one segment carried in one interval of time.
type LossBucket struct {
	Start time.Time // start of the interval
	Sent  int       // packets that entered the segment
	Lost  int       // of them, packets that never left it
}

// SegmentLoss is one segment's (and traffic class's) loss over time; Name
// labels the series, e.g. "gw-in → gw-out, UDP to 198.18.2.53:53".
type SegmentLoss struct {
	Name    string
	Buckets []LossBucket
}

// LossOverTime builds trace's "loss over time" chart: one line per segment,
// loss in percent of the packets sent in each interval of width (the bucket
// length, used only for the note). An interval in which nothing was sent
// breaks the line. Segments without any loss are left out when there are
// more than maxSeries (6) segments, so the lossy ones stay readable.
func LossOverTime(width time.Duration, segs []SegmentLoss) Chart {
	const maxSeries = 6
	c := Chart{Name: "trace-loss-over-time", Title: "Loss per segment over time", Kind: ChartLine,
		XLabel: "time (UTC)", XUnit: XUnitTime, YLabel: "packets lost", YUnit: "%"}
	keep := segs
	if len(segs) > maxSeries {
		keep = nil
		for _, s := range segs {
			for _, b := range s.Buckets {
				if b.Lost > 0 {
					keep = append(keep, s)
					break
				}
			}
		}
		if len(keep) < len(segs) {
			c.Note = fmt.Sprintf("%d segments without loss not drawn.", len(segs)-len(keep))
		}
	}
	for _, s := range keep {
		ser := Series{Name: s.Name, Points: []Point{}}
		gap := false
		for _, b := range s.Buckets {
			if b.Sent <= 0 {
				gap = true
				continue
			}
			ser.Points = append(ser.Points, Point{X: UnixSeconds(b.Start), Y: round(100*float64(b.Lost)/float64(b.Sent), 3), Gap: gap})
			gap = false
		}
		c.Series = append(c.Series, ser)
	}
	if width > 0 {
		if c.Note != "" {
			c.Note += " "
		}
		c.Note += fmt.Sprintf("Each point is %v of traffic.", width)
	}
	return c
}

// HopDelays is the one-way delays measured into one hop (or across one
// segment), in milliseconds.
type HopDelays struct {
	Name     string
	DelaysMs []float64
}

// DelayHistogram builds trace's per-hop delay distribution: one histogram
// series per hop over common bins (about bins of them, nice widths), in
// percent of that hop's packets so hops with different packet counts
// compare. Delays above the 99.5th percentile of all hops go into the last
// bin (the note says so), so one outlier does not squash the chart.
func DelayHistogram(hops []HopDelays, bins int) Chart {
	if bins <= 0 {
		bins = 30
	}
	c := Chart{Name: "trace-delay-histogram", Title: "One-way delay distribution per hop", Kind: ChartHistogram,
		XLabel: "delay", XUnit: "ms", YLabel: "share of packets", YUnit: "%"}
	var all []float64
	for _, h := range hops {
		for _, d := range h.DelaysMs {
			if finite(d) {
				all = append(all, d)
			}
		}
	}
	if len(all) == 0 {
		c.Series = []Series{}
		return c
	}
	sort.Float64s(all)
	lo := all[0]
	hi := all[int(math.Ceil(0.995*float64(len(all))))-1]
	if hi <= lo {
		hi = lo + 1e-3
	}
	width := niceStep((hi - lo) / float64(bins))
	start := math.Floor(lo/width) * width
	n := int(math.Ceil((hi-start)/width)) + 1
	if n < 1 {
		n = 1
	}
	c.BinWidth = width
	clipped := 0
	for _, h := range hops {
		counts := make([]int, n)
		total := 0
		for _, d := range h.DelaysMs {
			if !finite(d) {
				continue
			}
			i := int((d - start) / width)
			if i >= n {
				i = n - 1
				clipped++
			}
			if i < 0 {
				i = 0
			}
			counts[i]++
			total++
		}
		ser := Series{Name: h.Name, Points: []Point{}}
		for i, k := range counts {
			if k == 0 || total == 0 {
				continue
			}
			ser.Points = append(ser.Points, Point{X: round(start+float64(i)*width, 9), Y: round(100*float64(k)/float64(total), 3)})
		}
		c.Series = append(c.Series, ser)
	}
	if clipped > 0 {
		c.Note = fmt.Sprintf("%d delays above %s ms are counted in the last bin.", clipped, formatFloat(start+float64(n-1)*width))
	}
	return c
}

// niceStep rounds a positive step up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 || !finite(raw) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw*(1-1e-9) {
			return m * p
		}
	}
	return 10 * p
}

func round(f float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(f*p) / p
}
