package hostcheck

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/vpndiag/vpndiag/report"
)

// Finding ids.
const (
	IDForwardingOff       = "host.forwarding-off"
	IDRPFilterStrict      = "host.rp-filter-strict"
	IDStatefulForwardDrop = "host.stateful-forward-drop"
	IDVPNPortEphemeral    = "host.vpn-port-ephemeral"
	IDUDPBuffersSmall     = "host.udp-buffers-small"
	IDConntrackSmall      = "host.conntrack-small"
	IDTunnelMTU           = "host.tunnel-mtu"
	IDAllowedIPsOverlap   = "wireguard.allowed-ips-overlap"
	IDNoKeepaliveNAT      = "wireguard.no-keepalive-behind-nat"
	IDTableOffNoRoutes    = "wireguard.table-off-no-routes"
	IDEndpointViaTunnel   = "wireguard.endpoint-via-tunnel"
)

// CheckIDs lists every check, in the order Check runs them.
var CheckIDs = []string{IDForwardingOff, IDRPFilterStrict, IDStatefulForwardDrop, IDVPNPortEphemeral,
	IDUDPBuffersSmall, IDConntrackSmall, IDTunnelMTU, IDAllowedIPsOverlap, IDNoKeepaliveNAT,
	IDTableOffNoRoutes, IDEndpointViaTunnel}

// Thresholds of the sizing checks.
const (
	// MinSocketBufferMax is the smallest net.core.rmem_max/wmem_max for a
	// tunnel endpoint: 4 MiB, so a userspace tunnel (wireguard-go asks for
	// 7 MiB, OpenVPN for what sndbuf/rcvbuf say) can hold a burst at 1 Gbit/s
	// for about 30 ms.
	MinSocketBufferMax = 4 << 20
	// MinSocketBufferDefault is the kernel's own default for
	// net.core.rmem_default/wmem_default (212992 bytes); below it someone
	// lowered it.
	MinSocketBufferDefault = 212992
	// MinConntrackMax is the smallest nf_conntrack_max for a gateway.
	MinConntrackMax = 131072
	// MaxConntrackPerBucket is the largest nf_conntrack_max per hash
	// bucket (average chain length when the table is full).
	MaxConntrackPerBucket = 8
	// MinUDPTimeout is the smallest nf_conntrack_udp_timeout(_stream), in
	// seconds: WireGuard's usual PersistentKeepalive is 25 s, so a shorter
	// timeout lets a NAT mapping expire between keepalives.
	MinUDPTimeout = 30
)

// VPNPorts are the well-known VPN ports looked for among the listeners.
var VPNPorts = map[uint16]string{51820: "WireGuard", 500: "IKE", 4500: "IKE NAT-T", 1194: "OpenVPN"}

// Config selects how the host is judged.
type Config struct {
	// Role is the host's role; RoleAuto infers it (InferRole).
	Role Role
}

// InferRole guesses the role when none is given: a host with a WireGuard
// device or configuration, or a socket on a VPN port, is a vpn-router; a
// host that forwards IPv4 otherwise is a nat-gateway; anything else is a
// client.
func InferRole(h *Host) Role {
	if len(h.WireGuard) > 0 {
		return RoleVPNRouter
	}
	for _, l := range h.Listeners {
		if vpnListener(l) {
			return RoleVPNRouter
		}
	}
	if v, ok := h.Sysctl("net.ipv4.ip_forward"); ok && v == 1 {
		return RoleNATGateway
	}
	return RoleClient
}

// Check runs every check on h and returns the findings, in CheckIDs order.
//
// With RoleAuto the role is inferred (InferRole), and forwarding off is a
// warning rather than an error: a laptop with a WireGuard client device is
// inferred a vpn-router too, and needs no forwarding.
func Check(h Host, cfg Config) []report.Finding {
	role := cfg.Role
	if role == RoleAuto {
		role = InferRole(&h)
	}
	var out []report.Finding
	for _, c := range []func(*Host, Role) []report.Finding{
		checkForwarding, checkRPFilter, checkStatefulForward, checkVPNPorts, checkBuffers,
		checkConntrack, checkTunnelMTU, checkOverlap, checkKeepalive, checkTableOff, checkEndpointViaTunnel,
	} {
		out = append(out, c(&h, role)...)
	}
	if cfg.Role == RoleAuto {
		for i := range out {
			if f := &out[i]; f.ID == IDForwardingOff {
				f.Severity = report.SeverityWarning
				f.Summary += " The role was inferred (no --role): give --role vpn-router or nat-gateway to make this an error, --role client if the host only terminates its own tunnel."
			}
		}
	}
	return out
}

func router(r Role) bool { return r == RoleVPNRouter || r == RoleNATGateway }

// sysctlFix is the remedy text for setting one sysctl now and at boot.
func sysctlFix(name string, value any) string {
	return fmt.Sprintf("sysctl -w %s=%v (now), and the line `%s = %v` in /etc/sysctl.d/90-vpn.conf (at boot)", name, value, name, value)
}

func checkForwarding(h *Host, role Role) []report.Finding {
	v, ok := h.Sysctl("net.ipv4.ip_forward")
	if !ok || v != 0 || !router(role) {
		return nil
	}
	return []report.Finding{{
		ID: IDForwardingOff, Severity: report.SeverityError,
		Title:    "IPv4 forwarding is off on a " + string(role),
		Summary:  fmt.Sprintf("net.ipv4.ip_forward is 0 on a host with role %s: it drops every packet it should route between the tunnel and the LAN.", role),
		Evidence: map[string]any{"sysctl": "net.ipv4.ip_forward", "value": v, "role": string(role)},
		Remedy:   sysctlFix("net.ipv4.ip_forward", 1) + ". A client that only terminates its own tunnel does not need it: run with --role client.",
	}}
}

// ifaceSysctl is the sysctl(8) spelling of an interface name.
func ifaceSysctl(name string) string { return strings.ReplaceAll(name, ".", "/") }

func checkRPFilter(h *Host, role Role) []report.Finding {
	all, _ := h.Sysctl("net.ipv4.conf.all.rp_filter")
	multi := h.DefaultPaths > 1
	if role != RoleVPNRouter && !multi {
		return nil
	}
	why := "the host is a vpn-router (tunnels make paths asymmetric)"
	if multi {
		why = fmt.Sprintf("the host has %d default paths", h.DefaultPaths)
	}
	var out []report.Finding
	for _, ifc := range h.Interfaces {
		if ifc.Name == "lo" {
			continue
		}
		own, ok := h.Sysctl("net.ipv4.conf." + ifaceSysctl(ifc.Name) + ".rp_filter")
		if !ok {
			continue
		}
		if max(all, own) != 1 {
			continue
		}
		key := "net.ipv4.conf." + ifaceSysctl(ifc.Name) + ".rp_filter"
		out = append(out, report.Finding{
			ID: IDRPFilterStrict, Severity: report.SeverityWarning,
			Title: "Strict reverse-path filtering on " + ifc.Name,
			Summary: fmt.Sprintf("rp_filter is strict on %s (max of all=%d and %s=%d is 1) while %s: packets that arrive on %s but whose source is routed out another interface are dropped silently.",
				ifc.Name, all, ifc.Name, own, why, ifc.Name),
			Evidence: map[string]any{"interface": ifc.Name, "sysctl": key, "value": own, "all": all, "effective": 1, "default_paths": h.DefaultPaths, "role": string(role)},
			Remedy:   "Use loose mode: " + sysctlFix(key, 2) + " (the effective value is the maximum of all and the interface, so 2 here is enough).",
		})
	}
	return out
}

func checkStatefulForward(h *Host, role Role) []report.Finding {
	if !router(role) {
		return nil
	}
	var out []report.Finding
	for _, c := range h.Forward {
		drops, rule := statefulDrop(c)
		if !drops {
			continue
		}
		fix := "nft insert rule " + c.Name + " iifname \"UPLINK2\" accept  (accept the return leg before the state rule), or exempt the asymmetric path from conntrack: nft add rule inet raw prerouting iifname \"UPLINK2\" notrack; and sysctl -w net.netfilter.nf_conntrack_tcp_be_liberal=1"
		if c.Source != "nftables" {
			fix = "iptables -I FORWARD 1 -i UPLINK2 -j ACCEPT (accept the return leg before the state rule), or exempt the asymmetric path from conntrack: iptables -t raw -A PREROUTING -i UPLINK2 -j CT --notrack; and sysctl -w net.netfilter.nf_conntrack_tcp_be_liberal=1"
		}
		out = append(out, report.Finding{
			ID: IDStatefulForwardDrop, Severity: report.SeverityWarning,
			Title: "Stateful forward filtering drops the return leg of asymmetric flows",
			Summary: fmt.Sprintf("%s chain %s (policy %s) drops forwarded packets that are not part of a connection it saw (%s): when a flow's two directions take different routers, this one sees only one leg and drops it.",
				c.Source, c.Name, c.Policy, rule),
			Evidence: map[string]any{"source": c.Source, "chain": c.Name, "policy": c.Policy, "rule": rule, "rules": len(c.Rules)},
			Remedy:   "If paths through this host can be asymmetric (redundant routers, several uplinks): " + fix + ". UPLINK2 is the interface the return traffic arrives on.",
		})
	}
	return out
}

// statefulDrop reports whether a forward chain drops packets by their
// conntrack state: a rule dropping ct state invalid (or new), or a drop
// policy whose only state-based accepts are established/related (a new
// flow in the reverse direction, or a mid-stream packet, is then dropped
// unless another accept rule matches it). It returns the rule that shows it.
func statefulDrop(c ForwardChain) (bool, string) {
	acceptsEstablished := ""
	for _, r := range c.Rules {
		if len(r.CtStates) == 0 || r.Negated {
			if r.Negated && (r.Verdict == "drop" || r.Verdict == "reject") && slices.Contains(r.CtStates, "established") {
				return true, r.Text
			}
			continue
		}
		if (r.Verdict == "drop" || r.Verdict == "reject") && (slices.Contains(r.CtStates, "invalid") || slices.Contains(r.CtStates, "new")) {
			return true, r.Text
		}
		if r.Verdict == "accept" && slices.Contains(r.CtStates, "established") && !slices.Contains(r.CtStates, "new") && !slices.Contains(r.CtStates, "invalid") {
			acceptsEstablished = r.Text
		}
	}
	if acceptsEstablished != "" && c.Policy == "drop" {
		return true, acceptsEstablished + " with policy drop"
	}
	return false, ""
}

// portRange is ip_local_port_range.
func portRange(h *Host) (lo, hi int, ok bool) {
	f := strings.Fields(h.Sysctls["net.ipv4.ip_local_port_range"])
	if len(f) != 2 {
		return 0, 0, false
	}
	a, e1 := strconv.Atoi(f[0])
	b, e2 := strconv.Atoi(f[1])
	return a, b, e1 == nil && e2 == nil
}

// reservedPorts parses ip_local_reserved_ports ("51820,60000-60010").
func reservedPorts(s string) func(int) bool {
	var spans [][2]int
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		a, b, isSpan := strings.Cut(part, "-")
		lo, err := strconv.Atoi(a)
		if err != nil {
			continue
		}
		hi := lo
		if isSpan {
			if hi, err = strconv.Atoi(b); err != nil {
				continue
			}
		}
		spans = append(spans, [2]int{lo, hi})
	}
	return func(p int) bool {
		for _, s := range spans {
			if p >= s[0] && p <= s[1] {
				return true
			}
		}
		return false
	}
}

func checkVPNPorts(h *Host, role Role) []report.Finding {
	lo, hi, ok := portRange(h)
	if !ok {
		return nil
	}
	resv := h.Sysctls["net.ipv4.ip_local_reserved_ports"]
	reserved := reservedPorts(resv)
	type port struct {
		n    int
		what string
		from string
	}
	var ports []port
	seen := map[int]bool{}
	add := func(n int, what, from string) {
		if n > 0 && !seen[n] {
			seen[n] = true
			ports = append(ports, port{n, what, from})
		}
	}
	for _, d := range h.WireGuard {
		if d.ListenPort.Set || d.File == "" {
			add(d.ListenPort.V, "WireGuard ListenPort of "+d.Name, d.Where(d.ListenPort.Line))
		}
	}
	for _, l := range h.Listeners {
		if what := VPNPorts[l.Port]; vpnListener(l) {
			add(int(l.Port), what+" ("+l.Proto+" socket)", "listening "+l.Proto+" "+netip.AddrPortFrom(l.Addr, l.Port).String())
		}
	}
	sort.Slice(ports, func(i, j int) bool { return ports[i].n < ports[j].n })
	var out []report.Finding
	for _, p := range ports {
		if p.n < lo || p.n > hi || reserved(p.n) {
			continue
		}
		newList := strconv.Itoa(p.n)
		if resv != "" {
			newList = resv + "," + newList
		}
		out = append(out, report.Finding{
			ID: IDVPNPortEphemeral, Severity: report.SeverityWarning,
			Title: fmt.Sprintf("VPN port %d is inside the ephemeral port range and not reserved", p.n),
			Summary: fmt.Sprintf("%s uses port %d, inside net.ipv4.ip_local_port_range %d-%d and not in net.ipv4.ip_local_reserved_ports (%q): after a restart of the VPN, any outgoing connection may already hold the port and the VPN cannot bind it.",
				p.what, p.n, lo, hi, resv),
			Evidence: map[string]any{"port": p.n, "what": p.what, "source": p.from, "port_range_min": lo, "port_range_max": hi, "reserved_ports": resv},
			Remedy:   "Reserve it: " + sysctlFix("net.ipv4.ip_local_reserved_ports", newList) + ".",
		})
	}
	return out
}

// endpointRole is true for hosts that terminate tunnels.
func endpointRole(h *Host, role Role) bool {
	if role == RoleVPNRouter || len(h.WireGuard) > 0 {
		return true
	}
	for _, l := range h.Listeners {
		if vpnListener(l) {
			return true
		}
	}
	return false
}

// vpnListener is a socket on a VPN port: UDP, or TCP for OpenVPN.
func vpnListener(l Listener) bool {
	_, ok := VPNPorts[l.Port]
	return ok && (l.Proto == "udp" || l.Port == 1194)
}

func checkBuffers(h *Host, role Role) []report.Finding {
	if !endpointRole(h, role) {
		return nil
	}
	var out []report.Finding
	for _, c := range []struct {
		name string
		min  int64
	}{
		{"net.core.rmem_max", MinSocketBufferMax}, {"net.core.wmem_max", MinSocketBufferMax},
		{"net.core.rmem_default", MinSocketBufferDefault}, {"net.core.wmem_default", MinSocketBufferDefault},
	} {
		v, ok := h.Sysctl(c.name)
		if !ok || v >= c.min {
			continue
		}
		out = append(out, report.Finding{
			ID: IDUDPBuffersSmall, Severity: report.SeverityWarning,
			Title: "Socket buffers too small for a tunnel endpoint: " + c.name,
			Summary: fmt.Sprintf("%s is %d bytes, below %d: a tunnel endpoint's UDP socket overflows under bursts and drops datagrams (netstat -su: receive buffer errors).",
				c.name, v, c.min),
			Evidence: map[string]any{"sysctl": c.name, "value": v, "threshold": c.min, "role": string(role)},
			Remedy:   sysctlFix(c.name, c.min) + " (net.core.* buffer sysctls belong to the initial network namespace: set them on the host, not in a container).",
		})
	}
	return out
}

func checkConntrack(h *Host, role Role) []report.Finding {
	if !router(role) {
		return nil
	}
	var out []report.Finding
	add := func(name string, v, want int64, summary string) {
		out = append(out, report.Finding{
			ID: IDConntrackSmall, Severity: report.SeverityWarning,
			Title:   "Conntrack sized for a laptop: " + name,
			Summary: summary, Evidence: map[string]any{"sysctl": name, "value": v, "threshold": want, "role": string(role)},
			Remedy: sysctlFix(name, want) + ".",
		})
	}
	mx, okMax := h.Sysctl("net.netfilter.nf_conntrack_max")
	if okMax && mx < MinConntrackMax {
		add("net.netfilter.nf_conntrack_max", mx, MinConntrackMax, fmt.Sprintf("nf_conntrack_max is %d, below %d for a %s: when the table is full new flows are dropped (nf_conntrack: table full).", mx, MinConntrackMax, role))
	}
	if b, ok := h.Sysctl("net.netfilter.nf_conntrack_buckets"); ok && okMax && b > 0 && mx > MaxConntrackPerBucket*b {
		want := (mx + MaxConntrackPerBucket - 1) / MaxConntrackPerBucket
		add("net.netfilter.nf_conntrack_buckets", b, want, fmt.Sprintf("nf_conntrack_buckets is %d for nf_conntrack_max %d: %d entries per bucket when full (more than %d), every lookup walks a long chain.", b, mx, mx/b, MaxConntrackPerBucket))
	}
	for _, name := range []string{"net.netfilter.nf_conntrack_udp_timeout", "net.netfilter.nf_conntrack_udp_timeout_stream"} {
		if v, ok := h.Sysctl(name); ok && v < MinUDPTimeout {
			add(name, v, MinUDPTimeout, fmt.Sprintf("%s is %d s, below %d s: a UDP tunnel with a 25 s keepalive loses its conntrack (and NAT) state between keepalives.", name[len("net.netfilter."):], v, MinUDPTimeout))
		}
	}
	return out
}

// Overhead returns the encapsulation overhead of a tunnel kind over an
// IPv4 (v6 false) or IPv6 underlay, and whether it is known.
func Overhead(kind string, v6 bool) (int, bool) {
	ip := 20
	if v6 {
		ip = 40
	}
	switch kind {
	case "wireguard":
		return ip + 8 + 32, true // UDP + WireGuard header (16) and tag (16)
	case "vxlan", "geneve":
		return ip + 8 + 8 + 14, true // UDP + VXLAN/GENEVE header (no options) + inner Ethernet
	case "gre", "ip6gre":
		return ip + 4, true
	case "gretap", "ip6gretap":
		return ip + 4 + 14, true
	case "ipip", "sit", "ip6tnl":
		return ip, true
	}
	return 0, false
}

func checkTunnelMTU(h *Host, role Role) []report.Finding {
	var out []report.Finding
	for _, ifc := range h.Interfaces {
		v6 := ifc.Remote.IsValid() && ifc.Remote.Is6()
		ov, ok := Overhead(ifc.Kind, v6)
		if !ok || ifc.Underlay == "" || ifc.UnderlayMTU == 0 || ifc.MTU+ov <= ifc.UnderlayMTU {
			continue
		}
		want := ifc.UnderlayMTU - ov
		fix := fmt.Sprintf("ip link set dev %s mtu %d", ifc.Name, want)
		for _, d := range h.WireGuard {
			if d.Name == ifc.Name && d.File != "" {
				if d.MTU.Set {
					fix += fmt.Sprintf("; in %s change to `MTU = %d`", d.Where(d.MTU.Line), want)
				} else {
					fix += fmt.Sprintf("; add `MTU = %d` under [Interface] in %s", want, d.File)
				}
			}
		}
		fam := "IPv4"
		if v6 {
			fam = "IPv6"
		}
		out = append(out, report.Finding{
			ID: IDTunnelMTU, Severity: report.SeverityWarning,
			Title: fmt.Sprintf("Tunnel %s's MTU leaves no room for the encapsulation", ifc.Name),
			Summary: fmt.Sprintf("%s tunnel %s has MTU %d; with %d bytes of %s encapsulation its packets are %d bytes on %s (MTU %d): full-size packets are fragmented or dropped (PMTU black hole).",
				ifc.Kind, ifc.Name, ifc.MTU, ov, fam, ifc.MTU+ov, ifc.Underlay, ifc.UnderlayMTU),
			Evidence: map[string]any{"interface": ifc.Name, "kind": ifc.Kind, "mtu": ifc.MTU, "overhead": ov, "underlay": ifc.Underlay, "underlay_mtu": ifc.UnderlayMTU, "max_mtu": want},
			Remedy:   fix + ".",
		})
	}
	return out
}
