package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Validate checks that every address of the topology (interface addresses,
// gateways, route and match prefixes, NAT and VXLAN endpoints) is inside the
// lab ranges. Parse already refuses such descriptions; Up calls Validate
// again so a Topology changed after parsing cannot escape the lab either.
func (t *Topology) Validate() error {
	var errs []error
	addr := func(line int, what string, a netip.Addr) {
		if a.IsValid() && !InLab(a) {
			errs = append(errs, fmt.Errorf("line %d: %s %s is outside the lab ranges %s and %s", line, what, a, LabNet4, LabNet6))
		}
	}
	pfx := func(line int, what string, p netip.Prefix) {
		if p.IsValid() && !prefixInLab(p) {
			errs = append(errs, fmt.Errorf("line %d: %s %s is outside the lab ranges %s and %s", line, what, p, LabNet4, LabNet6))
		}
	}
	for _, h := range t.Hosts {
		for _, name := range h.ifOrder {
			for _, p := range h.ifaces[name].Addrs {
				addr(h.Line, "address of "+h.Name+":"+name, p.Addr())
			}
		}
	}
	for _, l := range t.Links {
		for _, p := range append(append([]netip.Prefix(nil), l.A.Addrs...), l.B.Addrs...) {
			addr(l.Line, "link address", p.Addr())
		}
	}
	for _, b := range t.Bridges {
		for _, p := range b.Addrs {
			addr(b.Line, "bridge address", p.Addr())
		}
	}
	for _, a := range t.AddrStmts {
		for _, p := range a.Addrs {
			addr(a.Line, "address", p.Addr())
		}
	}
	for _, r := range t.Routes {
		pfx(r.Line, "route destination", r.Dest)
		addr(r.Line, "gateway", r.Via)
		addr(r.Line, "source", r.Src)
	}
	for _, n := range t.NATs {
		addr(n.Line, "snat address", n.To)
		pfx(n.Line, "nat daddr", n.Daddr)
	}
	for _, l := range t.Losses {
		pfx(l.Line, "loss saddr", l.Saddr)
		pfx(l.Line, "loss daddr", l.Daddr)
	}
	for _, v := range t.VXLANs {
		addr(v.Line, "vxlan local", v.Local)
		addr(v.Line, "vxlan remote", v.Remote)
		for _, p := range v.Addrs {
			addr(v.Line, "vxlan address", p.Addr())
		}
	}
	return errors.Join(errs...)
}

// Up creates the topology: one namespace per host, named "vd" + a random id
// + "-" + host, then bridges, veth links (GRO, GSO, TSO and checksum offload
// off), VXLAN devices, addresses, MTUs, forwarding and sysctls, routes, the
// nftables NAT and loss rules, and finally the exec statements. Interfaces
// that get no IPv6 address have IPv6 disabled, so captures carry no
// link-local chatter. On failure Up removes whatever it created. A Topology
// can be brought up once.
func (t *Topology) Up(ctx context.Context) (err error) {
	if err := t.Validate(); err != nil {
		return fmt.Errorf("lab up: %w", err)
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("lab up: %s", needMsg)
	}
	t.mu.Lock()
	if t.up || t.down {
		t.mu.Unlock()
		return fmt.Errorf("lab up: topology already brought up (a Topology can be brought up once)")
	}
	t.up = true
	t.id = newID()
	var all []string
	for _, h := range t.Hosts {
		h.ns = NSPrefix + t.id + "-" + h.Name
		all = append(all, h.ns)
	}
	t.mu.Unlock()
	if err := writeState(t.id, all); err != nil {
		return fmt.Errorf("lab up: %w", err)
	}
	defer func() {
		if err != nil {
			if derr := t.Down(); derr != nil {
				err = errors.Join(err, derr)
			}
			err = fmt.Errorf("lab up: %w", err)
		}
	}()
	for _, step := range []func(context.Context) error{
		t.upHosts, t.upBridges, t.upLinks, t.upVXLANs, t.upIfaces, t.waitLinks, t.upNeighbors, t.upRoutes, t.upNFT, t.upExecs,
	} {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := step(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (t *Topology) ip(ctx context.Context, host string, args ...string) error {
	_, err := run(ctx, append([]string{"ip", "-n", t.hostByName[host].ns}, args...)...)
	return err
}

func (t *Topology) sysctl(ctx context.Context, host string, kv ...string) error {
	_, err := run(ctx, append([]string{"ip", "netns", "exec", t.hostByName[host].ns, "sysctl", "-q", "-w"}, kv...)...)
	return err
}

func (t *Topology) upHosts(ctx context.Context) error {
	for _, h := range t.Hosts {
		if _, err := run(ctx, "ip", "netns", "add", h.ns); err != nil {
			return err
		}
		t.mu.Lock()
		t.nsMade = append(t.nsMade, h.ns)
		t.mu.Unlock()
		if err := t.ip(ctx, h.Name, "link", "set", "lo", "up"); err != nil {
			return err
		}
		fwd := "0"
		if h.Forward {
			fwd = "1"
		}
		kv := []string{
			"net.ipv4.ip_forward=" + fwd,
			"net.ipv6.conf.all.forwarding=" + fwd,
			"net.ipv6.conf.all.accept_dad=0",
			"net.ipv6.conf.default.accept_dad=0",
		}
		for _, s := range t.Sysctls {
			if s.Host == h.Name {
				kv = append(kv, s.Key+"="+s.Value)
			}
		}
		if err := t.sysctl(ctx, h.Name, kv...); err != nil {
			return err
		}
	}
	return nil
}

func (t *Topology) upBridges(ctx context.Context) error {
	for _, b := range t.Bridges {
		if err := t.ip(ctx, b.Host, "link", "add", "name", b.Name, "type", "bridge", "stp_state", "0", "forward_delay", "0"); err != nil {
			return err
		}
	}
	return nil
}

func (t *Topology) upLinks(ctx context.Context) error {
	for _, l := range t.Links {
		args := []string{"link", "add", "name", l.A.Iface}
		if l.MTU != 0 {
			args = append(args, "mtu", strconv.Itoa(l.MTU))
		}
		args = append(args, "type", "veth", "peer", "name", l.B.Iface)
		if l.MTU != 0 {
			args = append(args, "mtu", strconv.Itoa(l.MTU))
		}
		args = append(args, "netns", t.hostByName[l.B.Host].ns)
		if err := t.ip(ctx, l.A.Host, args...); err != nil {
			return err
		}
		for _, ep := range []Endpoint{l.A, l.B} {
			if _, err := run(ctx, "ip", "netns", "exec", t.hostByName[ep.Host].ns,
				"ethtool", "-K", ep.Iface, "gro", "off", "gso", "off", "tso", "off", "tx", "off"); err != nil {
				return err
			}
			if ep.Bridge != "" {
				if err := t.ip(ctx, ep.Host, "link", "set", ep.Iface, "master", ep.Bridge); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (t *Topology) upVXLANs(ctx context.Context) error {
	for _, v := range t.VXLANs {
		args := []string{"link", "add", "name", v.Iface, "address", v.MAC().String(), "type", "vxlan", "id", strconv.Itoa(int(v.VNI)),
			"local", v.Local.String(), "remote", v.Remote.String(), "dstport", strconv.Itoa(int(v.DstPort))}
		if v.Dev != "" {
			args = append(args, "dev", v.Dev)
		}
		if err := t.ip(ctx, v.Host, args...); err != nil {
			return err
		}
		if v.MTU != 0 {
			if err := t.ip(ctx, v.Host, "link", "set", v.Iface, "mtu", strconv.Itoa(v.MTU)); err != nil {
				return err
			}
		}
		// Best effort: keep the tunnel's packets unsegmented like the veths.
		_, _ = run(ctx, "ip", "netns", "exec", t.hostByName[v.Host].ns, "ethtool", "-K", v.Iface, "gro", "off", "gso", "off", "tso", "off")
	}
	return nil
}

// upNeighbors gives each "neigh static" vxlan end permanent neighbor
// entries for its peer end's addresses.
func (t *Topology) upNeighbors(ctx context.Context) error {
	for _, v := range t.VXLANs {
		if !v.StaticNeigh {
			continue
		}
		w := t.peer(v)
		for _, p := range t.Addrs(w.Host, w.Iface) {
			if err := t.ip(ctx, v.Host, "neigh", "replace", p.Addr().String(), "lladdr", w.MAC().String(), "dev", v.Iface, "nud", "permanent"); err != nil {
				return err
			}
		}
	}
	return nil
}

// upIfaces sets IPv6 on or off, addresses, MTUs, and brings every interface up.
func (t *Topology) upIfaces(ctx context.Context) error {
	for _, h := range t.Hosts {
		var kv []string
		for _, name := range h.ifOrder {
			ifc := h.ifaces[name]
			if ifc.Kind == "lo" {
				continue
			}
			off := "1"
			for _, p := range ifc.Addrs {
				if p.Addr().Is6() {
					off = "0"
				}
			}
			kv = append(kv, "net/ipv6/conf/"+name+"/disable_ipv6="+off)
		}
		if len(kv) > 0 {
			if err := t.sysctl(ctx, h.Name, kv...); err != nil {
				return err
			}
		}
		for _, name := range h.ifOrder {
			ifc := h.ifaces[name]
			if ifc.Kind == "lo" {
				continue
			}
			for _, p := range ifc.Addrs {
				args := []string{"addr", "add", p.String(), "dev", name}
				if p.Addr().Is6() {
					args = append(args, "nodad")
				}
				if err := t.ip(ctx, h.Name, args...); err != nil {
					return err
				}
			}
		}
	}
	for _, m := range t.MTUs {
		if err := t.ip(ctx, m.Host, "link", "set", m.Iface, "mtu", strconv.Itoa(m.MTU)); err != nil {
			return err
		}
	}
	for _, h := range t.Hosts {
		for _, name := range h.ifOrder {
			if name == "lo" {
				continue
			}
			if err := t.ip(ctx, h.Name, "link", "set", name, "up"); err != nil {
				return err
			}
		}
	}
	return nil
}

// linkWait bounds how long Up waits for carriers and qdiscs.
const linkWait = 15 * time.Second

var linkLineRe = regexp.MustCompile(`^\d+: ([^:@]+)[@:].* qdisc (\S+) .*state (\S+)`)

// waitLinks waits until every veth and vxlan interface is operationally up
// with its qdisc attached. The kernel does that asynchronously (linkwatch)
// up to a second after "ip link set up"; until then the interface drops
// everything, first ARP requests included.
func (t *Topology) waitLinks(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, linkWait)
	defer cancel()
	for _, h := range t.Hosts {
		want := map[string]bool{}
		for name, ifc := range h.ifaces {
			if ifc.Kind == "veth" || ifc.Kind == "vxlan" {
				want[name] = true
			}
		}
		for len(want) > 0 {
			out, err := run(ctx, "ip", "-n", h.ns, "-o", "link", "show")
			if err != nil {
				return err
			}
			for _, line := range strings.Split(string(out), "\n") {
				m := linkLineRe.FindStringSubmatch(line)
				if m != nil && m[2] != "noop" && (m[3] == "UP" || m[3] == "UNKNOWN") {
					delete(want, m[1])
				}
			}
			if len(want) == 0 {
				break
			}
			select {
			case <-ctx.Done():
				var names []string
				for n := range want {
					names = append(names, n)
				}
				return fmt.Errorf("%s: interfaces %v not up after %v", h.Name, names, linkWait)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return nil
}

func (t *Topology) upRoutes(ctx context.Context) error {
	for _, r := range t.Routes {
		args := []string{"-4", "route", "add"}
		if r.Family6 {
			args[0] = "-6"
		}
		if r.Default {
			args = append(args, "default")
		} else {
			args = append(args, r.Dest.String())
		}
		if r.Via.IsValid() {
			args = append(args, "via", r.Via.String())
		}
		if r.Dev != "" {
			args = append(args, "dev", r.Dev)
		}
		if r.Metric != 0 {
			args = append(args, "metric", strconv.Itoa(r.Metric))
		}
		if r.Src.IsValid() {
			args = append(args, "src", r.Src.String())
		}
		if r.MTU != 0 {
			args = append(args, "mtu", strconv.Itoa(r.MTU))
		}
		if err := t.ip(ctx, r.Host, args...); err != nil {
			return fmt.Errorf("line %d: %w", r.Line, err)
		}
	}
	return nil
}

func (t *Topology) upNFT(ctx context.Context) error {
	for _, h := range t.Hosts {
		rs := t.Ruleset(h.Name)
		if rs == "" {
			continue
		}
		if _, err := runInput(ctx, rs, "ip", "netns", "exec", h.ns, "nft", "-f", "-"); err != nil {
			return fmt.Errorf("nftables on %s: %w\nruleset:\n%s", h.Name, err, rs)
		}
	}
	return nil
}

func (t *Topology) upExecs(ctx context.Context) error {
	for _, e := range t.Execs {
		if _, err := run(ctx, "ip", "netns", "exec", t.hostByName[e.Host].ns, "sh", "-c", e.Command); err != nil {
			return fmt.Errorf("line %d: %w", e.Line, err)
		}
	}
	return nil
}

// Down stops every capture and process the topology started, kills any other
// process left inside its namespaces, and deletes the namespaces (which
// removes their interfaces). It is safe to call more than once and on a
// topology whose Up failed half way.
func (t *Topology) Down() error {
	t.mu.Lock()
	if t.down || !t.up {
		t.down = true
		t.mu.Unlock()
		return nil
	}
	t.down = true
	caps, procs, nss, id := t.caps, t.procs, t.nsMade, t.id
	t.caps, t.procs, t.nsMade = nil, nil, nil
	t.mu.Unlock()

	var errs []error
	for _, c := range caps {
		_ = c.stop(false) // a capture the test did not stop is of no interest
	}
	for _, p := range procs {
		_ = p.Stop()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, ns := range nss {
		if err := deleteNS(ctx, ns); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 && id != "" {
		if err := os.Remove(statePath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("lab down: %w", errors.Join(errs...))
	}
	return nil
}

// String summarizes the topology: hosts and their namespaces.
func (t *Topology) String() string {
	var b strings.Builder
	for _, h := range t.Hosts {
		fmt.Fprintf(&b, "%s(%s) ", h.Name, h.ns)
	}
	return strings.TrimSpace(b.String())
}
