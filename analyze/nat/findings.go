package nat

import (
	"fmt"
	"strings"
	"time"

	"github.com/vpndiag/vpndiag/analyze"
	"github.com/vpndiag/vpndiag/report"
)

// Finding ids (shared with live mode, probe/nat).
const (
	IDPortExhaustion = "nat.port-exhaustion"
	IDRangeSmall     = "nat.range-small"
	// IDFlowLimit says the flow or pool table limit was reached, so some
	// new flows were counted but not analysed.
	IDFlowLimit = "nat.flow-limit"
)

// RangeSmallShare is the share of a pool's observed port range that must be
// mapped at once for nat.range-small (as live mode's default).
const RangeSmallShare = 0.5

// maxAscending is the share of ascending port steps above which a pool's
// ports look sequential (client ports kept, or a sequential allocator), so
// their span says nothing about the NAT's range.
const maxAscending = 0.9

// MinPool is the fewest distinct ports a pool must show before its shape
// (a dense block all mapped at once) is read as a ceiling.
const MinPool = 64

// maxTableRows bounds the rows of the pool and mapping tables.
const maxTableRows = 50

// Finish implements analyze.Analyzer.
func (a *Analyzer) Finish(r *report.Report, inputs []analyze.InputInfo) {
	res := a.Result()
	if len(res.Pools) == 0 && len(res.Drops) == 0 && res.Untracked == 0 {
		return // no NAT in these inputs: add nothing to the report
	}
	name := func(i int) string {
		if i >= 0 && i < len(inputs) {
			return inputs[i].Name
		}
		return fmt.Sprintf("input %d", i)
	}
	r.Add(Findings(res, name)...)
	for _, t := range Tables(res, name) {
		r.AddTable(t)
	}
	r.SetData("nat", Data(res, name))
}

// Findings turns a result into findings; name gives an input's file name.
func Findings(res *Result, name func(int) string) []report.Finding {
	var out []report.Finding
	// With an inside capture, the pair's verdict replaces the outside-only
	// signature for every pool it covers.
	paired := map[*Pool]bool{}
	for _, d := range res.Drops {
		if d.Pool != nil {
			paired[d.Pool] = true
		}
	}
	exhaustedPool := map[*Pool]bool{}
	for _, d := range res.Drops {
		if !exhausted(d) {
			continue
		}
		p := d.Pool
		exhaustedPool[p] = true
		proto := protoName(d.Proto)
		summary := fmt.Sprintf("%d of %d new %s flows to %s were dropped inside the NAT while %d mappings (ports %d-%d) were live",
			d.Dropped, d.NewFlows, strings.ToUpper(proto), d.Dst, d.LiveMaxAtDrop, p.PortMin, p.PortMax)
		if d.LiveAtFirstDrop != d.LiveMaxAtDrop {
			summary += fmt.Sprintf(" (the first drop came at %d)", d.LiveAtFirstDrop)
		}
		frames := make([]report.FrameRef, len(d.DroppedFrames))
		for i, f := range d.DroppedFrames {
			frames[i] = report.FrameRef{File: name(res.Inside), Frame: f}
		}
		out = append(out, report.Finding{
			ID: IDPortExhaustion, Severity: report.SeverityError,
			Title:   "NAT port pool exhausted",
			Summary: summary,
			Where: &report.Where{Hop: name(res.Outside), Segment: &report.Segment{From: name(res.Inside), To: name(res.Outside)},
				Class: fmt.Sprintf("%s to %s", proto, d.Dst)},
			Evidence: map[string]any{
				"nat_address":        d.NAT.String(),
				"protocol":           proto,
				"destination":        d.Dst.String(),
				"port_min":           p.PortMin,
				"port_max":           p.PortMax,
				"distinct_ports":     p.DistinctPorts,
				"peak_mappings":      p.PeakMappings,
				"dropped_flows":      d.Dropped,
				"new_flows":          d.NewFlows,
				"mapped_flows":       d.Mapped,
				"live_at_first_drop": d.LiveAtFirstDrop,
				"live_min_at_drop":   d.LiveMinAtDrop,
				"live_max_at_drop":   d.LiveMaxAtDrop,
				"first_drop":         time.Unix(0, d.FirstDrop).UTC().Format(time.RFC3339Nano),
				"dense_range":        p.Dense,
			},
			Frames: frames,
			Remedy: Remedy(p),
		})
	}
	for _, p := range res.Pools {
		if paired[p] || !ceiling(p) {
			continue
		}
		proto := protoName(p.Proto)
		note := "outside capture only: add --inside to count the flows the NAT dropped"
		if p.Ascending >= maxAscending {
			// A client's own consecutive ports, seen on a path without NAT,
			// look the same; only the inside capture tells them apart.
			note += "; the ports were used in ascending order, as a sequential NAT allocator or a client's own consecutive ports (no NAT) would be"
		}

		out = append(out, report.Finding{
			ID: IDPortExhaustion, Severity: report.SeverityWarning,
			Title: "NAT port pool at a ceiling",
			Summary: fmt.Sprintf("NAT address %s used exactly %d %s ports (%d-%d, every one of them) towards %s, all mapped at once: the signature of a pool of %d ports that is full",
				p.NAT, p.DistinctPorts, proto, p.PortMin, p.PortMax, p.Dst, p.Span()),
			Where: &report.Where{Hop: name(p.Input), Class: fmt.Sprintf("%s to %s", proto, p.Dst)},
			Evidence: map[string]any{
				"nat_address":    p.NAT.String(),
				"protocol":       proto,
				"destination":    p.Dst.String(),
				"port_min":       p.PortMin,
				"port_max":       p.PortMax,
				"distinct_ports": p.DistinctPorts,
				"peak_mappings":  p.PeakMappings,
				"dropped_flows":  0,
				"flows":          p.Flows,
				"unanswered":     p.Unanswered,
				"reused_ports":   p.Reused,
				"note":           note,
			},
			Frames: []report.FrameRef{{File: name(p.Input), Frame: p.FirstFrame}},
			Remedy: Remedy(p),
		})
		if p.Ascending >= maxAscending {
			out[len(out)-1].Evidence["ascending_share"] = float64(int64(p.Ascending*1000+0.5)) / 1000
		}
	}
	for _, p := range res.Pools {
		if exhaustedPool[p] || !rangeSmall(p) {
			continue
		}
		out = append(out, rangeSmallFinding(p, name))
	}
	if res.Untracked > 0 {
		out = append(out, report.Finding{
			ID: IDFlowLimit, Severity: report.SeverityInfo,
			Title: "NAT analysis hit its flow limit",
			Summary: fmt.Sprintf("%d new flows were counted but not analysed: more than %d flows were live at once (or more than %d pools were seen), so flow counts, ports and peaks undercount",
				res.Untracked, res.MaxFlows, res.MaxPools),
			Evidence: map[string]any{"untracked_flows": res.Untracked, "max_flows": res.MaxFlows, "max_pools": res.MaxPools,
				"peak_tracked_flows": res.PeakTracked},
			Remedy: "Filter the capture to the traffic that crosses the NAT (e.g. `udp port 53` or one destination), or shorten the idle timeouts (--udp-timeout) so mappings expire sooner.",
		})
	}
	return out
}

// exhausted is the pair's verdict for one destination: flows dropped inside
// the NAT while its pool towards that destination was at its peak.
func exhausted(d *Drops) bool {
	if d.Dropped == 0 || d.Pool == nil || d.Pool.PeakMappings < MinPool {
		return false
	}
	// Drops while the pool was far below its peak are loss, not a full pool.
	return float64(d.LiveMaxAtDrop) >= 0.9*float64(d.Pool.PeakMappings)
}

// verdict names a destination's state in the drops table.
func verdict(d *Drops) string {
	switch {
	case d.Dropped == 0:
		return "clean"
	case exhausted(d):
		return "exhausted"
	case d.Pool == nil || d.Pool.PeakMappings < MinPool:
		return "dropped (too few mappings to judge)"
	}
	return "dropped below the pool's peak (loss, not exhaustion)"
}

// rangeSmall is the capture's evidence of a range that is small for the
// traffic before it is full: the ports are spread over their span like a
// random allocator's (so the span estimates the range), and at least
// RangeSmallShare of that span was mapped at once. A full dense block is
// nat.port-exhaustion instead; sequential ports (client ports kept, or a
// sequential allocator) do not show the range at all.
func rangeSmall(p *Pool) bool {
	return !ceiling(p) && p.DistinctPorts >= MinPool && p.Ascending < maxAscending &&
		float64(p.PeakMappings) >= RangeSmallShare*float64(p.Span())
}

func rangeSmallFinding(p *Pool, name func(int) string) report.Finding {
	proto := protoName(p.Proto)
	share := float64(p.PeakMappings) / float64(p.Span())
	summary := fmt.Sprintf("NAT address %s spread %d %s ports over %d-%d (%d ports) towards %s and had %d mappings live at once (%.0f%% of that range)",
		p.NAT, p.DistinctPorts, proto, p.PortMin, p.PortMax, p.Span(), p.Dst, p.PeakMappings, 100*share)
	ev := map[string]any{
		"nat_address":              p.NAT.String(),
		"protocol":                 proto,
		"destination":              p.Dst.String(),
		"port_min":                 p.PortMin,
		"port_max":                 p.PortMax,
		"distinct_ports":           p.DistinctPorts,
		"peak_mappings":            p.PeakMappings,
		"dropped_flows":            0,
		"observed_range_size":      p.Span(),
		"utilization":              float64(int64(share*1000+0.5)) / 1000,
		"max_new_flows_per_second": p.MaxNewPerSecond,
		"flows":                    p.Flows,
	}
	if free := p.Span() - p.PeakMappings; p.MaxNewPerSecond > 0 {
		secs := float64(free) / float64(p.MaxNewPerSecond)
		ev["seconds_to_fill_at_peak_rate"] = float64(int64(secs*1000+0.5)) / 1000
		summary += fmt.Sprintf("; at the busiest second's %d new flows/s the other %d ports last %.1f s", p.MaxNewPerSecond, free, secs)
	}
	return report.Finding{
		ID: IDRangeSmall, Severity: report.SeverityWarning,
		Title:    "NAT port range small for the traffic",
		Summary:  summary,
		Where:    &report.Where{Hop: name(p.Input), Class: fmt.Sprintf("%s to %s", proto, p.Dst)},
		Evidence: ev,
		Frames:   []report.FrameRef{{File: name(p.Input), Frame: p.FirstFrame}},
		Remedy:   Remedy(p),
	}
}

// ceiling is the outside-only signature: a dense block of ports, all mapped
// at the same time.
func ceiling(p *Pool) bool {
	return p.DistinctPorts >= MinPool && p.Dense && p.PeakMappings == p.DistinctPorts
}

// Remedy names the fixes per platform; a 1976-port block (1025-3000) is the
// Windows RRAS NAT default.
func Remedy(p *Pool) string {
	var b strings.Builder
	if p.Span() == 1976 {
		b.WriteString("A pool of exactly 1976 ports is the Windows RRAS NAT default (ports 1025-3000): widen it with the REG_MULTI_SZ value `ReservedPorts` under `HKLM\\SYSTEM\\CurrentControlSet\\Services\\IPNAT\\Parameters` (e.g. `1025-65535`) and restart the RemoteAccess service. ")
	}
	fmt.Fprintf(&b, "Linux: widen the range, `nft ... masquerade to :1024-65535 fully-random` (iptables: `-j MASQUERADE --to-ports 1024-65535 --random-fully`), or add NAT addresses with `snat ip to A-B` (`-j SNAT --to-source A-B`); shorten idle mappings with `sysctl -w net.netfilter.nf_conntrack_udp_timeout=10`. ")
	b.WriteString("Cloud NATs and appliances: add NAT addresses or raise the ports per client (e.g. AWS NAT Gateway secondary addresses, Google Cloud NAT minimum ports per VM). ")
	fmt.Fprintf(&b, "Each destination (%s) has its own pool, so spreading traffic over more destinations (more DNS resolvers) also helps.", p.Dst)
	return b.String()
}

func protoName(p uint8) string {
	switch p {
	case 6:
		return "tcp"
	case 17:
		return "udp"
	}
	return fmt.Sprint(p)
}

// Tables renders the result as report tables.
func Tables(res *Result, name func(int) string) []report.Table {
	var ts []report.Table
	if len(res.Addresses) > 0 {
		t := report.Table{Name: "nat-addresses", Title: "NAT addresses (sources starting many flows)",
			Columns: []string{"input", "nat address", "proto", "flows", "distinct ports", "port min", "port max", "destinations", "ports shared across destinations"}}
		for _, u := range res.Addresses {
			t.Rows = append(t.Rows, []any{name(u.Input), u.NAT.String(), protoName(u.Proto), u.Flows, u.DistinctPorts, u.PortMin, u.PortMax, u.Destinations, u.SharedPorts})
		}
		ts = append(ts, t)
	}
	if len(res.Pools) > 0 {
		t := report.Table{Name: "nat-pools", Title: "NAT port pools per destination",
			Columns: []string{"input", "nat address", "proto", "destination", "flows", "distinct ports", "port min", "port max", "dense", "peak mappings", "reused ports", "unanswered"}}
		for i, p := range res.Pools {
			if i == maxTableRows {
				t.Note = fmt.Sprintf("%d more pools not shown", len(res.Pools)-maxTableRows)
				break
			}
			t.Rows = append(t.Rows, []any{name(p.Input), p.NAT.String(), protoName(p.Proto), p.Dst.String(), p.Flows, p.DistinctPorts,
				p.PortMin, p.PortMax, p.Dense, p.PeakMappings, p.Reused, p.Unanswered})
		}
		if res.Untracked > 0 {
			if t.Note != "" {
				t.Note += "; "
			}
			t.Note += fmt.Sprintf("%d new flows not tracked: flow limit %d (live at once) or pool limit %d reached", res.Untracked, res.MaxFlows, res.MaxPools)
		}
		ts = append(ts, t)
	}
	if len(res.Drops) > 0 {
		t := report.Table{Name: "nat-drops", Title: "New flows inside vs. flows that left the NAT",
			Columns: []string{"proto", "destination", "nat address", "new flows", "left the NAT", "dropped", "live at first drop", "most live at a drop", "ports", "verdict"}}
		for _, d := range res.Drops {
			ports := ""
			if d.Pool != nil {
				ports = fmt.Sprintf("%d-%d", d.Pool.PortMin, d.Pool.PortMax)
			}
			t.Rows = append(t.Rows, []any{protoName(d.Proto), d.Dst.String(), d.NAT.String(), d.NewFlows, d.Mapped, d.Dropped, d.LiveAtFirstDrop, d.LiveMaxAtDrop, ports, verdict(d)})
		}
		ts = append(ts, t)
		if d := res.Drops[0]; d.Dropped > 0 {
			tl := report.Table{Name: "nat-drops-over-time", Title: fmt.Sprintf("%s to %s per second", protoName(d.Proto), d.Dst),
				Columns: []string{"second", "new flows", "dropped", "live mappings"}}
			for _, b := range d.Buckets {
				tl.Rows = append(tl.Rows, []any{time.Unix(0, b.Start).UTC().Format("15:04:05"), b.New, b.Dropped, b.Live})
			}
			ts = append(ts, tl)
		}
		mt := report.Table{Name: "nat-mappings", Title: "Inside to outside mapping per flow",
			Columns: []string{"inside frame", "proto", "inside", "outside", "destination"}}
		for i, m := range res.Mappings {
			if i == maxTableRows {
				mt.Note = fmt.Sprintf("first %d of %d flows; all in data.nat.mappings", maxTableRows, len(res.Mappings))
				break
			}
			outside := "dropped"
			if m.Outside.IsValid() {
				outside = m.Outside.String()
			}
			mt.Rows = append(mt.Rows, []any{m.Frame, protoName(m.Proto), m.Inside.String(), outside, m.Dst.String()})
		}
		ts = append(ts, mt)
	}
	return ts
}

// Data is the structured result stored under report data "nat".
func Data(res *Result, name func(int) string) map[string]any {
	type mapping struct {
		Frame   uint64 `json:"inside_frame"`
		Proto   string `json:"protocol"`
		Inside  string `json:"inside"`
		Outside string `json:"outside,omitempty"`
		Dst     string `json:"destination"`
	}
	d := map[string]any{"pools": len(res.Pools), "untracked_flows": res.Untracked}
	if res.Untracked > 0 {
		d["max_flows"], d["max_pools"], d["peak_tracked_flows"] = res.MaxFlows, res.MaxPools, res.PeakTracked
	}
	if u := usageData(res, name); u != nil {
		d["usage"] = u
	}
	if res.Inside >= 0 && res.Outside >= 0 {
		maps := make([]mapping, len(res.Mappings))
		dropped := 0
		for i, m := range res.Mappings {
			maps[i] = mapping{Frame: m.Frame, Proto: protoName(m.Proto), Inside: m.Inside.String(), Dst: m.Dst.String()}
			if m.Outside.IsValid() {
				maps[i].Outside = m.Outside.String()
			} else {
				dropped++
			}
		}
		d["inside"], d["outside"] = name(res.Inside), name(res.Outside)
		d["mappings"] = maps
		d["dropped_flows"] = dropped
		var tl []map[string]any
		for _, dr := range res.Drops {
			tl = append(tl, map[string]any{"protocol": protoName(dr.Proto), "destination": dr.Dst.String(), "verdict": verdict(dr), "timeline": dr.Buckets})
		}
		d["timelines"] = tl
	}
	return d
}
