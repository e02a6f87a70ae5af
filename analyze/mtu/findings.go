package mtu

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/vpndiag/vpndiag/analyze"
	"github.com/vpndiag/vpndiag/analyze/decode"
	"github.com/vpndiag/vpndiag/report"
)

// Finding ids.
const (
	IDFragmented       = "mtu.fragmented"
	IDReassemblyFailed = "mtu.reassembly-failed"
	IDFragNeeded       = "mtu.frag-needed"
	IDMSSTooLarge      = "mtu.mss-too-large"
	IDBlackhole        = "mtu.pmtu-blackhole"
	IDTunnelOverhead   = "mtu.tunnel-overhead"
)

const tableRows = 30

// FragFlow is one one-way flow's fragmentation at one capture point.
type FragFlow struct {
	Input     string `json:"input"`
	Level     int    `json:"level"` // 0 outer, 1+ inside tunnels
	Protocol  string `json:"protocol"`
	Src       string `json:"src"`
	Dst       string `json:"dst"`
	Packets   uint64 `json:"packets_reassembled"`
	Fragments uint64 `json:"fragments"`
	Failed    uint64 `json:"packets_failed"`
	Pending   uint64 `json:"packets_pending_at_end"`
	MaxSize   uint16 `json:"largest_fragment"`
	Tunnel    bool   `json:"tunnel_traffic"`
}

// TooBig is one sender's fragmentation-needed / packet-too-big messages.
type TooBig struct {
	Input     string   `json:"input"`
	Sender    string   `json:"sender"`
	MTU       uint32   `json:"mtu"`
	Count     uint64   `json:"count"`
	Dsts      []string `json:"quoted_destinations"`
	Srcs      []string `json:"quoted_sources"`
	QuotedMax uint16   `json:"largest_quoted_packet"`
	Ignored   uint64   `json:"too_big_packets_after"`
}

// Overhead is one tunnel kind's overhead at one capture point.
type Overhead struct {
	Input        string `json:"input"`
	Tunnel       string `json:"tunnel"`
	OuterIPv6    bool   `json:"outer_ipv6"`
	Packets      uint64 `json:"packets"`
	Min          uint16 `json:"overhead_min"`
	Max          uint16 `json:"overhead_max"`
	Nominal      bool   `json:"nominal"` // encrypted: not measurable, the documented worst case
	MaxOuter     uint16 `json:"largest_outer_packet"`
	MaxInner     uint16 `json:"largest_inner_packet,omitempty"`
	BaseMTU      uint16 `json:"base_mtu"`
	BaseSource   string `json:"base_mtu_source"`
	EffectiveMTU int    `json:"effective_inner_mtu"`
}

// Result is the "mtu" entry of the report's data.
type Result struct {
	Fragments        []FragFlow `json:"fragmented_flows"`
	ReassemblyFailed uint64     `json:"reassembly_failed"`
	FragUntracked    uint64     `json:"fragments_untracked"`
	TooBig           []TooBig   `json:"frag_needed"`
	Overhead         []Overhead `json:"tunnel_overhead"`
	TCPEvicted       uint64     `json:"tcp_flows_evicted"`
}

func protoName(p uint8) string { return analyze.ProtoName(p) }

func endpoint(a netip.Addr, port uint16) string {
	if port == 0 {
		return a.String()
	}
	return netip.AddrPortFrom(a, port).String()
}

func addrs(set []netip.Addr) []string {
	out := make([]string, 0, len(set))
	for _, a := range set {
		out = append(out, a.String())
	}
	return out
}

// hdr is the IP+TCP header size an MSS excludes.
func hdr(a netip.Addr) uint32 {
	if a.Is6() {
		return 60
	}
	return 40
}

// Finish implements analyze.Analyzer.
func (a *Analyzer) Finish(r *report.Report, inputs []analyze.InputInfo) {
	a.frag.expire(0, a.ends)
	for _, f := range a.tcp.flows {
		a.tcp.judge(f, &a.icmp)
	}
	res := Result{Fragments: []FragFlow{}, TooBig: []TooBig{}, Overhead: []Overhead{}, ReassemblyFailed: a.frag.failed,
		FragUntracked: a.frag.untracked, TCPEvicted: a.tcp.evicted}
	a.fragFindings(r, inputs, &res)
	a.icmpFindings(r, inputs, &res)
	a.mssFindings(r, inputs)
	a.holeFindings(r, inputs)
	a.overheadFindings(r, inputs, &res)
	r.SetData("mtu", res)
}

func (a *Analyzer) fragFindings(r *report.Report, inputs []analyze.InputInfo, res *Result) {
	s := &a.frag
	byInput := map[int][]*fragFlow{}
	var ins []int
	for _, k := range s.order {
		f := s.flows[k]
		if byInput[k.input] == nil {
			ins = append(ins, k.input)
		}
		byInput[k.input] = append(byInput[k.input], f)
		res.Fragments = append(res.Fragments, FragFlow{Input: analyze.InputName(inputs, k.input), Level: int(k.level), Protocol: protoName(k.proto),
			Src: endpoint(k.src, f.sport), Dst: endpoint(k.dst, f.dport), Packets: f.packets, Fragments: f.fragments,
			Failed: f.failed, Pending: f.pending, MaxSize: f.maxSize, Tunnel: f.tunnel})
	}
	if len(res.Fragments) > 0 {
		t := report.Table{Name: "mtu_fragments", Title: "Fragmented IP packets by flow",
			Columns: []string{"input", "level", "proto", "from", "to", "packets", "fragments", "failed", "largest fragment", "tunnel"}}
		for i, f := range res.Fragments {
			if i == tableRows {
				t.Note = fmt.Sprintf("%d more flows not listed.", len(res.Fragments)-tableRows)
				break
			}
			t.Rows = append(t.Rows, []any{f.Input, f.Level, f.Protocol, f.Src, f.Dst, f.Packets, f.Fragments, f.Failed, f.MaxSize, f.Tunnel})
		}
		if s.untracked > 0 {
			t.Note += fmt.Sprintf(" %d fragments were not tracked (limits).", s.untracked)
		}
		r.AddTable(t)
	}
	for _, in := range ins {
		flows := byInput[in]
		name := analyze.InputName(inputs, in)
		var packets, frags, tunnelFlows uint64
		var ex analyze.Examples
		for _, f := range flows {
			packets += f.packets + f.failed + f.pending
			frags += f.fragments
			if f.tunnel {
				tunnelFlows++
				for _, x := range f.ex.IDs() {
					ex.Add(x.Input, x.Frame)
				}
			}
		}
		for _, f := range flows {
			for _, x := range f.ex.IDs() {
				ex.Add(x.Input, x.Frame)
			}
		}
		sev := report.SeverityInfo
		sum := fmt.Sprintf("%s: %d IP packets in %d flows were fragmented (%d fragments).", name, packets, len(flows), frags)
		if tunnelFlows > 0 {
			sev = report.SeverityWarning
			sum = fmt.Sprintf("%s: %d IP packets in %d flows were fragmented (%d fragments), %d of these flows tunnel traffic: the tunnel's packets are larger than the path MTU.",
				name, packets, len(flows), frags, tunnelFlows)
		}
		r.Add(report.Finding{ID: IDFragmented, Severity: sev, Title: "IP fragmentation", Summary: sum, Where: &report.Where{Hop: name},
			Evidence: map[string]any{"packets": packets, "fragments": frags, "flows": len(flows), "tunnel_flows": tunnelFlows},
			Frames:   ex.FrameRefs(inputs, maxExamples),
			Remedy: "Fragments are slower, often dropped by firewalls and NAT, and one lost fragment loses the whole packet. " +
				"For tunnels, lower the inner MTU to the effective MTU (see mtu_tunnel_overhead; e.g. ip link set dev wg0 mtu 1420) " +
				"and clamp TCP MSS on the tunnel (nft: tcp flags syn tcp option maxseg size set rt mtu); for DNS, keep EDNS buffer sizes at 1232."})
	}
	if s.failed == 0 {
		return
	}
	slices.SortFunc(s.failures, func(x, y failure) int {
		if c := cmp.Compare(x.key.input, y.key.input); c != 0 {
			return c
		}
		return cmp.Compare(x.ex.IDs()[0].Frame, y.ex.IDs()[0].Frame)
	})
	byIn := map[int][]failure{}
	var order []int
	for _, f := range s.failures {
		if byIn[f.key.input] == nil {
			order = append(order, f.key.input)
		}
		byIn[f.key.input] = append(byIn[f.key.input], f)
	}
	for _, in := range order {
		fs := byIn[in]
		name := analyze.InputName(inputs, in)
		var ex analyze.Examples
		var examples []string
		for _, f := range fs {
			for _, x := range f.ex.IDs() {
				ex.Add(x.Input, x.Frame)
			}
			if len(examples) < 5 {
				examples = append(examples, fmt.Sprintf("%s %s > %s id %d: %d fragments, missing bytes %s",
					protoName(f.key.proto), f.key.src, f.key.dst, f.key.id, f.fragments, f.missing))
			}
		}
		r.Add(report.Finding{ID: IDReassemblyFailed, Severity: report.SeverityWarning, Title: "Fragmented packets that never completed",
			Summary:  fmt.Sprintf("%s: %d fragmented packets never got all their fragments here (first: %s).", name, len(fs), examples[0]),
			Where:    &report.Where{Hop: name},
			Evidence: map[string]any{"failed": len(fs), "examples": examples, "reassembly_timeout_seconds": ReassemblyTimeout.Seconds()},
			Frames:   ex.FrameRefs(inputs, maxExamples),
			Remedy: "A fragment was lost before this capture point (or filtered: many firewalls drop non-first fragments). " +
				"The whole packet is lost. Avoid fragmentation: lower the MTU of the tunnel or sender, clamp TCP MSS, and make " +
				"sure ICMP fragmentation-needed (IPv4 type 3 code 4) and ICMPv6 packet-too-big reach the senders."})
	}
}

func (a *Analyzer) icmpFindings(r *report.Report, inputs []analyze.InputInfo, res *Result) {
	s := &a.icmp
	if len(s.order) == 0 {
		return
	}
	t := report.Table{Name: "mtu_frag_needed", Title: "ICMP fragmentation-needed / packet-too-big by sender",
		Columns: []string{"input", "sender", "advertised MTU", "messages", "for packets to", "largest quoted packet", "too-big packets after"}}
	for _, k := range s.order {
		tb := s.msgs[k]
		tr := TooBig{Input: analyze.InputName(inputs, k.input), Sender: k.sender.String(), MTU: k.mtu, Count: tb.count,
			Dsts: addrs(tb.dsts[:tb.nd]), Srcs: addrs(tb.srcs[:tb.ns]), QuotedMax: tb.quotedMax, Ignored: tb.ignored}
		res.TooBig = append(res.TooBig, tr)
		t.Rows = append(t.Rows, []any{tr.Input, tr.Sender, tr.MTU, tr.Count, strings.Join(tr.Dsts, ", "), tr.QuotedMax, tr.Ignored})
		sev := report.SeverityInfo
		bogus := (k.sender.Is4() && k.mtu < 552) || (k.sender.Is6() && k.mtu < 1280)
		sum := fmt.Sprintf("%s: %s said %d times that packets to %s must fit MTU %d (the largest it quoted was %d bytes).",
			tr.Input, tr.Sender, tb.count, strings.Join(tr.Dsts, ", "), k.mtu, tb.quotedMax)
		remedy := "Path MTU discovery is at work: the link behind " + tr.Sender + " has MTU " + fmt.Sprint(k.mtu) +
			". Lower the sender's or tunnel's MTU to it, or clamp TCP MSS to " + fmt.Sprint(int(k.mtu)-40) +
			" on the router (iptables -t mangle -A FORWARD -p tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu)."
		switch {
		case tb.ignored >= IgnoredWarn:
			sev = report.SeverityWarning
			sum += fmt.Sprintf(" Afterwards %d more packets larger than %d went that way: the sender did not adapt (it never got the ICMP, or ignores it).", tb.ignored, k.mtu)
			remedy += " The sender kept sending too-big packets: check that ICMP type 3 code 4 / ICMPv6 type 2 is not dropped between here and the sender (firewalls, NAT) and that the sender's PMTU discovery is on (net.ipv4.ip_no_pmtu_disc=0)."
		case bogus:
			sev = report.SeverityWarning
			sum += " That MTU is below the protocol minimum: a broken device or a forged message."
			remedy = "Find the device at " + tr.Sender + " and fix its MTU; if the message is forged, set net.ipv4.route.min_pmtu (default 552) and filter ICMP from untrusted sources."
		}
		ex := tb.ex.FrameRefs(inputs, maxExamples)
		ex = append(ex, tb.ignoredEx.FrameRefs(inputs, maxExamples)...)
		r.Add(report.Finding{ID: IDFragNeeded, Severity: sev, Title: "ICMP fragmentation needed / packet too big", Summary: sum,
			Where: &report.Where{Hop: tr.Input}, Evidence: map[string]any{"sender": tr.Sender, "mtu": k.mtu, "count": tb.count,
				"quoted_destinations": tr.Dsts, "quoted_sources": tr.Srcs, "largest_quoted_packet": tb.quotedMax, "too_big_packets_after": tb.ignored},
			Frames: ex, Remedy: remedy})
	}
	r.AddTable(t)
}

func (a *Analyzer) mssFindings(r *report.Report, inputs []analyze.InputInfo) {
	s := &a.tcp
	keys := make([]mssKey, 0)
	for k := range s.mss {
		if _, ok := a.icmp.mtuToward(k.input, k.addr); ok {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(x, y mssKey) int {
		if c := cmp.Compare(x.input, y.input); c != 0 {
			return c
		}
		return x.addr.Compare(y.addr)
	})
	for _, k := range keys {
		e := s.mss[k]
		pm, _ := a.icmp.mtuToward(k.input, k.addr)
		if uint32(e.mss)+hdr(k.addr) <= pm {
			continue
		}
		name := analyze.InputName(inputs, k.input)
		r.Add(report.Finding{ID: IDMSSTooLarge, Severity: report.SeverityWarning, Title: "TCP MSS larger than the path MTU allows",
			Summary: fmt.Sprintf("%s: %s announced MSS %d, so %s sends %d-byte packets, but MTU %d was advertised for the path to %s.",
				name, k.addr, e.mss, e.peer, uint32(e.mss)+hdr(k.addr), pm, k.addr),
			Where: &report.Where{Hop: name}, Evidence: map[string]any{"host": k.addr.String(), "mss": e.mss, "peer": e.peer.String(),
				"packet_size": uint32(e.mss) + hdr(k.addr), "path_mtu": pm, "clamp_to": pm - hdr(k.addr)},
			Frames: []report.FrameRef{{File: name, Frame: e.frame}},
			Remedy: fmt.Sprintf("Clamp the MSS on the router or tunnel in front of the small link to %d: nft add rule inet filter forward tcp flags syn tcp option maxseg size set rt mtu "+
				"(iptables: -t mangle -A FORWARD -p tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu; Cisco: ip tcp adjust-mss %d), so connections never depend on ICMP reaching the sender.",
				pm-hdr(k.addr), pm-hdr(k.addr))})
	}
}

func (a *Analyzer) holeFindings(r *report.Report, inputs []analyze.InputInfo) {
	hs := a.tcp.holes
	slices.SortFunc(hs, func(x, y hole) int {
		if c := cmp.Compare(x.input, y.input); c != 0 {
			return c
		}
		return cmp.Compare(x.first, y.first)
	})
	for _, h := range hs {
		name := analyze.InputName(inputs, h.input)
		why := fmt.Sprintf("packets up to %d bytes were acknowledged", h.ackedMax)
		if h.pathMTU > 0 && (h.ackedMax == 0 || uint32(h.size) > h.pathMTU) {
			why = fmt.Sprintf("MTU %d was advertised for the path", h.pathMTU)
		}
		r.Add(report.Finding{ID: IDBlackhole, Severity: report.SeverityWarning, Title: "PMTU black hole: large packets vanish",
			Summary: fmt.Sprintf("%s: %s sent a %d-byte segment with DF set to %s %d times and it was never acknowledged, while %s.",
				name, endpoint(h.src, h.sport), h.size, endpoint(h.dst, h.dport), h.sends, why),
			Where: &report.Where{Hop: name, Flow: endpoint(h.src, h.sport) + " > " + endpoint(h.dst, h.dport)},
			Evidence: map[string]any{"src": endpoint(h.src, h.sport), "dst": endpoint(h.dst, h.dport), "size": h.size, "sends": h.sends,
				"largest_acked": h.ackedMax, "path_mtu": h.pathMTU},
			Frames: []report.FrameRef{{File: name, Frame: h.first}, {File: name, Frame: h.last}},
			Remedy: "A link on the path has a smaller MTU and the ICMP fragmentation-needed it should cause never reaches the sender " +
				"(filtered, or the router does not send it). Allow ICMP type 3 code 4 (and ICMPv6 type 2) through every firewall on the " +
				"path, clamp TCP MSS on the tunnel/router (nft: tcp flags syn tcp option maxseg size set rt mtu), lower the tunnel MTU, " +
				"or enable packetization-layer PMTUD on the sender (sysctl net.ipv4.tcp_mtu_probing=1)."})
	}
}

func (a *Analyzer) overheadFindings(r *report.Report, inputs []analyze.InputInfo, res *Result) {
	t := report.Table{Name: "mtu_tunnel_overhead", Title: "Tunnel overhead and the MTU left inside",
		Columns: []string{"input", "tunnel", "outer", "packets", "overhead", "largest outer", "largest inner", "base MTU", "effective inner MTU"}}
	for in := range a.overhead.stats {
		name := analyze.InputName(inputs, in)
		base, src := uint16(1500), "Ethernet default"
		if in < len(a.pppoe) && a.pppoe[in] {
			base, src = 1492, "PPPoE"
		} else if in < len(a.maxLen) && a.maxLen[in] > 1500 {
			base, src = a.maxLen[in], "largest packet seen"
		}
		for k := 1; k < decode.NumTunnelKinds; k++ {
			for v6 := 0; v6 < 2; v6++ {
				st := &a.overhead.stats[in][k][v6]
				if st.packets == 0 {
					continue
				}
				kind := decode.TunnelKind(k)
				o := Overhead{Input: name, Tunnel: kind.String(), OuterIPv6: v6 == 1, Packets: st.packets, Min: st.min, Max: st.max,
					MaxOuter: st.maxOuter, MaxInner: st.maxInner, BaseMTU: base, BaseSource: src}
				if st.measured == 0 {
					n := nominal(kind, v6 == 1)
					if n == 0 {
						continue // control messages or undecodable payloads only
					}
					o.Min, o.Max, o.Nominal = n, n, true
				}
				o.EffectiveMTU = int(base) - int(o.Max)
				res.Overhead = append(res.Overhead, o)
				outer, ohText := "IPv4", fmt.Sprint(o.Max)
				if v6 == 1 {
					outer = "IPv6"
				}
				if o.Nominal {
					ohText += " (nominal)"
				} else if o.Min != o.Max {
					ohText = fmt.Sprintf("%d-%d", o.Min, o.Max)
				}
				t.Rows = append(t.Rows, []any{name, o.Tunnel, outer, o.Packets, ohText, o.MaxOuter, o.MaxInner, fmt.Sprintf("%d (%s)", base, src), o.EffectiveMTU})
				sum := fmt.Sprintf("%s: %s %d - %s overhead %d = %d effective inner MTU", name, src, base, strings.ToUpper(o.Tunnel), o.Max, o.EffectiveMTU)
				if o.Nominal {
					sum += " (encrypted: the overhead is the documented worst case, not measured)"
				} else {
					sum += fmt.Sprintf(" (measured on %d packets: outer minus inner IP length %s)", st.measured, ohText)
				}
				sum += "."
				if o.MaxInner > 0 && int(o.MaxInner) > o.EffectiveMTU {
					sum += fmt.Sprintf(" Inner packets of up to %d bytes were seen: they only fit because the outer link is larger than %d, or were fragmented.", o.MaxInner, base)
				}
				r.Add(report.Finding{ID: IDTunnelOverhead, Severity: report.SeverityInfo, Title: "Tunnel overhead",
					Summary: sum, Where: &report.Where{Hop: name, Class: o.Tunnel},
					Evidence: map[string]any{"tunnel": o.Tunnel, "outer": outer, "overhead_min": o.Min, "overhead_max": o.Max,
						"nominal": o.Nominal, "base_mtu": base, "base_mtu_source": src, "effective_inner_mtu": o.EffectiveMTU,
						"largest_inner_packet": o.MaxInner, "largest_outer_packet": o.MaxOuter, "packets": o.Packets},
					Frames: []report.FrameRef{{File: name, Frame: st.frame}},
					Remedy: fmt.Sprintf("Set the tunnel interface MTU to at most %d and clamp TCP MSS to %d inside it, so inner packets never need fragmenting.",
						o.EffectiveMTU, o.EffectiveMTU-40)})
			}
		}
	}
	if len(t.Rows) > 0 {
		r.AddTable(t)
	}
}
