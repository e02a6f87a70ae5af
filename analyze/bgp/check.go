package bgp

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/vpndiag/vpndiag/report"
)

// Finding ids raised by this package.
const (
	IDDefaultOverTunnel  = "route.default-over-tunnel"
	IDEndpointRecursion  = "route.endpoint-recursion"
	IDSessionFlapping    = "route.session-flapping"
	IDMalformedMessage   = "route.bgp-malformed"
	maxTimelineRows      = 500
	maxFramesPerFinding  = 20
	flapCorrelationFloor = 30 * time.Second
)

type checker struct {
	endpoints   []netip.Addr
	tunnelPeers []netip.Addr
	tunnels     *Tunnels
	names       func(input int) string
}

// placement says whether (and how we know that) a session runs in a tunnel.
type placement struct {
	in        bool
	kind      string
	endpoints []netip.Addr
	how       string
	tunnel    *Tunnel
}

func (c *checker) place(p *Pair) placement {
	best, bestN := -1, 0
	for id, n := range p.Tunnels {
		if n > bestN || (n == bestN && id < best) {
			best, bestN = id, n
		}
	}
	how := ""
	if best < 0 {
		for _, a := range []netip.Addr{p.A, p.B} {
			if id := c.tunnels.ofInner(a); id >= 0 {
				best = id
				how = fmt.Sprintf("%s is an inner address of the %s tunnel %s <-> %s in this capture", a,
					c.tunnels.List[id].Kind, c.tunnels.List[id].A, c.tunnels.List[id].B)
				break
			}
		}
	}
	if best >= 0 {
		t := c.tunnels.List[best]
		if how == "" {
			how = fmt.Sprintf("its packets are carried in the %s tunnel %s <-> %s (first tunnel frame %d)", t.Kind, t.A, t.B, t.First.Frame)
		}
		eps := appendUnique(t.Endpoints(), c.endpoints...)
		return placement{in: true, kind: t.Kind, endpoints: eps, how: how, tunnel: t}
	}
	for _, a := range []netip.Addr{p.A, p.B} {
		if slices.Contains(c.tunnelPeers, a) {
			return placement{in: true, kind: "tunnel", endpoints: c.endpoints, how: fmt.Sprintf("--tunnel-peer %s", a)}
		}
	}
	if len(c.endpoints) > 0 {
		for _, a := range []netip.Addr{p.A, p.B} {
			if slices.Contains(c.endpoints, a) || c.tunnels.isOuter(a) {
				return placement{}
			}
		}
		return placement{in: true, kind: "tunnel", endpoints: c.endpoints,
			how: "--endpoint given and the session is not between tunnel endpoints (capture taken on the tunnel interface)"}
	}
	return placement{}
}

func appendUnique(list []netip.Addr, more ...netip.Addr) []netip.Addr {
	out := append([]netip.Addr(nil), list...)
	for _, a := range more {
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

func covered(p netip.Prefix, eps []netip.Addr) []netip.Addr {
	var out []netip.Addr
	for _, e := range eps {
		if e.IsValid() && e.Is4() == p.Addr().Is4() && p.Contains(e) {
			out = append(out, e)
		}
	}
	return out
}

func (c *checker) refs(ids ...FrameID) []report.FrameRef {
	var out []report.FrameRef
	for _, id := range ids {
		if id.Frame == 0 || len(out) >= maxFramesPerFinding {
			continue
		}
		r := report.FrameRef{File: c.names(id.Input), Frame: id.Frame}
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

func addrStrings(as []netip.Addr) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return out
}

func secs(ns int64) string { return time.Unix(0, ns).UTC().Format("15:04:05.000") }

// capture raises the findings and tables of a capture.
func (c *checker) capture(r *report.Report, tr *Tracker) {
	sessions := report.Table{Name: "bgp_sessions", Title: "BGP sessions",
		Columns: []string{"peers", "AS numbers", "tunnel", "OPEN", "UPDATE", "NOTIFICATION", "KEEPALIVE", "established", "down", "failed", "malformed"}}
	routes := report.Table{Name: "bgp_routes", Title: "BGP routes that matter for tunnels (defaults and endpoint-covering prefixes)",
		Columns: []string{"peer", "prefix", "AS path", "next hop", "in tunnel", "covers endpoint", "first frame", "withdrawn"}}
	timeline := report.Table{Name: "bgp_timeline", Title: "BGP session timeline",
		Columns: []string{"file", "frame", "time", "peers", "event", "from", "detail"}}
	for _, p := range tr.Pairs() {
		pl := c.place(p)
		tun := "no"
		if pl.in {
			tun = fmt.Sprintf("%s %s", pl.kind, strings.Join(addrStrings(pl.endpoints), " <-> "))
		}
		sessions.Rows = append(sessions.Rows, []any{p.A.String() + " <-> " + p.B.String(),
			fmt.Sprintf("%d / %d", p.Speakers[0].AS, p.Speakers[1].AS), tun,
			p.Messages[MsgOpen], p.Messages[MsgUpdate], p.Messages[MsgNotification], p.Messages[MsgKeepalive],
			p.Established, p.Downs, p.Failed, len(p.Malformed)})
		for _, e := range p.Events {
			if len(timeline.Rows) >= maxTimelineRows {
				timeline.Note = fmt.Sprintf("first %d events shown", maxTimelineRows)
				break
			}
			from := ""
			if e.From.IsValid() {
				from = e.From.String()
			}
			timeline.Rows = append(timeline.Rows, []any{c.names(e.At.Input), e.At.Frame, secs(e.Time),
				p.A.String() + " <-> " + p.B.String(), e.Kind, from, e.Detail})
		}
		riskyDowns := 0
		for _, sp := range p.Speakers {
			for _, rt := range sortedRoutes(sp.Routes) {
				cov := covered(rt.Prefix, pl.endpoints)
				isDefault := rt.Prefix.Bits() == 0
				if !isDefault && len(cov) == 0 {
					continue
				}
				routes.Rows = append(routes.Rows, []any{sp.Addr.String(), rt.Prefix.String(), rt.ASPath, addrString(rt.NextHop),
					pl.in, strings.Join(addrStrings(cov), " "), rt.First.Frame, rt.Withdrawn})
				if !pl.in {
					continue
				}
				downs := downsAfter(p, rt.FirstTime)
				riskyDowns += downs
				r.Add(c.routeFinding(p, sp, rt, pl, cov, isDefault, downs))
			}
		}
		if f, ok := c.flapping(p, pl, riskyDowns); ok {
			r.Add(f)
		}
		for _, m := range p.Malformed {
			r.Add(report.Finding{ID: IDMalformedMessage, Severity: report.SeverityWarning,
				Title:   "Malformed BGP message",
				Summary: fmt.Sprintf("A BGP message from %s could not be decoded: %s.", m.From, m.Err),
				Where:   &report.Where{Flow: p.A.String() + " <-> " + p.B.String()},
				Frames:  c.refs(m.Frames...),
				Remedy:  "Check the frames in Wireshark; a peer sending malformed UPDATEs gets its session reset (RFC 7606 treat-as-withdraw may hide routes)."})
		}
	}
	tunnels := report.Table{Name: "bgp_tunnels", Title: "Tunnels seen in the capture",
		Columns: []string{"kind", "endpoints", "packets", "first frame", "key exchanges", "inner addresses"}}
	for _, t := range c.tunnels.List {
		tunnels.Rows = append(tunnels.Rows, []any{t.Kind, t.A.String() + " <-> " + t.B.String(), t.Packets, t.First.Frame, t.Rekeys, len(t.Inner)})
	}
	r.AddTable(sessions)
	if len(routes.Rows) > 0 {
		r.AddTable(routes)
	}
	if len(timeline.Rows) > 0 {
		r.AddTable(timeline)
	}
	if len(tunnels.Rows) > 0 {
		r.AddTable(tunnels)
	}
	r.SetData("bgp", map[string]any{"pairs": len(tr.Pairs()), "tunnels": len(c.tunnels.List),
		"endpoints": addrStrings(c.endpoints), "segments": tr.Segments})
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func sortedRoutes(m map[netip.Prefix]*Route) []*Route {
	out := make([]*Route, 0, len(m))
	for _, r := range m {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Prefix, out[j].Prefix
		if a.Addr() != b.Addr() {
			return a.Addr().Less(b.Addr())
		}
		return a.Bits() < b.Bits()
	})
	return out
}

func downsAfter(p *Pair, t int64) int {
	n := 0
	for _, d := range p.DownTimes {
		if d >= t {
			n++
		}
	}
	return n
}

func (c *checker) routeFinding(p *Pair, sp *Speaker, rt *Route, pl placement, cov []netip.Addr, isDefault bool, downs int) report.Finding {
	local := p.Other(sp.Addr)
	asText := "no OPEN captured"
	if sp.AS != 0 {
		asText = fmt.Sprintf("AS %d", sp.AS)
	}
	what := "the endpoint-covering prefix"
	id := IDEndpointRecursion
	title := "Prefix covering a tunnel endpoint learned over that tunnel"
	if isDefault {
		what, id, title = "a default route", IDDefaultOverTunnel, "Default route learned over a tunnel"
	}
	consequence := "the route to the tunnel endpoint can then point into the tunnel itself"
	if len(cov) > 0 {
		consequence = fmt.Sprintf("once installed, the route to tunnel endpoint %s points into the tunnel itself", strings.Join(addrStrings(cov), ", "))
	}
	sev := report.SeverityWarning
	after := "no session drop followed in this capture (an import filter or a more specific underlay route may be protecting the endpoint)"
	if downs > 0 {
		sev = report.SeverityError
		after = fmt.Sprintf("the session went down %d time(s) after it", downs)
	}
	if !isDefault {
		sev = report.SeverityError
	}
	path := rt.ASPath
	if path == "" {
		path = "(empty)"
	}
	tunnelText := fmt.Sprintf("the %s tunnel %s", pl.kind, strings.Join(addrStrings(pl.endpoints), " <-> "))
	if pl.tunnel == nil {
		tunnelText = "the tunnel to " + strings.Join(addrStrings(pl.endpoints), ", ")
	}
	ev := map[string]any{
		"peer": sp.Addr.String(), "peer_as": sp.AS, "local": local.String(), "prefix": rt.Prefix.String(),
		"as_path": rt.ASPath, "next_hop": addrString(rt.NextHop), "communities": rt.Communities,
		"tunnel_kind": pl.kind, "tunnel_endpoints": addrStrings(pl.endpoints), "tunnel_evidence": pl.how,
		"covers_endpoints": addrStrings(cov), "announcements": rt.Announced, "withdrawn": rt.Withdrawn,
		"session_downs_after": downs, "first_update_frame": rt.First.Frame,
	}
	return report.Finding{
		ID: id, Severity: sev, Title: title,
		Summary: fmt.Sprintf("%s (%s) advertised %s %s (AS path %s) to %s inside %s; %s; %s.",
			sp.Addr, asText, what, rt.Prefix, path, local, tunnelText, consequence, after),
		Where:    &report.Where{Hop: c.names(rt.First.Input), Flow: sp.Addr.String() + " -> " + local.String() + " bgp"},
		Evidence: ev,
		Frames:   c.refs(append(append([]FrameID(nil), rt.Frames...), rt.Last)...),
		Remedy:   Remedy(rt.Prefix, sp.Addr, pl.endpoints),
	}
}

// flapping reports a pair whose session was established and torn down
// repeatedly, with what happened around the teardowns.
func (c *checker) flapping(p *Pair, pl placement, riskyDowns int) (report.Finding, bool) {
	if p.Established < 2 && p.Downs < 2 {
		return report.Finding{}, false
	}
	causes := map[string]int{}
	var frames []FrameID
	for _, e := range p.Events {
		if e.Kind == "down" {
			causes[e.Cause]++
			frames = append(frames, e.At)
		}
	}
	window := flapCorrelationFloor
	for _, sp := range p.Speakers {
		if h := time.Duration(sp.HoldTime) * time.Second; h > window {
			window = h
		}
	}
	rekeys := 0
	var rekeyFrames []FrameID
	tunnels := c.tunnels.List
	if pl.tunnel != nil {
		tunnels = []*Tunnel{pl.tunnel}
	}
	for _, t := range tunnels {
		for i, ts := range t.Renegotiations {
			for _, d := range append(append([]int64(nil), p.DownTimes...), p.UpTimes...) {
				if abs(ts-d) <= int64(window) {
					rekeys++
					if len(rekeyFrames) < 5 {
						rekeyFrames = append(rekeyFrames, t.RenegoFrames[i])
					}
					break
				}
			}
		}
	}
	sev := report.SeverityWarning
	var why []string
	if riskyDowns > 0 {
		sev = report.SeverityError
		why = append(why, fmt.Sprintf("%d teardown(s) followed the advertisement of a default or endpoint-covering route over the tunnel", riskyDowns))
	}
	if rekeys > 0 {
		why = append(why, fmt.Sprintf("%d IKE/ESP/WireGuard key exchange(s) within %s of a teardown or re-establishment", rekeys, window))
	}
	causeList := make([]string, 0, len(causes))
	for k, v := range causes {
		causeList = append(causeList, fmt.Sprintf("%d %s", v, k))
	}
	sort.Strings(causeList)
	span := time.Duration(p.Last - p.First).Round(time.Second)
	summary := fmt.Sprintf("The BGP session %s <-> %s was established %d times and went down %d times (%s) in %s",
		p.A, p.B, p.Established, p.Downs, strings.Join(causeList, ", "), span)
	if len(why) > 0 {
		summary += "; " + strings.Join(why, "; ")
	}
	remedy := "Find what tears the session down: a hold-timer expiry while the tunnel carries data means the BGP packets themselves stopped flowing."
	if riskyDowns > 0 {
		remedy = "The session drops after routes covering the tunnel endpoint are learned over the tunnel: filter them on import or pin a host route to the endpoint via the underlay (see the route.* findings for one-liners)."
	} else if rekeys > 0 {
		remedy = "Teardowns coincide with tunnel re-keying: check IKE/ESP lifetimes and DPD, and that re-keying does not drop the child SA carrying BGP (make-before-break)."
	}
	return report.Finding{
		ID: IDSessionFlapping, Severity: sev, Title: "BGP session flapping",
		Summary: summary + ".",
		Where:   &report.Where{Flow: p.A.String() + " <-> " + p.B.String() + " bgp"},
		Evidence: map[string]any{"established": p.Established, "downs": p.Downs, "failed_attempts": p.Failed,
			"causes": causes, "in_tunnel": pl.in, "tunnel_evidence": pl.how,
			"key_exchanges_near_teardowns": rekeys, "teardowns_after_risky_route": riskyDowns,
			"correlation_window_seconds": window.Seconds()},
		Frames: c.refs(append(frames, rekeyFrames...)...),
		Remedy: remedy,
	}, true
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}
