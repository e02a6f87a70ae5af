package main

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vpndiag/vpndiag/testdata/lab"
)

// Lab tests: real kernels (namespaces, veth, nftables NAT and loss, VXLAN),
// real services (dnsmasq), captured with tcpdump, then traced. They need
// root; they fail, never skip, without it.

// labHop is one capture of a lab test: hop name, host and interface.
type labHop struct{ name, host, iface string }

// captureHops starts tcpdump on every hop and returns a function that stops
// them and returns the trace arguments HOP=FILE.
func captureHops(t *testing.T, topo *lab.Topology, filter string, hops ...labHop) func() []string {
	t.Helper()
	dir := t.TempDir()
	var caps []*lab.Capture
	var args []string
	for _, h := range hops {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		file := filepath.Join(dir, h.name+".pcap")
		c, err := topo.Capture(ctx, h.host, h.iface, file, filter)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		caps = append(caps, c)
		args = append(args, h.name+"="+file)
	}
	return func() []string {
		for _, c := range caps {
			if err := c.Stop(); err != nil {
				t.Fatal(err)
			}
			if st := c.Stats(); st.Dropped != 0 {
				t.Fatalf("tcpdump on %s dropped %d packets: the lab run is not a clean reference", c.Host, st.Dropped)
			}
		}
		return args
	}
}

// tool runs labtool in host and returns its JSON line.
func tool(t *testing.T, topo *lab.Topology, host string, args ...string) string {
	t.Helper()
	out, err := toolErr(t, topo, host, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// toolErr is tool for other goroutines: it returns the error.
func toolErr(t *testing.T, topo *lab.Topology, host string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	out, err := topo.Exec(ctx, host, append([]string{lab.Tool(t)}, args...)...)
	if err != nil {
		return "", fmt.Errorf("labtool %s on %s: %w", args[0], host, err)
	}
	return string(out), nil
}

// startTool starts a labtool sink and waits until it listens.
func startTool(t *testing.T, topo *lab.Topology, host string, args ...string) *lab.Proc {
	t.Helper()
	p, err := topo.Start(t.Context(), host, append([]string{lab.Tool(t)}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := p.WaitFor(ctx, "listening"); err != nil {
		t.Fatal(err)
	}
	return p
}

// runTraceJSON runs vpndiag trace and parses its report.
func runTraceJSON(t *testing.T, wantCode int, args ...string) *traceData {
	t.Helper()
	out, errOut, code := vpndiag(t, append([]string{"trace", "--format", "json"}, args...)...)
	if code != wantCode {
		text, _, _ := vpndiag(t, append([]string{"trace"}, args...)...)
		t.Fatalf("trace exit %d, want %d; stderr %s\n%s", code, wantCode, errOut, text)
	}
	return parseTrace(t, out)
}

func (d *traceData) lossFinding(t *testing.T) (from, to, class string, lost float64) {
	t.Helper()
	for _, f := range d.Findings {
		if f.ID == "trace.loss" {
			return f.Where.Segment.From, f.Where.Segment.To, f.Where.Class, f.Evidence["lost"].(float64)
		}
	}
	t.Fatalf("no trace.loss finding in %+v", d.Findings)
	return
}

const natIncidentTopo = `
host client
host gw forward
host dns
host dns2
link client:eth0=198.18.1.2/24 gw:eth0=198.18.1.1/24
link gw:eth1=198.18.2.1/24 dns:eth0=198.18.2.53/24
link gw:eth2=198.18.3.1/24 dns2:eth0=198.18.3.53/24
route client default via 198.18.1.1
route dns2 default via 198.18.3.1
nat gw masquerade oif eth1 ports 20000-21975
`

// TestTraceLabNATIncident is scenario 1 of the issue, the incident: DNS
// queries from fresh ports through a masquerade with a 1976-port range,
// faster than the pool frees, while a second resolver is reached without
// NAT through another interface of the same gateway (the path branches).
// trace must place the loss inside gw, between gw-in and gw-out, for the
// NAT'd class only, with as many lost as conntrack's insert_failed, and
// report the 1976-port pool. Then scenario 5: the same captures with dns's
// timestamps shifted by 2.5 s (editcap -t): same verdict, and dns's clock
// offset reported within a few ms of 2500 ms.
func TestTraceLabNATIncident(t *testing.T) {
	lab.Require(t, "dnsmasq", "conntrack", "editcap")
	topo := lab.New(t, natIncidentTopo)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	for _, d := range []struct{ host, addr string }{{"dns", "198.18.2.53"}, {"dns2", "198.18.3.53"}} {
		if _, err := topo.StartDNS(ctx, d.host, netip.MustParseAddr(d.addr), "lab.test", netip.MustParseAddr("198.18.9.9")); err != nil {
			t.Fatal(err)
		}
	}
	lab.Require(t, "ping")
	stop := captureHops(t, topo, "udp port 53 or icmp",
		labHop{"client", "client", "eth0"}, labHop{"gw-in", "gw", "eth0"}, labHop{"gw-out", "gw", "eth1"},
		labHop{"gw-dmz", "gw", "eth2"}, labHop{"dns", "dns", "eth0"})
	lab.Tool(t)
	done := make(chan error, 1)
	var directOut string
	go func() {
		var err error
		directOut, err = toolErr(t, topo, "client", "dns", "-to", "198.18.3.53:53", "-count", "300", "-rate", "100", "-name", "direct.lab.test")
		done <- err
	}()
	natOut := tool(t, topo, "client", "dns", "-to", "198.18.2.53:53", "-count", "2600", "-rate", "800", "-name", "nat.lab.test")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// As in a real incident the captures run on after the failing
	// traffic: a few pings through the gateway show gw-out still
	// capturing, so the last dropped queries can be judged too.
	if out, err := topo.Exec(ctx, "client", "ping", "-c", "5", "-i", "0.05", "-W", "2", "198.18.2.53"); err != nil {
		t.Fatalf("ping: %v: %s", err, out)
	}
	args := stop()
	t.Logf("labtool: NAT'd %s direct %s", strings.TrimSpace(natOut), strings.TrimSpace(directOut))
	insertFailed, st := conntrackInsertFailed(t, topo, "gw")
	if insertFailed < 300 {
		t.Fatalf("conntrack insert_failed=%d: the pool was not exhausted, the lab did not reproduce the incident:\n%s", insertFailed, st)
	}

	d := runTraceJSON(t, exitFindings, args...)
	from, to, class, lost := d.lossFinding(t)
	if from != "gw-in" || to != "gw-out" || class != "UDP to 198.18.2.53:53" {
		t.Errorf("trace.loss at %s -> %s for %s, want gw-in -> gw-out for UDP to 198.18.2.53:53", from, to, class)
	}
	if math.Abs(lost-float64(insertFailed)) > 0.01*float64(insertFailed)+3 {
		t.Errorf("trace says %v lost, conntrack insert_failed=%d", lost, insertFailed)
	}
	if n := d.ids("trace.loss"); n != 1 {
		t.Errorf("%d trace.loss findings, want 1 (the NAT'd class only): %+v", n, d.Findings)
	}
	direct := d.segment(t, "gw-in", "gw-dmz", "UDP to 198.18.3.53:53")
	if direct.Sent != 300 || direct.Lost != 0 || direct.NAT {
		t.Errorf("direct class %+v, want 300 sent, none lost, not NAT'd", direct)
	}
	nat := d.segment(t, "gw-in", "gw-out", "UDP to 198.18.2.53:53")
	if nat.Sent != 2600 || !nat.NAT {
		t.Errorf("NAT'd class %+v, want 2600 sent, NAT'd", nat)
	}
	if len(d.Data.NATPools) == 0 || d.Data.NATPools[0].DistinctPorts != 1976 || d.Data.NATPools[0].PortMin != 20000 || d.Data.NATPools[0].PortMax != 21975 {
		t.Errorf("NAT pool %+v, want 1976 ports 20000-21975", d.Data.NATPools)
	}

	// Scenario 5: shift dns's capture by +2.5 s.
	shifted := append([]string(nil), args...)
	for i, a := range shifted {
		if strings.HasPrefix(a, "dns=") {
			f := strings.TrimPrefix(a, "dns=")
			out := strings.TrimSuffix(f, ".pcap") + "-shifted.pcap"
			if b, err := exec.Command("editcap", "-t", "2.5", f, out).CombinedOutput(); err != nil {
				t.Fatalf("editcap: %v: %s", err, b)
			}
			shifted[i] = "dns=" + out
		}
	}
	d2 := runTraceJSON(t, exitFindings, shifted...)
	from2, to2, class2, lost2 := d2.lossFinding(t)
	if from2 != from || to2 != to || class2 != class || lost2 != lost {
		t.Errorf("shifted: %s -> %s %s lost %v, want the same as unshifted (%s -> %s %s lost %v)", from2, to2, class2, lost2, from, to, class, lost)
	}
	for _, h := range d2.Data.Hops {
		want := 0.0
		if h.Name == "dns" {
			want = 2500
		}
		if math.Abs(h.OffsetMs-want) > 3 {
			t.Errorf("hop %s clock offset %v ms (%s), want %v within 3 ms", h.Name, h.OffsetMs, h.OffsetMethod, want)
		}
	}
}

const wireLossTopo = `
host a
host r1 forward
switch wire
host r2 forward
host b
link a:eth0=198.18.1.2/24 r1:eth0=198.18.1.1/24
link r1:eth1=198.18.2.1/24 wire:p1
link r2:eth1=198.18.2.2/24 wire:p2
link r2:eth0=198.18.3.1/24 b:eth0=198.18.3.2/24
route a default via 198.18.1.1
route b default via 198.18.3.1
route r1 198.18.3.0/24 via 198.18.2.2
route r2 198.18.1.0/24 via 198.18.2.1
`

// TestTraceLabWireLoss is scenario 2: a bridge namespace between two
// routers drops 20% of one class; trace places the loss between r1-out and
// r2-in (not inside either router), matching the nftables counter, and the
// other class loses nothing.
func TestTraceLabWireLoss(t *testing.T) {
	topo := lab.New(t, wireLossTopo+"loss wire forward iif p1 udp dport 5000 20%\n")
	sink := startTool(t, topo, "b", "udp-sink", "-listen", "198.18.3.2:5000", "-duration", "60s", "-idle", "2s")
	ctl := startTool(t, topo, "b", "udp-sink", "-listen", "198.18.3.2:5001", "-duration", "60s", "-idle", "2s")
	stop := captureHops(t, topo, "udp and (port 5000 or port 5001)",
		labHop{"a", "a", "eth0"}, labHop{"r1-out", "r1", "eth1"}, labHop{"r2-in", "r2", "eth1"}, labHop{"b", "b", "eth0"})
	tool(t, topo, "a", "udp-send", "-to", "198.18.3.2:5000", "-count", "3000", "-rate", "3000", "-size", "100")
	tool(t, topo, "a", "udp-send", "-to", "198.18.3.2:5001", "-count", "1000", "-rate", "3000", "-size", "100")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_ = sink.Wait(ctx)
	_ = ctl.Wait(ctx)
	args := stop()
	rs, err := topo.Exec(ctx, "wire", "nft", "list", "table", "bridge", lab.NFTTable)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`counter packets (\d+)`).FindSubmatch(rs)
	if m == nil {
		t.Fatalf("no counter in %s", rs)
	}
	dropped, _ := strconv.Atoi(string(m[1]))
	// Hops in reverse order: trace must find the path itself.
	d := runTraceJSON(t, exitFindings, args[3], args[2], args[1], args[0])
	from, to, class, lost := d.lossFinding(t)
	if from != "r1-out" || to != "r2-in" || class != "UDP to 198.18.3.2:5000" || math.Abs(lost-float64(dropped)) > 30 {
		t.Errorf("trace.loss %s -> %s %s lost %v, want r1-out -> r2-in UDP to 198.18.3.2:5000 lost %d (nft counter)", from, to, class, lost, dropped)
	}
	s := d.segment(t, "r1-out", "r2-in", "UDP to 198.18.3.2:5000")
	if s.LossRatio < 0.16 || s.LossRatio > 0.24 || s.Sent < 2970 {
		t.Errorf("segment %+v, want 3000 sent (at least 99%% judged), 20%% +/- 4 points lost", s)
	}
	if c := d.segment(t, "r1-out", "r2-in", "UDP to 198.18.3.2:5001"); c.Lost != 0 || c.Sent != 1000 {
		t.Errorf("control %+v, want 1000 sent, none lost", c)
	}
	for _, x := range d.Data.Segments {
		if x.Lost != 0 && !(x.From == "r1-out" && x.To == "r2-in") {
			t.Errorf("loss elsewhere: %+v", x)
		}
	}
}

// TestTraceLabNoLoss is scenario 6: the same path without loss, traffic in
// both directions: no trace.loss, no warning (no false alarm).
func TestTraceLabNoLoss(t *testing.T) {
	lab.Require(t, "ping")
	topo := lab.New(t, wireLossTopo)
	sink := startTool(t, topo, "b", "udp-sink", "-listen", "198.18.3.2:5000", "-duration", "60s", "-idle", "2s")
	stop := captureHops(t, topo, "udp or icmp",
		labHop{"a", "a", "eth0"}, labHop{"r1-out", "r1", "eth1"}, labHop{"r2-in", "r2", "eth1"}, labHop{"b", "b", "eth0"})
	lab.Tool(t)
	back := make(chan error, 1)
	go func() {
		_, err := toolErr(t, topo, "b", "udp-send", "-to", "198.18.1.2:9", "-count", "500", "-rate", "1000")
		back <- err
	}()
	tool(t, topo, "a", "udp-send", "-to", "198.18.3.2:5000", "-count", "2000", "-rate", "2000", "-size", "200")
	if err := <-back; err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if out, err := topo.Exec(ctx, "a", "ping", "-c", "20", "-i", "0.05", "-W", "2", "198.18.3.2"); err != nil {
		t.Fatalf("ping: %v: %s", err, out)
	}
	_ = sink.Wait(ctx)
	args := stop()
	d := runTraceJSON(t, exitOK, args...)
	for _, f := range d.Findings {
		if f.Severity != "info" {
			t.Errorf("finding %s (%s): %s", f.ID, f.Severity, f.Summary)
		}
	}
	if s := d.segment(t, "r1-out", "r2-in", "UDP to 198.18.3.2:5000"); s.Sent != 2000 || s.Lost != 0 {
		t.Errorf("segment %+v, want 2000 sent, none lost", s)
	}
	if s := d.segment(t, "r2-in", "r1-out", "ICMP from 198.18.3.2"); s.Sent != 20 || s.Lost != 0 {
		t.Errorf("echo replies %+v, want 20, none lost", s)
	}
}

const vxlanLossTopo = `
host a
switch under
host b
link a:eth0=198.18.1.1/24 under:p1
link b:eth0=198.18.1.2/24 under:p2
vxlan a:vx0 vni 42 local 198.18.1.1 remote 198.18.1.2 dstport 4789 addr 198.18.100.1/24 mtu 1450 neigh static
vxlan b:vx0 vni 42 local 198.18.1.2 remote 198.18.1.1 dstport 4789 addr 198.18.100.2/24 mtu 1450 neigh static
loss under forward iif p1 udp dport 4789 25%
`

// TestTraceLabVXLANUnderlayLoss is scenario 3: the underlay (a bridge)
// drops 25% of VXLAN packets while underlay ICMP passes. Hops are the
// tunnel interfaces (plain inner packets) and the underlay interfaces
// (encapsulated): trace matches inner with plain, and places the loss
// between the underlay hops for the tunnelled class.
func TestTraceLabVXLANUnderlayLoss(t *testing.T) {
	lab.Require(t, "ping")
	topo := lab.New(t, vxlanLossTopo)
	sink := startTool(t, topo, "b", "udp-sink", "-listen", "198.18.100.2:7000", "-duration", "60s", "-idle", "2s")
	stop := captureHops(t, topo, "",
		labHop{"a-vx", "a", "vx0"}, labHop{"a-under", "a", "eth0"}, labHop{"b-under", "b", "eth0"}, labHop{"b-vx", "b", "vx0"})
	tool(t, topo, "a", "udp-send", "-to", "198.18.100.2:7000", "-count", "2000", "-rate", "2000", "-size", "200")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if out, err := topo.Exec(ctx, "a", "ping", "-c", "30", "-i", "0.02", "-W", "2", "198.18.1.2"); err != nil {
		t.Fatalf("underlay ping: %v: %s", err, out)
	}
	_ = sink.Wait(ctx)
	args := stop()
	d := runTraceJSON(t, exitFindings, args...)
	from, to, class, _ := d.lossFinding(t)
	if from != "a-under" || to != "b-under" || class != "UDP to 198.18.100.2:7000" {
		t.Errorf("trace.loss %s -> %s %s, want a-under -> b-under UDP to 198.18.100.2:7000", from, to, class)
	}
	s := d.segment(t, "a-under", "b-under", "UDP to 198.18.100.2:7000")
	// Lost packets before the first one b-under saw cannot be judged (its
	// capture may not have started): up to 1% are not counted.
	if s.Tunnel != "vxlan" || s.Sent < 1980 || s.LossRatio < 0.20 || s.LossRatio > 0.30 {
		t.Errorf("segment %+v, want 2000 sent (at least 99%% judged) through vxlan, 25%% +/- 5 points lost", s)
	}
	if s := d.segment(t, "a-vx", "a-under", "UDP to 198.18.100.2:7000"); s.Lost != 0 || s.Sent != 2000 {
		t.Errorf("a-vx -> a-under %+v, want the inner packet matched at the underlay, none lost", s)
	}
	if p := d.segment(t, "a-under", "b-under", "ICMP to 198.18.1.2"); p.Sent != 30 || p.Lost != 0 {
		t.Errorf("underlay ICMP %+v, want 30 sent, none lost", p)
	}
}

// conntrackInsertFailed returns the sum of the per-CPU insert_failed
// counters of `conntrack -S` on host, and the command's output.
func conntrackInsertFailed(t *testing.T, topo *lab.Topology, host string) (int, []byte) {
	t.Helper()
	st, err := topo.Exec(t.Context(), host, "conntrack", "-S")
	if err != nil {
		t.Fatal(err)
	}
	sum := 0
	for _, m := range regexp.MustCompile(`insert_failed=(\d+)`).FindAllStringSubmatch(string(st), -1) {
		n, _ := strconv.Atoi(m[1])
		sum += n
	}
	return sum, st
}
