package correlate

import (
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/vpndiag/vpndiag/report"
)

// maxLossFindings bounds the trace.loss findings; the segment table has all.
const maxLossFindings = 10

// maxMappingsData bounds the NAT mappings in the JSON data.
const maxMappingsData = 1000

// minControl is how many packets a class must have sent over a segment to
// serve as the loss-free control in a trace.loss finding.
const minControl = 10

// insideOf returns the device two hop names are the two sides of: "gw" for
// "gw-in" and "gw-out" (the part before the first '-', '_', '.' or ':').
func insideOf(a, b string) string {
	cut := func(s string) string {
		if i := strings.IndexAny(s, "-_.:"); i > 0 {
			return s[:i]
		}
		return ""
	}
	pa, pb := cut(a), cut(b)
	if pa != "" && pa == pb {
		return pa
	}
	return ""
}

// segmentPhrase is "inside gw between gw-in and gw-out" or "between a and b".
func segmentPhrase(a, b string) string {
	if p := insideOf(a, b); p != "" {
		return fmt.Sprintf("inside %s between %s and %s", p, a, b)
	}
	return fmt.Sprintf("between %s and %s", a, b)
}

func pct(r float64) string {
	v := 100 * r
	switch {
	case v >= 10:
		return fmt.Sprintf("%.1f%%", v)
	default:
		return fmt.Sprintf("%.2f%%", v)
	}
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

func ms(ns int64) float64 { return round(float64(ns)/1e6, 3) }

// Lossy reports whether a segment's loss reaches the finding thresholds:
// at least MinLost packets (fewer cannot be told from packets at the edges
// of a capture or a rare capture miss) and at least MinLossRatio of what
// was sent (below it, a busy link's occasional drop is not an incident).
func (o Options) Lossy(s *Segment) bool {
	o.defaults()
	return s.Lost >= uint64(o.MinLost) && s.LossRatio >= o.MinLossRatio
}

// NoCommon returns the hops that share no packet with any other hop.
func (r *Result) NoCommon() []string {
	var out []string
	for _, h := range r.Hops {
		if h.Matched == 0 {
			out = append(out, h.Name)
		}
	}
	return out
}

// Fill adds the trace's inputs, findings, tables and data to rep.
func (r *Result) Fill(rep *report.Report, opt Options) {
	opt.defaults()
	files := map[string]string{}
	for _, h := range r.Hops {
		file := h.File
		if file == "" {
			file = h.Source
		}
		files[h.Name] = filepath.Base(file)
		in := report.Input{Name: h.Name, Source: h.Source, Format: h.Format, LinkTypes: h.LinkTypes,
			Packets: h.Packets, Bytes: h.Bytes, Drops: h.CaptureDrops, Undecoded: h.Undecoded}
		if h.Packets > 0 && h.FirstNs != 0 {
			f, l := time.Unix(0, h.FirstNs).UTC(), time.Unix(0, h.LastNs).UTC()
			in.First, in.Last = &f, &l
		}
		if h.Err != nil {
			in.Error = h.Err.Error()
		}
		rep.Inputs = append(rep.Inputs, in)
	}
	r.lossFindings(rep, opt, files)
	r.captureFindings(rep, opt)
	r.tunnelFindings(rep, opt)
	r.otherFindings(rep)
	rep.Sort()
	r.tables(rep)
	r.data(rep)
}

func (r *Result) lossFindings(rep *report.Report, opt Options, files map[string]string) {
	var lossy []*Segment
	for i := range r.Segments {
		if opt.Lossy(&r.Segments[i]) {
			lossy = append(lossy, &r.Segments[i])
		}
	}
	sort.SliceStable(lossy, func(i, j int) bool { return lossy[i].Lost > lossy[j].Lost })
	for n, s := range lossy {
		if n == maxLossFindings {
			break
		}
		where := segmentPhrase(s.From, s.To)
		summary := fmt.Sprintf("%s of %s is lost %s (%d of %d packets)", pct(s.LossRatio), s.Class, where, s.Lost, s.Sent)
		ev := map[string]any{"sent": s.Sent, "received": s.Received, "lost": s.Lost,
			"loss_ratio": round(s.LossRatio, 4), "nat": s.NAT}
		if s.Tunnel != "" {
			ev["tunnel"] = s.Tunnel
		}
		if c, same := r.control(s); c != nil {
			var phrase string
			switch {
			case same && insideOf(s.From, s.To) != "":
				phrase = fmt.Sprintf("%s through the same %s loses none", c.Class, insideOf(s.From, s.To))
			case same:
				phrase = fmt.Sprintf("%s over the same segment loses none", c.Class)
			default:
				nat := "not NAT'd"
				if c.NAT {
					nat = "NAT'd"
				}
				phrase = fmt.Sprintf("%s (%s), also seen at %s, loses none", c.Class, nat, s.From)
			}
			summary += "; " + phrase
			ev["control_class"] = c.Class
			ev["control_sent"] = c.Sent
			ev["control_lost"] = c.Lost
			ev["control_nat"] = c.NAT
		}
		f := report.Finding{ID: "trace.loss", Severity: report.SeverityError,
			Title:    fmt.Sprintf("Packets of %s lost %s", s.Class, where),
			Summary:  summary,
			Where:    &report.Where{Segment: &report.Segment{From: s.From, To: s.To}, Class: s.Class},
			Evidence: ev,
			Remedy:   lossRemedy(s),
		}
		for _, fr := range s.Examples {
			f.Frames = append(f.Frames, report.FrameRef{File: files[s.From], Frame: fr})
		}
		rep.Add(f)
	}
}

// Control returns the class that shows a lossy segment's loss is specific
// (the control of its trace.loss finding), nil when there is none; same
// reports whether it crossed the same segment.
func (r *Result) Control(s *Segment) (c *Segment, same bool) { return r.control(s) }

// control is a class that shows the loss is specific: preferably one that
// crossed the same segment with the most packets and lost none; else one of
// the same protocol and direction, seen at the segment's first hop, that
// lost nothing anywhere.
func (r *Result) control(s *Segment) (c *Segment, same bool) {
	lost := map[string]uint64{}
	for i := range r.Segments {
		lost[r.Segments[i].Class] += r.Segments[i].Lost
	}
	var best *Segment
	for i := range r.Segments {
		c := &r.Segments[i]
		if c.Class == s.Class || c.Lost != 0 || c.Sent < minControl || c.From != s.From || c.To != s.To {
			continue
		}
		if best == nil || c.Sent > best.Sent {
			best = c
		}
	}
	if best != nil {
		return best, true
	}
	for i := range r.Segments {
		c := &r.Segments[i]
		if c.Class == s.Class || lost[c.Class] != 0 || c.Sent < minControl || (c.From != s.From && c.To != s.From) ||
			c.ck.proto != s.ck.proto || c.ck.from != s.ck.from {
			continue
		}
		score := func(x *Segment) int {
			n := 0
			if x.ck.port == s.ck.port {
				n += 2
			}
			if x.NAT != s.NAT {
				n++
			}
			return n
		}
		if best == nil || score(c) > score(best) || (score(c) == score(best) && c.Sent > best.Sent) {
			best = c
		}
	}
	return best, false
}

func lossRemedy(s *Segment) string {
	where := segmentPhrase(s.From, s.To)
	switch {
	case s.NAT:
		return fmt.Sprintf("Only packets that are translated are affected %s: check the NAT there. On Linux run "+
			"'vpndiag natcheck' on the gateway, or 'conntrack -S' (insert_failed, drop) and the SNAT/masquerade "+
			"port range; widen the port range or add outside addresses, and shorten UDP timeouts "+
			"(net.netfilter.nf_conntrack_udp_timeout) if the pool is exhausted.", where)
	case s.Tunnel != "":
		return fmt.Sprintf("Tunnelled packets are dropped %s: compare with the underlay's own traffic, check "+
			"the tunnel MTU against the underlay path MTU (fragments, DF), and rate limits or filters on the "+
			"tunnel's UDP port.", where)
	}
	return fmt.Sprintf("Find what drops this class %s: firewall or nftables rules and their counters, "+
		"policers or rate limits matching it, queue drops and errors on the interfaces (ip -s link, ethtool -S).", where)
}

func (r *Result) captureFindings(rep *report.Report, opt Options) {
	for _, h := range r.Hops {
		var drops uint64
		if h.CaptureDrops != nil {
			drops = *h.CaptureDrops
		}
		if drops == 0 && h.Missed+h.AckedNotSeen < uint64(opt.MinLost) {
			continue
		}
		var parts []string
		if drops > 0 || h.CaptureDrops != nil {
			parts = append(parts, fmt.Sprintf("dropped %d packets itself", drops))
		}
		if h.Missed > 0 || h.AckedNotSeen == 0 {
			parts = append(parts, fmt.Sprintf("missed %d packets that hops before and after it saw", h.Missed))
		}
		if h.AckedNotSeen > 0 {
			parts = append(parts, fmt.Sprintf("never saw %d TCP data segments that an earlier hop saw and that it saw acknowledged", h.AckedNotSeen))
		}
		rep.Add(report.Finding{ID: "trace.capture-loss", Severity: report.SeverityWarning,
			Title: fmt.Sprintf("The capture at %s missed packets", h.Name),
			Summary: fmt.Sprintf("The capture at %s %s; these are capture loss, not network loss, and segments touching %s undercount",
				h.Name, strings.Join(parts, ", "), h.Name),
			Where: &report.Where{Hop: h.Name},
			Evidence: map[string]any{"capture_drops": drops, "missed": h.Missed, "acked_not_seen": h.AckedNotSeen,
				"packets": h.Packets},
			Remedy: "Capture with a larger buffer (tcpdump -B 65536 or dumpcap -B), a snap length that covers only " +
				"the headers (-s 128), and a filter for the traffic of interest; write to a fast local disk.",
		})
	}
}

// tunnelGroup is one encrypted tunnel direction at one hop over all its
// SPIs or receiver indexes (a tunnel rekeys: WireGuard every 2 minutes).
type tunnelGroup struct {
	hop, kind, dst             string
	ids                        []uint32
	packets, expected, missing uint64
}

func (r *Result) tunnelGroups() []*tunnelGroup {
	var out []*tunnelGroup
	by := map[[3]string]*tunnelGroup{}
	for _, t := range r.Tunnels {
		k := [3]string{t.Hop, t.Kind, t.Dst}
		g := by[k]
		if g == nil {
			g = &tunnelGroup{hop: t.Hop, kind: t.Kind, dst: t.Dst}
			by[k] = g
			out = append(out, g)
		}
		g.ids = append(g.ids, t.ID)
		g.packets += t.Packets
		g.expected += t.Expected
		g.missing += t.Missing
	}
	return out
}

func (r *Result) tunnelFindings(rep *report.Report, opt Options) {
	groups := r.tunnelGroups()
	for _, t := range groups {
		if t.expected == 0 || t.missing < uint64(opt.MinLost) || float64(t.missing)/float64(t.expected) < opt.MinLossRatio {
			continue
		}
		ratio := float64(t.missing) / float64(t.expected)
		name := "SPI"
		if t.kind == "wireguard" {
			name = "receiver index"
		}
		ids := make([]string, len(t.ids))
		for i, id := range t.ids {
			ids[i] = fmt.Sprintf("0x%08x", id)
		}
		if len(ids) > 1 {
			name += "es"
			if name == "SPIes" {
				name = "SPIs"
			}
		}
		where := &report.Where{Hop: t.hop, Class: fmt.Sprintf("%s to %s", t.kind, t.dst)}
		upstream := ""
		for _, u := range groups {
			if u.kind == t.kind && u.dst == t.dst && u.hop != t.hop && u.missing < t.missing && u.packets > 0 {
				upstream = u.hop
				where.Segment = &report.Segment{From: u.hop, To: t.hop}
				break
			}
		}
		summary := fmt.Sprintf("%s of %s packets to %s (%s %s) never reached %s: %d of %d sequence numbers missing",
			pct(ratio), t.kind, t.dst, name, strings.Join(ids, ", "), t.hop, t.missing, t.expected)
		if upstream != "" {
			summary += fmt.Sprintf("; %s saw them, so they were lost %s", upstream, segmentPhrase(upstream, t.hop))
		}
		ev := map[string]any{"kind": t.kind, "id": t.ids[0], "expected": t.expected, "missing": t.missing,
			"packets": t.packets, "loss_ratio": round(ratio, 4)}
		if len(t.ids) > 1 {
			ev["ids"] = t.ids
		}
		rep.Add(report.Finding{ID: "trace.tunnel-loss", Severity: report.SeverityError,
			Title:   fmt.Sprintf("Encrypted tunnel packets lost before %s", t.hop),
			Summary: summary, Where: where, Evidence: ev,
			Remedy: "The underlay loses encrypted packets: run vpndiag probe compare between the tunnel endpoints, " +
				"and check the underlay path (MTU, rate limits on the tunnel's port, ISP loss).",
		})
	}
}

func (r *Result) otherFindings(rep *report.Report) {
	if nc := r.NoCommon(); len(nc) > 0 {
		rep.Add(report.Finding{ID: "trace.no-common-packets", Severity: report.SeverityError,
			Title: "Hops with no packets in common",
			Summary: fmt.Sprintf("%s share no packet with any other hop: check that the captures are of the same traffic "+
				"and time, and that no capture filter excludes it", strings.Join(nc, ", ")),
			Where:    &report.Where{Hop: nc[0]},
			Evidence: map[string]any{"hops": nc},
			Remedy:   "Capture the same traffic at every hop at the same time (same filter), then run trace again.",
		})
	}
	for _, h := range r.Hops {
		if h.OffsetMethod == MethodReference || h.OffsetMethod == MethodNone || math.Abs(float64(h.OffsetNs)) < 10e6 {
			continue
		}
		unc := "unknown uncertainty"
		if h.OffsetUncNs >= 0 {
			unc = fmt.Sprintf("±%.3f ms", ms(h.OffsetUncNs))
		}
		dir := "ahead of"
		if h.OffsetNs < 0 {
			dir = "behind"
		}
		rep.Add(report.Finding{ID: "trace.clock-offset", Severity: report.SeverityInfo,
			Title: fmt.Sprintf("The clock at %s is off", h.Name),
			Summary: fmt.Sprintf("%s's clock is %.3f ms %s %s's (%s, %s); delays are corrected for it",
				h.Name, math.Abs(ms(h.OffsetNs)), dir, r.Hops[r.Reference].Name, unc, h.OffsetMethod),
			Where:    &report.Where{Hop: h.Name},
			Evidence: map[string]any{"clock_offset_ms": ms(h.OffsetNs), "method": h.OffsetMethod, "matches": h.OffsetMatches},
			Remedy:   "Run NTP or PTP (chrony) on the capture hosts if one-way delays matter.",
		})
	}
}

func delayCell(v float64) any {
	if v < 0 {
		return nil
	}
	return v
}

func (r *Result) orderedSegments() []Segment {
	segs := append([]Segment(nil), r.Segments...)
	sort.SliceStable(segs, func(i, j int) bool { return segs[i].Lost > segs[j].Lost })
	return segs
}

func (r *Result) tables(rep *report.Report) {
	t := report.Table{Name: "segments", Title: "Segments and traffic classes",
		Columns: []string{"from", "to", "class", "nat", "tunnel", "sent", "received", "lost", "loss %", "delay p50 ms", "delay p99 ms", "reordered"},
		Note: fmt.Sprintf("A packet is lost on a segment when the first hop saw it and no later hop did within %s; "+
			"packets near the start or end of the next hop's capture are not counted.", time.Duration(r.WindowNs))}
	for _, s := range r.orderedSegments() {
		nat := ""
		if s.NAT {
			nat = "yes"
		}
		t.Rows = append(t.Rows, []any{s.From, s.To, s.Class, nat, s.Tunnel, s.Sent, s.Received, s.Lost,
			round(100*s.LossRatio, 2), delayCell(s.DelayP50ms), delayCell(s.DelayP99ms), s.Reordered})
	}
	rep.AddTable(t)
	h := report.Table{Name: "hops", Title: "Hops and clock offsets",
		Columns: []string{"hop", "source", "packets", "matched", "duplicates", "capture drops", "missed", "acked, not seen", "clock offset ms", "± ms", "method"},
		Note:    fmt.Sprintf("Offsets are relative to %s's clock.", r.Hops[r.Reference].Name)}
	for _, x := range r.Hops {
		var drops any
		if x.CaptureDrops != nil {
			drops = *x.CaptureDrops
		}
		var unc any
		if x.OffsetUncNs >= 0 {
			unc = ms(x.OffsetUncNs)
		}
		h.Rows = append(h.Rows, []any{x.Name, x.Source, x.Packets, x.Matched, x.Duplicates, drops, x.Missed, x.AckedNotSeen, ms(x.OffsetNs), unc, x.OffsetMethod})
	}
	rep.AddTable(h)
	if len(r.NATPools) > 0 {
		p := report.Table{Name: "nat_pools", Title: "Source NAT port pools seen in matched packets",
			Columns: []string{"from", "to", "proto", "outside address", "inside hosts", "distinct ports", "port min", "port max"}}
		for _, x := range r.NATPools {
			p.Rows = append(p.Rows, []any{x.From, x.To, x.Proto, x.Outside, x.InsideHosts, x.DistinctPorts, x.PortMin, x.PortMax})
		}
		rep.AddTable(p)
	}
	if len(r.NAT) > 0 {
		const show = 20
		m := report.Table{Name: "nat_mappings", Title: "NAT mappings learned from matched packets",
			Columns: []string{"from", "to", "proto", "before", "after", "packets", "replies"}}
		for i, x := range r.NAT {
			if i == show {
				break
			}
			m.Rows = append(m.Rows, []any{x.From, x.To, x.Proto, x.Before, x.After, x.Packets, x.Replies})
		}
		if r.NATMappingsTotal > show {
			m.Note = fmt.Sprintf("First %d of %d mappings; the JSON data lists up to %d.", show, r.NATMappingsTotal, maxMappingsData)
		}
		rep.AddTable(m)
	}
	if len(r.Tunnels) > 0 {
		tt := report.Table{Name: "tunnels", Title: "Encrypted tunnels: sequence numbers and counters per hop",
			Columns: []string{"hop", "kind", "id", "dst", "packets", "first", "last", "expected", "missing"}}
		for _, x := range r.Tunnels {
			tt.Rows = append(tt.Rows, []any{x.Hop, x.Kind, fmt.Sprintf("0x%08x", x.ID), x.Dst, x.Packets, x.First, x.Last, x.Expected, x.Missing})
		}
		rep.AddTable(tt)
	}
}

// HopData is a hop in the JSON data (data.hops).
type HopData struct {
	Name         string   `json:"name"`
	Source       string   `json:"source"`
	File         string   `json:"file,omitempty"` // the capture file of a live hop (frame numbers refer to it)
	Packets      uint64   `json:"packets"`
	CaptureDrops *uint64  `json:"capture_drops"`
	Missed       uint64   `json:"missed"`
	AckedNotSeen uint64   `json:"acked_not_seen"`
	Matched      uint64   `json:"matched"`
	Duplicates   uint64   `json:"duplicates"`
	OffsetMs     float64  `json:"clock_offset_ms"`
	OffsetUncMs  *float64 `json:"clock_offset_uncertainty_ms"`
	OffsetMethod string   `json:"clock_offset_method"`
	OffsetFrom   string   `json:"clock_offset_from,omitempty"`
}

// SegmentData is a segment in the JSON data (data.segments).
type SegmentData struct {
	From       string   `json:"from"`
	To         string   `json:"to"`
	Class      string   `json:"class"`
	NAT        bool     `json:"nat"`
	Tunnel     string   `json:"tunnel,omitempty"`
	Sent       uint64   `json:"sent"`
	Received   uint64   `json:"received"`
	Lost       uint64   `json:"lost"`
	LossRatio  float64  `json:"loss_ratio"`
	DelayP50ms *float64 `json:"delay_p50_ms"`
	DelayP99ms *float64 `json:"delay_p99_ms"`
	Reordered  uint64   `json:"reordered"`
}

func optMs(v float64) *float64 {
	if v < 0 {
		return nil
	}
	return &v
}

// Data returns the JSON data of the trace: hops, segments, NAT mappings and
// pools, encrypted tunnel counters.
func (r *Result) Data() (hops []HopData, segs []SegmentData) {
	for _, h := range r.Hops {
		d := HopData{Name: h.Name, Source: h.Source, Packets: h.Packets, CaptureDrops: h.CaptureDrops, Missed: h.Missed, AckedNotSeen: h.AckedNotSeen,
			Matched: h.Matched, Duplicates: h.Duplicates, OffsetMs: ms(h.OffsetNs), OffsetMethod: h.OffsetMethod, OffsetFrom: h.OffsetFrom}
		if h.File != h.Source {
			d.File = h.File
		}
		if h.OffsetUncNs >= 0 {
			u := ms(h.OffsetUncNs)
			d.OffsetUncMs = &u
		}
		hops = append(hops, d)
	}
	for _, s := range r.orderedSegments() {
		segs = append(segs, SegmentData{From: s.From, To: s.To, Class: s.Class, NAT: s.NAT, Tunnel: s.Tunnel,
			Sent: s.Sent, Received: s.Received, Lost: s.Lost, LossRatio: round(s.LossRatio, 4),
			DelayP50ms: optMs(s.DelayP50ms), DelayP99ms: optMs(s.DelayP99ms), Reordered: s.Reordered})
	}
	return hops, segs
}

func (r *Result) data(rep *report.Report) {
	hops, segs := r.Data()
	if segs == nil {
		segs = []SegmentData{}
	}
	rep.SetData("hops", hops)
	rep.SetData("segments", segs)
	nat := r.NAT
	if len(nat) > maxMappingsData {
		nat = nat[:maxMappingsData]
	}
	if nat == nil {
		nat = []NATMapping{}
	}
	rep.SetData("nat_mappings", nat)
	rep.SetData("nat_mappings_total", r.NATMappingsTotal)
	if r.NATPools != nil {
		rep.SetData("nat_pools", r.NATPools)
	}
	if r.Tunnels != nil {
		rep.SetData("tunnels", r.Tunnels)
		rep.SetData("tunnel_pairs", r.TunnelPairs)
	}
	rep.SetData("window_ms", ms(r.WindowNs))
}
