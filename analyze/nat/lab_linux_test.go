//go:build linux

package nat

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vpndiag/vpndiag/report"
	"github.com/vpndiag/vpndiag/testdata/lab"
)

func TestMain(m *testing.M) {
	if os.Getenv("VDNAT_ROLE") == "sender" {
		os.Exit(roleSender())
	}
	os.Exit(m.Run())
}

// roleSender sends one datagram from each of VDNAT_N source ports starting
// at VDNAT_PORT0 to VDNAT_DST, VDNAT_RATE per second: every datagram is a
// new UDP flow (distinct ports, so no flow repeats a 5-tuple).
func roleSender() int {
	n, _ := strconv.Atoi(os.Getenv("VDNAT_N"))
	port0, _ := strconv.Atoi(os.Getenv("VDNAT_PORT0"))
	rate, _ := strconv.Atoi(os.Getenv("VDNAT_RATE"))
	dst, err := net.ResolveUDPAddr("udp4", os.Getenv("VDNAT_DST"))
	if err != nil || n <= 0 || n > 20000 || port0 <= 0 || rate <= 0 {
		fmt.Fprintln(os.Stderr, "sender: bad VDNAT_N/VDNAT_PORT0/VDNAT_DST/VDNAT_RATE", err)
		return 2
	}
	payload := make([]byte, 32)
	start := time.Now()
	for i := 0; i < n; i++ {
		if d := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))); d > 0 {
			time.Sleep(d)
		}
		c, err := net.ListenUDP("udp4", &net.UDPAddr{Port: port0 + i})
		if err != nil {
			fmt.Fprintln(os.Stderr, "sender:", err)
			return 1
		}
		copy(payload, fmt.Sprintf("query %06d", i))
		_, err = c.WriteToUDP(payload, dst)
		c.Close()
		if err != nil {
			fmt.Fprintln(os.Stderr, "sender:", err)
			return 1
		}
	}
	return 0
}

const labTopo = `
host client
host gw forward
host server
link client:eth0=198.18.10.2/24 gw:eth0=198.18.10.1/24
link gw:eth1=198.18.66.1/24 server:eth0=198.18.66.53/24
route client default via 198.18.10.1
route server default via 198.18.66.1
`

// TestLabCaptures floods 5000 new UDP flows to 198.18.66.53:53 through an
// nftables masquerade limited to 20000-21975 (and, as the control, an
// unlimited one), captures both sides of the gateway with tcpdump, and
// checks the capture-mode verdict against the kernel's own counters.
func TestLabCaptures(t *testing.T) {
	lab.Require(t, "conntrack")
	const flows = 5000
	cases := []struct {
		name    string
		nat     string
		dropped int
	}{
		{"range-1976", "nat gw masquerade oif eth1 ports 20000-21975", flows - 1976},
		{"wide", "nat gw masquerade oif eth1", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			topo := lab.New(t, labTopo+tc.nat+"\n")
			dir := t.TempDir()
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			in, err := topo.Capture(ctx, "gw", "eth0", filepath.Join(dir, "gw-inside.pcap"), "udp port 53")
			if err != nil {
				t.Fatal(err)
			}
			out, err := topo.Capture(ctx, "gw", "eth1", filepath.Join(dir, "gw-outside.pcap"), "udp port 53")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := topo.Exec(ctx, "client", "env", "VDNAT_ROLE=sender", fmt.Sprintf("VDNAT_N=%d", flows), "VDNAT_PORT0=30000",
				"VDNAT_RATE=2500", "VDNAT_DST=198.18.66.53:53", os.Args[0], "-test.run=^$"); err != nil {
				t.Fatal(err)
			}
			time.Sleep(300 * time.Millisecond)
			for _, c := range []*lab.Capture{in, out} {
				if err := c.Stop(); err != nil {
					t.Fatal(err)
				}
				if s := c.Stats(); s.Dropped != 0 {
					t.Fatalf("capture %s dropped %d packets", c.File, s.Dropped)
				}
			}
			// Oracle: the kernel's count of flows that found no mapping.
			st, err := topo.Exec(ctx, "gw", "conntrack", "-S")
			if err != nil {
				t.Fatal(err)
			}
			insertFailed := 0
			for _, f := range strings.Fields(string(st)) {
				if v, ok := strings.CutPrefix(f, "insert_failed="); ok {
					n, _ := strconv.Atoi(v)
					insertFailed += n
				}
			}
			if insertFailed != tc.dropped {
				t.Fatalf("kernel insert_failed = %d, the lab expects %d", insertFailed, tc.dropped)
			}
			t.Logf("captured inside %d, outside %d packets", in.Stats().Packets, out.Stats().Packets)
			if in.Stats().Packets != flows || out.Stats().Packets != flows-tc.dropped {
				t.Fatalf("captured %d inside, %d outside; want %d, %d", in.Stats().Packets, out.Stats().Packets, flows, flows-tc.dropped)
			}

			rep := report.New("natcheck", "test", time.Now())
			if err := Run(ctx, out.File, in.File, Options{}, rep, nil); err != nil {
				t.Fatal(err)
			}
			var got []report.Finding
			for _, f := range rep.Findings {
				t.Logf("%s %s: %s", f.ID, f.Severity, f.Summary)
				if f.ID == IDPortExhaustion {
					got = append(got, f)
				}
			}
			if tc.dropped > 0 {
				// The outside capture alone shows the ceiling signature.
				alone := report.New("natcheck", "test", time.Now())
				if err := Run(ctx, out.File, "", Options{}, alone, nil); err != nil {
					t.Fatal(err)
				}
				if len(alone.Findings) != 1 || alone.Findings[0].Severity != report.SeverityWarning ||
					alone.Findings[0].Evidence["port_min"] != uint16(20000) || alone.Findings[0].Evidence["port_max"] != uint16(21975) ||
					alone.Findings[0].Evidence["distinct_ports"] != 1976 {
					t.Errorf("outside only: %+v", alone.Findings)
				}
			}
			if tc.dropped == 0 {
				if len(got) != 0 {
					t.Fatalf("exhaustion reported with a wide range: %+v", got)
				}
				return
			}
			if len(got) != 1 || got[0].Severity != report.SeverityError {
				t.Fatalf("want one nat.port-exhaustion error, got %+v", got)
			}
			want := fmt.Sprintf("%d of %d new UDP flows to 198.18.66.53:53 were dropped inside the NAT while 1976 mappings (ports 20000-21975) were live", tc.dropped, flows)
			if !strings.HasPrefix(got[0].Summary, want) {
				t.Errorf("summary %q\nwant    %q", got[0].Summary, want)
			}
			ev := got[0].Evidence
			if ev["nat_address"] != "198.18.66.1" || ev["port_min"] != uint16(20000) || ev["port_max"] != uint16(21975) ||
				ev["distinct_ports"] != 1976 || ev["peak_mappings"] != 1976 || ev["dropped_flows"] != insertFailed {
				t.Errorf("evidence %v", ev)
			}
			// Linux tries a bounded number of ports per new flow (runs of 128,
			// 64, 32 and 16 from random offsets): the first drops come before
			// the last port is taken, seen from 1711 to 1876 live mappings.
			if fd := ev["live_at_first_drop"].(int); fd < 1976*8/10 || fd > 1976 {
				t.Errorf("first drop at %d live mappings", fd)
			}
			if len(got[0].Frames) == 0 || got[0].Frames[0].File != "gw-inside.pcap" || got[0].Frames[0].Frame < 1976*8/10 {
				t.Errorf("frames %v", got[0].Frames)
			}
		})
	}
}
