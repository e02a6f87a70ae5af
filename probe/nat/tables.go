package nat

import (
	"fmt"

	"github.com/vpndiag/vpndiag/report"
)

// maxPoolRows bounds the pool table.
const maxPoolRows = 20

// Tables renders a snapshot, its analysis and (when not nil) the change since
// the previous snapshot as report tables.
func Tables(s *Snapshot, a *Analysis, d *Delta) []report.Table {
	var ts []report.Table
	pools := report.Table{Name: "nat-pools", Title: "NAT port pools (per NAT address, protocol and destination)",
		Columns: []string{"nat address", "proto", "destination", "ports in use", "port min", "port max", "range", "range size", "use %", "clients", "unreplied", "range from", "exhausted in"}}
	for i, p := range a.Pools {
		if i == maxPoolRows {
			pools.Note = fmt.Sprintf("%d more pools not shown", len(a.Pools)-maxPoolRows)
			break
		}
		tte := ""
		if t, ok := d.TimeToExhaustion(p); ok {
			tte = t.Round(1e9).String()
		}
		pools.Rows = append(pools.Rows, []any{p.NAT.String(), ProtoName(p.Proto), p.Dst.String(), p.InUse, p.PortMin, p.PortMax,
			fmt.Sprintf("%d-%d", p.RangeMin, p.RangeMax), p.RangeSize(), round3(100 * p.Utilization()), p.Clients, p.Unreplied, p.RangeFrom, tte})
	}
	ts = append(ts, pools)
	addrs := report.Table{Name: "nat-addresses", Title: "NAT addresses",
		Columns: []string{"nat address", "proto", "mappings", "distinct ports", "port min", "port max", "destinations"}}
	for _, u := range a.Addresses {
		addrs.Rows = append(addrs.Rows, []any{u.NAT.String(), ProtoName(u.Proto), u.Mappings, u.DistinctPorts, u.PortMin, u.PortMax, u.Destinations})
	}
	ts = append(ts, addrs)
	for _, c := range []struct {
		name, title string
		counts      []Count
	}{{"nat-top-destinations", "Top destinations by mappings", a.TopDestinations}, {"nat-top-clients", "Top inside clients by mappings", a.TopClients}} {
		t := report.Table{Name: c.name, Title: c.title, Columns: []string{"key", "mappings"}}
		for _, e := range c.counts {
			t.Rows = append(t.Rows, []any{e.Key, e.Mappings})
		}
		ts = append(ts, t)
	}
	rules := report.Table{Name: "nat-rules", Title: "Source-NAT rules",
		Columns: []string{"source", "where", "kind", "addresses", "ports", "range size", "flags", "rule"}}
	for _, r := range s.Rules {
		addr := "interface address"
		if r.AddrMin.IsValid() {
			addr = r.AddrMin.String()
			if r.AddrMax != r.AddrMin {
				addr += "-" + r.AddrMax.String()
			}
		}
		rules.Rows = append(rules.Rows, []any{r.Source, r.Where, r.Kind, addr, r.RangeString(), r.RangeSize(), r.Flags(), r.Text})
	}
	ts = append(ts, rules)
	ct := report.Table{Name: "conntrack-stats", Title: "Conntrack statistics per CPU",
		Columns: []string{"cpu", "insert", "insert_failed", "drop", "early_drop", "invalid", "error", "search_restart"}}
	for _, c := range append(s.Conntrack.PerCPU, s.Conntrack.Total) {
		cpu := any(c.CPU)
		if c.CPU < 0 {
			cpu = "total"
		}
		ct.Rows = append(ct.Rows, []any{cpu, c.Insert, c.InsertFailed, c.Drop, c.EarlyDrop, c.Invalid, c.Error, c.SearchRestart})
	}
	if d != nil {
		ct.Rows = append(ct.Rows, []any{fmt.Sprintf("per second (over %s)", d.Interval.Round(1e6)),
			round3(d.PerSecond(float64(d.Stats.Insert))), round3(d.PerSecond(float64(d.Stats.InsertFailed))),
			round3(d.PerSecond(float64(d.Stats.Drop))), round3(d.PerSecond(float64(d.Stats.EarlyDrop))),
			round3(d.PerSecond(float64(d.Stats.Invalid))), round3(d.PerSecond(float64(d.Stats.Error))),
			round3(d.PerSecond(float64(d.Stats.SearchRestart)))})
	}
	ct.Note = fmt.Sprintf("%d of %d entries in use", s.Conntrack.Entries, s.Conntrack.Max)
	ts = append(ts, ct)
	sc := s.Sysctls
	sys := report.Table{Name: "nat-sysctls", Title: "Sysctls", Columns: []string{"sysctl", "value"}, Rows: [][]any{
		{"net.ipv4.ip_local_port_range", fmt.Sprintf("%d %d", sc.LocalPortMin, sc.LocalPortMax)},
		{"net.netfilter.nf_conntrack_max", sc.ConntrackMax},
		{"net.netfilter.nf_conntrack_count", sc.ConntrackCount},
		{"net.netfilter.nf_conntrack_buckets", sc.ConntrackBuckets},
		{"net.netfilter.nf_conntrack_udp_timeout", sc.UDPTimeout},
		{"net.netfilter.nf_conntrack_udp_timeout_stream", sc.UDPTimeoutStream},
		{"net.netfilter.nf_conntrack_tcp_timeout_established", sc.TCPTimeoutEst},
		{"net.netfilter.nf_conntrack_tcp_timeout_time_wait", sc.TCPTimeoutTimeWait},
	}}
	ts = append(ts, sys)
	return ts
}

// Data is the structured live result stored under report data "natcheck".
func Data(s *Snapshot, a *Analysis, d *Delta) map[string]any {
	m := map[string]any{
		"time":          s.Time.UTC(),
		"conntrack":     s.Conntrack,
		"sysctls":       s.Sysctls,
		"snat_mappings": a.SNATMappings,
		"pools":         len(a.Pools),
		"warnings":      s.Warnings,
	}
	if d != nil {
		m["interval_seconds"] = d.Interval.Seconds()
		m["increase"] = d.Stats
	}
	return m
}
