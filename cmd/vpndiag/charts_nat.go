package main

import (
	"fmt"

	"github.com/vpndiag/vpndiag/probe/nat"
	"github.com/vpndiag/vpndiag/report"
)

// natUsage is one entry of natcheck's data.nat.usage (capture mode): a
// busy pool's most live mappings per interval, from the outside capture.
type natUsage struct {
	Input         string `json:"input"`
	Protocol      string `json:"protocol"`
	NAT           string `json:"nat"`
	Destination   string `json:"destination"`
	PortMin       int    `json:"port_min"`
	PortMax       int    `json:"port_max"`
	DistinctPorts int    `json:"distinct_ports"`
	Dense         bool   `json:"dense"`
	PeakMappings  int    `json:"peak_mappings"`
	Series        struct {
		Start int64 `json:"start_unix_ns"`
		Width int64 `json:"width_ns"`
		Peak  []int `json:"peak_live"`
	} `json:"series"`
}

// natUsageChart draws one pool's most live mappings per interval against
// the span of ports it was seen using (an outside capture shows the ports
// used, not the configured range: the span is the range only when the
// ports are spread over it, which the nat.range-small finding judges).
func natUsageChart(n int, u natUsage) report.Chart {
	c := report.Chart{Name: fmt.Sprintf("nat-pool-usage-%d", n), Kind: report.ChartLine, XUnit: report.XUnitTime,
		Title:  fmt.Sprintf("NAT port pool usage: %s %s to %s (outside capture)", u.Protocol, u.NAT, u.Destination),
		XLabel: "time (UTC), start of each interval", YLabel: "live mappings"}
	ser := report.Series{Name: "most live mappings"}
	for i, v := range u.Series.Peak {
		x := float64(u.Series.Start+int64(i)*u.Series.Width) / 1e9
		ser.Points = append(ser.Points, report.Point{X: x, Y: float64(v)})
	}
	c.Series = []report.Series{ser}
	span := u.PortMax - u.PortMin + 1
	if span > 0 {
		c.Limits = []report.Limit{{Y: float64(span), Label: fmt.Sprintf("ports seen %d-%d: %d", u.PortMin, u.PortMax, span)}}
	}
	w := report.FormatCell(float64(u.Series.Width) / 1e9)
	c.Note = fmt.Sprintf("Each point is the most mappings live at once in %s s (a mapping lives from its first packet to its last plus the idle timeout).", w)
	if u.Dense && u.PeakMappings == span {
		c.Note += fmt.Sprintf(" All %d ports of %d-%d were live at once: the pool's ceiling.", span, u.PortMin, u.PortMax)
	}
	return c
}

// natWatchCharts are natcheck --watch's charts: per followed pool (the 4
// busiest), the ports in use at every sample against the range size, with
// the intervals in which the kernel failed to insert or dropped new
// connections marked; and the conntrack entries against the table's
// maximum. Nothing with fewer than two samples.
func natWatchCharts(h *nat.History) []report.Chart {
	if h == nil || len(h.Times) < 2 {
		return nil
	}
	var marks []report.Mark
	for i := 1; i < len(h.Times); i++ {
		if h.Drops[i] == 0 {
			continue
		}
		from, to := report.UnixSeconds(h.Times[i-1]), report.UnixSeconds(h.Times[i])
		if n := len(marks); n > 0 && marks[n-1].To == from {
			marks[n-1].To = to
			continue
		}
		marks = append(marks, report.Mark{From: from, To: to, Label: "connections dropped (insert_failed, drop)"})
	}
	var out []report.Chart
	for i, p := range h.Busiest(4) {
		c := report.Chart{Name: fmt.Sprintf("nat-pool-usage-%d", i+1), Kind: report.ChartLine, XUnit: report.XUnitTime,
			Title:  fmt.Sprintf("NAT port pool usage: %s (live)", p.Name()),
			XLabel: "time (UTC)", YLabel: "ports in use", Marks: marks}
		ser := report.Series{Name: "ports in use"}
		for j, v := range p.InUse {
			ser.Points = append(ser.Points, report.Point{X: report.UnixSeconds(h.Times[j]), Y: float64(v)})
		}
		c.Series = []report.Series{ser}
		label := fmt.Sprintf("port range %d-%d: %d ports", p.RangeMin, p.RangeMax, p.RangeSize())
		if p.RangeFrom != "" {
			label += " (" + p.RangeFrom + ")"
		}
		c.Limits = []report.Limit{{Y: float64(p.RangeSize()), Label: label}}
		c.Note = "Conntrack mappings of the pool at every sample; drops are the kernel's conntrack counters, for all pools."
		out = append(out, c)
	}
	ct := report.Chart{Name: "nat-conntrack-usage", Title: "Conntrack table entries (live)", Kind: report.ChartLine,
		XUnit: report.XUnitTime, XLabel: "time (UTC)", YLabel: "entries", Marks: marks}
	ser := report.Series{Name: "entries"}
	for j, v := range h.Entries {
		ser.Points = append(ser.Points, report.Point{X: report.UnixSeconds(h.Times[j]), Y: float64(v)})
	}
	ct.Series = []report.Series{ser}
	if m := h.Max[len(h.Max)-1]; m > 0 {
		ct.Limits = []report.Limit{{Y: float64(m), Label: fmt.Sprintf("nf_conntrack_max: %d", m)}}
	}
	return append(out, ct)
}
