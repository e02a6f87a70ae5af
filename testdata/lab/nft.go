package lab

import (
	"fmt"
	"net/netip"
	"strings"
)

// NFTTable is the name of the tables the lab creates (inet and bridge
// families; netdev tables are named NFTTable + "_" + device).
const NFTTable = "vdlab"

// Ruleset returns the nftables ruleset (nft -f syntax) the lab loads into
// host's namespace, or "" when the host has no NAT or loss rule.
func (t *Topology) Ruleset(host string) string {
	h := t.hostByName[host]
	if h == nil {
		return ""
	}
	var inet = map[string][]string{} // chain -> rules
	var bridge []string
	netdev := map[string]map[string][]string{} // device -> hook -> rules
	var devOrder []string
	for _, n := range t.NATs {
		if n.Host == host {
			inet["postrouting"] = append(inet["postrouting"], natRules(n)...)
		}
	}
	for _, l := range t.Losses {
		if l.Host != host {
			continue
		}
		r := lossRule(l)
		switch {
		case l.Hook == "ingress" || l.Hook == "egress":
			dev := l.Iif
			if l.Hook == "egress" {
				dev = l.Oif
			}
			if netdev[dev] == nil {
				netdev[dev] = map[string][]string{}
				devOrder = append(devOrder, dev)
			}
			netdev[dev][l.Hook] = append(netdev[dev][l.Hook], r)
		case l.Hook == "forward" && h.Switch:
			bridge = append(bridge, r)
		default:
			inet[l.Hook] = append(inet[l.Hook], r)
		}
	}
	var b strings.Builder
	if len(inet) > 0 {
		fmt.Fprintf(&b, "table inet %s {\n", NFTTable)
		for _, c := range []string{"postrouting", "forward", "input", "output"} {
			if len(inet[c]) == 0 {
				continue
			}
			typ, prio := "filter", "filter"
			if c == "postrouting" {
				typ, prio = "nat", "srcnat"
			}
			chain(&b, c, fmt.Sprintf("type %s hook %s priority %s; policy accept;", typ, c, prio), inet[c])
		}
		b.WriteString("}\n")
	}
	if len(bridge) > 0 {
		fmt.Fprintf(&b, "table bridge %s {\n", NFTTable)
		chain(&b, "forward", "type filter hook forward priority filter; policy accept;", bridge)
		b.WriteString("}\n")
	}
	for _, dev := range devOrder {
		fmt.Fprintf(&b, "table netdev %s_%s {\n", NFTTable, strings.NewReplacer(".", "_", "-", "_").Replace(dev))
		for _, hook := range []string{"ingress", "egress"} {
			if rs := netdev[dev][hook]; len(rs) > 0 {
				chain(&b, hook, fmt.Sprintf("type filter hook %s device %q priority filter; policy accept;", hook, dev), rs)
			}
		}
		b.WriteString("}\n")
	}
	return b.String()
}

func chain(b *strings.Builder, name, head string, rules []string) {
	fmt.Fprintf(b, "\tchain %s {\n\t\t%s\n", name, head)
	for _, r := range rules {
		fmt.Fprintf(b, "\t\t%s\n", r)
	}
	b.WriteString("\t}\n")
}

func family(a netip.Addr) string {
	if a.Is4() {
		return "ip"
	}
	return "ip6"
}

// natRules renders one nat statement; a port range needs a transport match,
// so it becomes a tcp/udp rule with the range plus a rule without it for the
// other protocols (ICMP) unless a proto was given.
func natRules(n *NAT) []string {
	match := fmt.Sprintf("oifname %q", n.Oif)
	if n.Daddr.IsValid() {
		op := ""
		if n.DaddrNot {
			op = "!= "
		}
		match += fmt.Sprintf(" %s daddr %s%s", family(n.Daddr.Addr()), op, n.Daddr)
	}
	flags := ""
	if len(n.Flags) > 0 {
		flags = " " + strings.Join(n.Flags, ",")
	}
	target := func(ports bool) string {
		pr := ""
		if ports && n.PortMin != 0 {
			pr = fmt.Sprintf(":%d-%d", n.PortMin, n.PortMax)
		}
		if n.Masquerade {
			if pr != "" {
				return "masquerade to " + pr + flags
			}
			return "masquerade" + flags
		}
		addr := n.To.String()
		if n.To.Is6() && pr != "" {
			addr = "[" + addr + "]"
		}
		return fmt.Sprintf("snat %s to %s%s%s", family(n.To), addr, pr, flags)
	}
	switch {
	case n.Proto != "":
		return []string{fmt.Sprintf("%s meta l4proto %s %s", match, n.Proto, target(true))}
	case n.PortMin != 0:
		return []string{
			fmt.Sprintf("%s meta l4proto { tcp, udp } %s", match, target(true)),
			fmt.Sprintf("%s meta l4proto != { tcp, udp } %s", match, target(false)),
		}
	default:
		return []string{fmt.Sprintf("%s %s", match, target(false))}
	}
}

func lossRule(l *Loss) string {
	var m []string
	if l.Iif != "" && l.Hook != "ingress" {
		m = append(m, fmt.Sprintf("iifname %q", l.Iif))
	}
	if l.Oif != "" && l.Hook != "egress" {
		m = append(m, fmt.Sprintf("oifname %q", l.Oif))
	}
	if l.Saddr.IsValid() {
		m = append(m, fmt.Sprintf("%s saddr %s", family(l.Saddr.Addr()), l.Saddr))
	}
	if l.Daddr.IsValid() {
		m = append(m, fmt.Sprintf("%s daddr %s", family(l.Daddr.Addr()), l.Daddr))
	}
	switch {
	case l.Sport != 0 || l.Dport != 0:
		if l.Sport != 0 {
			m = append(m, fmt.Sprintf("%s sport %d", l.Proto, l.Sport))
		}
		if l.Dport != 0 {
			m = append(m, fmt.Sprintf("%s dport %d", l.Proto, l.Dport))
		}
	case l.Proto == "icmpv6":
		m = append(m, "meta l4proto ipv6-icmp")
	case l.Proto != "":
		m = append(m, "meta l4proto "+l.Proto)
	}
	switch l.Percent {
	case 0: // count the matches, drop nothing
		m = append(m, fmt.Sprintf("counter comment \"line %d\"", l.Line))
	case 100: // nft refuses "< 100" for mod 100: drop everything
		m = append(m, fmt.Sprintf("counter drop comment \"line %d\"", l.Line))
	default:
		m = append(m, fmt.Sprintf("numgen random mod 100 < %d counter drop comment \"line %d\"", l.Percent, l.Line))
	}
	return strings.Join(m, " ")
}
