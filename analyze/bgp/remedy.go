package bgp

import (
	"fmt"
	"net/netip"
	"strings"
)

// Remedy returns the fix for a prefix learned from peer over a tunnel whose
// endpoint it covers: filter it on import (BIRD 2, FRR, Cisco IOS, Junos
// one-liners), or pin a host route to the endpoint via the underlay.
func Remedy(prefix netip.Prefix, peer netip.Addr, endpoints []netip.Addr) string {
	var b strings.Builder
	v6 := prefix.Addr().Is6()
	pl, any := "ip prefix-list", "0.0.0.0/0 le 32"
	if v6 {
		pl, any = "ipv6 prefix-list", "::/0 le 128"
	}
	fmt.Fprintf(&b, "Filter %s on import from %s:\n", prefix, peer)
	fmt.Fprintf(&b, "  BIRD 2: in the peer's channel, import filter { if net = %s then reject; accept; };\n", prefix)
	fmt.Fprintf(&b, "  FRR:    %s VD-TUNNEL-IN seq 5 deny %s ; %s VD-TUNNEL-IN seq 10 permit %s ; router bgp <ASN> ; neighbor %s prefix-list VD-TUNNEL-IN in\n",
		pl, prefix, pl, any, peer)
	fmt.Fprintf(&b, "  Cisco:  %s VD-TUNNEL-IN seq 5 deny %s ; %s VD-TUNNEL-IN seq 10 permit %s ; router bgp <ASN> ; neighbor %s prefix-list VD-TUNNEL-IN in\n",
		pl, prefix, pl, any, peer)
	fmt.Fprintf(&b, "  Junos:  set policy-options policy-statement VD-TUNNEL-IN term t from route-filter %s exact ; set policy-options policy-statement VD-TUNNEL-IN term t then reject ; set protocols bgp group <GROUP> neighbor %s import VD-TUNNEL-IN\n",
		prefix, peer)
	var eps []string
	for _, e := range endpoints {
		if e.IsValid() && prefix.Contains(e) {
			eps = append(eps, e.String())
		}
	}
	if len(eps) == 0 {
		return strings.TrimSuffix(b.String(), "\n")
	}
	b.WriteString("Or pin the tunnel endpoint to the underlay with a host route (more specific than anything learned over the tunnel):\n")
	for _, e := range eps {
		bits := 32
		mask := "255.255.255.255"
		if strings.Contains(e, ":") {
			bits, mask = 128, ""
		}
		fmt.Fprintf(&b, "  Linux:  ip route replace %s/%d via <underlay-gateway> dev <underlay-interface>\n", e, bits)
		fmt.Fprintf(&b, "  FRR:    ip route %s/%d <underlay-gateway>\n", e, bits)
		if mask != "" {
			fmt.Fprintf(&b, "  Cisco:  ip route %s %s <underlay-gateway>\n", e, mask)
		} else {
			fmt.Fprintf(&b, "  Cisco:  ipv6 route %s/128 <underlay-gateway>\n", e)
		}
		fmt.Fprintf(&b, "  Junos:  set routing-options static route %s/%d next-hop <underlay-gateway>\n", e, bits)
	}
	return strings.TrimSuffix(b.String(), "\n")
}
