//go:build linux

package routes

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/wgctrl"
)

// Options select what Inspect reads.
type Options struct {
	// NetNS is a network namespace name (ip netns) to inspect instead of the
	// current one.
	NetNS string
	// NoWireGuard skips WireGuard device enumeration.
	NoWireGuard bool
}

// tunnelLinkTypes are netlink link types that encapsulate.
var tunnelLinkTypes = []string{"vxlan", "gre", "gretap", "ip6gre", "ip6gretap", "ipip", "sit", "ip6tnl", "vti", "vti6", "xfrm", "wireguard", "geneve"}

// Inspect reads tunnels (netlink links, xfrm states, WireGuard peers), the
// main routing table, and asks the kernel how each tunnel endpoint is
// routed. It needs CAP_NET_ADMIN for xfrm and WireGuard; what it cannot read
// is listed in Snapshot.Warnings.
func Inspect(ctx context.Context, o Options) (*Snapshot, error) {
	h := &netlink.Handle{}
	if o.NetNS != "" {
		ns, err := netns.GetFromName(o.NetNS)
		if err != nil {
			return nil, fmt.Errorf("network namespace %s: %w", o.NetNS, err)
		}
		defer ns.Close()
		h, err = netlink.NewHandleAt(ns)
		if err != nil {
			return nil, fmt.Errorf("netlink in namespace %s: %w", o.NetNS, err)
		}
		defer h.Close()
	}
	s := &Snapshot{}
	links, err := h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	names := map[int]string{}
	isTunnel := map[string]bool{}
	for _, l := range links {
		a := l.Attrs()
		names[a.Index] = a.Name
		if slices.Contains(tunnelLinkTypes, l.Type()) {
			isTunnel[a.Name] = true
		}
		t := Tunnel{Kind: l.Type(), Device: a.Name}
		switch l := l.(type) {
		case *netlink.Vxlan:
			t.Local, t.Remote = ip(l.SrcAddr), ip(l.Group)
			t.Detail = fmt.Sprintf("VNI %d", l.VxlanId)
			if t.Remote.IsValid() && t.Remote.IsMulticast() {
				t.Remote = netip.Addr{}
			}
		case *netlink.Gretun:
			t.Local, t.Remote = ip(l.Local), ip(l.Remote)
		case *netlink.Gretap:
			t.Local, t.Remote = ip(l.Local), ip(l.Remote)
		case *netlink.Iptun:
			t.Local, t.Remote = ip(l.Local), ip(l.Remote)
		case *netlink.Sittun:
			t.Local, t.Remote = ip(l.Local), ip(l.Remote)
		case *netlink.Ip6tnl:
			t.Local, t.Remote = ip(l.Local), ip(l.Remote)
		case *netlink.Vti:
			t.Local, t.Remote = ip(l.Local), ip(l.Remote)
		default:
			continue
		}
		if t.Remote.IsValid() && !t.Remote.IsUnspecified() {
			s.Tunnels = append(s.Tunnels, t)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// VXLAN devices without a fixed remote learn remotes in the FDB.
	for _, l := range links {
		vx, ok := l.(*netlink.Vxlan)
		if !ok || (vx.Group != nil && !vx.Group.IsUnspecified() && !vx.Group.IsMulticast()) {
			continue
		}
		neighs, err := h.NeighList(vx.Index, unix.AF_BRIDGE)
		if err != nil {
			continue
		}
		seen := map[netip.Addr]bool{}
		for _, n := range neighs {
			if r := ip(n.IP); r.IsValid() && !r.IsUnspecified() && !seen[r] {
				seen[r] = true
				s.Tunnels = append(s.Tunnels, Tunnel{Kind: "vxlan", Device: vx.Name, Remote: r, Detail: fmt.Sprintf("VNI %d (FDB)", vx.VxlanId)})
			}
		}
	}
	local := map[netip.Addr]bool{}
	if addrs, err := h.AddrList(nil, netlink.FAMILY_ALL); err == nil {
		for _, a := range addrs {
			local[ip(a.IP)] = true
		}
	}
	if states, err := h.XfrmStateList(netlink.FAMILY_ALL); err != nil {
		s.Warnings = append(s.Warnings, fmt.Sprintf("xfrm states: %v (run as root to include IPsec tunnels)", err))
	} else {
		seen := map[netip.Addr]bool{}
		for _, st := range states {
			if st.Mode != netlink.XFRM_MODE_TUNNEL {
				continue
			}
			src, dst := ip(st.Src), ip(st.Dst)
			remote, loc := dst, src
			if local[dst] {
				remote, loc = src, dst
			}
			if !remote.IsValid() || seen[remote] {
				continue
			}
			seen[remote] = true
			dev := ""
			if st.Ifid != 0 {
				for _, l := range links {
					if x, ok := l.(*netlink.Xfrmi); ok && int(x.Ifid) == st.Ifid {
						dev = x.Name
					}
				}
			}
			s.Tunnels = append(s.Tunnels, Tunnel{Kind: "xfrm-state", Device: dev, Local: loc, Remote: remote, Detail: fmt.Sprintf("SPI 0x%08x", uint32(st.Spi))})
		}
	}
	if !o.NoWireGuard {
		wireGuard(s, names, isTunnel)
	}
	for n := range isTunnel {
		s.TunnelDevices = append(s.TunnelDevices, n)
	}
	slices.Sort(s.TunnelDevices)
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rs, err := h.RouteListFiltered(fam, &netlink.Route{Table: 254}, netlink.RT_FILTER_TABLE)
		if err != nil {
			return nil, fmt.Errorf("list routes: %w", err)
		}
		for _, r := range rs {
			s.Routes = append(s.Routes, route(r, fam, names, isTunnel))
		}
	}
	for _, t := range s.Tunnels {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		l := Lookup{Tunnel: t}
		rs, err := h.RouteGet(net.IP(t.Remote.AsSlice()))
		if err != nil || len(rs) == 0 {
			l.Err = fmt.Sprintf("no route to %s: %v", t.Remote, err)
		} else {
			l.Device, l.Gateway, l.Src = names[rs[0].LinkIndex], ip(rs[0].Gw), ip(rs[0].Src)
			l.ViaTunnel = isTunnel[l.Device]
		}
		for _, r := range s.Routes {
			if isDefault(r.Dst) || !r.Dst.Contains(t.Remote) {
				continue
			}
			if !l.Covering.Dst.IsValid() || r.Dst.Bits() > l.Covering.Dst.Bits() {
				l.Covering = r
			}
		}
		s.Lookups = append(s.Lookups, l)
	}
	return s, nil
}

func wireGuard(s *Snapshot, names map[int]string, isTunnel map[string]bool) {
	c, err := wgctrl.New()
	if err != nil {
		s.Warnings = append(s.Warnings, fmt.Sprintf("WireGuard: %v", err))
		return
	}
	defer c.Close()
	// Ask for this namespace's interfaces by name: listing every device
	// (c.Devices) fails as a whole when one userspace socket in
	// /var/run/wireguard, which all namespaces share, is stale, and would
	// also return the devices of other namespaces.
	list := make([]string, 0, len(names))
	for _, n := range names {
		list = append(list, n)
	}
	slices.Sort(list)
	for _, name := range list {
		d, err := c.Device(name)
		if errors.Is(err, os.ErrNotExist) {
			continue // not a WireGuard interface
		}
		if err != nil {
			s.Warnings = append(s.Warnings, fmt.Sprintf("WireGuard device %s: %v", name, err))
			continue
		}
		isTunnel[d.Name] = true
		for _, p := range d.Peers {
			if p.Endpoint == nil {
				continue
			}
			key := p.PublicKey.String()
			s.Tunnels = append(s.Tunnels, Tunnel{Kind: "wireguard", Device: d.Name, Remote: ip(p.Endpoint.IP),
				Detail: "peer " + key[:8] + "…"})
		}
	}
}

func route(r netlink.Route, fam int, names map[int]string, isTunnel map[string]bool) Route {
	out := Route{Metric: r.Priority, Proto: r.Protocol.String(), Gateway: ip(r.Gw)}
	if r.Dst != nil {
		a := ip(r.Dst.IP)
		ones, _ := r.Dst.Mask.Size()
		out.Dst = netip.PrefixFrom(a, ones)
	} else if fam == netlink.FAMILY_V4 {
		out.Dst = netip.MustParsePrefix("0.0.0.0/0")
	} else {
		out.Dst = netip.MustParsePrefix("::/0")
	}
	idx := r.LinkIndex
	if idx == 0 && len(r.MultiPath) > 0 {
		idx = r.MultiPath[0].LinkIndex
		out.Gateway = ip(r.MultiPath[0].Gw)
	}
	out.Device = names[idx]
	out.Tunnel = isTunnel[out.Device]
	return out
}

func ip(b net.IP) netip.Addr {
	if b == nil {
		return netip.Addr{}
	}
	a, ok := netip.AddrFromSlice(b)
	if !ok {
		return netip.Addr{}
	}
	return a.Unmap()
}
