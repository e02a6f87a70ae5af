//go:build linux

package mtu

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/vpndiag/vpndiag/probe/netns"
	"github.com/vpndiag/vpndiag/probe/ping"
)

// Run searches the path MTU to cfg.Target. The returned Result holds what
// was found also when Run fails part-way (interrupted, unreachable); it is
// nil only when nothing could be probed (bad config, unresolvable target,
// no permission).
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("mtu: %w", err)
	}
	var res *Result
	run := func() error {
		res, err = run(ctx, cfg)
		return nil
	}
	if cfg.Netns != "" {
		if e := netns.Do(cfg.Netns, run); e != nil {
			return nil, fmt.Errorf("mtu %s: %w", cfg.Target, e)
		}
	} else {
		_ = run()
	}
	return res, err
}

// resolve returns the target's address (IPv4 preferred for names).
func resolve(ctx context.Context, target string) (netip.Addr, error) {
	if a, err := netip.ParseAddr(target); err == nil {
		if a.Zone() != "" {
			return netip.Addr{}, fmt.Errorf("%s: scoped (link-local) addresses are not supported", target)
		}
		return a.Unmap(), nil
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(rctx, "ip", target)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("resolve %s: %w", target, err)
	}
	if len(addrs) == 0 {
		return netip.Addr{}, fmt.Errorf("resolve %s: no address", target)
	}
	for _, a := range addrs {
		if a.Unmap().Is4() {
			return a.Unmap(), nil
		}
	}
	return addrs[0], nil
}

// outInterface returns the name and MTU of the interface the route to dst
// uses (in the calling thread's namespace).
func outInterface(dst netip.Addr) (string, int, error) {
	routes, err := netlink.RouteGet(dst.AsSlice())
	if err != nil {
		return "", 0, fmt.Errorf("route to %s: %w", dst, err)
	}
	if len(routes) == 0 {
		return "", 0, fmt.Errorf("route to %s: none", dst)
	}
	link, err := netlink.LinkByIndex(routes[0].LinkIndex)
	if err != nil {
		return "", 0, fmt.Errorf("route to %s: interface %d: %w", dst, routes[0].LinkIndex, err)
	}
	return link.Attrs().Name, link.Attrs().MTU, nil
}

func run(ctx context.Context, cfg Config) (*Result, error) {
	start := time.Now()
	dst, err := resolve(ctx, cfg.Target)
	if err != nil {
		return nil, fmt.Errorf("mtu: %w", err)
	}
	v6 := dst.Is6()
	if cfg.Min == 0 {
		cfg.Min = DefaultMin
		if v6 {
			cfg.Min = DefaultMin6
		}
	}
	cfg.small = SmallSize
	if v6 {
		cfg.small = SmallSize + HeaderBytes6 - HeaderBytes
	}
	if cfg.Source != "" && netip.MustParseAddr(cfg.Source).Is6() != v6 {
		return nil, fmt.Errorf("mtu %s: source %s is not of the target's address family", cfg.Target, cfg.Source)
	}
	res := &Result{Target: cfg.Target, Addr: dst.String(), IPv6: v6, Min: cfg.Min, FragNeeded: []FragSource{}, Probes: []Probe{}}
	name, ifMTU, ierr := outInterface(dst)
	if ierr == nil {
		res.Interface, res.InterfaceMTU = name, ifMTU
	}
	if cfg.Max == 0 {
		if ierr != nil {
			return nil, fmt.Errorf("mtu %s: %w (give the largest size to try)", cfg.Target, ierr)
		}
		cfg.Max = min(ifMTU, MaxSize)
	}
	if cfg.Max < cfg.Min {
		cfg.Min = max(cfg.small, cfg.Max)
		res.Min = cfg.Min
	}
	res.Max = cfg.Max
	privileged := cfg.Mode == ping.Privileged || (cfg.Mode == ping.Auto && os.Geteuid() == 0)
	res.Privileged = privileged
	s, err := openEcho(dst, cfg.Source, privileged)
	if err != nil {
		if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPROTONOSUPPORT) {
			return nil, fmt.Errorf("mtu %s: %w: %v; %s", cfg.Target, ErrPermission, err, permissionHint(privileged))
		}
		return nil, fmt.Errorf("mtu %s: %w", cfg.Target, err)
	}
	defer s.Close()
	err = search(ctx, cfg, s, res)
	res.Seconds = time.Since(start).Seconds()
	if err != nil {
		return res, fmt.Errorf("mtu %s: %w", cfg.Target, err)
	}
	return res, nil
}

func permissionHint(privileged bool) string {
	if privileged {
		return "raw ICMP needs root or CAP_NET_RAW (setcap cap_net_raw+ep $(which vpndiag)); or use unprivileged mode"
	}
	return "unprivileged ICMP needs your group in sysctl net.ipv4.ping_group_range; or run privileged as root"
}
