// Package routes inspects a live host's routing for tunnel mistakes: routes
// to tunnel endpoints that lead into a tunnel (the endpoint recursion that
// makes a tunnel flap forever), default routes via tunnel devices without a
// more specific underlay route to the endpoints, and failover pairs (several
// tunnels to the same prefix, which one is active and at what metric).
//
// Inspect is Linux only (netlink, xfrm, wgctrl); elsewhere it returns
// ErrUnsupported. Check turns a Snapshot into report findings and tables on
// any platform.
package routes

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/vpndiag/vpndiag/report"
)

// ErrUnsupported is returned by Inspect on systems other than Linux.
var ErrUnsupported = errors.New("live route inspection needs Linux (netlink); use --pcap or --mrt on this system")

// Finding ids, shared with analyze/bgp.
const (
	IDEndpointRecursion = "route.endpoint-recursion"
	IDDefaultOverTunnel = "route.default-over-tunnel"
)

// Tunnel is one tunnel configured on the host, with its remote endpoint.
type Tunnel struct {
	Kind   string // wireguard, xfrm-state, vxlan, gre, gretap, ipip, sit, ip6tnl, vti
	Device string // tunnel device ("" for xfrm states without an interface)
	Local  netip.Addr
	Remote netip.Addr
	Detail string // WireGuard peer key prefix, xfrm SPI, VXLAN VNI
}

// Route is a kernel route in the main table.
type Route struct {
	Dst     netip.Prefix
	Device  string
	Gateway netip.Addr
	Metric  int
	Proto   string // boot, static, kernel, bird, ...
	Tunnel  bool   // Device is a tunnel device
}

// Lookup is the kernel's answer for one tunnel endpoint (RouteGet).
type Lookup struct {
	Tunnel  Tunnel
	Device  string
	Gateway netip.Addr
	Src     netip.Addr
	// ViaTunnel is true when Device is a tunnel device: the endpoint recurses.
	ViaTunnel bool
	// Covering is the most specific route in the main table that covers the
	// endpoint and is not a default route (invalid when there is none).
	Covering Route
	Err      string
}

// Snapshot is what Inspect saw.
type Snapshot struct {
	Tunnels       []Tunnel
	TunnelDevices []string
	Routes        []Route
	Lookups       []Lookup
	// Warnings are parts that could not be read (e.g. no WireGuard access).
	Warnings []string
}

func isDefault(p netip.Prefix) bool { return p.Bits() == 0 }

// Check adds findings and tables for a snapshot to r.
func Check(r *report.Report, s *Snapshot) {
	tunnels := report.Table{Name: "host_tunnels", Title: "Tunnels on this host",
		Columns: []string{"kind", "device", "local", "remote endpoint", "detail"}}
	for _, t := range s.Tunnels {
		tunnels.Rows = append(tunnels.Rows, []any{t.Kind, t.Device, addr(t.Local), addr(t.Remote), t.Detail})
	}
	lookups := report.Table{Name: "endpoint_routes", Title: "Routes to tunnel endpoints (kernel route lookup)",
		Columns: []string{"endpoint", "tunnel", "leaves via", "gateway", "via tunnel", "more specific underlay route"}}
	for _, l := range s.Lookups {
		cov := ""
		if l.Covering.Dst.IsValid() {
			cov = fmt.Sprintf("%s dev %s", l.Covering.Dst, l.Covering.Device)
		}
		lookups.Rows = append(lookups.Rows, []any{addr(l.Tunnel.Remote), l.Tunnel.Kind + " " + l.Tunnel.Device, l.Device, addr(l.Gateway), l.ViaTunnel, cov})
		if l.ViaTunnel {
			r.Add(recursionFinding(l))
		}
	}
	// Default routes via tunnel devices.
	for _, rt := range s.Routes {
		if !isDefault(rt.Dst) || !rt.Tunnel {
			continue
		}
		var exposed []string
		for _, l := range s.Lookups {
			if l.Tunnel.Remote.Is4() != rt.Dst.Addr().Is4() || l.ViaTunnel {
				continue // recursion already reported as an error
			}
			if !l.Covering.Dst.IsValid() || l.Covering.Tunnel {
				exposed = append(exposed, l.Tunnel.Remote.String())
			}
		}
		if len(exposed) == 0 {
			continue
		}
		r.Add(report.Finding{ID: IDDefaultOverTunnel, Severity: report.SeverityWarning,
			Title: "Default route via a tunnel device, endpoints reached only through a default route",
			Summary: fmt.Sprintf("The default route %s dev %s (metric %d, proto %s) leads into a tunnel, and tunnel endpoint(s) %s have no more specific underlay route: if this route wins, they recurse into the tunnel.",
				rt.Dst, rt.Device, rt.Metric, rt.Proto, strings.Join(exposed, ", ")),
			Where:    &report.Where{Hop: "localhost"},
			Evidence: map[string]any{"device": rt.Device, "metric": rt.Metric, "proto": rt.Proto, "gateway": addr(rt.Gateway), "endpoints": exposed},
			Remedy:   pinRemedy(exposed),
		})
	}
	// Failover: several routes to the same prefix, at least one via a tunnel.
	byDst := map[netip.Prefix][]Route{}
	for _, rt := range s.Routes {
		byDst[rt.Dst] = append(byDst[rt.Dst], rt)
	}
	failover := report.Table{Name: "tunnel_failover", Title: "Prefixes with several routes (failover pairs): the lowest metric is active",
		Columns: []string{"prefix", "device", "gateway", "metric", "proto", "tunnel", "active"}}
	var dsts []netip.Prefix
	for d, rs := range byDst {
		if len(rs) < 2 || d.Addr().IsLinkLocalUnicast() || d.Addr().IsMulticast() {
			continue
		}
		tun := false
		for _, rt := range rs {
			tun = tun || rt.Tunnel
		}
		if tun {
			dsts = append(dsts, d)
		}
	}
	sort.Slice(dsts, func(i, j int) bool { return dsts[i].String() < dsts[j].String() })
	for _, d := range dsts {
		rs := byDst[d]
		sort.SliceStable(rs, func(i, j int) bool { return rs[i].Metric < rs[j].Metric })
		for i, rt := range rs {
			failover.Rows = append(failover.Rows, []any{d.String(), rt.Device, addr(rt.Gateway), rt.Metric, rt.Proto, rt.Tunnel, i == 0})
		}
	}
	r.AddTable(tunnels)
	r.AddTable(lookups)
	if len(failover.Rows) > 0 {
		r.AddTable(failover)
	}
	for _, w := range s.Warnings {
		r.Add(report.Finding{ID: "route.inspect-incomplete", Severity: report.SeverityInfo, Title: "Part of the routing state could not be read", Summary: w})
	}
}

func recursionFinding(l Lookup) report.Finding {
	return report.Finding{ID: IDEndpointRecursion, Severity: report.SeverityError,
		Title: "Route to a tunnel endpoint leads into a tunnel",
		Summary: fmt.Sprintf("The kernel routes %s tunnel endpoint %s (device %s) via %s, a tunnel device: the tunnel's own packets would be sent into a tunnel, so it breaks and (with BGP over it) flaps.",
			l.Tunnel.Kind, l.Tunnel.Remote, l.Tunnel.Device, l.Device),
		Where: &report.Where{Hop: "localhost"},
		Evidence: map[string]any{"endpoint": l.Tunnel.Remote.String(), "tunnel_kind": l.Tunnel.Kind, "tunnel_device": l.Tunnel.Device,
			"route_device": l.Device, "gateway": addr(l.Gateway)},
		Remedy: pinRemedy([]string{l.Tunnel.Remote.String()}) +
			"\nand filter the covering prefix (often 0.0.0.0/0) on import from the BGP peer behind " + l.Device + " (see routecheck --pcap for per-platform filters).",
	}
}

func pinRemedy(eps []string) string {
	var b strings.Builder
	b.WriteString("Pin each endpoint to the underlay with a host route, more specific than anything learned over the tunnel:")
	for _, e := range eps {
		bits := "32"
		if strings.Contains(e, ":") {
			bits = "128"
		}
		fmt.Fprintf(&b, "\n  ip route replace %s/%s via <underlay-gateway> dev <underlay-interface>", e, bits)
	}
	return b.String()
}

func addr(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
