package flow

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/vpndiag/vpndiag/analyze"
	"github.com/vpndiag/vpndiag/report"
)

// IDAsymmetric is the finding id.
const IDAsymmetric = "flow.asymmetric"

const tableRows = 30

// OneWay is a flow seen in one direction only.
type OneWay struct {
	Input   string `json:"input"`
	Kind    string `json:"kind"` // answered-elsewhere or no-reply
	Proto   string `json:"protocol"`
	Src     string `json:"src"`
	Dst     string `json:"dst"`
	Packets uint64 `json:"packets"`
	AckAdv  uint32 `json:"ack_advance,omitempty"`
	Why     string `json:"why"`
}

// Result is the "flow" entry of the report's data.
type Result struct {
	OneWay       []OneWay `json:"one_way"`
	Evicted      uint64   `json:"tcp_flows_evicted"`
	UDPUntracked uint64   `json:"udp_packets_untracked"`
	MinPackets   int      `json:"min_packets"`
}

func serviceName(k skey) string {
	switch {
	case k.wg:
		return "wireguard-handshake"
	case k.port == 53:
		return "dns"
	case k.port == 500:
		return "ike"
	case k.port == 4500:
		return "ike-nat-t"
	}
	return "udp"
}

// samePort reports a service pair whose peers both use the service port
// (IKE): neither side is the client.
func samePort(k skey) bool { return k.port == 500 || k.port == 4500 }

// Finish implements analyze.Analyzer.
func (a *Analyzer) Finish(r *report.Report, inputs []analyze.InputInfo) {
	for _, f := range a.flows {
		a.judge(f)
	}
	for _, k := range a.sorder {
		s := a.services[k]
		switch {
		case s.fwd >= MinPackets && s.back == 0:
			a.found = append(a.found, oneWay{input: k.input, kind: kindNoReply, proto: serviceName(k),
				src: netip.AddrPortFrom(k.client, 0), dst: netip.AddrPortFrom(k.server, k.port), packets: s.fwd,
				why: fmt.Sprintf("%d packets, none back", s.fwd), ex: s.ex})
		case s.back >= MinPackets && s.fwd == 0:
			// Only the service's side: answers (or a peer on the same port) whose requests take another path.
			src, dst := netip.AddrPortFrom(k.server, k.port), netip.AddrPortFrom(k.client, 0)
			kind, why := kindElsewhere, fmt.Sprintf("%d answers to requests never seen here", s.back)
			if k.wg || samePort(k) {
				kind, why = kindNoReply, fmt.Sprintf("%d packets, none back", s.back)
			}
			a.found = append(a.found, oneWay{input: k.input, kind: kind, proto: serviceName(k), src: src, dst: dst,
				packets: s.back, why: why, ex: s.backEx})
		}
	}
	slices.SortStableFunc(a.found, func(x, y oneWay) int {
		if c := cmp.Compare(x.input, y.input); c != 0 {
			return c
		}
		return cmp.Compare(x.ex.IDs()[0].Frame, y.ex.IDs()[0].Frame)
	})
	res := Result{OneWay: []OneWay{}, Evicted: a.evicted, UDPUntracked: a.dropped, MinPackets: MinPackets}
	for _, w := range a.found {
		src := w.src.String()
		if w.src.Port() == 0 {
			src = w.src.Addr().String()
		}
		res.OneWay = append(res.OneWay, OneWay{Input: analyze.InputName(inputs, w.input), Kind: w.kind, Proto: w.proto, Src: src,
			Dst: w.dst.String(), Packets: w.packets, AckAdv: w.ackAdv, Why: w.why})
	}
	r.SetData("flow", res)
	if len(res.OneWay) == 0 {
		return
	}
	t := report.Table{Name: "flow_asymmetric", Title: "Flows seen in one direction only",
		Columns: []string{"input", "kind", "protocol", "from", "to", "packets", "why"}}
	for i, w := range res.OneWay {
		if i == tableRows {
			t.Note = fmt.Sprintf("%d more one-way flows not listed.", len(res.OneWay)-tableRows)
			break
		}
		t.Rows = append(t.Rows, []any{w.Input, w.Kind, w.Proto, w.Src, w.Dst, w.Packets, w.Why})
	}
	r.AddTable(t)
	byInput := map[int][]oneWay{}
	var order []int
	for _, w := range a.found {
		if byInput[w.input] == nil {
			order = append(order, w.input)
		}
		byInput[w.input] = append(byInput[w.input], w)
	}
	for _, in := range order {
		ws := byInput[in]
		name := analyze.InputName(inputs, in)
		var elsewhere, noReply int
		var frames []report.FrameRef
		var examples []string
		for _, w := range ws {
			if w.kind == kindElsewhere {
				elsewhere++
			} else {
				noReply++
			}
			if len(examples) < 5 {
				examples = append(examples, fmt.Sprintf("%s %s > %s (%d packets: %s)", w.proto, w.src, w.dst, w.packets, w.why))
			}
			for _, x := range w.ex.IDs()[:min(w.ex.Len(), maxExamples)] {
				if len(frames) < 6 {
					frames = append(frames, report.FrameRef{File: analyze.InputName(inputs, x.Input), Frame: x.Frame})
				}
			}
		}
		var parts []string
		if elsewhere > 0 {
			parts = append(parts, fmt.Sprintf("%d whose other direction provably takes another path", elsewhere))
		}
		if noReply > 0 {
			parts = append(parts, fmt.Sprintf("%d that got no reply here (lost, filtered, or answered by another path)", noReply))
		}
		r.Add(report.Finding{ID: IDAsymmetric, Severity: report.SeverityWarning, Title: "Flows seen in one direction only",
			Summary: fmt.Sprintf("%s: %d flows were seen in one direction only: %s; first: %s.", name, len(ws), strings.Join(parts, "; "), examples[0]),
			Where:   &report.Where{Hop: name},
			Evidence: map[string]any{"one_way_flows": len(ws), "answered_elsewhere": elsewhere, "no_reply": noReply,
				"examples": examples, "min_packets": MinPackets},
			Frames: frames,
			Remedy: "Capture on the other path (or both members of the HA/ECMP pair) to find where the return traffic goes. " +
				"Asymmetric paths break stateful firewalls, NAT and strict reverse-path filtering: make routing symmetric " +
				"(matching metrics/BGP preferences on both sides, policy routing by source), use loose rp_filter " +
				"(sysctl net.ipv4.conf.all.rp_filter=2) on the gateways, and sync state between firewalls (conntrackd) " +
				"or disable stateful checks for these flows."})
	}
}
