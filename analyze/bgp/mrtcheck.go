package bgp

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/vpndiag/vpndiag/report"
)

// CheckMRT adds the routing findings of an MRT dump to r: per peer, default
// routes (route.default-over-tunnel: error for a --tunnel-peer, else a
// warning asking whether the session runs in a tunnel) and, for tunnel
// peers, prefixes covering a tunnel endpoint (route.endpoint-recursion).
// Frame numbers in findings are 1-based MRT record numbers.
func CheckMRT(r *report.Report, d *Dump, endpoints, tunnelPeers []netip.Addr) {
	file := d.File
	peers := report.Table{Name: "mrt_peers", Title: "MRT peers: " + file,
		Columns: []string{"peer", "AS", "prefixes", "announcements", "withdrawals", "RIB entries", "state changes", "default routes", "endpoint-covering"}}
	routes := report.Table{Name: "mrt_routes", Title: "MRT routes that matter for tunnels: " + file,
		Columns: []string{"peer", "prefix", "AS path", "next hop", "covers endpoint", "record", "withdrawn"}}
	for _, pr := range d.Peers {
		tunnelPeer := slices.Contains(tunnelPeers, pr.Peer.Addr)
		var defaults, coveringN int
		for _, rt := range sortedRoutes(pr.Routes) {
			cov := covered(rt.Prefix, endpoints)
			isDefault := rt.Prefix.Bits() == 0
			if !isDefault && len(cov) == 0 {
				continue
			}
			if isDefault {
				defaults++
			} else {
				coveringN++
			}
			routes.Rows = append(routes.Rows, []any{pr.Peer.Addr.String(), rt.Prefix.String(), rt.ASPath, addrString(rt.NextHop),
				strings.Join(addrStrings(cov), " "), rt.First.Frame, rt.Withdrawn})
			if !isDefault && !tunnelPeer {
				continue
			}
			r.Add(mrtFinding(file, pr, rt, cov, isDefault, tunnelPeer, endpoints))
		}
		peers.Rows = append(peers.Rows, []any{pr.Peer.Addr.String(), pr.Peer.AS, len(pr.Routes), pr.Announcements,
			pr.Withdrawals, pr.RIBEntries, pr.States, defaults, coveringN})
	}
	r.AddTable(peers)
	if len(routes.Rows) > 0 {
		r.AddTable(routes)
	}
}

func mrtFinding(file string, pr *PeerRoutes, rt *Route, cov []netip.Addr, isDefault, tunnelPeer bool, endpoints []netip.Addr) report.Finding {
	id, title, what := IDEndpointRecursion, "Prefix covering a tunnel endpoint learned from a tunnel peer", "a prefix covering tunnel endpoint "+strings.Join(addrStrings(cov), ", ")
	if isDefault {
		id, title, what = IDDefaultOverTunnel, "Default route learned from a BGP peer", "a default route"
	}
	sev := report.SeverityError
	where := "over a tunnel (--tunnel-peer)"
	if !tunnelPeer {
		sev = report.SeverityWarning
		where = "- if this session runs inside a tunnel, the route to the tunnel's own endpoint will point into the tunnel (pass --tunnel-peer to confirm)"
	}
	state := "still in the table at the end of the dump"
	if rt.Withdrawn {
		state = fmt.Sprintf("withdrawn at record %d", rt.WithdrawAt.Frame)
	}
	path := "AS path " + rt.ASPath
	if rt.ASPath == "" {
		path = "empty AS path: originated by the peer itself"
	}
	if rt.NextHop.IsValid() {
		path += ", next hop " + rt.NextHop.String()
	}
	frames := []report.FrameRef{{File: file, Frame: rt.First.Frame}}
	if rt.Last != rt.First {
		frames = append(frames, report.FrameRef{File: file, Frame: rt.Last.Frame})
	}
	return report.Finding{
		ID: id, Severity: sev, Title: title,
		Summary: fmt.Sprintf("Peer %s (AS %d) advertised %s %s (%s) %s; %s.",
			pr.Peer.Addr, pr.Peer.AS, what, rt.Prefix, path, where, state),
		Where: &report.Where{Hop: file, Flow: pr.Peer.Addr.String() + " bgp"},
		Evidence: map[string]any{"peer": pr.Peer.Addr.String(), "peer_as": pr.Peer.AS, "prefix": rt.Prefix.String(),
			"as_path": rt.ASPath, "next_hop": addrString(rt.NextHop), "covers_endpoints": addrStrings(cov),
			"tunnel_peer": tunnelPeer, "announcements": rt.Announced, "withdrawn": rt.Withdrawn, "first_record": rt.First.Frame},
		Frames: frames,
		Remedy: Remedy(rt.Prefix, pr.Peer.Addr, endpoints),
	}
}
