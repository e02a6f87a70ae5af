package arp

import (
	"cmp"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/vpndiag/vpndiag/analyze"
	"github.com/vpndiag/vpndiag/analyze/decode"
	"github.com/vpndiag/vpndiag/report"
)

// Finding ids.
const (
	IDDuplicateIP     = "arp.duplicate-ip"
	IDMACFlap         = "arp.mac-flap"
	IDGratuitousStorm = "arp.gratuitous-storm"
	IDUnanswered      = "arp.unanswered"
	// FlapMin MAC changes for an address make a flap (warning); one change
	// is reported as info (a failover or a replaced host).
	FlapMin = 2
	// UnansweredWarn unanswered requests for one address make a warning:
	// the requester kept retrying.
	UnansweredWarn = 3
	tableRows      = 50
)

// AddressResult is one address in one L2 domain.
type AddressResult struct {
	Input       string   `json:"input"`
	Domain      string   `json:"domain,omitempty"` // "vlan 10", "vxlan VNI 42", "" for the untagged link
	IP          string   `json:"ip"`
	MACs        []string `json:"macs"`
	Claims      []uint32 `json:"claims"` // per MAC
	Requests    uint32   `json:"requests"`
	Replies     uint32   `json:"replies"`
	Unanswered  uint32   `json:"unanswered_requests"`
	Pending     uint32   `json:"pending_at_end"`
	Gratuitous  uint32   `json:"gratuitous"`
	Changes     uint32   `json:"mac_changes"`
	Concurrent  uint32   `json:"concurrent_claims"`
	GatewayLike bool     `json:"gateway_like"`
}

// InputResult is one capture point's ARP totals.
type InputResult struct {
	Input          string `json:"input"`
	ARP            uint64 `json:"arp_packets"`
	Replies        uint64 `json:"replies"`
	Gratuitous     uint64 `json:"gratuitous"`
	GratuitousPeak int    `json:"gratuitous_peak_per_window"`
}

// Result is the "arp" entry of the report's data.
type Result struct {
	Inputs    []InputResult   `json:"inputs"`
	Addresses []AddressResult `json:"addresses"`
	Untracked uint64          `json:"claims_not_tracked"`
}

func (d domain) String() string {
	switch {
	case d.tunnel != 0:
		kind, id := decode.TunnelKind(d.tunnel>>32), uint32(d.tunnel)
		return fmt.Sprintf("%s id %d", kind, id)
	case d.vlan != 0:
		return fmt.Sprintf("vlan %d", d.vlan)
	}
	return ""
}

func (s *ipState) gatewayLike(k ipKey) bool {
	if k.ip.Is4() {
		if b := k.ip.As4(); b[3] == 1 || b[3] == 254 {
			return true
		}
	}
	return s.nReq >= GatewayRequesters
}

func mac(m [6]byte) string { return net.HardwareAddr(m[:]).String() }

// Finish implements analyze.Analyzer.
func (a *Analyzer) Finish(r *report.Report, inputs []analyze.InputInfo) {
	res := Result{Inputs: []InputResult{}, Addresses: []AddressResult{}, Untracked: a.untracked}
	for i := range a.inputs {
		in := &a.inputs[i]
		if in.arps == 0 {
			continue
		}
		res.Inputs = append(res.Inputs, InputResult{Input: analyze.InputName(inputs, i), ARP: in.arps, Replies: in.replies,
			Gratuitous: in.gratN, GratuitousPeak: in.stormPeak})
	}
	for _, k := range a.order {
		s := a.ips[k]
		pending := uint32(0)
		if s.pending > 0 {
			end := a.inputs[k.input].end
			s.expire(end, k.input)
			pending = s.pending
		}
		ar := AddressResult{Input: analyze.InputName(inputs, k.input), Domain: k.domain.String(), IP: k.ip.String(), MACs: []string{},
			Requests: s.requests, Replies: s.replies, Unanswered: s.unanswered, Pending: pending, Gratuitous: s.gratuitous,
			Changes: s.changes, Concurrent: s.concurrent, GatewayLike: s.gatewayLike(k)}
		for _, c := range s.claims[:s.nMACs] {
			ar.MACs = append(ar.MACs, mac(c.mac))
			ar.Claims = append(ar.Claims, c.count)
		}
		res.Addresses = append(res.Addresses, ar)
		a.addressFindings(r, inputs, k, s, &ar)
	}
	r.SetData("arp", res)
	a.stormFindings(r, inputs)
	if len(res.Addresses) == 0 {
		return
	}
	rows := slices.Clone(res.Addresses)
	score := func(x AddressResult) uint32 { return x.Concurrent*100 + x.Changes*10 + x.Unanswered + x.Gratuitous }
	slices.SortStableFunc(rows, func(x, y AddressResult) int { return cmp.Compare(score(y), score(x)) })
	t := report.Table{Name: "arp_addresses", Title: "ARP: addresses and the MACs that claimed them",
		Columns: []string{"input", "domain", "address", "MACs (claims)", "requests", "replies", "unanswered", "gratuitous", "MAC changes", "gateway-like"}}
	for i, x := range rows {
		if i == tableRows {
			t.Note = fmt.Sprintf("%d more addresses not listed.", len(rows)-tableRows)
			break
		}
		var ms []string
		for j, m := range x.MACs {
			ms = append(ms, fmt.Sprintf("%s (%d)", m, x.Claims[j]))
		}
		t.Rows = append(t.Rows, []any{x.Input, x.Domain, x.IP, strings.Join(ms, ", "), x.Requests, x.Replies,
			x.Unanswered, x.Gratuitous, x.Changes, x.GatewayLike})
	}
	if a.untracked > 0 {
		t.Note += fmt.Sprintf(" %d ARP packets about further addresses were not tracked (limit %d addresses).", a.untracked, maxAddresses)
	}
	r.AddTable(t)
}

func (a *Analyzer) addressFindings(r *report.Report, inputs []analyze.InputInfo, k ipKey, s *ipState, ar *AddressResult) {
	where := &report.Where{Hop: ar.Input, Class: strings.TrimSpace(ar.Domain + " " + ar.IP)}
	gw := ""
	if ar.GatewayLike {
		gw = " (gateway-like)"
	}
	dup := s.concurrent > 0 && s.nMACs >= 2
	if dup {
		sev := report.SeverityWarning
		if ar.GatewayLike {
			sev = report.SeverityError
		}
		r.Add(report.Finding{ID: IDDuplicateIP, Severity: sev, Title: "Two or more MACs answer for one IP address",
			Summary: fmt.Sprintf("%s: %s%s is claimed by %d MACs at the same time (%s); %d claims overlapped within %s and the binding changed %d times.",
				ar.Input, ar.IP, gw, len(ar.MACs), strings.Join(ar.MACs, ", "), s.concurrent, ConcurrentWindow, s.changes),
			Where: where, Evidence: map[string]any{"ip": ar.IP, "macs": ar.MACs, "claims": ar.Claims, "concurrent_claims": s.concurrent,
				"mac_changes": s.changes, "gateway_like": ar.GatewayLike, "domain": ar.Domain},
			Frames: s.dupEx.FrameRefs(inputs, maxExamples),
			Remedy: "Two hosts hold " + ar.IP + ": hosts on this segment send to whichever answered last. Give each gateway its own " +
				"address (or use VRRP/keepalived with one virtual MAC), or separate the L2 domains; find the MACs' switch ports " +
				"(bridge fdb show / show mac address-table address MAC) and check which one should own the address. " +
				"On Linux routers answering for others' addresses, check arp_ignore/arp_announce and proxy_arp."})
	}
	if !dup && s.changes > 0 {
		sev := report.SeverityInfo
		title := "The MAC for an IP address changed"
		if s.changes >= FlapMin {
			sev, title = report.SeverityWarning, "The MAC for an IP address flaps"
		}
		r.Add(report.Finding{ID: IDMACFlap, Severity: sev, Title: title,
			Summary: fmt.Sprintf("%s: the MAC claiming %s%s changed %d times among %s.", ar.Input, ar.IP, gw, s.changes, strings.Join(ar.MACs, ", ")),
			Where:   where, Evidence: map[string]any{"ip": ar.IP, "macs": ar.MACs, "claims": ar.Claims, "mac_changes": s.changes,
				"gateway_like": ar.GatewayLike, "flap_min": FlapMin},
			Frames: s.changeEx.FrameRefs(inputs, maxExamples),
			Remedy: "One change is a failover or a replaced host. Repeated changes mean the address moves back and forth: a " +
				"flapping HA pair (check VRRP/keepalived priorities and advert timers, and that both nodes see each other's " +
				"adverts), a bonding/teaming failover loop, or two hosts configured with the same address."})
	}
	if s.unanswered >= UnansweredWarn {
		r.Add(report.Finding{ID: IDUnanswered, Severity: report.SeverityWarning, Title: "ARP requests nobody answers",
			Summary: fmt.Sprintf("%s: %d ARP requests for %s%s went unanswered within %s (%d requests, %d replies in all).",
				ar.Input, s.unanswered, ar.IP, gw, AnswerWindow, s.requests, s.replies),
			Where: where, Evidence: map[string]any{"ip": ar.IP, "unanswered": s.unanswered, "requests": s.requests, "replies": s.replies,
				"pending_at_end": ar.Pending, "gateway_like": ar.GatewayLike},
			Frames: s.unansEx.FrameRefs(inputs, maxExamples),
			Remedy: "The host asking keeps retrying: " + ar.IP + " is down, on another VLAN/segment, or filtered. Check the " +
				"requester's address and prefix, the target's interface and VLAN, and (for a gateway) that its address is " +
				"configured on the right interface. Replies are unicast: capture where the requester is to see them."})
	}
}

func (a *Analyzer) stormFindings(r *report.Report, inputs []analyze.InputInfo) {
	for i := range a.inputs {
		in := &a.inputs[i]
		if in.stormPeak < StormCount {
			continue
		}
		type sender struct {
			ip string
			n  uint32
		}
		var top []sender
		for _, k := range a.order {
			if k.input == i {
				if s := a.ips[k]; s.gratuitous > 0 {
					top = append(top, sender{k.ip.String(), s.gratuitous})
				}
			}
		}
		slices.SortStableFunc(top, func(x, y sender) int { return cmp.Compare(y.n, x.n) })
		var tops []string
		for j, t := range top {
			if j == 5 {
				break
			}
			tops = append(tops, fmt.Sprintf("%s (%d)", t.ip, t.n))
		}
		name := analyze.InputName(inputs, i)
		r.Add(report.Finding{ID: IDGratuitousStorm, Severity: report.SeverityWarning, Title: "Gratuitous ARP storm",
			Summary: fmt.Sprintf("%s: %d gratuitous ARPs in all, up to %d within %s; top senders %s.",
				name, in.gratN, in.stormPeak, StormWindow, strings.Join(tops, ", ")),
			Where: &report.Where{Hop: name}, Evidence: map[string]any{"gratuitous": in.gratN, "peak": in.stormPeak,
				"window_seconds": StormWindow.Seconds(), "threshold": StormCount, "top_senders": tops},
			Frames: in.stormEx.FrameRefs(inputs, maxExamples),
			Remedy: "Something announces addresses continuously: an HA pair failing over in a loop (VRRP/keepalived: check " +
				"garp_master_refresh and split-brain), a misconfigured bonding mode, or an attack (ARP spoofing). Rate-limit ARP " +
				"on the switch (dynamic ARP inspection / storm control) and fix the sender listed."})
	}
}
