package lab

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// Parse reads a topology description (see README.md for the language). Every
// error names the line it was found on. Statements may only refer to hosts,
// interfaces and bridges declared on earlier lines.
func Parse(text string) (*Topology, error) {
	t := &Topology{hostByName: map[string]*Host{}}
	for i, raw := range strings.Split(text, "\n") {
		line := i + 1
		f := fields(raw)
		if len(f) == 0 {
			continue
		}
		p := &parser{t: t, line: line, f: f}
		if err := p.statement(); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
	}
	if len(t.Hosts) == 0 {
		return nil, fmt.Errorf("topology declares no host")
	}
	for _, v := range t.VXLANs {
		if v.StaticNeigh && t.peer(v) == nil {
			return nil, fmt.Errorf("line %d: vxlan %s:%s neigh static: no vxlan statement for the other end (vni %d local %s remote %s)",
				v.Line, v.Host, v.Iface, v.VNI, v.Remote, v.Local)
		}
	}
	return t, nil
}

// fields splits a line on whitespace and drops a trailing comment: a token
// starting with '#' and everything after it.
func fields(s string) []string {
	f := strings.Fields(s)
	for i, w := range f {
		if strings.HasPrefix(w, "#") {
			return f[:i]
		}
	}
	return f
}

var (
	hostRe  = regexp.MustCompile(`^[a-z][a-z0-9_]{0,19}$`)
	ifaceRe = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]{0,14}$`)
)

type parser struct {
	t    *Topology
	line int
	f    []string
}

func (p *parser) statement() error {
	switch kw := p.f[0]; kw {
	case "host":
		return p.host(false)
	case "switch":
		return p.host(true)
	case "link":
		return p.link()
	case "bridge":
		return p.bridge()
	case "addr":
		return p.addr()
	case "mtu":
		return p.mtu()
	case "route":
		return p.route()
	case "nat":
		return p.nat()
	case "loss":
		return p.loss()
	case "vxlan":
		return p.vxlan()
	case "sysctl":
		return p.sysctl()
	case "exec":
		return p.exec()
	default:
		return fmt.Errorf("unknown keyword %q (want host, switch, link, bridge, addr, mtu, route, nat, loss, vxlan, sysctl or exec)", kw)
	}
}

func (p *parser) need(n int, usage string) error {
	if len(p.f) < n {
		return fmt.Errorf("too few words, usage: %s", usage)
	}
	return nil
}

func (p *parser) hostRef(name string) (*Host, error) {
	h := p.t.hostByName[name]
	if h == nil {
		return nil, fmt.Errorf("unknown host %q (declare it first with \"host %s\")", name, name)
	}
	return h, nil
}

// ifaceRef checks that host has interface name (declared on an earlier line).
func (p *parser) ifaceRef(h *Host, name string) (*Iface, error) {
	ifc := h.ifaces[name]
	if ifc == nil {
		return nil, fmt.Errorf("host %q has no interface %q (declared so far: %s)", h.Name, name, strings.Join(h.ifOrder, ", "))
	}
	return ifc, nil
}

func (p *parser) addIface(h *Host, ifc *Iface) error {
	if !ifaceRe.MatchString(ifc.Name) {
		return fmt.Errorf("bad interface name %q (letters, digits, _.-, at most 15 characters)", ifc.Name)
	}
	if h.ifaces[ifc.Name] != nil {
		return fmt.Errorf("host %q already has an interface %q", h.Name, ifc.Name)
	}
	h.ifaces[ifc.Name] = ifc
	h.ifOrder = append(h.ifOrder, ifc.Name)
	return nil
}

// hostIface parses HOST:IFACE.
func (p *parser) hostIface(s string) (*Host, string, error) {
	hn, in, ok := strings.Cut(s, ":")
	if !ok || hn == "" || in == "" {
		return nil, "", fmt.Errorf("want HOST:IFACE, got %q", s)
	}
	h, err := p.hostRef(hn)
	return h, in, err
}

func (p *parser) host(sw bool) error {
	usage := "host NAME [forward] | switch NAME"
	if err := p.need(2, usage); err != nil {
		return err
	}
	name := p.f[1]
	if !hostRe.MatchString(name) {
		return fmt.Errorf("bad host name %q (lower-case letter, then letters, digits or _, at most 20)", name)
	}
	if p.t.hostByName[name] != nil {
		return fmt.Errorf("host %q declared twice", name)
	}
	h := &Host{Name: name, Switch: sw, Line: p.line, ifaces: map[string]*Iface{}}
	for _, w := range p.f[2:] {
		switch {
		case w == "forward" && !sw:
			h.Forward = true
		default:
			return fmt.Errorf("unexpected %q, usage: %s", w, usage)
		}
	}
	h.ifaces["lo"] = &Iface{Name: "lo", Kind: "lo"}
	p.t.Hosts = append(p.t.Hosts, h)
	p.t.hostByName[name] = h
	if sw {
		br := &Bridge{Host: name, Name: "br0", Line: p.line}
		p.t.Bridges = append(p.t.Bridges, br)
		return p.addIface(h, &Iface{Name: "br0", Kind: "bridge"})
	}
	return nil
}

// addrList parses ADDR/LEN[,ADDR/LEN...], every address inside the lab ranges.
func addrList(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, a := range strings.Split(s, ",") {
		pf, err := netip.ParsePrefix(a)
		if err != nil {
			return nil, fmt.Errorf("bad address %q (want ADDR/LEN, e.g. 198.18.1.2/24): %v", a, err)
		}
		if !InLab(pf.Addr()) {
			return nil, fmt.Errorf("address %s is outside the lab ranges %s and %s", pf, LabNet4, LabNet6)
		}
		out = append(out, pf)
	}
	return out, nil
}

func labAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return a, fmt.Errorf("bad address %q: %v", s, err)
	}
	if !InLab(a) {
		return a, fmt.Errorf("address %s is outside the lab ranges %s and %s", a, LabNet4, LabNet6)
	}
	return a, nil
}

func labPrefix(s string) (netip.Prefix, error) {
	pf, err := netip.ParsePrefix(s)
	if err != nil {
		a, err2 := netip.ParseAddr(s)
		if err2 != nil {
			return pf, fmt.Errorf("bad prefix %q: %v", s, err)
		}
		pf = netip.PrefixFrom(a, a.BitLen())
	}
	if !prefixInLab(pf) {
		return pf, fmt.Errorf("prefix %s is outside the lab ranges %s and %s", pf, LabNet4, LabNet6)
	}
	return pf.Masked(), nil
}

func number(s string, min, max int, what string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < min || n > max {
		return 0, fmt.Errorf("bad %s %q (want an integer %d..%d)", what, s, min, max)
	}
	return n, nil
}

// endpoint parses HOST:IFACE[@BRIDGE][=ADDRS] and declares the interface.
func (p *parser) endpoint(s string) (Endpoint, error) {
	var ep Endpoint
	left, addrs, hasAddr := strings.Cut(s, "=")
	h, in, err := p.hostIface(left)
	if err != nil {
		return ep, err
	}
	in, br, hasBr := strings.Cut(in, "@")
	ep.Host, ep.Iface = h.Name, in
	if hasAddr {
		if ep.Addrs, err = addrList(addrs); err != nil {
			return ep, err
		}
	}
	if h.Switch && !hasBr {
		br, hasBr = "br0", true
	}
	if hasBr {
		b := h.ifaces[br]
		if b == nil || b.Kind != "bridge" {
			return ep, fmt.Errorf("host %q has no bridge %q (declare it first with \"bridge %s:%s\")", h.Name, br, h.Name, br)
		}
		if len(ep.Addrs) > 0 {
			return ep, fmt.Errorf("%s:%s is a port of bridge %s: put addresses on the bridge, not the port", h.Name, in, br)
		}
		ep.Bridge = br
	}
	return ep, p.addIface(h, &Iface{Name: in, Addrs: ep.Addrs, Bridge: ep.Bridge, Kind: "veth"})
}

func (p *parser) link() error {
	usage := "link HOST:IFACE[@BRIDGE][=ADDR/LEN,...] HOST:IFACE[@BRIDGE][=ADDR/LEN,...] [mtu N]"
	if err := p.need(3, usage); err != nil {
		return err
	}
	l := &Link{Line: p.line}
	var err error
	if l.A, err = p.endpoint(p.f[1]); err != nil {
		return err
	}
	if l.B, err = p.endpoint(p.f[2]); err != nil {
		return err
	}
	rest := p.f[3:]
	for len(rest) > 0 {
		switch {
		case rest[0] == "mtu" && len(rest) >= 2:
			if l.MTU, err = number(rest[1], 68, 65535, "mtu"); err != nil {
				return err
			}
			rest = rest[2:]
		default:
			return fmt.Errorf("unexpected %q, usage: %s", rest[0], usage)
		}
	}
	p.t.Links = append(p.t.Links, l)
	return nil
}

func (p *parser) bridge() error {
	usage := "bridge HOST:BRIDGE [ADDR/LEN,...]"
	if err := p.need(2, usage); err != nil {
		return err
	}
	if len(p.f) > 3 {
		return fmt.Errorf("unexpected %q, usage: %s", p.f[3], usage)
	}
	h, name, err := p.hostIface(p.f[1])
	if err != nil {
		return err
	}
	b := &Bridge{Host: h.Name, Name: name, Line: p.line}
	if len(p.f) == 3 {
		if b.Addrs, err = addrList(p.f[2]); err != nil {
			return err
		}
	}
	if err := p.addIface(h, &Iface{Name: name, Addrs: b.Addrs, Kind: "bridge"}); err != nil {
		return err
	}
	p.t.Bridges = append(p.t.Bridges, b)
	return nil
}

func (p *parser) addr() error {
	usage := "addr HOST:IFACE ADDR/LEN[,ADDR/LEN...]"
	if err := p.need(3, usage); err != nil {
		return err
	}
	if len(p.f) > 3 {
		return fmt.Errorf("unexpected %q, usage: %s", p.f[3], usage)
	}
	h, in, err := p.hostIface(p.f[1])
	if err != nil {
		return err
	}
	ifc, err := p.ifaceRef(h, in)
	if err != nil {
		return err
	}
	a := &AddrStmt{Host: h.Name, Iface: in, Line: p.line}
	if a.Addrs, err = addrList(p.f[2]); err != nil {
		return err
	}
	ifc.Addrs = append(ifc.Addrs, a.Addrs...)
	p.t.AddrStmts = append(p.t.AddrStmts, a)
	return nil
}

func (p *parser) mtu() error {
	usage := "mtu HOST:IFACE N"
	if err := p.need(3, usage); err != nil {
		return err
	}
	if len(p.f) > 3 {
		return fmt.Errorf("unexpected %q, usage: %s", p.f[3], usage)
	}
	h, in, err := p.hostIface(p.f[1])
	if err != nil {
		return err
	}
	if _, err := p.ifaceRef(h, in); err != nil {
		return err
	}
	n, err := number(p.f[2], 68, 65535, "mtu")
	if err != nil {
		return err
	}
	p.t.MTUs = append(p.t.MTUs, &MTU{Host: h.Name, Iface: in, MTU: n, Line: p.line})
	return nil
}

func (p *parser) route() error {
	usage := "route HOST default|default6|PREFIX [via ADDR] [dev IFACE] [metric N] [src ADDR] [mtu N]"
	if err := p.need(3, usage); err != nil {
		return err
	}
	h, err := p.hostRef(p.f[1])
	if err != nil {
		return err
	}
	r := &Route{Host: h.Name, Line: p.line}
	switch d := p.f[2]; d {
	case "default":
		r.Default = true
	case "default6":
		r.Default, r.Family6 = true, true
	default:
		if r.Dest, err = labPrefix(d); err != nil {
			return err
		}
		r.Family6 = r.Dest.Addr().Is6()
	}
	rest := p.f[3:]
	for len(rest) > 0 {
		if len(rest) < 2 {
			return fmt.Errorf("%q needs a value, usage: %s", rest[0], usage)
		}
		k, v := rest[0], rest[1]
		rest = rest[2:]
		switch k {
		case "via":
			if r.Via, err = labAddr(v); err != nil {
				return err
			}
		case "dev":
			if _, err := p.ifaceRef(h, v); err != nil {
				return err
			}
			r.Dev = v
		case "metric":
			if r.Metric, err = number(v, 0, 1<<30, "metric"); err != nil {
				return err
			}
		case "src":
			if r.Src, err = labAddr(v); err != nil {
				return err
			}
		case "mtu":
			if r.MTU, err = number(v, 68, 65535, "mtu"); err != nil {
				return err
			}
		default:
			return fmt.Errorf("unexpected %q, usage: %s", k, usage)
		}
	}
	if !r.Via.IsValid() && r.Dev == "" {
		return fmt.Errorf("route needs via or dev, usage: %s", usage)
	}
	if r.Via.IsValid() {
		if r.Default && !r.Family6 && r.Via.Is6() {
			r.Family6 = true
		}
		if r.Via.Is6() != r.Family6 {
			return fmt.Errorf("gateway %s and destination are of different IP families", r.Via)
		}
	}
	p.t.Routes = append(p.t.Routes, r)
	return nil
}

func portRange(s string) (uint16, uint16, error) {
	lo, hi, ok := strings.Cut(s, "-")
	if !ok {
		hi = lo
	}
	a, err1 := strconv.Atoi(lo)
	b, err2 := strconv.Atoi(hi)
	if err1 != nil || err2 != nil || a < 1 || b > 65535 || a > b {
		return 0, 0, fmt.Errorf("bad port range %q (want MIN-MAX within 1-65535)", s)
	}
	return uint16(a), uint16(b), nil
}

func (p *parser) nat() error {
	usage := "nat HOST masquerade|snat ADDR oif IFACE [daddr [!=] PREFIX] [proto udp|tcp] [ports MIN-MAX] [random] [fully-random] [persistent]"
	if err := p.need(3, usage); err != nil {
		return err
	}
	h, err := p.hostRef(p.f[1])
	if err != nil {
		return err
	}
	n := &NAT{Host: h.Name, Line: p.line}
	rest := p.f[3:]
	switch p.f[2] {
	case "masquerade":
		n.Masquerade = true
	case "snat":
		if len(rest) == 0 {
			return fmt.Errorf("snat needs an address, usage: %s", usage)
		}
		if n.To, err = labAddr(rest[0]); err != nil {
			return err
		}
		rest = rest[1:]
	default:
		return fmt.Errorf("want masquerade or snat, got %q", p.f[2])
	}
	for len(rest) > 0 {
		k := rest[0]
		rest = rest[1:]
		switch k {
		case "random", "fully-random", "persistent":
			n.Flags = append(n.Flags, k)
			continue
		}
		if len(rest) == 0 {
			return fmt.Errorf("%q needs a value, usage: %s", k, usage)
		}
		v := rest[0]
		rest = rest[1:]
		switch k {
		case "oif":
			if _, err := p.ifaceRef(h, v); err != nil {
				return err
			}
			n.Oif = v
		case "daddr":
			if v == "!=" {
				if len(rest) == 0 {
					return fmt.Errorf("daddr != needs a prefix")
				}
				n.DaddrNot, v, rest = true, rest[0], rest[1:]
			}
			if n.Daddr, err = labPrefix(v); err != nil {
				return err
			}
		case "proto":
			if v != "udp" && v != "tcp" {
				return fmt.Errorf("nat proto must be udp or tcp, got %q", v)
			}
			n.Proto = v
		case "ports":
			if n.PortMin, n.PortMax, err = portRange(v); err != nil {
				return err
			}
		default:
			return fmt.Errorf("unexpected %q, usage: %s", k, usage)
		}
	}
	if n.Oif == "" {
		return fmt.Errorf("nat needs oif IFACE, usage: %s", usage)
	}
	if n.Daddr.IsValid() && !n.Masquerade && n.Daddr.Addr().Is4() != n.To.Is4() {
		return fmt.Errorf("daddr %s and snat address %s are of different IP families", n.Daddr, n.To)
	}
	p.t.NATs = append(p.t.NATs, n)
	return nil
}

var lossHooks = map[string]bool{"forward": true, "input": true, "output": true, "ingress": true, "egress": true}

func (p *parser) loss() error {
	usage := "loss HOST forward|input|output|ingress|egress [iif IFACE] [oif IFACE] [udp|tcp|icmp|icmpv6] [sport N] [dport N] [saddr PREFIX] [daddr PREFIX] N%"
	if err := p.need(4, usage); err != nil {
		return err
	}
	h, err := p.hostRef(p.f[1])
	if err != nil {
		return err
	}
	l := &Loss{Host: h.Name, Hook: p.f[2], Line: p.line, Percent: -1}
	if !lossHooks[l.Hook] {
		return fmt.Errorf("bad loss hook %q (want forward, input, output, ingress or egress)", l.Hook)
	}
	last := p.f[len(p.f)-1]
	if !strings.HasSuffix(last, "%") {
		return fmt.Errorf("loss must end with a percentage like 30%%, got %q", last)
	}
	if l.Percent, err = number(strings.TrimSuffix(last, "%"), 0, 100, "loss percent"); err != nil {
		return err
	}
	rest := p.f[3 : len(p.f)-1]
	for len(rest) > 0 {
		k := rest[0]
		rest = rest[1:]
		switch k {
		case "udp", "tcp", "icmp", "icmpv6":
			l.Proto = k
			continue
		}
		if len(rest) == 0 {
			return fmt.Errorf("%q needs a value, usage: %s", k, usage)
		}
		v := rest[0]
		rest = rest[1:]
		switch k {
		case "iif", "oif":
			if _, err := p.ifaceRef(h, v); err != nil {
				return err
			}
			if k == "iif" {
				l.Iif = v
			} else {
				l.Oif = v
			}
		case "proto":
			switch v {
			case "udp", "tcp", "icmp", "icmpv6":
				l.Proto = v
			default:
				return fmt.Errorf("bad proto %q (want udp, tcp, icmp or icmpv6)", v)
			}
		case "sport", "dport":
			n, err := number(v, 1, 65535, k)
			if err != nil {
				return err
			}
			if k == "sport" {
				l.Sport = uint16(n)
			} else {
				l.Dport = uint16(n)
			}
		case "saddr":
			if l.Saddr, err = labPrefix(v); err != nil {
				return err
			}
		case "daddr":
			if l.Daddr, err = labPrefix(v); err != nil {
				return err
			}
		default:
			return fmt.Errorf("unexpected %q, usage: %s", k, usage)
		}
	}
	if (l.Sport != 0 || l.Dport != 0) && l.Proto != "udp" && l.Proto != "tcp" {
		return fmt.Errorf("sport/dport need udp or tcp before them")
	}
	if l.Saddr.IsValid() && l.Daddr.IsValid() && l.Saddr.Addr().Is4() != l.Daddr.Addr().Is4() {
		return fmt.Errorf("saddr and daddr are of different IP families")
	}
	switch l.Hook {
	case "ingress":
		if l.Iif == "" || l.Oif != "" {
			return fmt.Errorf("loss on ingress needs iif IFACE (and no oif)")
		}
	case "egress":
		if l.Oif == "" || l.Iif != "" {
			return fmt.Errorf("loss on egress needs oif IFACE (and no iif)")
		}
	case "input":
		if l.Oif != "" {
			return fmt.Errorf("loss on input cannot match oif")
		}
	case "output":
		if l.Iif != "" {
			return fmt.Errorf("loss on output cannot match iif")
		}
	}
	p.t.Losses = append(p.t.Losses, l)
	return nil
}

func (p *parser) vxlan() error {
	usage := "vxlan HOST:IFACE vni N local ADDR remote ADDR [dstport N] [dev IFACE] [addr ADDR/LEN,...] [mtu N] [neigh static|dynamic]"
	if err := p.need(2, usage); err != nil {
		return err
	}
	h, in, err := p.hostIface(p.f[1])
	if err != nil {
		return err
	}
	v := &VXLAN{Host: h.Name, Iface: in, DstPort: 4789, Line: p.line}
	hasVNI := false
	rest := p.f[2:]
	for len(rest) > 0 {
		if len(rest) < 2 {
			return fmt.Errorf("%q needs a value, usage: %s", rest[0], usage)
		}
		k, val := rest[0], rest[1]
		rest = rest[2:]
		switch k {
		case "vni":
			n, err := number(val, 0, 1<<24-1, "vni")
			if err != nil {
				return err
			}
			v.VNI, hasVNI = uint32(n), true
		case "local":
			if v.Local, err = labAddr(val); err != nil {
				return err
			}
		case "remote":
			if v.Remote, err = labAddr(val); err != nil {
				return err
			}
		case "dstport":
			n, err := number(val, 1, 65535, "dstport")
			if err != nil {
				return err
			}
			v.DstPort = uint16(n)
		case "dev":
			if _, err := p.ifaceRef(h, val); err != nil {
				return err
			}
			v.Dev = val
		case "addr":
			if v.Addrs, err = addrList(val); err != nil {
				return err
			}
		case "mtu":
			if v.MTU, err = number(val, 68, 65535, "mtu"); err != nil {
				return err
			}
		case "neigh":
			switch val {
			case "static":
				v.StaticNeigh = true
			case "dynamic":
				v.StaticNeigh = false
			default:
				return fmt.Errorf("neigh %q: want static or dynamic", val)
			}
		default:
			return fmt.Errorf("unexpected %q, usage: %s", k, usage)
		}
	}
	if !hasVNI || !v.Local.IsValid() || !v.Remote.IsValid() {
		return fmt.Errorf("vxlan needs vni, local and remote, usage: %s", usage)
	}
	if v.Local.Is4() != v.Remote.Is4() {
		return fmt.Errorf("vxlan local %s and remote %s are of different IP families", v.Local, v.Remote)
	}
	if err := p.addIface(h, &Iface{Name: in, Addrs: v.Addrs, Kind: "vxlan"}); err != nil {
		return err
	}
	p.t.VXLANs = append(p.t.VXLANs, v)
	return nil
}

var sysctlKeyRe = regexp.MustCompile(`^[a-z0-9_]+(\.[A-Za-z0-9_-]+)+$`)

func (p *parser) sysctl() error {
	usage := "sysctl HOST key=value"
	if err := p.need(3, usage); err != nil {
		return err
	}
	if len(p.f) > 3 {
		return fmt.Errorf("unexpected %q, usage: %s", p.f[3], usage)
	}
	h, err := p.hostRef(p.f[1])
	if err != nil {
		return err
	}
	k, v, ok := strings.Cut(p.f[2], "=")
	if !ok || !sysctlKeyRe.MatchString(k) || v == "" {
		return fmt.Errorf("want key=value like net.ipv4.conf.all.rp_filter=0, got %q", p.f[2])
	}
	if !strings.HasPrefix(k, "net.") {
		return fmt.Errorf("only net.* sysctls are per namespace, got %q", k)
	}
	p.t.Sysctls = append(p.t.Sysctls, &Sysctl{Host: h.Name, Key: k, Value: v, Line: p.line})
	return nil
}

func (p *parser) exec() error {
	if err := p.need(3, "exec HOST command..."); err != nil {
		return err
	}
	h, err := p.hostRef(p.f[1])
	if err != nil {
		return err
	}
	p.t.Execs = append(p.t.Execs, &Exec{Host: h.Name, Command: strings.Join(p.f[2:], " "), Line: p.line})
	return nil
}
