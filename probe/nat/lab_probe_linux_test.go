//go:build linux

package nat

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"
)

// conntrackOracle reads `conntrack -S` (summed) and `conntrack -C` in ns.
func conntrackOracle(t *testing.T, ns string) (map[string]uint64, uint64) {
	t.Helper()
	needTool(t, "conntrack", "conntrack")
	sum := map[string]uint64{}
	for _, line := range strings.Split(sh(t, "ip", "netns", "exec", ns, "conntrack", "-S"), "\n") {
		for _, f := range strings.Fields(line) {
			k, v, ok := strings.Cut(f, "=")
			if !ok {
				continue
			}
			n, err := strconv.ParseUint(v, 10, 64)
			if err == nil {
				sum[k] += n
			}
		}
	}
	count, err := strconv.ParseUint(strings.TrimSpace(sh(t, "ip", "netns", "exec", ns, "conntrack", "-C")), 10, 64)
	if err != nil {
		t.Fatalf("conntrack -C: %v", err)
	}
	return sum, count
}

func TestLiveLab(t *testing.T) {
	const flows = 5000
	cases := []struct {
		name             string
		rule             string
		wantInUse        int
		wantMin, wantMax uint16
		wantExhaustion   bool
		wantFrom         string
	}{
		{"range-1976", `oifname "g1" meta l4proto { tcp, udp } masquerade to :20000-21975`, 1976, 20000, 21975, true, "nftables inet vdnat/post handle 3"},
		{"iptables-1976", "iptables -t nat -A POSTROUTING -o g1 -p udp -j MASQUERADE --to-ports 20000-21975", 1976, 20000, 21975, true, "iptables-nft POSTROUTING #1"},
		{"wide", `oifname "g1" masquerade`, flows, DefaultPortMin, DefaultPortMax, false, "nftables inet vdnat/post handle 2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := newNATLab(t, tc.rule)
			l.start(l.server, "responder", fmt.Sprintf("VDNAT_LISTEN=%s:%d", labServer, labDstPort))
			time.Sleep(300 * time.Millisecond)
			ctx := context.Background()
			first, err := Collect(ctx, Options{NetNS: l.gw})
			if err != nil {
				t.Fatal(err)
			}
			l.flood(flows)
			time.Sleep(500 * time.Millisecond)
			snap, err := Collect(ctx, Options{NetNS: l.gw})
			if err != nil {
				t.Fatal(err)
			}
			oracle, count := conntrackOracle(t, l.gw)
			a := Analyze(snap, 5)
			d := Diff(first, snap, Analyze(first, 5), a)
			fs := Findings(snap, a, d, Thresholds{})
			t.Logf("entries %d (conntrack -C %d), insert_failed %d (conntrack -S %d), drop %d (%d), pools %d, warnings %v",
				snap.Conntrack.Entries, count, snap.Conntrack.Total.InsertFailed, oracle["insert_failed"],
				snap.Conntrack.Total.Drop, oracle["drop"], len(a.Pools), snap.Warnings)

			if snap.Conntrack.Entries != count {
				t.Errorf("entries = %d, conntrack -C says %d", snap.Conntrack.Entries, count)
			}
			for _, k := range []string{"insert_failed", "drop", "early_drop", "insert", "found", "invalid"} {
				var got uint64
				tot := snap.Conntrack.Total
				switch k {
				case "insert_failed":
					got = tot.InsertFailed
				case "drop":
					got = tot.Drop
				case "early_drop":
					got = tot.EarlyDrop
				case "insert":
					got = tot.Insert
				case "found":
					got = tot.Found
				case "invalid":
					got = tot.Invalid
				}
				if got != oracle[k] {
					t.Errorf("%s = %d, conntrack -S sums to %d", k, got, oracle[k])
				}
			}
			if len(a.Pools) == 0 {
				t.Fatal("no NAT pool found")
			}
			p := a.Pools[0]
			wantDst := netip.MustParseAddrPort(fmt.Sprintf("%s:%d", labServer, labDstPort))
			if p.NAT != netip.MustParseAddr(labGwOut) || p.Proto != 17 || p.Dst != wantDst {
				t.Errorf("busiest pool = %s udp(%d) -> %s, want %s udp -> %s", p.NAT, p.Proto, p.Dst, labGwOut, wantDst)
			}
			if p.RangeFrom != tc.wantFrom || len(snap.Rules) != 1 {
				t.Errorf("range from %q, want %q; rules %+v", p.RangeFrom, tc.wantFrom, snap.Rules)
			}
			if p.InUse != tc.wantInUse || p.RangeMin != tc.wantMin || p.RangeMax != tc.wantMax {
				t.Errorf("pool in use %d range %d-%d, want %d range %d-%d", p.InUse, p.RangeMin, p.RangeMax, tc.wantInUse, tc.wantMin, tc.wantMax)
			}
			listed := 0
			for _, line := range strings.Split(sh(t, "ip", "netns", "exec", l.gw, "conntrack", "-L", "-p", "udp", "--dport", strconv.Itoa(labDstPort)), "\n") {
				if strings.HasPrefix(line, "udp ") {
					listed++
				}
			}
			if p.InUse != listed {
				t.Errorf("pool in use %d, conntrack -L lists %d udp/53 entries", p.InUse, listed)
			}
			if tc.wantExhaustion {
				if p.PortMin != 20000 || p.PortMax != 21975 {
					t.Errorf("ports used %d-%d, want 20000-21975", p.PortMin, p.PortMax)
				}
				if want := uint64(flows - tc.wantInUse); d.Stats.InsertFailed != want {
					t.Errorf("insert_failed rose by %d, want %d (flows that found no port)", d.Stats.InsertFailed, want)
				}
			}
			var got *struct{ sev string }
			for _, f := range fs {
				t.Logf("finding %s %s: %s", f.ID, f.Severity, f.Summary)
				if f.ID == IDPortExhaustion {
					got = &struct{ sev string }{f.Severity.String()}
					if f.Evidence["range_min"] != uint16(20000) || f.Evidence["range_max"] != uint16(21975) || f.Evidence["distinct_ports"] != 1976 {
						t.Errorf("evidence %v", f.Evidence)
					}
					if f.Evidence["dropped_flows"] != uint64(flows-1976) {
						t.Errorf("dropped_flows = %v, want %d", f.Evidence["dropped_flows"], flows-1976)
					}
				}
				if f.ID == IDRangeSmall || f.ID == IDConntrackFull {
					t.Errorf("unexpected %s", f.ID)
				}
			}
			if tc.wantExhaustion && (got == nil || got.sev != "error") {
				t.Errorf("nat.port-exhaustion error not raised")
			}
			if !tc.wantExhaustion && got != nil {
				t.Errorf("nat.port-exhaustion raised with a wide range")
			}
		})
	}
}
