package hostcheck

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/vpndiag/vpndiag/report"
)

// cgnat is the shared address space of carrier-grade NAT (RFC 6598).
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// behindNAT is true for source addresses that only reach the Internet
// through a NAT: RFC 1918, RFC 6598 (CGNAT) and IPv6 ULA.
func behindNAT(a netip.Addr) bool {
	return a.IsValid() && (a.IsPrivate() || cgnat.Contains(a))
}

func checkOverlap(h *Host, _ Role) []report.Finding {
	var out []report.Finding
	for _, d := range h.WireGuard {
		for i := range d.Peers {
			for j := i + 1; j < len(d.Peers); j++ {
				a, b := d.Peers[i], d.Peers[j]
				for _, pa := range a.AllowedIPs {
					for _, pb := range b.AllowedIPs {
						if !pa.V.Overlaps(pb.V) {
							continue
						}
						winner := "the more specific prefix wins: " + ShortKey(a.PublicKey.V) + " gets " + pa.V.String()
						if pb.V.Bits() > pa.V.Bits() {
							winner = "the more specific prefix wins: " + ShortKey(b.PublicKey.V) + " gets " + pb.V.String()
						} else if pa.V == pb.V {
							winner = "an AllowedIPs prefix belongs to one peer only: the last one configured (" + ShortKey(b.PublicKey.V) + ") takes it from the other"
						}
						out = append(out, report.Finding{
							ID: IDAllowedIPsOverlap, Severity: report.SeverityWarning,
							Title: fmt.Sprintf("WireGuard peers on %s have overlapping AllowedIPs", d.Name),
							Summary: fmt.Sprintf("On %s, peer %s's AllowedIPs %s (%s) overlaps peer %s's %s (%s): %s, so the other peer never gets that traffic and gives no redundancy.",
								d.Name, ShortKey(a.PublicKey.V), pa.V, d.Where(pa.Line), ShortKey(b.PublicKey.V), pb.V, d.Where(pb.Line), winner),
							Evidence: map[string]any{"interface": d.Name, "peer_a": ShortKey(a.PublicKey.V), "prefix_a": pa.V.String(), "line_a": d.Where(pa.Line),
								"peer_b": ShortKey(b.PublicKey.V), "prefix_b": pb.V.String(), "line_b": d.Where(pb.Line)},
							Remedy: fmt.Sprintf("Give each prefix to one peer: remove %s from the AllowedIPs at %s or %s from the one at %s. For redundancy over two peers, use two WireGuard interfaces (one peer each) and let routing (metrics, BGP) choose.",
								pa.V, d.Where(pa.Line), pb.V, d.Where(pb.Line)),
						})
					}
				}
			}
		}
	}
	return out
}

func checkKeepalive(h *Host, _ Role) []report.Finding {
	var out []report.Finding
	for _, d := range h.WireGuard {
		for _, p := range d.Peers {
			if !p.EndpointAddr.IsValid() || p.Keepalive.V > 0 {
				continue
			}
			rt, ok := h.EndpointRoutes[p.EndpointAddr]
			if !ok || !behindNAT(rt.Src) || behindNAT(p.EndpointAddr) {
				continue
			}
			fix := fmt.Sprintf("wg set %s peer %s persistent-keepalive 25", d.Name, p.PublicKey.V)
			if d.File != "" {
				if p.Keepalive.Set {
					fix = fmt.Sprintf("in %s change to `PersistentKeepalive = 25`", d.Where(p.Keepalive.Line))
				} else {
					fix = fmt.Sprintf("add `PersistentKeepalive = 25` to the [Peer] at %s", d.Where(p.Line))
				}
			}
			out = append(out, report.Finding{
				ID: IDNoKeepaliveNAT, Severity: report.SeverityWarning,
				Title: fmt.Sprintf("WireGuard peer %s on %s has no keepalive behind NAT", ShortKey(p.PublicKey.V), d.Name),
				Summary: fmt.Sprintf("This host reaches peer %s's endpoint %s from %s (a private/CGNAT address, so through a NAT) and PersistentKeepalive is off: once the NAT's mapping expires the peer cannot reach this host until it sends first.",
					ShortKey(p.PublicKey.V), p.EndpointAddr, rt.Src),
				Evidence: map[string]any{"interface": d.Name, "peer": ShortKey(p.PublicKey.V), "endpoint": p.EndpointAddr.String(), "source": rt.Src.String(), "line": d.Where(p.Line)},
				Remedy:   fix + ".",
			})
		}
	}
	return out
}

func checkTableOff(h *Host, _ Role) []report.Finding {
	var out []report.Finding
	for _, d := range h.WireGuard {
		if !d.Table.Set || !strings.EqualFold(d.Table.V, "off") {
			continue
		}
		scripted := false
		for _, pu := range d.PostUp {
			if strings.Contains(pu.V, "route") {
				scripted = true
			}
		}
		if scripted {
			continue
		}
		var missing []string
		for _, p := range d.Peers {
			for _, a := range p.AllowedIPs {
				if !routed(h, d.Name, a.V) {
					missing = append(missing, a.V.String())
				}
			}
		}
		if len(missing) == 0 {
			continue
		}
		out = append(out, report.Finding{
			ID: IDTableOffNoRoutes, Severity: report.SeverityWarning,
			Title: fmt.Sprintf("%s has Table = off and no routes for its peers", d.Name),
			Summary: fmt.Sprintf("%s sets Table = off (%s), so wg-quick adds no routes, and no route via %s covers %s and no PostUp adds one: traffic for those peers never enters the tunnel.",
				d.Name, d.Where(d.Table.Line), d.Name, strings.Join(missing, ", ")),
			Evidence: map[string]any{"interface": d.Name, "line": d.Where(d.Table.Line), "unrouted": missing},
			Remedy: fmt.Sprintf("Remove `Table = off` at %s (wg-quick then routes AllowedIPs), or add routes yourself, e.g. `PostUp = ip route add %s dev %%i` under [Interface].",
				d.Where(d.Table.Line), missing[0]),
		})
	}
	return out
}

// routed reports whether a route through dev covers p (in any table).
func routed(h *Host, dev string, p netip.Prefix) bool {
	for _, r := range h.Routes {
		if r.Dev == dev && r.Dst.Bits() <= p.Bits() && r.Dst.Contains(p.Addr()) {
			return true
		}
	}
	return false
}

func checkEndpointViaTunnel(h *Host, _ Role) []report.Finding {
	tunnels := map[string]string{}
	for _, ifc := range h.Interfaces {
		if _, ok := Overhead(ifc.Kind, false); ok || ifc.Kind == "tuntap" {
			tunnels[ifc.Name] = ifc.Kind
		}
	}
	var out []report.Finding
	for _, d := range h.WireGuard {
		for _, p := range d.Peers {
			if !p.EndpointAddr.IsValid() {
				continue
			}
			rt, ok := h.EndpointRoutes[p.EndpointAddr]
			if !ok || rt.Dev == "" {
				continue
			}
			if rt.Dev != d.Name && tunnels[rt.Dev] == "" {
				continue
			}
			own := rt.Dev == d.Name
			what := "its own tunnel"
			if !own {
				what = "another tunnel (" + rt.Dev + ")"
			}
			sev := report.SeverityWarning
			if own {
				sev = report.SeverityError
			}
			out = append(out, report.Finding{
				ID: IDEndpointViaTunnel, Severity: sev,
				Title: fmt.Sprintf("WireGuard endpoint %s is routed into %s", p.EndpointAddr, what),
				Summary: fmt.Sprintf("The route to peer %s's endpoint %s leaves through %s, %s: the encrypted packets would enter a tunnel, so %s cannot reach its peer (the tunnel flaps or never comes up).",
					ShortKey(p.PublicKey.V), p.EndpointAddr, rt.Dev, what, d.Name),
				Evidence: map[string]any{"interface": d.Name, "peer": ShortKey(p.PublicKey.V), "endpoint": p.EndpointAddr.String(), "route_device": rt.Dev, "line": d.Where(p.Endpoint.Line)},
				Remedy: fmt.Sprintf("Route the endpoint through the underlay: `ip route add %s via UNDERLAY-GATEWAY dev UNDERLAY` (more specific than what covers it), and remove the prefix covering %s from the AllowedIPs/routes of %s (`ip route get %s` shows the result). vpndiag routecheck shows the routes involved.",
					netip.PrefixFrom(p.EndpointAddr, p.EndpointAddr.BitLen()), p.EndpointAddr, rt.Dev, p.EndpointAddr),
			})
		}
	}
	return out
}
