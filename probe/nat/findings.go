package nat

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/vpndiag/vpndiag/report"
)

// Finding ids.
const (
	IDPortExhaustion = "nat.port-exhaustion"
	IDConntrackFull  = "nat.conntrack-full"
	IDRangeSmall     = "nat.range-small"
)

// Thresholds tune when findings are raised. The zero value means the defaults.
type Thresholds struct {
	// Near is the utilization (of a port range or of nf_conntrack_max) from
	// which a warning is raised; default 0.9.
	Near float64
	// RangeSmall is the utilization of a configured (explicit) port range
	// from which nat.range-small is raised; default 0.5.
	RangeSmall float64
}

func (t Thresholds) near() float64 {
	if t.Near <= 0 {
		return 0.9
	}
	return t.Near
}

func (t Thresholds) rangeSmall() float64 {
	if t.RangeSmall <= 0 {
		return 0.5
	}
	return t.RangeSmall
}

// Findings turns a snapshot and its analysis — with d, the change since the
// previous snapshot, when there is one — into findings.
func Findings(s *Snapshot, a *Analysis, d *Delta, th Thresholds) []report.Finding {
	var out []report.Finding
	out = append(out, exhaustion(s, a, d, th)...)
	if f, ok := conntrackFull(s, d, th); ok {
		out = append(out, f)
	}
	return out
}

// droppedFlows is the number of new connections the kernel refused since
// the conntrack table was created (insert_failed), and a phrase with the
// increase over the interval when there is one.
func droppedFlows(s *Snapshot, d *Delta) (uint64, string) {
	since := "since the conntrack table was created"
	if d != nil {
		since += fmt.Sprintf(", %d in the last %s", d.Stats.InsertFailed, d.Interval.Round(1e6))
	}
	return s.Conntrack.Total.InsertFailed, since
}

func exhaustion(s *Snapshot, a *Analysis, d *Delta, th Thresholds) []report.Finding {
	type group struct {
		nat       netip.Addr
		proto     uint8
		worst     Pool
		atCeiling int
		near      int
	}
	var groups []*group
	byKey := map[[2]any]*group{}
	var smallDone = map[int]bool{}
	var out []report.Finding
	dropped, since := droppedFlows(s, d)
	rising := d != nil && (d.Stats.InsertFailed > 0 || d.Stats.Drop > 0)
	for _, p := range a.Pools { // busiest first
		u := p.Utilization()
		ceiling := p.InUse >= p.RangeSize()
		near := u >= th.near()
		if !ceiling && !near {
			if p.Rule >= 0 && s.Rules[p.Rule].HasPorts() && u >= th.rangeSmall() && !smallDone[p.Rule] {
				smallDone[p.Rule] = true
				out = append(out, rangeSmall(s, p))
			}
			continue
		}
		k := [2]any{p.NAT, p.Proto}
		g := byKey[k]
		if g == nil {
			g = &group{nat: p.NAT, proto: p.Proto, worst: p}
			byKey[k] = g
			groups = append(groups, g)
		}
		if ceiling {
			g.atCeiling++
		} else {
			g.near++
		}
		if p.Rule >= 0 {
			smallDone[p.Rule] = true
		}
	}
	for _, g := range groups {
		p := g.worst
		sev := report.SeverityWarning
		state := "near"
		if g.atCeiling > 0 || (rising && p.Utilization() >= th.near()) {
			sev = report.SeverityError
			state = "at"
		}
		proto := ProtoName(p.Proto)
		summary := fmt.Sprintf("%d of %d %s ports (range %d-%d) on NAT address %s are mapped towards %s: the pool is %s its ceiling",
			p.InUse, p.RangeSize(), proto, p.RangeMin, p.RangeMax, p.NAT, p.Dst, state)
		if dropped > 0 {
			summary += fmt.Sprintf("; %d new connections failed to get a mapping (conntrack insert_failed) %s", dropped, since)
		}
		ev := map[string]any{
			"nat_address":       p.NAT.String(),
			"protocol":          proto,
			"destination":       p.Dst.String(),
			"port_min":          p.PortMin,
			"port_max":          p.PortMax,
			"distinct_ports":    p.InUse,
			"peak_mappings":     p.InUse,
			"dropped_flows":     dropped,
			"range_min":         p.RangeMin,
			"range_max":         p.RangeMax,
			"range_size":        p.RangeSize(),
			"range_from":        p.RangeFrom,
			"utilization":       round3(p.Utilization()),
			"pools_at_ceiling":  g.atCeiling,
			"pools_near":        g.near,
			"clients":           p.Clients,
			"insert_failed":     s.Conntrack.Total.InsertFailed,
			"drop":              s.Conntrack.Total.Drop,
			"conntrack_entries": s.Conntrack.Entries,
		}
		if d != nil {
			ev["interval_seconds"] = d.Interval.Seconds()
			ev["insert_failed_per_second"] = round3(d.PerSecond(float64(d.Stats.InsertFailed)))
			ev["dropped_flows_in_interval"] = d.Stats.InsertFailed
			if t, ok := d.TimeToExhaustion(p); ok {
				ev["seconds_to_exhaustion"] = round3(t.Seconds())
			}
		}
		out = append(out, report.Finding{
			ID: IDPortExhaustion, Severity: sev,
			Title:    "NAT port pool exhausted",
			Summary:  summary,
			Where:    &report.Where{Class: fmt.Sprintf("%s from %s to %s", proto, p.NAT, p.Dst)},
			Evidence: ev,
			Remedy:   Remedy(ruleOf(s, p), p, s.Sysctls),
		})
		if sev == report.SeverityWarning {
			out[len(out)-1].Title = "NAT port pool nearly exhausted"
		}
	}
	return out
}

func ruleOf(s *Snapshot, p Pool) *Rule {
	if p.Rule >= 0 && p.Rule < len(s.Rules) {
		return &s.Rules[p.Rule]
	}
	return nil
}

func rangeSmall(s *Snapshot, p Pool) report.Finding {
	r := s.Rules[p.Rule]
	return report.Finding{
		ID: IDRangeSmall, Severity: report.SeverityWarning,
		Title: "NAT port range small for the traffic",
		Summary: fmt.Sprintf("%s rule %s limits source NAT to %d ports (%d-%d) and %d of them are already mapped towards %s (%.0f%%)",
			r.Source, r.Where, r.RangeSize(), r.PortMin, r.PortMax, p.InUse, p.Dst, 100*p.Utilization()),
		Where: &report.Where{Class: fmt.Sprintf("%s from %s to %s", ProtoName(p.Proto), p.NAT, p.Dst)},
		Evidence: map[string]any{
			"nat_address": p.NAT.String(), "protocol": ProtoName(p.Proto), "destination": p.Dst.String(),
			"port_min": p.PortMin, "port_max": p.PortMax, "distinct_ports": p.InUse, "peak_mappings": p.InUse,
			"dropped_flows": uint64(0), "range_min": r.PortMin, "range_max": r.PortMax, "range_size": r.RangeSize(),
			"rule": r.Text, "utilization": round3(p.Utilization()),
		},
		Remedy: Remedy(&r, p, s.Sysctls),
	}
}

func conntrackFull(s *Snapshot, d *Delta, th Thresholds) (report.Finding, bool) {
	c := s.Conntrack
	if c.Max == 0 {
		return report.Finding{}, false
	}
	u := float64(c.Entries) / float64(c.Max)
	earlyRising := d != nil && (d.Stats.EarlyDrop > 0)
	var sev report.Severity
	switch {
	case c.Entries >= c.Max || earlyRising:
		sev = report.SeverityError
	case u >= th.near():
		sev = report.SeverityWarning
	default:
		return report.Finding{}, false
	}
	ev := map[string]any{
		"entries": c.Entries, "max": c.Max, "utilization": round3(u),
		"early_drop": c.Total.EarlyDrop, "drop": c.Total.Drop, "insert_failed": c.Total.InsertFailed,
		"dropped_flows": c.Total.Drop,
	}
	if d != nil {
		ev["early_drop_per_second"] = round3(d.PerSecond(float64(d.Stats.EarlyDrop)))
		ev["drop_per_second"] = round3(d.PerSecond(float64(d.Stats.Drop)))
		ev["dropped_flows"] = d.Stats.Drop
	}
	next := c.Max * 4
	if next < 262144 {
		next = 262144
	}
	return report.Finding{
		ID: IDConntrackFull, Severity: sev,
		Title: "conntrack table full",
		Summary: fmt.Sprintf("the conntrack table holds %d of %d entries (%.0f%%); %d early drops, %d drops",
			c.Entries, c.Max, 100*u, c.Total.EarlyDrop, c.Total.Drop),
		Evidence: ev,
		Remedy: fmt.Sprintf("Raise the limit: `sysctl -w net.netfilter.nf_conntrack_max=%d` (persist it in /etc/sysctl.d/), and the hash size with it "+
			"(`echo %d > /sys/module/nf_conntrack/parameters/hashsize`); shorten idle entries: "+
			"`sysctl -w net.netfilter.nf_conntrack_udp_timeout=10 net.netfilter.nf_conntrack_tcp_timeout_time_wait=30`; "+
			"exempt traffic that needs no state with `notrack` (nft) or `-j CT --notrack` in the raw table (iptables).",
			next, next/4),
	}, true
}

// Remedy says concretely how to get more NAT ports for pool p, for the rule
// that produced it (nil when the kernel default range applies).
func Remedy(r *Rule, p Pool, sc Sysctls) string {
	var b strings.Builder
	proto := ProtoName(p.Proto)
	switch {
	case r != nil && r.Source == "nftables":
		stmt := "masquerade to :1024-65535 fully-random"
		if r.Kind == "snat" {
			stmt = fmt.Sprintf("snat ip to %s-<more addresses>:1024-65535 fully-random", addrOr(r.AddrMin, p.NAT))
		}
		fmt.Fprintf(&b, "Widen the port range of nftables rule %s (`%s`) to `%s`: each NAT address then offers 64512 %s ports per destination instead of %d. ",
			r.Where, r.Text, stmt, proto, r.RangeSize())
	case r != nil:
		stmt := "-j MASQUERADE --to-ports 1024-65535 --random-fully"
		if r.Kind == "snat" {
			stmt = fmt.Sprintf("-j SNAT --to-source %s-<more addresses>:1024-65535 --random-fully", addrOr(r.AddrMin, p.NAT))
		}
		fmt.Fprintf(&b, "Widen the port range of %s rule %s (`%s`) to `%s`: each NAT address then offers 64512 %s ports per destination instead of %d. ",
			r.Source, r.Where, r.Text, stmt, proto, r.RangeSize())
	default:
		fmt.Fprintf(&b, "The kernel's default range (%d-%d) is in use: ", p.RangeMin, p.RangeMax)
	}
	fmt.Fprintf(&b, "Add NAT addresses (`snat ip to A-B` in nftables, `--to-source A-B` in iptables): every address adds a full range towards %s. ", p.Dst)
	udp := "`sysctl -w net.netfilter.nf_conntrack_udp_timeout=10`"
	if sc.UDPTimeout > 0 {
		udp = fmt.Sprintf("%s (now %d s)", udp, sc.UDPTimeout)
	}
	if p.Proto == 17 {
		fmt.Fprintf(&b, "Free UDP mappings sooner: %s and `net.netfilter.nf_conntrack_udp_timeout_stream`. ", udp)
	} else {
		b.WriteString("Free TCP mappings sooner: `sysctl -w net.netfilter.nf_conntrack_tcp_timeout_time_wait=30`. ")
	}
	b.WriteString("Or spread traffic over more destinations (e.g. several DNS resolvers), since each destination has its own pool.")
	return b.String()
}

func addrOr(a, b netip.Addr) string {
	if a.IsValid() {
		return a.String()
	}
	return b.String()
}

func round3(f float64) float64 {
	return float64(int64(f*1000+0.5)) / 1000
}
