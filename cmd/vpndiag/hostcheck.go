package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/vpndiag/vpndiag/probe/hostcheck"
	"github.com/vpndiag/vpndiag/report"
)

type hostcheckOptions struct {
	role       string
	wg         []string
	noFirewall bool
}

func init() {
	register(func(g *globalOptions) *cobra.Command {
		o := &hostcheckOptions{}
		cmd := &cobra.Command{
			Use:   "hostcheck [--role vpn-router|nat-gateway|client] [--wg FILE]...",
			Short: "Lint a VPN gateway host and its WireGuard configuration",
			Long: `hostcheck lints the network namespace it runs in (Linux) for the settings that
VPN routers learned about by outage, and says the exact sysctl, command or configuration
line to change. It only reads; it never changes the host.

It reads the sysctls (net.ipv4.ip_forward, rp_filter per interface, ip_local_port_range,
ip_local_reserved_ports, net.core.rmem/wmem, nf_conntrack_max and buckets, UDP timeouts),
the forward-hook firewall chains (nft -j list ruleset, iptables-save), the interfaces with
their tunnel underlays and MTUs, the sockets on VPN ports (WireGuard 51820, IKE 500/4500,
OpenVPN 1194), the live WireGuard devices (wgctrl) and the wg-quick files given with --wg.

Findings: host.forwarding-off, host.rp-filter-strict, host.stateful-forward-drop,
host.vpn-port-ephemeral, host.udp-buffers-small, host.conntrack-small, host.tunnel-mtu,
wireguard.allowed-ips-overlap, wireguard.no-keepalive-behind-nat,
wireguard.table-off-no-routes, wireguard.endpoint-via-tunnel.

--role decides what is wrong: forwarding off is an error for vpn-router and nat-gateway,
fine for a client; conntrack sizing and stateful forwarding matter only for routers.
Without --role the role is inferred: a WireGuard device or --wg file, or a socket on a VPN
port, makes a vpn-router; else IPv4 forwarding on makes a nat-gateway; else client. The
report says which role was used and whether it was inferred.

Without root, what needs privileges (the nftables ruleset and WireGuard devices need
CAP_NET_ADMIN) is listed in the report's "Not read" table. To check another network
namespace, run it there: ip netns exec NAME vpndiag hostcheck.`,
			Example: `  sudo vpndiag hostcheck
  sudo vpndiag hostcheck --role vpn-router --wg /etc/wireguard/wg0.conf
  sudo ip netns exec gw vpndiag hostcheck --format json`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, args []string) error {
				return runHostcheck(cmd, g, o, args)
			},
		}
		f := cmd.Flags()
		f.StringVar(&o.role, "role", "", "what the host is for: vpn-router, nat-gateway or client (default: inferred)")
		f.StringArrayVar(&o.wg, "wg", nil, "wg-quick configuration `FILE` to check (e.g. /etc/wireguard/wg0.conf); repeatable")
		f.BoolVar(&o.noFirewall, "no-firewall", false, "do not run nft and iptables-save")
		_ = cmd.RegisterFlagCompletionFunc("role", cobra.FixedCompletions([]string{"vpn-router", "nat-gateway", "client"}, cobra.ShellCompDirectiveNoFileComp))
		return cmd
	})
}

func runHostcheck(cmd *cobra.Command, g *globalOptions, o *hostcheckOptions, args []string) error {
	if err := g.validate(); err != nil {
		return err
	}
	role, err := hostcheck.ParseRole(o.role)
	if err != nil {
		return usageErr("--role: %v", err)
	}
	var configs []*hostcheck.WGDevice
	for _, path := range o.wg {
		d, err := hostcheck.ReadConfig(path)
		if err != nil {
			return usageErr("--wg: %v", err)
		}
		configs = append(configs, d)
	}
	h, err := hostcheck.Gather(cmd.Context(), hostcheck.Options{Configs: configs, NoFirewall: o.noFirewall})
	if errors.Is(err, hostcheck.ErrUnsupported) {
		return usageErr("%v", err)
	}
	if err != nil {
		return runtimeErr(fmt.Errorf("hostcheck: %w", err))
	}
	rep := newReport("hostcheck", args)
	rep.Title = "Gateway host lint"
	rep.Inputs = append(rep.Inputs, report.Input{Name: "localhost", Source: "live", Format: "live"})
	for _, c := range configs {
		rep.Inputs = append(rep.Inputs, report.Input{Name: c.Name, Source: c.File, Format: "wg-quick"})
	}
	hostcheck.Fill(rep, h, hostcheck.Config{Role: role})
	rep.Sort()
	return g.emit(rep)
}
