//go:build linux

package hostcheck

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/wgctrl"

	"github.com/vpndiag/vpndiag/probe/hostexec"
)

// Gather reads a Host snapshot of the network namespace the calling thread
// is in. What cannot be read (no privilege, a missing tool) becomes a note;
// only a failure to list the links over netlink is an error. It changes
// nothing on the host.
func Gather(ctx context.Context, o Options) (*Host, error) {
	h := &Host{EndpointRoutes: map[netip.Addr]EndpointRoute{}}
	var notes []string
	h.Sysctls, notes = ReadSysctls(filepath.Join(o.proc(), "sys"))
	h.Notes = append(h.Notes, notes...)

	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list network interfaces: %w", err)
	}
	names := map[int]string{}
	mtus := map[string]int{}
	for _, l := range links {
		names[l.Attrs().Index] = l.Attrs().Name
		mtus[l.Attrs().Name] = l.Attrs().MTU
	}
	readRoutes(h, names)
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	live := readWireGuard(h, links, o.Configs)
	for _, c := range o.Configs {
		h.WireGuard = append(h.WireGuard, *c)
	}
	devs := slices.Clone(h.WireGuard)
	for _, d := range live {
		devs = append(devs, *d)
	}
	for _, d := range devs {
		for _, p := range d.Peers {
			if a := p.EndpointAddr; a.IsValid() {
				if _, done := h.EndpointRoutes[a]; !done {
					h.EndpointRoutes[a] = routeGet(a, names)
				}
			}
		}
	}

	for _, l := range links {
		h.Interfaces = append(h.Interfaces, iface(h, l, names, mtus, live))
	}
	readListeners(h, o.proc())
	if !o.NoFirewall {
		readFirewall(ctx, h)
	}
	return h, ctx.Err()
}

func readRoutes(h *Host, names map[int]string) {
	rs, err := netlink.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		h.Notes = append(h.Notes, fmt.Sprintf("routes not read: %v", err))
		return
	}
	for _, r := range rs {
		var dst netip.Prefix
		if r.Dst != nil {
			ones, _ := r.Dst.Mask.Size()
			dst = netip.PrefixFrom(addr(r.Dst.IP), ones)
		} else if r.Family == netlink.FAMILY_V6 {
			dst = netip.MustParsePrefix("::/0")
		} else {
			dst = netip.MustParsePrefix("0.0.0.0/0")
		}
		if r.Table == unix.RT_TABLE_LOCAL {
			continue
		}
		devs := []string{names[r.LinkIndex]}
		if len(r.MultiPath) > 0 {
			devs = devs[:0]
			for _, nh := range r.MultiPath {
				devs = append(devs, names[nh.LinkIndex])
			}
		}
		for _, d := range devs {
			h.Routes = append(h.Routes, Route{Dst: dst, Dev: d, Table: r.Table})
		}
		if dst.Bits() == 0 && dst.Addr().Is4() && r.Table == unix.RT_TABLE_MAIN {
			h.DefaultPaths += len(devs)
		}
	}
}

// readWireGuard asks wgctrl for each link of this namespace by name (the
// userspace control sockets in /var/run/wireguard are shared by all
// namespaces, so listing every device would also return other namespaces'
// devices). Live devices with a configuration file given are not added
// (the file stands in for them). It returns the live devices by name.
func readWireGuard(h *Host, links []netlink.Link, configs []*WGDevice) map[string]*WGDevice {
	live := map[string]*WGDevice{}
	c, err := wgctrl.New()
	if err != nil {
		h.Notes = append(h.Notes, fmt.Sprintf("WireGuard devices not read: %v", err))
		return live
	}
	defer c.Close()
	for _, l := range links {
		name := l.Attrs().Name
		if l.Type() != "wireguard" && l.Type() != "tuntap" {
			continue
		}
		dev, err := c.Device(name)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			h.Notes = append(h.Notes, fmt.Sprintf("WireGuard device %s not read: %v (needs root or CAP_NET_ADMIN)", name, err))
			continue
		}
		d := &WGDevice{Name: name, ListenPort: Value[int]{V: dev.ListenPort, Set: true}}
		for _, p := range dev.Peers {
			wp := WGPeer{PublicKey: Value[string]{V: p.PublicKey.String(), Set: true}}
			for _, a := range p.AllowedIPs {
				ones, _ := a.Mask.Size()
				wp.AllowedIPs = append(wp.AllowedIPs, Value[netip.Prefix]{V: netip.PrefixFrom(addr(a.IP), ones).Masked(), Set: true})
			}
			if p.Endpoint != nil {
				wp.EndpointAddr = addr(p.Endpoint.IP)
				wp.Endpoint = Value[string]{V: p.Endpoint.String(), Set: true}
			}
			if p.PersistentKeepaliveInterval > 0 {
				wp.Keepalive = Value[int]{V: int(p.PersistentKeepaliveInterval / time.Second), Set: true}
			}
			d.Peers = append(d.Peers, wp)
		}
		// wgctrl returns peers in no fixed order (wireguard-go: map order).
		slices.SortFunc(d.Peers, func(a, b WGPeer) int { return strings.Compare(a.PublicKey.V, b.PublicKey.V) })
		live[name] = d
		if !slices.ContainsFunc(configs, func(c *WGDevice) bool { return c.Name == name }) {
			h.WireGuard = append(h.WireGuard, *d)
		}
	}
	return live
}

func routeGet(a netip.Addr, names map[int]string) EndpointRoute {
	rs, err := netlink.RouteGet(net.IP(a.AsSlice()))
	if err != nil || len(rs) == 0 {
		return EndpointRoute{Err: fmt.Sprintf("no route to %s: %v", a, err)}
	}
	return EndpointRoute{Dev: names[rs[0].LinkIndex], Src: addr(rs[0].Src)}
}

// iface describes one link, with the underlay of a tunnel.
func iface(h *Host, l netlink.Link, names map[int]string, mtus map[string]int, live map[string]*WGDevice) Interface {
	a := l.Attrs()
	ifc := Interface{Name: a.Name, Kind: l.Type(), MTU: a.MTU, Up: a.Flags&net.FlagUp != 0}
	if addrs, err := netlink.AddrList(l, netlink.FAMILY_ALL); err == nil {
		for _, ad := range addrs {
			ones, _ := ad.Mask.Size()
			ifc.Addrs = append(ifc.Addrs, netip.PrefixFrom(addr(ad.IP), ones))
		}
	}
	under := func(remote netip.Addr, lower int) {
		ifc.Remote = remote
		if lower > 0 {
			ifc.Underlay = names[lower]
		} else if remote.IsValid() && !remote.IsUnspecified() && !remote.IsMulticast() {
			if rt := routeGet(remote, names); rt.Dev != a.Name {
				ifc.Underlay = rt.Dev
			}
		}
		ifc.UnderlayMTU = mtus[ifc.Underlay]
	}
	switch t := l.(type) {
	case *netlink.Vxlan:
		remote := addr(t.Group)
		if !remote.IsValid() {
			remote = addr(t.SrcAddr)
		}
		under(remote, t.VtepDevIndex)
	case *netlink.Gretun:
		under(addr(t.Remote), int(t.Link))
	case *netlink.Gretap:
		under(addr(t.Remote), int(t.Link))
	case *netlink.Iptun:
		under(addr(t.Remote), int(t.Link))
	case *netlink.Sittun:
		under(addr(t.Remote), int(t.Link))
	case *netlink.Ip6tnl:
		under(addr(t.Remote), int(t.Link))
	}
	if d, ok := live[a.Name]; ok || l.Type() == "wireguard" {
		ifc.Kind = "wireguard"
		// The underlay is where the first endpoint routed outside the
		// device itself goes (one routed into it is its own finding).
		var remote netip.Addr
		if d != nil {
			for _, p := range d.Peers {
				if p.EndpointAddr.IsValid() && h.EndpointRoutes[p.EndpointAddr].Dev != a.Name {
					remote = p.EndpointAddr
					break
				}
			}
		}
		if remote.IsValid() {
			under(remote, 0)
		} else {
			for _, r := range h.Routes {
				if r.Dst.Bits() == 0 && r.Dst.Addr().Is4() && r.Table == unix.RT_TABLE_MAIN && r.Dev != a.Name {
					ifc.Underlay, ifc.UnderlayMTU = r.Dev, mtus[r.Dev]
					break
				}
			}
		}
	}
	return ifc
}

func readListeners(h *Host, proc string) {
	for _, f := range []struct{ file, proto string }{{"udp", "udp"}, {"udp6", "udp"}, {"tcp", "tcp"}, {"tcp6", "tcp"}} {
		// thread-self: the network namespace of this thread, which may
		// differ from the process's (/proc/net is /proc/self/net).
		path := filepath.Join(proc, "thread-self/net", f.file)
		b, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			continue // no IPv6
		}
		if err != nil {
			h.Notes = append(h.Notes, fmt.Sprintf("listening sockets: %v", err))
			continue
		}
		ls, err := ParseProcNet(bytes.NewReader(b), f.proto)
		if err != nil {
			h.Notes = append(h.Notes, fmt.Sprintf("listening sockets: %s: %v", path, err))
			continue
		}
		h.Listeners = append(h.Listeners, ls...)
	}
}

func readFirewall(ctx context.Context, h *Host) {
	if out, err := hostexec.Run(ctx, "nft", "-j", "list", "ruleset"); err != nil {
		h.Notes = append(h.Notes, fmt.Sprintf("nftables rules not read: %v (listing the ruleset needs root or CAP_NET_ADMIN)", err))
	} else if cs, err := ParseNFTForward(out); err != nil {
		h.Notes = append(h.Notes, err.Error())
	} else {
		h.Forward = append(h.Forward, cs...)
	}
	seen := map[string]bool{}
	for _, tool := range []string{"iptables-save", "ip6tables-save", "iptables-legacy-save", "ip6tables-legacy-save"} {
		if _, err := exec.LookPath(tool); err != nil {
			continue
		}
		out, err := hostexec.Run(ctx, tool, "-t", "filter")
		if err != nil {
			h.Notes = append(h.Notes, fmt.Sprintf("%s rules not read: %v (needs root or CAP_NET_ADMIN)", tool, err))
			continue
		}
		family, table := "ip", "ip filter FORWARD"
		if strings.HasPrefix(tool, "ip6") {
			family, table = "ip6", "ip6 filter FORWARD"
		}
		base := strings.TrimSuffix(strings.TrimSuffix(tool, "-save"), "-legacy") // iptables or ip6tables
		nftBackend := bytes.Contains(out, []byte("(nf_tables)"))
		source := base + "-legacy"
		if nftBackend {
			if strings.Contains(tool, "legacy") {
				continue
			}
			source = base + "-nft"
		}
		cs, err := ParseIPTablesSave(out, source)
		if err != nil {
			h.Notes = append(h.Notes, err.Error())
			continue
		}
		if len(cs) == 0 {
			continue
		}
		if seen[source+family] {
			continue
		}
		seen[source+family] = true
		for i := range cs {
			cs[i].Name = family + " " + cs[i].Name
		}
		if nftBackend {
			// iptables-nft's chains are nftables chains too: keep the
			// iptables view (the operator edits them with iptables).
			h.Forward = slices.DeleteFunc(h.Forward, func(c ForwardChain) bool { return c.Source == "nftables" && c.Name == table })
		}
		h.Forward = append(h.Forward, cs...)
	}
}

func addr(b net.IP) netip.Addr {
	a, ok := netip.AddrFromSlice(b)
	if !ok {
		return netip.Addr{}
	}
	return a.Unmap()
}
