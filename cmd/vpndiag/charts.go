package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vpndiag/vpndiag/probe/compare"
	"github.com/vpndiag/vpndiag/probe/iperf"
	"github.com/vpndiag/vpndiag/probe/watch"
	"github.com/vpndiag/vpndiag/report"
)

// Charts of the commands. Each builder takes the command's result (or the
// finished report, for results that live in its tables and data) and
// returns report.Chart values for Report.AddChart. The same builders run
// in `vpndiag report` for saved reports written before they had charts
// (backfillCharts).

// protocolChart is analyze's protocol share: a bar per layer and protocol,
// in percent of packets and of bytes, from the "protocols" table.
func protocolChart(rep *report.Report) (report.Chart, bool) {
	var t *report.Table
	for i := range rep.Tables {
		if rep.Tables[i].Name == "protocols" && (rep.Tables[i].Source == "") {
			t = &rep.Tables[i]
			break
		}
	}
	if t == nil || len(t.Rows) == 0 {
		return report.Chart{}, false
	}
	col := map[string]int{}
	for i, c := range t.Columns {
		col[c] = i
	}
	li, pi, ki, bi := col["layer"], col["protocol"], col["packets"], col["bytes"]
	var totalPackets, totalBytes float64
	for _, in := range rep.Inputs {
		totalPackets += float64(in.Packets)
		totalBytes += float64(in.Bytes)
	}
	c := report.Chart{Name: "protocol-share", Title: "Protocol share (inner: carried by a tunnel)", Kind: report.ChartBar,
		YLabel: "share", YUnit: "%"}
	pk := report.Series{Name: "packets"}
	by := report.Series{Name: "bytes"}
	for _, row := range t.Rows {
		if len(row) <= max(li, pi, ki, bi) {
			continue
		}
		packets, _ := cellNumber(row[ki])
		bytes, _ := cellNumber(row[bi])
		if packets <= 0 || totalPackets <= 0 {
			continue
		}
		x := float64(len(c.Categories))
		c.Categories = append(c.Categories, fmt.Sprint(row[li])+" "+fmt.Sprint(row[pi]))
		pk.Points = append(pk.Points, report.Point{X: x, Y: round3(100 * packets / totalPackets)})
		if totalBytes > 0 {
			by.Points = append(by.Points, report.Point{X: x, Y: round3(100 * bytes / totalBytes)})
		}
	}
	if len(c.Categories) == 0 {
		return report.Chart{}, false
	}
	c.Series = []report.Series{pk}
	if len(by.Points) > 0 {
		c.Series = append(c.Series, by)
	}
	return c, true
}

// natTimeline is one entry of natcheck's data.nat.timelines.
type natTimeline struct {
	Protocol    string `json:"protocol"`
	Destination string `json:"destination"`
	Verdict     string `json:"verdict"`
	Timeline    []struct {
		Start   int64 `json:"start_unix_ns"`
		New     int   `json:"new_flows"`
		Dropped int   `json:"dropped_flows"`
		Live    int   `json:"live_mappings"`
	} `json:"timeline"`
}

// natcheckCharts is natcheck's port-pool usage over time in capture mode.
// With --inside: per destination, the live mappings, new and dropped flows
// per second, the port range size as a limit and the seconds with drops
// marked. From the outside capture alone (and for busy pools the inside
// comparison did not chart): the most live mappings per second against the
// ports the pool was seen using (natUsageChart). At most 4 charts.
func natcheckCharts(rep *report.Report) []report.Chart {
	nat, ok := rep.Data["nat"]
	if !ok {
		return nil
	}
	if m, ok := nat.(map[string]any); ok {
		nat = map[string]any{"timelines": m["timelines"], "usage": m["usage"]} // not the (long) mappings
	}
	var d struct {
		Timelines []natTimeline `json:"timelines"`
		Usage     []natUsage    `json:"usage"`
	}
	if !remarshal(nat, &d) {
		return nil
	}
	ranges := natRanges(rep)
	var out []report.Chart
	charted := map[string]bool{}
	for i, tl := range d.Timelines {
		if i == 4 || len(tl.Timeline) == 0 {
			break
		}
		charted[tl.Protocol+" "+tl.Destination] = true
		c := report.Chart{Name: fmt.Sprintf("nat-pool-usage-%d", i+1), Kind: report.ChartLine, XUnit: report.XUnitTime,
			Title:  fmt.Sprintf("NAT port pool usage: %s to %s (%s)", tl.Protocol, tl.Destination, tl.Verdict),
			YLabel: "mappings, flows per second", XLabel: "time (UTC), end of each second"}
		live := report.Series{Name: "live mappings"}
		newf := report.Series{Name: "new flows/s"}
		drop := report.Series{Name: "dropped flows/s"}
		var markFrom float64
		inDrop := false
		for _, b := range tl.Timeline {
			start := float64(b.Start) / 1e9
			end := start + 1
			live.Points = append(live.Points, report.Point{X: end, Y: float64(b.Live)})
			newf.Points = append(newf.Points, report.Point{X: end, Y: float64(b.New)})
			drop.Points = append(drop.Points, report.Point{X: end, Y: float64(b.Dropped)})
			switch {
			case b.Dropped > 0 && !inDrop:
				markFrom, inDrop = start, true
			case b.Dropped == 0 && inDrop:
				c.Marks = append(c.Marks, report.Mark{From: markFrom, To: start, Label: "flows dropped"})
				inDrop = false
			}
		}
		if inDrop {
			last := tl.Timeline[len(tl.Timeline)-1]
			c.Marks = append(c.Marks, report.Mark{From: markFrom, To: float64(last.Start)/1e9 + 1, Label: "flows dropped"})
		}
		c.Series = []report.Series{live, drop, newf}
		if r, ok := ranges[tl.Protocol+" "+tl.Destination]; ok {
			c.Limits = []report.Limit{{Y: float64(r.size), Label: fmt.Sprintf("port range %s: %d ports", r.text, r.size)}}
		}
		out = append(out, c)
	}
	for _, u := range d.Usage {
		if len(out) == 4 {
			break
		}
		if charted[u.Protocol+" "+u.Destination] || len(u.Series.Peak) == 0 {
			continue
		}
		out = append(out, natUsageChart(len(out)+1, u))
	}
	return out
}

type portRange struct {
	text string
	size int
}

// natRanges reads the port range of each protocol and destination from
// natcheck's "nat-drops" table ("20000-20199").
func natRanges(rep *report.Report) map[string]portRange {
	out := map[string]portRange{}
	for _, t := range rep.Tables {
		if t.Name != "nat-drops" {
			continue
		}
		col := map[string]int{}
		for i, c := range t.Columns {
			col[c] = i
		}
		pi, di, ri := col["proto"], col["destination"], col["ports"]
		for _, row := range t.Rows {
			if len(row) <= max(pi, di, ri) {
				continue
			}
			text := fmt.Sprint(row[ri])
			lo, hi, ok := strings.Cut(text, "-")
			a, err1 := strconv.Atoi(lo)
			b, err2 := strconv.Atoi(hi)
			if !ok || err1 != nil || err2 != nil || b < a {
				continue
			}
			out[fmt.Sprint(row[pi])+" "+fmt.Sprint(row[di])] = portRange{text, b - a + 1}
		}
	}
	return out
}

// throughputChart is probe throughput's bits per second per interval, per
// stream and in sum.
func throughputChart(res *iperf.Result) (report.Chart, bool) {
	if res == nil || len(res.Intervals) == 0 {
		return report.Chart{}, false
	}
	c := report.Chart{Name: "throughput", Title: fmt.Sprintf("%s throughput per interval", strings.ToUpper(res.Protocol)),
		Kind: report.ChartLine, XLabel: "time since start", XUnit: report.XUnitSeconds, YLabel: "throughput", YUnit: "bit/s"}
	sum := report.Series{Name: "sum"}
	streams := map[int]*report.Series{}
	var ids []int
	for _, iv := range res.Intervals {
		sum.Points = append(sum.Points, report.Point{X: round3(iv.End), Y: iv.Sum.BitsPerSecond})
		if res.Parallel <= 1 {
			continue
		}
		for _, s := range iv.Streams {
			ser, ok := streams[s.ID]
			if !ok {
				ser = &report.Series{Name: fmt.Sprintf("stream %d", s.ID)}
				streams[s.ID] = ser
				ids = append(ids, s.ID)
			}
			ser.Points = append(ser.Points, report.Point{X: round3(iv.End), Y: s.BitsPerSecond})
		}
	}
	c.Series = append(c.Series, sum)
	sort.Ints(ids)
	for _, id := range ids {
		c.Series = append(c.Series, *streams[id])
	}
	return c, true
}

// watchChart is probe watch's RTT over time per target with the outages
// marked. rtt holds the RTT samples recorded while the watch ran; without
// it (a saved report) the chart shows the outages only.
func watchChart(res *watch.Result, rtt *rttRecorder) (report.Chart, bool) {
	if res == nil || len(res.Targets) == 0 {
		return report.Chart{}, false
	}
	c := report.Chart{Name: "watch-rtt", Title: "Round-trip time and outages", Kind: report.ChartLine, XUnit: report.XUnitTime,
		YLabel: "RTT", YUnit: "ms"}
	multi := len(res.Targets) > 1
	for _, tr := range res.Targets {
		if rtt != nil {
			c.Series = append(c.Series, rtt.series(tr.Target))
		}
		for _, o := range tr.Outages {
			label := "outage"
			if multi {
				label = "outage " + tr.Target
			}
			if o.Ongoing {
				label += " (ongoing)"
			}
			c.Marks = append(c.Marks, report.Mark{From: report.UnixSeconds(o.Start), To: report.UnixSeconds(o.End), Label: label})
		}
	}
	if rtt == nil {
		c.Note = "RTT samples are not in the saved report; outages only."
		if len(c.Marks) == 0 {
			return report.Chart{}, false
		}
	}
	return c, true
}

// rttMaxBuckets bounds the RTT points kept per target: when a watch runs
// longer, buckets are merged in pairs (the width doubles).
const rttMaxBuckets = 600

// rttRecorder keeps a bounded RTT time series per target from watch events
// (Config.OnEvent may call observe from several goroutines).
type rttRecorder struct {
	mu      sync.Mutex
	width   time.Duration
	origin  time.Time
	targets map[string][]rttBucket
}

type rttBucket struct {
	sum  time.Duration
	n    int // answered probes
	lost int
}

// newRTTRecorder starts a recorder whose buckets are one probe interval
// wide at first.
func newRTTRecorder(interval time.Duration) *rttRecorder {
	if interval <= 0 {
		interval = 50 * time.Millisecond
	}
	return &rttRecorder{width: interval, targets: map[string][]rttBucket{}}
}

// observe records one probe (watch.Tick events; others are ignored).
func (r *rttRecorder) observe(e watch.Event) {
	if e.Kind != watch.Tick {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.origin.IsZero() {
		r.origin = e.Time
	}
	d := e.Time.Sub(r.origin)
	if d < 0 {
		d = 0
	}
	i := int(d / r.width)
	for i >= rttMaxBuckets {
		r.halve()
		i = int(d / r.width)
	}
	bs := r.targets[e.Target]
	for len(bs) <= i {
		bs = append(bs, rttBucket{})
	}
	if e.Lost {
		bs[i].lost++
	} else {
		bs[i].sum += e.RTT
		bs[i].n++
	}
	r.targets[e.Target] = bs
}

// halve doubles the bucket width, merging neighbours.
func (r *rttRecorder) halve() {
	r.width *= 2
	for t, bs := range r.targets {
		out := make([]rttBucket, (len(bs)+1)/2)
		for i, b := range bs {
			o := &out[i/2]
			o.sum += b.sum
			o.n += b.n
			o.lost += b.lost
		}
		r.targets[t] = out
	}
}

// series returns a target's mean RTT per bucket; buckets without an answer
// break the line.
func (r *rttRecorder) series(target string) report.Series {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := report.Series{Name: target, Points: []report.Point{}}
	gap := false
	for i, b := range r.targets[target] {
		if b.n == 0 {
			gap = true
			continue
		}
		mid := r.origin.Add(time.Duration(i)*r.width + r.width/2)
		mean := b.sum / time.Duration(b.n)
		s.Points = append(s.Points, report.Point{X: report.UnixSeconds(mid), Y: ms(mean), Gap: gap})
		gap = false
	}
	return s
}

// backfillCharts adds the command's charts to a saved report that has none
// (written before charts existed, or by a command that had no recorder).
func backfillCharts(rep *report.Report) {
	if len(rep.Charts) > 0 {
		return
	}
	switch rep.Command {
	case "analyze":
		if c, ok := protocolChart(rep); ok {
			rep.AddChart(c)
		}
	case "natcheck":
		for _, c := range natcheckCharts(rep) {
			rep.AddChart(c)
		}
	case "probe throughput":
		var res iperf.Result
		if remarshal(rep.Data["throughput"], &res) {
			if c, ok := throughputChart(&res); ok {
				rep.AddChart(c)
			}
		}
	case "probe compare":
		var res compare.Result
		if remarshal(rep.Data["compare"], &res) {
			if c, ok := compareThroughputChart(&res); ok { // the RTT series is not saved
				rep.AddChart(c)
			}
		}
	case "probe watch":
		var res watch.Result
		if remarshal(rep.Data["watch"], &res) {
			if c, ok := watchChart(&res, nil); ok {
				rep.AddChart(c)
			}
		}
	}
}

// remarshal copies a value of report data (a Go value in the command, a
// decoded JSON value in a saved report) into v through JSON.
func remarshal(from any, v any) bool {
	if from == nil {
		return false
	}
	b, err := json.Marshal(from)
	if err != nil {
		return false
	}
	return json.Unmarshal(b, v) == nil
}

// cellNumber reads a numeric table cell, typed or decoded from JSON.
func cellNumber(v any) (float64, bool) {
	switch x := v.(type) {
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case uint64:
		return float64(x), true
	case uint32:
		return float64(x), true
	case float64:
		return x, true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	}
	return 0, false
}
