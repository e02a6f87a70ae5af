package main

import (
	"fmt"
	"time"

	"github.com/vpndiag/vpndiag/probe/compare"
	"github.com/vpndiag/vpndiag/report"
)

// compareCharts are probe compare's charts: the round-trip time of both
// paths over time, side by side ("compare-rtt", with the intervals in which
// echoes were lost shaded), and, after --throughput, the throughput per
// interval of every test on both paths ("compare-throughput").
func compareCharts(res *compare.Result) []report.Chart {
	if res == nil {
		return nil
	}
	var out []report.Chart
	if c, ok := compareRTTChart(res); ok {
		out = append(out, c)
	}
	if c, ok := compareThroughputChart(res); ok {
		out = append(out, c)
	}
	return out
}

func compareRTTChart(res *compare.Result) (report.Chart, bool) {
	c := report.Chart{Name: "compare-rtt", Title: "Round-trip time: tunnel and underlay", Kind: report.ChartLine,
		XLabel: "time (UTC)", XUnit: report.XUnitTime, YLabel: "RTT", YUnit: "ms"}
	var width time.Duration
	for _, p := range []*compare.Path{&res.Tunnel, &res.Underlay} {
		s := p.RTT
		if s == nil || len(s.Buckets) == 0 {
			continue
		}
		width = s.Width
		ser := report.Series{Name: fmt.Sprintf("%s %s", p.Role, p.Target), Points: []report.Point{}}
		gap := false
		severity := "error"
		if p.Role == "underlay" {
			severity = "warning"
		}
		for i, b := range s.Buckets {
			from := s.Start.Add(time.Duration(i) * s.Width)
			if b.Lost > 0 {
				f, t := report.UnixSeconds(from), report.UnixSeconds(from.Add(s.Width))
				if n := len(c.Marks); n > 0 && c.Marks[n-1].Severity == severity && c.Marks[n-1].To >= f {
					c.Marks[n-1].To = t
				} else {
					c.Marks = append(c.Marks, report.Mark{From: f, To: t, Label: p.Role + ": echoes lost", Severity: severity})
				}
			}
			if b.Replies == 0 {
				gap = true
				continue
			}
			ser.Points = append(ser.Points, report.Point{X: report.UnixSeconds(from.Add(s.Width / 2)), Y: ms(b.Mean()), Gap: gap})
			gap = false
		}
		c.Series = append(c.Series, ser)
	}
	if len(c.Series) == 0 {
		return c, false
	}
	per := 1
	if res.Interval > 0 {
		per = int(width.Seconds()/res.Interval + 0.5)
	}
	c.Note = fmt.Sprintf("Each point is the mean round trip of the replies to %d echo(es) (%v) of %d bytes; shaded: echoes lost. "+
		"The underlay's echoes are sent half an interval after the tunnel's.", per, width, res.Size)
	return c, true
}

func compareThroughputChart(res *compare.Result) (report.Chart, bool) {
	c := report.Chart{Name: "compare-throughput", Title: "Throughput per interval: tunnel and underlay", Kind: report.ChartLine,
		XLabel: "time since the start of each test", XUnit: report.XUnitSeconds, YLabel: "throughput", YUnit: "bit/s"}
	for _, p := range []*compare.Path{&res.Tunnel, &res.Underlay} {
		for i, r := range p.Throughput {
			if r == nil || len(r.Intervals) == 0 {
				continue
			}
			name := fmt.Sprintf("%s %s", p.Role, p.Target)
			if len(p.Throughput) > 1 {
				name += fmt.Sprintf(" round %d", i+1)
			}
			ser := report.Series{Name: name}
			for _, iv := range r.Intervals {
				ser.Points = append(ser.Points, report.Point{X: round3(iv.End), Y: iv.Sum.BitsPerSecond})
			}
			c.Series = append(c.Series, ser)
		}
	}
	if len(c.Series) == 0 {
		return c, false
	}
	c.Note = "The tests ran one after the other (never at once), each from its own start."
	return c, true
}
