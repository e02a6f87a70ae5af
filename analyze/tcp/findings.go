package tcp

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/vpndiag/vpndiag/analyze"
	"github.com/vpndiag/vpndiag/report"
)

// Finding ids.
const (
	IDRetransmissions = "tcp.retransmissions"
	IDZeroWindow      = "tcp.zero-window"
	IDResets          = "tcp.resets"
)

// Thresholds. Below them a finding is info.
const (
	// RetransWarnRatio and RetransWarnMin: retransmitted segments as a share
	// of data segments at one capture point, and their least number, for a
	// warning.
	RetransWarnRatio = 0.02
	RetransWarnMin   = 10
	// ZeroWindowWarn is how long a receiver must advertise a zero window
	// (the sender is stalled) for a warning.
	ZeroWindowWarn = time.Second
	// ResetWarnMin and ResetWarnRatio: reset connections and their share of
	// the connections at one capture point for a warning.
	ResetWarnMin   = 10
	ResetWarnRatio = 0.2
	// maxFrames is how many example frames a finding lists.
	maxFrames = 5
	// tableRows bounds the flow and peer tables.
	tableRows = 20
)

// totals are one capture point's counters.
type totals struct {
	Flows          uint64  `json:"flows"`
	DataSegments   uint64  `json:"data_segments"`
	Retrans        uint64  `json:"retransmissions"`
	DupAcks        uint64  `json:"duplicate_acks"`
	ZeroWindows    uint64  `json:"zero_window_segments"`
	Resets         uint64  `json:"reset_segments"`
	FlowsRetrans   uint64  `json:"flows_with_retransmissions"`
	FlowsZero      uint64  `json:"flows_with_zero_window"`
	FlowsReset     uint64  `json:"flows_reset"`
	Refused        uint64  `json:"connections_refused"`
	ZeroLongestSec float64 `json:"zero_window_longest_seconds"`
}

func (t *totals) addFlow(f *flow) {
	t.Flows++
	var retrans, zero, resets uint64
	for i := range f.d {
		d := &f.d[i]
		t.DataSegments += d.dataSegments
		t.DupAcks += d.dupAcks
		retrans += d.retrans
		zero += d.zeroWindows
		resets += d.resets
		t.ZeroLongestSec = max(t.ZeroLongestSec, time.Duration(d.zeroLongest).Seconds())
	}
	t.Retrans += retrans
	t.ZeroWindows += zero
	t.Resets += resets
	if retrans > 0 {
		t.FlowsRetrans++
	}
	if zero > 0 {
		t.FlowsZero++
	}
	if resets > 0 {
		t.FlowsReset++
	}
	if f.refused {
		t.Refused++
	}
}

// InputResult is the TCP health of one capture point.
type InputResult struct {
	Input string `json:"input"`
	totals
}

// Result is the "tcp" entry of the report's data.
type Result struct {
	Inputs     []InputResult `json:"inputs"`
	FlowLimit  int           `json:"flow_limit"`
	Evicted    uint64        `json:"flows_evicted"`
	EvictedMax uint64        `json:"max_evicted_packets"`
}

type peerKey struct {
	input int
	addr  netip.Addr
}

// peer is one address's side of its connections at one capture point.
type peer struct {
	key                                 peerKey
	flows, data, retrans, dupAcks, zero uint64
	resets                              uint64
}

func name(inputs []analyze.InputInfo, i int) string {
	if i >= 0 && i < len(inputs) {
		return inputs[i].Name
	}
	return fmt.Sprintf("input %d", i)
}

func endpoint(a netip.Addr, p uint16) string { return netip.AddrPortFrom(a, p).String() }

// Finish implements analyze.Analyzer.
func (a *Analyzer) Finish(r *report.Report, inputs []analyze.InputInfo) {
	flows := make([]*flow, 0, len(a.flows))
	for _, f := range a.flows {
		if f.input < len(a.ends) {
			f.closeZero(a.ends[f.input])
		}
		flows = append(flows, f)
	}
	slices.SortFunc(flows, func(x, y *flow) int {
		if c := cmp.Compare(x.input, y.input); c != 0 {
			return c
		}
		return cmp.Compare(x.firstFrame, y.firstFrame)
	})
	byInput := map[int]*totals{}
	peers := map[peerKey]*peer{}
	for _, f := range flows {
		t := byInput[f.input]
		if t == nil {
			t = &totals{}
			byInput[f.input] = t
		}
		t.addFlow(f)
		for i, addr := range [2]netip.Addr{f.key.A, f.key.B} {
			pk := peerKey{f.input, addr}
			p := peers[pk]
			if p == nil {
				p = &peer{key: pk}
				peers[pk] = p
			}
			d := &f.d[i]
			p.flows++
			p.data += d.dataSegments
			p.retrans += d.retrans
			p.dupAcks += d.dupAcks
			p.zero += d.zeroWindows
			p.resets += d.resets
		}
	}
	for in, lt := range a.lostBy {
		t := byInput[in]
		if t == nil {
			t = &totals{}
			byInput[in] = t
		}
		t.Flows += lt.Flows
		t.DataSegments += lt.DataSegments
		t.Retrans += lt.Retrans
		t.DupAcks += lt.DupAcks
		t.ZeroWindows += lt.ZeroWindows
		t.Resets += lt.Resets
		t.FlowsRetrans += lt.FlowsRetrans
		t.FlowsZero += lt.FlowsZero
		t.FlowsReset += lt.FlowsReset
		t.Refused += lt.Refused
		t.ZeroLongestSec = max(t.ZeroLongestSec, lt.ZeroLongestSec)
	}
	res := Result{Inputs: []InputResult{}, FlowLimit: a.limit(), Evicted: a.evicted, EvictedMax: a.evictedMax}
	ins := make([]int, 0, len(byInput))
	for in := range byInput {
		ins = append(ins, in)
	}
	slices.Sort(ins)
	for _, in := range ins {
		res.Inputs = append(res.Inputs, InputResult{Input: name(inputs, in), totals: *byInput[in]})
	}
	r.SetData("tcp", res)
	if len(ins) == 0 {
		return
	}
	a.tables(r, inputs, flows, peers)
	for _, in := range ins {
		a.findings(r, inputs, in, byInput[in], flows)
	}
}

func (a *Analyzer) tables(r *report.Report, inputs []analyze.InputInfo, flows []*flow, peers map[peerKey]*peer) {
	bad := slices.Clone(flows)
	bad = slices.DeleteFunc(bad, func(f *flow) bool {
		return f.d[0].retrans+f.d[1].retrans+f.d[0].dupAcks+f.d[1].dupAcks+f.d[0].zeroWindows+f.d[1].zeroWindows+f.d[0].resets+f.d[1].resets == 0
	})
	slices.SortStableFunc(bad, func(x, y *flow) int {
		return cmp.Compare(y.d[0].retrans+y.d[1].retrans, x.d[0].retrans+x.d[1].retrans)
	})
	ft := report.Table{Name: "tcp_flows", Title: "TCP connections with retransmissions, duplicate ACKs, zero windows or resets",
		Columns: []string{"input", "A", "B", "packets", "data segments A>B/B>A", "retransmissions A>B/B>A", "dup ACKs A>B/B>A",
			"zero windows A/B", "resets A/B", "first frame"}}
	for i, f := range bad {
		if i == tableRows {
			ft.Note = fmt.Sprintf("%d more connections not listed.", len(bad)-tableRows)
			break
		}
		d0, d1 := &f.d[0], &f.d[1]
		ft.Rows = append(ft.Rows, []any{name(inputs, f.input), endpoint(f.key.A, f.key.PA), endpoint(f.key.B, f.key.PB), f.packets,
			fmt.Sprintf("%d/%d", d0.dataSegments, d1.dataSegments), fmt.Sprintf("%d/%d", d0.retrans, d1.retrans),
			fmt.Sprintf("%d/%d", d0.dupAcks, d1.dupAcks), fmt.Sprintf("%d/%d", d0.zeroWindows, d1.zeroWindows),
			fmt.Sprintf("%d/%d", d0.resets, d1.resets), f.firstFrame})
	}
	if a.evicted > 0 {
		ft.Note += fmt.Sprintf(" The connection table held at most %d connections and evicted %d small ones (up to %d packets each); their counts are in the totals.",
			a.limit(), a.evicted, a.evictedMax)
	}
	r.AddTable(ft)

	ps := make([]*peer, 0, len(peers))
	for _, p := range peers {
		if p.retrans+p.dupAcks+p.zero+p.resets > 0 {
			ps = append(ps, p)
		}
	}
	slices.SortFunc(ps, func(x, y *peer) int {
		if c := cmp.Compare(y.retrans, x.retrans); c != 0 {
			return c
		}
		if c := cmp.Compare(x.key.input, y.key.input); c != 0 {
			return c
		}
		return x.key.addr.Compare(y.key.addr)
	})
	pt := report.Table{Name: "tcp_peers", Title: "TCP health per peer (what each address sent)",
		Columns: []string{"input", "address", "connections", "data segments", "retransmissions", "retransmitted %", "dup ACKs", "zero windows", "resets"}}
	for i, p := range ps {
		if i == tableRows {
			pt.Note = fmt.Sprintf("%d more peers not listed.", len(ps)-tableRows)
			break
		}
		pt.Rows = append(pt.Rows, []any{name(inputs, p.key.input), p.key.addr.String(), p.flows, p.data, p.retrans,
			pct(p.retrans, p.data), p.dupAcks, p.zero, p.resets})
	}
	r.AddTable(pt)
}

func (a *Analyzer) limit() int {
	if a.Limit <= 0 {
		return DefaultFlowLimit
	}
	return a.Limit
}

func pct(n, total uint64) float64 {
	if total == 0 {
		return 0
	}
	return float64(int(float64(n)*10000/float64(total)+0.5)) / 100
}

// examples collects up to maxFrames frames from the flows of one input,
// worst first by the given count.
func examples(inputs []analyze.InputInfo, flows []*flow, in int, count func(*flow) uint64, ex func(*flow) *frames) []report.FrameRef {
	fs := slices.Clone(flows)
	fs = slices.DeleteFunc(fs, func(f *flow) bool { return f.input != in || count(f) == 0 })
	slices.SortStableFunc(fs, func(x, y *flow) int { return cmp.Compare(count(y), count(x)) })
	var out []report.FrameRef
	for _, f := range fs {
		e := ex(f)
		for i := 0; i < int(e.n) && len(out) < maxFrames; i++ {
			out = append(out, report.FrameRef{File: name(inputs, e.ref[i].input), Frame: e.ref[i].frame})
		}
	}
	return out
}

// worst returns the flow of input in with the highest count.
func worst(flows []*flow, in int, count func(*flow) uint64) *flow {
	var w *flow
	for _, f := range flows {
		if f.input == in && count(f) > 0 && (w == nil || count(f) > count(w)) {
			w = f
		}
	}
	return w
}

func flowText(f *flow) string {
	return endpoint(f.key.A, f.key.PA) + " <-> " + endpoint(f.key.B, f.key.PB)
}

func (a *Analyzer) findings(r *report.Report, inputs []analyze.InputInfo, in int, t *totals, flows []*flow) {
	hop := name(inputs, in)
	where := &report.Where{Hop: hop}
	if t.Retrans > 0 {
		ratio := float64(t.Retrans) / float64(max(t.DataSegments, 1))
		sev := report.SeverityInfo
		if t.Retrans >= RetransWarnMin && ratio >= RetransWarnRatio {
			sev = report.SeverityWarning
		}
		count := func(f *flow) uint64 { return f.d[0].retrans + f.d[1].retrans }
		ev := map[string]any{"retransmissions": t.Retrans, "data_segments": t.DataSegments, "ratio": round4(ratio),
			"duplicate_acks": t.DupAcks, "connections": t.Flows, "connections_with_retransmissions": t.FlowsRetrans,
			"warn_ratio": RetransWarnRatio, "warn_min": RetransWarnMin}
		sum := fmt.Sprintf("%s: %d of %d TCP data segments (%.2f%%) were retransmissions, in %d of %d connections; %d duplicate ACKs.",
			hop, t.Retrans, t.DataSegments, 100*ratio, t.FlowsRetrans, t.Flows, t.DupAcks)
		if w := worst(flows, in, count); w != nil {
			ev["worst_connection"] = flowText(w)
			ev["worst_connection_retransmissions"] = count(w)
		}
		r.Add(report.Finding{ID: IDRetransmissions, Severity: sev, Title: "TCP retransmissions", Summary: sum, Where: where,
			Evidence: ev, Frames: examples(inputs, flows, in, count, func(f *flow) *frames { return &f.retransEx }),
			Remedy: "Retransmissions mean loss (or reordering) between the sender and this capture point or beyond it. " +
				"Capture at the next hop too (vpndiag trace) to localise the segment that loses packets; check interface " +
				"errors and drops (ip -s link, ethtool -S), queue/policer drops on the path, and MTU (see mtu.* findings)."})
	}
	if t.FlowsZero > 0 {
		sev := report.SeverityInfo
		if t.ZeroLongestSec >= ZeroWindowWarn.Seconds() {
			sev = report.SeverityWarning
		}
		count := func(f *flow) uint64 { return f.d[0].zeroWindows + f.d[1].zeroWindows }
		r.Add(report.Finding{ID: IDZeroWindow, Severity: sev, Title: "TCP receivers advertised a zero window",
			Summary: fmt.Sprintf("%s: %d connections had a receiver advertise a zero window (%d segments); the longest stall lasted %.3f s.",
				hop, t.FlowsZero, t.ZeroWindows, t.ZeroLongestSec),
			Where: where, Evidence: map[string]any{"connections": t.FlowsZero, "zero_window_segments": t.ZeroWindows,
				"longest_seconds": round4(t.ZeroLongestSec), "warn_seconds": ZeroWindowWarn.Seconds()},
			Frames: examples(inputs, flows, in, count, func(f *flow) *frames { return &f.zeroEx }),
			Remedy: "A zero window means the receiving application is not reading fast enough (or its socket buffer is too small); " +
				"the network is not at fault. Check the receiving host's CPU and application, and its buffers " +
				"(net.ipv4.tcp_rmem, net.core.rmem_max)."})
	}
	if t.FlowsReset > 0 {
		sev := report.SeverityInfo
		if t.FlowsReset >= ResetWarnMin && float64(t.FlowsReset) >= ResetWarnRatio*float64(t.Flows) {
			sev = report.SeverityWarning
		}
		count := func(f *flow) uint64 { return f.d[0].resets + f.d[1].resets }
		r.Add(report.Finding{ID: IDResets, Severity: sev, Title: "TCP connections reset",
			Summary: fmt.Sprintf("%s: %d of %d TCP connections were reset (%d refused at the SYN, %d aborted after it).",
				hop, t.FlowsReset, t.Flows, t.Refused, t.FlowsReset-t.Refused),
			Where: where, Evidence: map[string]any{"connections_reset": t.FlowsReset, "connections": t.Flows, "refused": t.Refused,
				"aborted": t.FlowsReset - t.Refused, "reset_segments": t.Resets, "warn_min": ResetWarnMin, "warn_ratio": ResetWarnRatio},
			Frames: examples(inputs, flows, in, count, func(f *flow) *frames { return &f.resetEx }),
			Remedy: "Refused connections: nothing listens on that port, or a firewall rejects with TCP reset (check nft/iptables " +
				"reject rules). Aborted connections: look at the sender of the reset — an application closing abortively, " +
				"a middlebox or NAT that lost the connection's state (conntrack timeouts), or an IPS."})
	}
}

func round4(f float64) float64 { return float64(int64(f*10000+0.5)) / 10000 }
