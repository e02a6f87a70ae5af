package hostcheck

import (
	"fmt"
	"net/netip"
	"strings"
)

// Role is what the host is for; checks depend on it.
type Role string

// Roles.
const (
	RoleAuto       Role = ""           // infer from the snapshot (see InferRole)
	RoleVPNRouter  Role = "vpn-router" // terminates tunnels and forwards between them and LANs
	RoleNATGateway Role = "nat-gateway"
	RoleClient     Role = "client"
)

// ParseRole parses a --role value ("" is RoleAuto).
func ParseRole(s string) (Role, error) {
	switch r := Role(strings.ToLower(s)); r {
	case RoleAuto, RoleVPNRouter, RoleNATGateway, RoleClient:
		return r, nil
	}
	return "", fmt.Errorf("unknown role %q (want vpn-router, nat-gateway or client)", s)
}

// Host is a snapshot of one network namespace of a host, as Gather reads it
// (or as a test builds it).
type Host struct {
	// Sysctls maps dotted names (net.ipv4.ip_forward,
	// net.ipv4.conf.eth0.rp_filter) to their values as read, trimmed.
	Sysctls map[string]string
	// Interfaces are the network interfaces, loopback included.
	Interfaces []Interface
	// Routes are the routes of every table.
	Routes []Route
	// DefaultPaths counts the IPv4 default routes' next hops in the main
	// table (a multipath route counts each hop): more than one means
	// several uplinks, so traffic may return on another interface.
	DefaultPaths int
	// Listeners are the bound UDP sockets and listening TCP sockets.
	Listeners []Listener
	// Forward holds the firewall chains on the forward hook.
	Forward []ForwardChain
	// WireGuard holds the live WireGuard devices of this namespace and the
	// configuration files read.
	WireGuard []WGDevice
	// EndpointRoutes is the kernel's answer (RouteGet) for each WireGuard
	// peer endpoint address.
	EndpointRoutes map[netip.Addr]EndpointRoute
	// Notes say what could not be read and why (privileges, missing tools).
	Notes []string
}

// Interface is one network interface.
type Interface struct {
	Name string
	// Kind is the netlink link type (veth, vxlan, tun, ...), or "wireguard"
	// for a WireGuard device (kernel or userspace).
	Kind string
	MTU  int
	Up   bool
	// Underlay is the interface the encapsulated packets leave through, for
	// tunnels (from the link's lower device or a route lookup of the
	// remote endpoint); "" when unknown.
	Underlay    string
	UnderlayMTU int
	// Remote is the tunnel's remote endpoint when known; its family decides
	// the encapsulation overhead.
	Remote netip.Addr
	Addrs  []netip.Prefix
}

// Route is one kernel route.
type Route struct {
	Dst   netip.Prefix
	Dev   string
	Table int
}

// Listener is one socket bound to a local port.
type Listener struct {
	Proto string // udp or tcp
	Addr  netip.Addr
	Port  uint16
}

// EndpointRoute is how the kernel routes to one address.
type EndpointRoute struct {
	Dev string
	Src netip.Addr
	Err string
}

// ForwardChain is a firewall chain on the forward hook.
type ForwardChain struct {
	Source string // nftables, iptables-nft, iptables-legacy, ip6tables-...
	Name   string // "inet filter forward", "filter FORWARD"
	Policy string // accept or drop
	Rules  []FirewallRule
}

// FirewallRule is one rule of a forward chain, as far as the checks need.
type FirewallRule struct {
	Text string // the rule as the tool prints it (or a summary)
	// CtStates are the conntrack states the rule matches (established,
	// related, new, invalid, untracked); empty when it does not match on
	// the state.
	CtStates []string
	// Negated is true when the state match is negated (ct state != ...).
	Negated bool
	Verdict string // accept, drop, reject, or "" (jump, counter, ...)
	// Other is true when the rule matches on something besides the state.
	Other bool
}

// WGDevice is a WireGuard interface, live or from a wg-quick file.
type WGDevice struct {
	Name string
	// File is the configuration file path, "" for a live device.
	File       string
	ListenPort Value[int]
	// Table is the wg-quick Table value ("" when unset).
	Table  Value[string]
	MTU    Value[int]
	PostUp []Value[string]
	Peers  []WGPeer
}

// WGPeer is one [Peer] (or live peer). Keys are public keys, never secrets.
type WGPeer struct {
	PublicKey  Value[string]
	AllowedIPs []Value[netip.Prefix]
	// Endpoint is host:port as written; EndpointAddr is its address when
	// it is a literal IP (or the live endpoint).
	Endpoint     Value[string]
	EndpointAddr netip.Addr
	Keepalive    Value[int]
	// Line is the line of the [Peer] header (0 for a live peer).
	Line int
}

// Value is a configuration value with the line it came from (0 when live
// or unset). Set reports whether it was given.
type Value[T any] struct {
	V    T
	Line int
	Set  bool
}

// ShortKey abbreviates a public key for reports: the first 8 characters.
func ShortKey(k string) string {
	if len(k) > 8 {
		return k[:8] + "…"
	}
	return k
}

// Where names a configuration line, file:line, or the live device.
func (d *WGDevice) Where(line int) string {
	if d.File == "" {
		return "live device " + d.Name
	}
	if line == 0 {
		return d.File
	}
	return fmt.Sprintf("%s:%d", d.File, line)
}

// Iface returns the interface named name, or nil.
func (h *Host) Iface(name string) *Interface {
	for i := range h.Interfaces {
		if h.Interfaces[i].Name == name {
			return &h.Interfaces[i]
		}
	}
	return nil
}

// Sysctl returns an integer sysctl and whether it was read and is a number.
func (h *Host) Sysctl(name string) (int64, bool) {
	s, ok := h.Sysctls[name]
	if !ok {
		return 0, false
	}
	var v int64
	if _, err := fmt.Sscan(s, &v); err != nil {
		return 0, false
	}
	return v, true
}
