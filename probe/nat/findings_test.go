package nat

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vpndiag/vpndiag/report"
)

// synth builds a snapshot with n UDP mappings to dst from NAT ports starting
// at port0, plus the given rules.
func synth(n int, port0 uint16, dst string, rules ...Rule) *Snapshot {
	s := &Snapshot{Time: time.Unix(1000, 0), Rules: rules, Conntrack: Conntrack{Entries: uint64(n), Max: 262144}}
	for i := 0; i < n; i++ {
		s.Mappings = append(s.Mappings, Mapping{
			Proto:  17,
			Inside: netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 10, byte(2 + i%3)}), uint16(30000+i)),
			Dst:    netip.MustParseAddrPort(dst),
			NAT:    netip.AddrPortFrom(netip.MustParseAddr("198.18.66.1"), port0+uint16(i)),
		})
	}
	return s
}

var rule1976 = Rule{Source: "nftables", Where: "inet t/post handle 3", Kind: "masquerade", Text: "masquerade to :20000-21975",
	Protocols: []string{"tcp", "udp"}, PortMin: 20000, PortMax: 21975}

func ids(fs []report.Finding) string {
	var s []string
	for _, f := range fs {
		s = append(s, f.ID+"/"+f.Severity.String())
	}
	return strings.Join(s, ",")
}

func TestFindings(t *testing.T) {
	cases := []struct {
		name  string
		snap  *Snapshot
		want  string
		inUse int
	}{
		{"ceiling", synth(1976, 20000, "198.18.66.53:53", rule1976), "nat.port-exhaustion/error", 1976},
		{"near", synth(1800, 20000, "198.18.66.53:53", rule1976), "nat.port-exhaustion/warning", 1800},
		{"range-small", synth(1000, 20000, "198.18.66.53:53", rule1976), "nat.range-small/warning", 1000},
		{"fine", synth(500, 20000, "198.18.66.53:53", rule1976), "", 500},
		{"default-range", synth(5000, 30000, "198.18.66.53:53"), "", 5000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := Analyze(tc.snap, 3)
			fs := Findings(tc.snap, a, nil, Thresholds{})
			if got := ids(fs); got != tc.want {
				t.Fatalf("findings %q, want %q", got, tc.want)
			}
			if a.Pools[0].InUse != tc.inUse {
				t.Errorf("in use %d, want %d", a.Pools[0].InUse, tc.inUse)
			}
			if a.TopClients[0].Mappings != (tc.inUse+2)/3 || len(a.TopClients) != 3 {
				t.Errorf("top clients %v", a.TopClients)
			}
			for _, f := range fs {
				for _, k := range []string{"nat_address", "protocol", "port_min", "port_max", "distinct_ports", "peak_mappings", "dropped_flows"} {
					if _, ok := f.Evidence[k]; !ok {
						t.Errorf("%s evidence lacks %s", f.ID, k)
					}
				}
				if !strings.Contains(f.Remedy, "masquerade to :1024-65535 fully-random") || !strings.Contains(f.Remedy, "nf_conntrack_udp_timeout") {
					t.Errorf("remedy %q", f.Remedy)
				}
			}
		})
	}
}

func TestPoolsPerDestination(t *testing.T) {
	// The same 1000 NAT ports towards two destinations are two pools, each
	// half full: Linux may reuse a port towards another destination.
	s := synth(1000, 20000, "198.18.66.53:53", rule1976)
	s.Mappings = append(s.Mappings, synth(1000, 20000, "198.18.66.54:53").Mappings...)
	a := Analyze(s, 10)
	if len(a.Pools) != 2 || a.Pools[0].InUse != 1000 || a.Pools[1].InUse != 1000 {
		t.Fatalf("pools %+v", a.Pools)
	}
	if len(a.Addresses) != 1 || a.Addresses[0].DistinctPorts != 1000 || a.Addresses[0].Mappings != 2000 || a.Addresses[0].Destinations != 2 {
		t.Errorf("addresses %+v", a.Addresses)
	}
	if a.Pools[0].RangeFrom != "nftables inet t/post handle 3" {
		t.Errorf("range from %q", a.Pools[0].RangeFrom)
	}
}

func TestDeltaAndConntrackFull(t *testing.T) {
	prev := synth(1000, 20000, "198.18.66.53:53", rule1976)
	cur := synth(1500, 20000, "198.18.66.53:53", rule1976)
	cur.Time = prev.Time.Add(5 * time.Second)
	prev.Conntrack.Total = CPUStats{InsertFailed: 10, EarlyDrop: 1}
	cur.Conntrack.Total = CPUStats{InsertFailed: 60, EarlyDrop: 4, Drop: 3}
	cur.Conntrack.Entries, cur.Conntrack.Max = 1500, 1500
	pa, ca := Analyze(prev, 0), Analyze(cur, 0)
	d := Diff(prev, cur, pa, ca)
	if d.Stats.InsertFailed != 50 || d.Stats.EarlyDrop != 3 || d.Interval != 5*time.Second {
		t.Fatalf("delta %+v", d)
	}
	tte, ok := d.TimeToExhaustion(ca.Pools[0])
	// 476 free ports at 100 new mappings per second.
	if !ok || tte != 4760*time.Millisecond {
		t.Errorf("time to exhaustion %v %v, want 4.76s", tte, ok)
	}
	fs := Findings(cur, ca, d, Thresholds{})
	if got := ids(fs); got != "nat.range-small/warning,nat.conntrack-full/error" {
		t.Errorf("findings %s", got)
	}
	// Near the ceiling with insert_failed rising is an error.
	cur2 := synth(1800, 20000, "198.18.66.53:53", rule1976)
	cur2.Time = cur.Time.Add(time.Second)
	cur2.Conntrack.Total = CPUStats{InsertFailed: 70}
	c2 := Analyze(cur2, 0)
	d2 := Diff(cur, cur2, ca, c2)
	fs = Findings(cur2, c2, d2, Thresholds{})
	if got := ids(fs); got != "nat.port-exhaustion/error" {
		t.Errorf("findings %s", got)
	}
	if fs[0].Evidence["dropped_flows"] != uint64(70) || fs[0].Evidence["dropped_flows_in_interval"] != uint64(10) || fs[0].Evidence["seconds_to_exhaustion"] != 0.587 {
		t.Errorf("evidence %v", fs[0].Evidence)
	}
	_ = fmt.Sprint
}
