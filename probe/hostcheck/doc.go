// Package hostcheck lints a VPN gateway host and its WireGuard
// configuration: IP forwarding, reverse-path filtering, stateful forward
// filtering, reserved VPN ports, UDP buffers, conntrack sizing, tunnel MTUs,
// and WireGuard peers (overlapping AllowedIPs, keepalive behind NAT,
// Table = off without routes, endpoints routed into their own tunnel).
//
// Gathering and checking are separate. Gather (Linux only) reads a Host
// snapshot of the network namespace it runs in: sysctls under /proc/sys,
// links, addresses and routes over netlink, listening sockets from
// /proc/thread-self/net, the forward-hook firewall chains (nft -j list
// ruleset, iptables-save) and live WireGuard devices (wgctrl). ParseConfig
// reads wg-quick configuration files. Check is a pure function from a Host
// and a Config to report findings (ids host.* and wireguard.*), each with
// the exact sysctl, command or configuration line to change. Hostcheck only
// reads; it never changes the host.
package hostcheck
