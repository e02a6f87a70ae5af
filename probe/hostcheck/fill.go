package hostcheck

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/vpndiag/vpndiag/report"
)

// Data is the command-specific result under report.Data["hostcheck"].
type Data struct {
	Role         Role     `json:"role"`
	RoleInferred bool     `json:"role_inferred"`
	Notes        []string `json:"notes,omitempty"`
}

// Fill runs the checks on h and adds their findings, the snapshot's
// tables (sysctls, interfaces, VPN listeners, WireGuard peers, notes), the
// list of checks and Data to r.
func Fill(r *report.Report, h *Host, cfg Config) {
	role, inferred := cfg.Role, false
	if role == RoleAuto {
		role, inferred = InferRole(h), true
	}
	r.Add(Check(*h, cfg)...)
	r.Checks = append(r.Checks, CheckIDs...)
	for _, t := range Tables(h) {
		r.AddTable(t)
	}
	r.SetData("hostcheck", Data{Role: role, RoleInferred: inferred, Notes: h.Notes})
}

// Tables describes the snapshot.
func Tables(h *Host) []report.Table {
	var out []report.Table
	sc := report.Table{Name: "hostcheck_sysctls", Title: "Sysctls read", Columns: []string{"sysctl", "value"}}
	keys := make([]string, 0, len(h.Sysctls))
	for k := range h.Sysctls {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		sc.Rows = append(sc.Rows, []any{k, h.Sysctls[k]})
	}
	out = append(out, sc)

	it := report.Table{Name: "hostcheck_interfaces", Title: "Interfaces", Columns: []string{"interface", "kind", "mtu", "up", "underlay", "underlay mtu", "encapsulation overhead"}}
	for _, i := range h.Interfaces {
		ov, ok := Overhead(i.Kind, i.Remote.IsValid() && i.Remote.Is6())
		var ovCell any = ""
		if ok {
			ovCell = ov
		}
		var umtu any = ""
		if i.UnderlayMTU > 0 {
			umtu = i.UnderlayMTU
		}
		it.Rows = append(it.Rows, []any{i.Name, i.Kind, i.MTU, i.Up, i.Underlay, umtu, ovCell})
	}
	out = append(out, it)

	lo, hi, _ := portRange(h)
	reserved := reservedPorts(h.Sysctls["net.ipv4.ip_local_reserved_ports"])
	lt := report.Table{Name: "hostcheck_vpn_ports", Title: "Sockets on VPN ports", Columns: []string{"protocol", "address", "port", "service", "in ephemeral range", "reserved"}}
	for _, l := range h.Listeners {
		if !vpnListener(l) {
			continue
		}
		p := int(l.Port)
		lt.Rows = append(lt.Rows, []any{l.Proto, l.Addr.String(), p, VPNPorts[l.Port], p >= lo && p <= hi, reserved(p)})
	}
	if len(lt.Rows) > 0 {
		out = append(out, lt)
	}

	wt := report.Table{Name: "hostcheck_wireguard", Title: "WireGuard peers", Columns: []string{"interface", "source", "peer", "allowed ips", "endpoint", "keepalive s"}}
	for _, d := range h.WireGuard {
		src := "live"
		if d.File != "" {
			src = d.File
		}
		for _, p := range d.Peers {
			var ips []string
			for _, a := range p.AllowedIPs {
				ips = append(ips, a.V.String())
			}
			wt.Rows = append(wt.Rows, []any{d.Name, src, ShortKey(p.PublicKey.V), strings.Join(ips, ", "), p.Endpoint.V, p.Keepalive.V})
		}
	}
	if len(wt.Rows) > 0 {
		out = append(out, wt)
	}

	if len(h.Notes) > 0 {
		nt := report.Table{Name: "hostcheck_notes", Title: "Not read", Columns: []string{"note"},
			Note: "Run as root (or with CAP_NET_ADMIN) to read the firewall and WireGuard devices."}
		for _, n := range h.Notes {
			nt.Rows = append(nt.Rows, []any{n})
		}
		out = append(out, nt)
	}
	return out
}

// String describes a listener as proto addr:port.
func (l Listener) String() string {
	return fmt.Sprintf("%s %s", l.Proto, netip.AddrPortFrom(l.Addr, l.Port))
}
