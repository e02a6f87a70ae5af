package lab

import (
	"context"
	"fmt"
	"math"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

const natTopo = `
host client
host gw forward
host server
link client:eth0=198.18.1.2/24 gw:eth0=198.18.1.1/24
link gw:eth1=198.18.2.1/24 server:eth0=198.18.2.10/24
route client default via 198.18.1.1
nat gw masquerade oif eth1 ports 20000-20099
`

// TestNAT sends 20 UDP requests from 20 fresh source ports through a
// masquerading gateway with the port range 20000-20099 and checks, on gw's
// outside capture, the source address and every source port, and the
// mappings in gw's conntrack table.
func TestNAT(t *testing.T) {
	Require(t, "conntrack")
	topo := New(t, natTopo)
	sink := startSink(t, topo, "server", "udp-sink", "-listen", "198.18.2.10:9000", "-count", "20", "-duration", "30s")
	in := capture(t, topo, "gw", "eth0", "udp port 9000")
	out := capture(t, topo, "gw", "eth1", "udp port 9000")
	var sent struct{ Sent int }
	toolJSON(t, topo, "client", &sent, "udp-send", "-to", "198.18.2.10:9000", "-count", "20", "-fresh", "-rate", "200")
	var got struct{ Received, Distinct int }
	procJSON(t, sink, &got)
	stop(t, in)
	stop(t, out)
	if sent.Sent != 20 || got.Received != 20 || got.Distinct != 20 {
		t.Fatalf("sent %d, server received %d (%d distinct), want 20/20/20", sent.Sent, got.Received, got.Distinct)
	}

	inside := readPackets(t, in.File)
	outside := readPackets(t, out.File)
	if len(inside) != 20 || len(outside) != 20 {
		t.Fatalf("captured %d inside and %d outside, want 20 each", len(inside), len(outside))
	}
	origPorts := map[uint16]bool{}
	for _, p := range inside {
		if p.src.String() != "198.18.1.2" || (p.sport >= 20000 && p.sport <= 20099) {
			t.Errorf("inside frame %d: %s:%d, want 198.18.1.2 from an ephemeral port", p.n, p.src, p.sport)
		}
		origPorts[p.sport] = true
	}
	natPorts := map[uint16]bool{}
	for _, p := range outside {
		if p.src.String() != "198.18.2.1" {
			t.Errorf("outside frame %d: source %s, want the NAT address 198.18.2.1", p.n, p.src)
		}
		if p.sport < 20000 || p.sport > 20099 {
			t.Errorf("outside frame %d: source port %d outside 20000-20099", p.n, p.sport)
		}
		natPorts[p.sport] = true
	}
	if len(origPorts) != 20 || len(natPorts) != 20 {
		t.Errorf("distinct source ports: %d inside, %d outside, want 20 each", len(origPorts), len(natPorts))
	}

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	ct, err := topo.Exec(ctx, "gw", "conntrack", "-L", "-p", "udp", "--orig-port-dst", "9000")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`src=198\.18\.1\.2 dst=198\.18\.2\.10 sport=(\d+) dport=9000 .*src=198\.18\.2\.10 dst=198\.18\.2\.1 sport=9000 dport=(\d+)`)
	mapped := 0
	for _, line := range strings.Split(string(ct), "\n") {
		m := re.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		orig, _ := strconv.Atoi(m[1])
		nat, _ := strconv.Atoi(m[2])
		if !origPorts[uint16(orig)] || !natPorts[uint16(nat)] {
			t.Errorf("conntrack mapping %d -> %d not seen in the captures", orig, nat)
		}
		mapped++
	}
	if mapped != 20 {
		t.Errorf("conntrack shows %d NAT mappings, want 20:\n%s", mapped, ct)
	}
}

// lossTopo has a switch namespace "wire" between two routers; it drops 30%
// of UDP to port 5000 crossing from r1 to r2, and nothing else.
const lossTopo = `
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
loss wire forward iif p1 udp dport 5000 30%
`

// TestLoss sends 2000 datagrams of the lossy class and 500 of another class
// across the wire and checks, from captures on both routers, that 30% +/- 5
// points of the first class and none of the second were lost, and that the
// nftables counter agrees.
func TestLoss(t *testing.T) {
	topo := New(t, lossTopo)
	sink := startSink(t, topo, "b", "udp-sink", "-listen", "198.18.3.2:5000", "-duration", "60s", "-idle", "2s")
	ctl := startSink(t, topo, "b", "udp-sink", "-listen", "198.18.3.2:5001", "-duration", "60s", "-idle", "2s")
	before := capture(t, topo, "r1", "eth1", "udp and (port 5000 or port 5001)")
	after := capture(t, topo, "r2", "eth1", "udp and (port 5000 or port 5001)")
	var s1, s2 struct{ Sent int }
	toolJSON(t, topo, "a", &s1, "udp-send", "-to", "198.18.3.2:5000", "-count", "2000", "-rate", "4000", "-size", "100")
	toolJSON(t, topo, "a", &s2, "udp-send", "-to", "198.18.3.2:5001", "-count", "500", "-rate", "4000", "-size", "100")
	var got, gotCtl struct{ Received, Distinct int }
	procJSON(t, sink, &got)
	procJSON(t, ctl, &gotCtl)
	stop(t, before)
	stop(t, after)
	if s1.Sent != 2000 || s2.Sent != 500 {
		t.Fatalf("sent %d and %d, want 2000 and 500", s1.Sent, s2.Sent)
	}
	count := func(file string) map[uint16]int {
		m := map[uint16]int{}
		for _, p := range readPackets(t, file) {
			m[p.dport]++
		}
		return m
	}
	b, a := count(before.File), count(after.File)
	if b[5000] != 2000 || b[5001] != 500 {
		t.Fatalf("before the wire: %d to 5000 and %d to 5001, want 2000 and 500", b[5000], b[5001])
	}
	lossPct := 100 * float64(b[5000]-a[5000]) / float64(b[5000])
	sd := 100 * math.Sqrt(0.3*0.7/2000)
	t.Logf("lossy class: %d -> %d (%.1f%% lost, binomial sd %.1f points); control: %d -> %d", b[5000], a[5000], lossPct, sd, b[5001], a[5001])
	if lossPct < 25 || lossPct > 35 {
		t.Errorf("loss %.1f%%, want 30%% +/- 5 points", lossPct)
	}
	if a[5001] != 500 || gotCtl.Received != 500 {
		t.Errorf("control class: %d after the wire, %d received, want 500 (no loss)", a[5001], gotCtl.Received)
	}
	if got.Received != a[5000] {
		t.Errorf("b received %d of the lossy class, the capture after the wire shows %d", got.Received, a[5000])
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	rs, err := topo.Exec(ctx, "wire", "nft", "list", "table", "bridge", NFTTable)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`counter packets (\d+)`).FindSubmatch(rs)
	if m == nil {
		t.Fatalf("no counter in:\n%s", rs)
	}
	if n, _ := strconv.Atoi(string(m[1])); n != b[5000]-a[5000] {
		t.Errorf("nft counter says %d dropped, the captures say %d", n, b[5000]-a[5000])
	}
}

const vxlanTopo = `
host a
host b
link a:eth0=198.18.1.1/24 b:eth0=198.18.1.2/24
vxlan a:vx0 vni 42 local 198.18.1.1 remote 198.18.1.2 dstport 4789 addr 198.18.100.1/24 mtu 1450
vxlan b:vx0 vni 42 local 198.18.1.2 remote 198.18.1.1 dstport 4789 addr 198.18.100.2/24 mtu 1450
`

// TestVXLANStaticNeigh: with "neigh static" each end has a permanent
// neighbor entry with the other end's fixed MAC, and pings through the
// tunnel carry no ARP on the underlay; without it, the first ping sends an
// ARP request through the tunnel (the positive control).
func TestVXLANStaticNeigh(t *testing.T) {
	Require(t, "tshark", "ping")
	for _, tc := range []struct {
		neigh   string
		wantARP bool
	}{{"static", false}, {"dynamic", true}} {
		t.Run(tc.neigh, func(t *testing.T) {
			topo := New(t, strings.ReplaceAll(vxlanTopo, "mtu 1450", "mtu 1450 neigh "+tc.neigh))
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			for _, v := range topo.VXLANs {
				link, err := topo.Exec(ctx, v.Host, "cat", "/sys/class/net/"+v.Iface+"/address")
				if err != nil || strings.TrimSpace(string(link)) != v.MAC().String() {
					t.Errorf("%s:%s address %q (%v), want %s", v.Host, v.Iface, link, err, v.MAC())
				}
			}
			neigh, err := topo.Exec(ctx, "a", "ip", "neigh", "show", "dev", "vx0")
			if err != nil {
				t.Fatal(err)
			}
			b := topo.VXLANs[1].MAC().String()
			if got := strings.Contains(string(neigh), "198.18.100.2 lladdr "+b+" PERMANENT"); got == tc.wantARP {
				t.Errorf("neighbors of a:vx0:\n%s\nwant a permanent entry for 198.18.100.2 at %s: %v", neigh, b, !tc.wantARP)
			}
			c := capture(t, topo, "a", "eth0", "")
			out, err := topo.Exec(ctx, "a", "ping", "-c", "3", "-i", "0.2", "-W", "2", "198.18.100.2")
			stop(t, c)
			if err != nil || !strings.Contains(string(out), "3 packets transmitted, 3 received") {
				t.Fatalf("ping through the tunnel: %v\n%s", err, out)
			}
			arp, err := exec.CommandContext(ctx, "tshark", "-r", c.File, "-Y", "vxlan && arp", "-T", "fields", "-e", "arp.opcode").Output()
			if err != nil {
				t.Fatalf("tshark: %v", err)
			}
			if n := len(strings.Fields(string(arp))); (n > 0) != tc.wantARP {
				t.Errorf("%d ARP frames inside the tunnel, want ARP: %v", n, tc.wantARP)
			}
		})
	}
}

// TestVXLAN pings through a VXLAN tunnel and checks the underlay capture:
// every packet is UDP 4789 with VNI 42 (by tshark and by gopacket), and it
// carries the 5 echo requests and 5 replies.
func TestVXLAN(t *testing.T) {
	Require(t, "tshark", "ping")
	topo := New(t, vxlanTopo)
	c := capture(t, topo, "a", "eth0", "")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out, err := topo.Exec(ctx, "a", "ping", "-c", "5", "-i", "0.2", "-W", "2", "198.18.100.2")
	if err != nil {
		t.Fatal(err)
	}
	stop(t, c)
	if !strings.Contains(string(out), "5 packets transmitted, 5 received") {
		t.Fatalf("ping through the tunnel:\n%s", out)
	}
	tsh, err := exec.CommandContext(ctx, "tshark", "-r", c.File, "-Y", "vxlan", "-T", "fields", "-e", "vxlan.vni", "-e", "udp.dstport", "-e", "icmp.type").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	rows, req, rep := 0, 0, 0
	for _, line := range strings.Split(strings.TrimSpace(string(tsh)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) < 3 || f[0] != "42" || f[1] != "4789" {
			t.Errorf("tshark row %q, want VNI 42 on UDP 4789", line)
			continue
		}
		rows++
		switch f[2] {
		case "8":
			req++
		case "0":
			rep++
		}
	}
	if req != 5 || rep != 5 {
		t.Errorf("tshark: %d VXLAN rows with %d echo requests and %d replies, want 5 and 5", rows, req, rep)
	}
	var vx, icmp int
	for _, p := range readPackets(t, c.File) {
		if p.proto == layers.IPProtocolUDP && p.dport == 4789 {
			if !p.hasVXLAN || p.vni != 42 {
				t.Errorf("frame %d: UDP 4789 without VNI 42 (vni %d)", p.n, p.vni)
			}
			vx++
			if p.innerProto == layers.IPProtocolICMPv4 {
				icmp++
			}
		}
	}
	if vx != rows || icmp != 10 {
		t.Errorf("gopacket: %d VXLAN packets (tshark %d), %d inner ICMP (want 10)", vx, rows, icmp)
	}
}

// TestIPv6AndBridges routes IPv6 through a forwarding host, pings across a
// 3-port switch namespace, and through a Linux bridge (with an address) in
// an ordinary host.
func TestIPv6AndBridges(t *testing.T) {
	Require(t, "ping")
	topo := New(t, `
host a
host r forward
host b
host c
switch sw
link a:eth0=2001:2:0:1::2/64 r:eth0=2001:2:0:1::1/64
link r:eth1=2001:2:0:2::1/64,198.18.2.1/24 sw:p1
link b:eth0=2001:2:0:2::2/64,198.18.2.2/24 sw:p2
link c:eth0=198.18.2.3/24 sw:p3
route a default6 via 2001:2:0:1::1
route b default6 via 2001:2:0:2::1
host hb
bridge hb:br1 198.18.4.1/24
link a:eth1=198.18.4.2/24 hb:p1@br1
link b:eth1=198.18.4.3/24 hb:p2@br1
`)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for _, tc := range []struct{ host, dst string }{
		{"a", "2001:2:0:2::2"}, {"b", "198.18.2.3"}, {"c", "198.18.2.1"},
		{"a", "198.18.4.1"}, {"a", "198.18.4.3"},
	} {
		out, err := topo.Exec(ctx, tc.host, "ping", "-c", "3", "-i", "0.2", "-W", "2", tc.dst)
		if err != nil || !strings.Contains(string(out), "3 packets transmitted, 3 received") {
			t.Errorf("ping %s from %s: %v\n%s", tc.dst, tc.host, err, out)
		}
	}
	// c has no IPv6 address: its IPv6 is off, so it sends no link-local chatter.
	out, err := topo.Exec(ctx, "c", "ip", "-6", "addr", "show", "dev", "eth0")
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("c:eth0 should have no IPv6 address, got %q (%v)", out, err)
	}
}

// TestCaptureNG captures two interfaces of a gateway into one pcapng with
// dumpcap and checks both interfaces' packets are in it.
func TestCaptureNG(t *testing.T) {
	Require(t, "dumpcap", "ping", "capinfos")
	topo := New(t, natTopo)
	file := t.TempDir() + "/gw.pcapng"
	c, err := topo.CaptureNG(t.Context(), "gw", []string{"eth0", "eth1"}, file, "icmp")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if out, err := topo.Exec(ctx, "client", "ping", "-c", "4", "-i", "0.2", "-W", "2", "198.18.2.10"); err != nil {
		t.Fatalf("ping: %v\n%s", err, out)
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if n := c.Stats().Packets; n != 16 {
		t.Errorf("pcapng holds %d packets, want 16 (4 requests + 4 replies on each of 2 interfaces)", n)
	}
	info, err := exec.CommandContext(ctx, "capinfos", "-I", file).Output()
	if err != nil {
		t.Fatalf("capinfos: %v", err)
	}
	for _, want := range []string{"eth0", "eth1"} {
		if !strings.Contains(string(info), "Name = "+want) {
			t.Errorf("capinfos shows no interface %s:\n%s", want, info)
		}
	}
	perIf := map[int]int{}
	err = ForEachPacket(file, func(n int, ci gopacket.CaptureInfo, lt layers.LinkType, data []byte) error {
		perIf[ci.InterfaceIndex]++
		if lt != layers.LinkTypeEthernet {
			return fmt.Errorf("link type %v", lt)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if perIf[0] != 8 || perIf[1] != 8 {
		t.Errorf("packets per interface %v, want 8 and 8", perIf)
	}
}

// TestLossHooks puts 100% loss rules on the input, output, ingress and egress
// hooks, each for its own UDP port, sends 50 datagrams to each port and to a
// control port, and checks each rule's counter is exactly 50 and that only
// the control port's datagrams arrive.
func TestLossHooks(t *testing.T) {
	topo := New(t, `
host a
host b
link a:eth0=198.18.1.1/24 b:eth0=198.18.1.2/24
loss b input udp dport 6000 100%
loss b ingress iif eth0 udp dport 6001 100%
loss a output oif eth0 udp dport 6002 100%
loss a egress oif eth0 udp dport 6003 100%
`)
	c := capture(t, topo, "b", "eth0", "udp")
	for port := 6000; port <= 6004; port++ {
		var s struct{ Sent, Errors int }
		toolJSON(t, topo, "a", &s, "udp-send", "-to", fmt.Sprintf("198.18.1.2:%d", port), "-count", "50", "-rate", "1000", "-fresh")
		// A drop on the local output hook fails sendmsg with EPERM.
		if wantSent := map[bool]int{true: 0, false: 50}[port == 6002]; s.Sent != wantSent || s.Sent+s.Errors != 50 {
			t.Fatalf("port %d: sent %d, errors %d, want %d sent of 50", port, s.Sent, s.Errors, wantSent)
		}
	}
	stop(t, c)
	seen := map[uint16]int{}
	for _, p := range readPackets(t, c.File) {
		seen[p.dport]++
	}
	// input drops after the capture point; ingress runs after the packet
	// socket tap too, so tcpdump on b:eth0 still sees 6000 and 6001.
	want := map[uint16]int{6000: 50, 6001: 50, 6004: 50}
	for port := uint16(6000); port <= 6004; port++ {
		if seen[port] != want[port] {
			t.Errorf("b:eth0 saw %d datagrams to %d, want %d", seen[port], port, want[port])
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	re := regexp.MustCompile(`counter packets (\d+) .*comment "line (\d+)"`)
	got := map[string]string{}
	for _, h := range []string{"a", "b"} {
		rs, err := topo.Exec(ctx, h, "nft", "list", "ruleset")
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(rs), -1) {
			got[m[2]] = m[1]
		}
	}
	for _, line := range []string{"5", "6", "7", "8"} {
		if got[line] != "50" {
			t.Errorf("rule of line %s counted %q drops, want 50 (all counters: %v)", line, got[line], got)
		}
	}
}

// TestTCPTools runs labtool's TCP commands through the NAT gateway: 20
// connects and one 64 KiB transfer with a small MSS, counted by the sink and
// by a capture of the SYNs on gw's outside interface.
func TestTCPTools(t *testing.T) {
	topo := New(t, natTopo)
	sink := startSink(t, topo, "server", "tcp-sink", "-listen", "198.18.2.10:7000", "-conns", "21", "-duration", "60s")
	c := capture(t, topo, "gw", "eth1", "tcp[tcpflags] & tcp-syn != 0 and tcp[tcpflags] & tcp-ack == 0")
	var conn struct{ Attempted, Connected, Failed int }
	toolJSON(t, topo, "client", &conn, "tcp-connect", "-to", "198.18.2.10:7000", "-count", "20", "-rate", "100")
	var sent struct {
		Bytes  int
		Writes int
	}
	toolJSON(t, topo, "client", &sent, "tcp-send", "-to", "198.18.2.10:7000", "-bytes", "65536", "-write", "512", "-mss", "500")
	var got struct{ Conns, Bytes int }
	procJSON(t, sink, &got)
	stop(t, c)
	if conn.Attempted != 20 || conn.Connected != 20 || sent.Bytes != 65536 || sent.Writes != 128 {
		t.Errorf("tcp-connect %+v, tcp-send %+v; want 20/20 connected, 65536 bytes in 128 writes", conn, sent)
	}
	if got.Conns != 21 || got.Bytes != 65536 {
		t.Errorf("sink saw %d connections and %d bytes, want 21 and 65536", got.Conns, got.Bytes)
	}
	syns := 0
	for _, p := range readPackets(t, c.File) {
		if p.src.String() != "198.18.2.1" || p.sport < 20000 || p.sport > 20099 {
			t.Errorf("SYN frame %d from %s:%d, want 198.18.2.1 port 20000-20099", p.n, p.src, p.sport)
		}
		syns++
	}
	if syns != 21 {
		t.Errorf("%d SYNs on gw's outside, want 21", syns)
	}
}

// TestProcWaitForN: WaitForN counts occurrences over stdout and stderr
// together, and fails (naming the count) when the process exits short.
func TestProcWaitForN(t *testing.T) {
	topo := New(t, "host a\n")
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	p, err := topo.Start(ctx, "a", "sh", "-c", "echo ready; echo ready >&2; echo ready; exit 0")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WaitForN(ctx, "ready", 3); err != nil {
		t.Errorf("3 times: %v", err)
	}
	err = p.WaitForN(ctx, "ready", 4)
	if err == nil || !strings.Contains(err.Error(), `exited before printing "ready" 4 times`) {
		t.Errorf("4 times: err = %v, want exited before printing 4 times", err)
	}
}
