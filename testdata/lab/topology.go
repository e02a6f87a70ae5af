// Package lab builds real network topologies in Linux network namespaces for
// vpndiag's tests, fixtures and benchmarks.
//
// A topology is described in a short line-oriented language (see README.md),
// parsed by Parse and created by (*Topology).Up: namespaces, veth links,
// bridges, routes, nftables NAT and loss rules, VXLAN tunnels. Background
// services are started with Start, packets recorded with Capture, and
// everything is removed by Down. New does all of that for a test.
//
// Only addresses from the benchmarking ranges 198.18.0.0/15 and 2001:2::/48
// are accepted, and every namespace is named "vd" + a random id + "-" + host,
// so parallel tests never collide and nothing leaves the lab.
package lab

import (
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"sync"
)

// Topology is a parsed lab description. After Up it also holds the live state
// (namespace names, started processes) that Down removes.
type Topology struct {
	Hosts     []*Host   // in declaration order
	Links     []*Link   // veth pairs
	Bridges   []*Bridge // Linux bridge devices (including the one of every switch host)
	Routes    []*Route
	NATs      []*NAT
	Losses    []*Loss
	VXLANs    []*VXLAN
	MTUs      []*MTU
	Sysctls   []*Sysctl
	AddrStmts []*AddrStmt // extra "addr" statements
	Execs     []*Exec     // escape hatch, run last, in order

	hostByName map[string]*Host

	mu     sync.Mutex
	id     string // random id shared by all namespaces of this topology
	up     bool   // Up started creating things
	down   bool   // Down ran
	nsMade []string
	procs  []*Proc
	caps   []*Capture
}

// Host is one network namespace.
type Host struct {
	Name    string
	Forward bool // net.ipv4.ip_forward and net.ipv6.conf.all.forwarding = 1
	Switch  bool // the namespace only bridges: all its link ends join bridge br0
	Line    int
	ns      string
	ifaces  map[string]*Iface
	ifOrder []string
}

// Iface is an interface of a host with the addresses the description gave it.
type Iface struct {
	Name   string
	Addrs  []netip.Prefix
	Bridge string // enslave to this bridge device of the same host ("" = none)
	Kind   string // "veth", "bridge", "vxlan"
}

// Endpoint is one end of a link: HOST:IFACE[@BRIDGE][=ADDR[,ADDR...]].
type Endpoint struct {
	Host   string
	Iface  string
	Bridge string
	Addrs  []netip.Prefix
}

// Link is a veth pair between two hosts.
type Link struct {
	A, B Endpoint
	MTU  int // 0 = kernel default
	Line int
}

// Bridge is a Linux bridge device in a host namespace.
type Bridge struct {
	Host  string
	Name  string
	Addrs []netip.Prefix
	Line  int
}

// Route is "route HOST DEST [via GW] [dev IF] [metric N] [src ADDR] [mtu N]".
type Route struct {
	Host    string
	Default bool
	Dest    netip.Prefix // when !Default
	Via     netip.Addr   // optional
	Dev     string       // optional
	Metric  int
	Src     netip.Addr
	MTU     int
	Family6 bool // route belongs to IPv6 (derived from Dest or Via, or "default6")
	Line    int
}

// NAT is a source-NAT rule on a host's postrouting hook.
type NAT struct {
	Host       string
	Masquerade bool       // else snat to To
	To         netip.Addr // snat address
	Oif        string     // required: outgoing interface
	Daddr      netip.Prefix
	DaddrNot   bool   // "daddr != PREFIX"
	Proto      string // "", "udp", "tcp"
	PortMin    uint16 // 0 = no port range
	PortMax    uint16
	Flags      []string // random, fully-random, persistent
	Line       int
}

// Loss is a random drop rule: numgen random mod 100 < Percent drop.
type Loss struct {
	Host    string
	Hook    string // forward, input, output, ingress, egress
	Iif     string
	Oif     string
	Proto   string // "", udp, tcp, icmp, icmpv6
	Sport   uint16
	Dport   uint16
	Saddr   netip.Prefix
	Daddr   netip.Prefix
	Percent int // 0..100
	Line    int
}

// VXLAN is a kernel vxlan device.
type VXLAN struct {
	Host    string
	Iface   string
	VNI     uint32
	Local   netip.Addr
	Remote  netip.Addr
	DstPort uint16 // default 4789
	Dev     string // optional underlay device
	Addrs   []netip.Prefix
	MTU     int
	// StaticNeigh ("neigh static") gives this end permanent neighbor
	// entries for the peer end's addresses, so no ARP or ND crosses the
	// tunnel: with loss on the underlay, a lost ARP request would otherwise
	// hold the first second of traffic in the neighbor queue and drop it
	// there, loss the drop rule did not cause directly.
	StaticNeigh bool
	Line        int
}

// MAC is the vxlan device's link-layer address: locally administered and
// derived from the VNI and local address, so each end of a tunnel can name
// the other's without asking it.
func (v *VXLAN) MAC() net.HardwareAddr {
	h := fnv.New64a()
	fmt.Fprintf(h, "%d/%s", v.VNI, v.Local)
	sum := h.Sum(nil)
	return net.HardwareAddr{0x02, sum[0], sum[1], sum[2], sum[3], sum[4]}
}

// peer returns the vxlan statement of the tunnel's other end (same VNI and
// port, local and remote swapped), or nil.
func (t *Topology) peer(v *VXLAN) *VXLAN {
	for _, w := range t.VXLANs {
		if w != v && w.VNI == v.VNI && w.DstPort == v.DstPort && w.Local == v.Remote && w.Remote == v.Local {
			return w
		}
	}
	return nil
}

// MTU sets an interface MTU: "mtu HOST IFACE N".
type MTU struct {
	Host, Iface string
	MTU         int
	Line        int
}

// Sysctl is "sysctl HOST key=value", applied inside the namespace.
type Sysctl struct {
	Host, Key, Value string
	Line             int
}

// AddrStmt is "addr HOST IFACE ADDR[,ADDR...]": extra addresses on an
// interface created by another statement.
type AddrStmt struct {
	Host, Iface string
	Addrs       []netip.Prefix
	Line        int
}

// Exec is "exec HOST shell command...", run with sh -c inside the namespace
// after everything else is set up.
type Exec struct {
	Host    string
	Command string
	Line    int
}

// Lab address ranges: RFC 2544 (IPv4) and RFC 5180 (IPv6) benchmarking space.
var (
	LabNet4 = netip.MustParsePrefix("198.18.0.0/15")
	LabNet6 = netip.MustParsePrefix("2001:2::/48")
)

// InLab reports whether a is inside the lab address ranges.
func InLab(a netip.Addr) bool {
	a = a.Unmap()
	return LabNet4.Contains(a) || LabNet6.Contains(a)
}

// prefixInLab reports whether the whole prefix is inside a lab range.
func prefixInLab(p netip.Prefix) bool {
	p = p.Masked()
	for _, n := range []netip.Prefix{LabNet4, LabNet6} {
		if n.Contains(p.Addr()) && p.Bits() >= n.Bits() {
			return true
		}
	}
	return false
}

// Host returns the host named name, or nil.
func (t *Topology) Host(name string) *Host { return t.hostByName[name] }

// Addr returns the first address (without prefix length) configured on
// host:iface by the description, of IPv4 if it has one, or the zero Addr.
func (t *Topology) Addr(host, iface string) netip.Addr {
	h := t.hostByName[host]
	if h == nil {
		return netip.Addr{}
	}
	ifc := h.ifaces[iface]
	if ifc == nil {
		return netip.Addr{}
	}
	for _, p := range ifc.Addrs {
		if p.Addr().Is4() {
			return p.Addr()
		}
	}
	if len(ifc.Addrs) > 0 {
		return ifc.Addrs[0].Addr()
	}
	return netip.Addr{}
}

// Addrs returns every address configured on host:iface by the description.
func (t *Topology) Addrs(host, iface string) []netip.Prefix {
	h := t.hostByName[host]
	if h == nil || h.ifaces[iface] == nil {
		return nil
	}
	return append([]netip.Prefix(nil), h.ifaces[iface].Addrs...)
}

// NS returns the namespace name of host ("" before Up or for an unknown host).
func (t *Topology) NS(host string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if h := t.hostByName[host]; h != nil {
		return h.ns
	}
	return ""
}

// Namespaces returns the namespaces Up created (and Down has not yet removed).
func (t *Topology) Namespaces() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.nsMade...)
}

// ID returns the random id of this topology's namespaces ("" before Up).
func (t *Topology) ID() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.id
}
