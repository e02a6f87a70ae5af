package main

import (
	"context"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vpndiag/vpndiag/testdata/lab"
)

// wgTraceTopo: LAN c behind tunnel end a, LAN d behind tunnel end b, the
// underlay between a and b a bridge that drops 10% of UDP to port 51820
// from a.
const wgTraceTopo = `
host c
host a forward
switch under
host b forward
host d
link c:eth0=198.18.40.2/24 a:eth1=198.18.40.1/24
link a:eth0=198.18.41.1/24 under:p1
link b:eth0=198.18.41.2/24 under:p2
link d:eth0=198.18.42.2/24 b:eth1=198.18.42.1/24
route c default via 198.18.40.1
route d default via 198.18.42.1
loss under forward iif p1 udp dport 51820 10%
`

// wgTunnel starts userspace WireGuard on a and b (device names unique per
// topology: the control sockets in /var/run/wireguard are shared by all
// namespaces), peers them over the underlay 198.18.41.0/24 on port 51820,
// addresses the tunnel 198.18.200.1 and .2, routes the LANs 198.18.40.0/24
// (behind a) and 198.18.42.0/24 (behind b) through it, and returns the
// devices.
func wgTunnel(t *testing.T, topo *lab.Topology) map[string]string {
	t.Helper()
	wgGo := wireguardGo(t)
	if _, err := exec.LookPath("wg"); err != nil {
		t.Fatal("the WireGuard scenario needs wg: apt-get install -y wireguard-tools")
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	type side struct{ host, dev, tun, under, lan, priv, pub string }
	sides := []*side{
		{host: "a", dev: "wa" + topo.ID(), tun: "198.18.200.1", under: "198.18.41.1", lan: "198.18.40.0/24"},
		{host: "b", dev: "wb" + topo.ID(), tun: "198.18.200.2", under: "198.18.41.2", lan: "198.18.42.0/24"},
	}
	for _, s := range sides {
		k, err := exec.CommandContext(ctx, "wg", "genkey").Output()
		if err != nil {
			t.Fatalf("wg genkey: %v", err)
		}
		s.priv = filepath.Join(dir, s.host+".key")
		if err := os.WriteFile(s.priv, k, 0o600); err != nil {
			t.Fatal(err)
		}
		c := exec.CommandContext(ctx, "wg", "pubkey")
		c.Stdin = strings.NewReader(string(k))
		p, err := c.Output()
		if err != nil {
			t.Fatalf("wg pubkey: %v", err)
		}
		s.pub = strings.TrimSpace(string(p))
		proc, err := topo.Start(t.Context(), s.host, wgGo, "-f", s.dev) // runs until Down
		if err != nil {
			t.Fatal(err)
		}
		sock := filepath.Join("/var/run/wireguard", s.dev+".sock")
		t.Cleanup(func() { os.Remove(sock) })
		deadline := time.Now().Add(10 * time.Second)
		for {
			if _, err := os.Stat(sock); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("wireguard-go %s on %s: no control socket after 10 s: %s", s.dev, s.host, proc.Stderr())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	devs := map[string]string{}
	for i, s := range sides {
		peer := sides[1-i]
		for _, argv := range [][]string{
			{"wg", "set", s.dev, "private-key", s.priv, "listen-port", "51820",
				"peer", peer.pub, "allowed-ips", peer.tun + "/32," + peer.lan, "endpoint", peer.under + ":51820"},
			{"ip", "addr", "add", s.tun + "/24", "dev", s.dev},
			{"ip", "link", "set", s.dev, "mtu", "1420", "up"},
			{"ip", "route", "add", peer.lan, "dev", s.dev},
		} {
			if out, err := topo.Exec(ctx, s.host, argv...); err != nil {
				t.Fatalf("%s on %s: %v %s", strings.Join(argv, " "), s.host, err, out)
			}
		}
		devs[s.host] = s.dev
	}
	// Handshake before capturing (the underlay may drop an initiation:
	// WireGuard retries after 5 s).
	for i := 0; ; i++ {
		if _, err := topo.Exec(ctx, "c", "ping", "-c", "1", "-W", "7", "198.18.42.2"); err == nil {
			break
		} else if i == 3 {
			t.Fatalf("no handshake through the tunnel after 4 tries: %v", err)
		}
	}
	return devs
}

// TestTraceLabWireGuardUnderlayLoss is scenario 4: a WireGuard tunnel
// (wireguard-go) from a to b whose underlay (a bridge) drops 10% of UDP to
// port 51820 from a, while underlay ICMP passes; 3000 datagrams from LAN
// host c to LAN host d cross it. Captures at c and d (plain packets) and
// both underlay interfaces (encrypted). (Not on the WireGuard devices:
// wireguard-go writes received datagrams of one flow coalesced into UDP
// GSO packets, so a capture there shows two datagrams as one packet.)
// trace must attribute the loss to the underlay segment a-under -> b-under
// from WireGuard's counters (trace.tunnel-loss at b-under, upstream
// a-under) and from matched encrypted packets (trace.loss for the
// WireGuard class), both within 1% (+3) of the nft counter; underlay ICMP
// loses nothing.
func TestTraceLabWireGuardUnderlayLoss(t *testing.T) {
	lab.Require(t, "ping")
	topo := lab.New(t, wgTraceTopo)
	wgTunnel(t, topo)
	// Counters before the measured traffic (the handshake and ping).
	before := bridgeCounter(t, topo, "under")
	sink := startTool(t, topo, "d", "udp-sink", "-listen", "198.18.42.2:9000", "-duration", "60s", "-idle", "3s")
	stop := captureHops(t, topo, "",
		labHop{"c", "c", "eth0"}, labHop{"a-under", "a", "eth0"}, labHop{"b-under", "b", "eth0"}, labHop{"d", "d", "eth0"})
	tool(t, topo, "c", "udp-send", "-to", "198.18.42.2:9000", "-count", "3000", "-rate", "1000", "-size", "200")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if out, err := topo.Exec(ctx, "a", "ping", "-c", "30", "-i", "0.02", "-W", "2", "198.18.41.2"); err != nil {
		t.Fatalf("underlay ping: %v: %s", err, out)
	}
	_ = sink.Wait(ctx)
	args := stop()
	dropped := bridgeCounter(t, topo, "under") - before
	if dropped < 200 || dropped > 420 {
		t.Fatalf("nft dropped %d of ~3000 tunnel packets, want about 10%%", dropped)
	}
	d := runTraceJSON(t, exitFindings, args...)
	if testing.Verbose() {
		text, _, _ := vpndiag(t, append([]string{"trace"}, args...)...)
		t.Log(text)
	}

	// WireGuard counters of the direction a -> b at both underlay hops,
	// over every receiver index (a handshake during the run changes it).
	type sum struct{ missing, expected, packets uint64 }
	counters := map[string]*sum{}
	for _, c := range d.Data.Tunnels {
		if c.Kind != "wireguard" || c.Dst != "198.18.41.2" {
			continue
		}
		if counters[c.Hop] == nil {
			counters[c.Hop] = &sum{}
		}
		x := counters[c.Hop]
		x.missing, x.expected, x.packets = x.missing+c.Missing, x.expected+c.Expected, x.packets+c.Packets
	}
	atA, atB := counters["a-under"], counters["b-under"]
	if atA == nil || atB == nil {
		t.Fatalf("tunnel counters %+v, want the a -> b direction at a-under and b-under", d.Data.Tunnels)
	}
	if atA.missing != 0 || atA.packets < 3000 {
		t.Errorf("a-under: %+v, want at least 3000 packets, none missing (before the loss)", *atA)
	}
	near := func(got uint64) bool { return math.Abs(float64(got)-float64(dropped)) <= 0.01*float64(dropped)+3 }
	if !near(atB.missing) {
		t.Errorf("b-under: %d counters missing, nft dropped %d", atB.missing, dropped)
	}
	var tl int
	for _, f := range d.Findings {
		if f.ID != "trace.tunnel-loss" {
			continue
		}
		tl++
		if f.Where.Hop != "b-under" || f.Where.Segment == nil || f.Where.Segment.From != "a-under" || f.Where.Segment.To != "b-under" ||
			f.Where.Class != "wireguard to 198.18.41.2" || !near(uint64(f.Evidence["missing"].(float64))) {
			t.Errorf("trace.tunnel-loss where %+v (segment %+v) evidence %v, want b-under, a-under -> b-under, wireguard to 198.18.41.2, %d missing",
				f.Where, f.Where.Segment, f.Evidence, dropped)
		}
	}
	if tl != 1 {
		t.Errorf("%d trace.tunnel-loss findings, want 1 (one tunnel direction)", tl)
	}
	// Plain packets paired with their WireGuard packets (by size and
	// timing) take the path c -> a-under -> b-under -> d: their loss is on
	// the underlay segment for the inner class. The rest (the sender's
	// bursts are too dense to pair) stay as the WireGuard class on the
	// underlay and the inner class from c to d. Every dropped packet is
	// in exactly one of the two underlay rows.
	const inner, outer = "UDP to 198.18.42.2:9000", "UDP to 198.18.41.2:51820"
	if d.Data.TunnelPairs < 1000 {
		t.Errorf("%d of 3000 plain packets paired with their WireGuard packet, want at least 1000", d.Data.TunnelPairs)
	}
	var innerUnder, outerUnder, innerLAN uint64
	for _, x := range d.Data.Segments {
		switch {
		case x.From == "a-under" && x.To == "b-under" && x.Class == inner:
			innerUnder = x.Lost
			if x.Tunnel != "wireguard" {
				t.Errorf("inner class on the underlay %+v, want tunnel wireguard", x)
			}
		case x.From == "a-under" && x.To == "b-under" && x.Class == outer:
			outerUnder = x.Lost
		case x.From == "c" && x.To == "d" && x.Class == inner:
			innerLAN = x.Lost
		case x.From == "b-under" && x.To == "d" && x.Class == inner && x.Lost <= 3+uint64(dropped)/50:
			// wireguard-go coalesces received datagrams of a flow into
			// one UDP GSO packet (its GRO ignores IP IDs, so also the two
			// on both sides of a lost one); b's kernel splits it again
			// with consecutive IDs, so the second datagram reaches d with
			// another IP ID than it left c with, and does not match: a
			// few packets per run, more when wireguard-go falls behind and
			// coalesces more (4 of 300 losses seen on a loaded machine).
			// Only a pair spanning a loss is renumbered, so the bound
			// scales with the losses.
		case x.Lost != 0:
			t.Errorf("loss elsewhere: %+v", x)
		}
	}
	// Unpaired packets the underlay lost are also lost between c and d;
	// a few more are (the IP ID change described above).
	if !near(innerUnder+outerUnder) || innerLAN+3 < outerUnder || innerLAN > outerUnder+uint64(dropped)/20+3 {
		t.Errorf("lost on the underlay: %d paired + %d unpaired; unpaired between c and d %d; nft dropped %d", innerUnder, outerUnder, innerLAN, dropped)
	}
	t.Logf("nft dropped %d; WireGuard counters missing %d; %d pairs; lost on a-under -> b-under: %d paired (%s), %d unpaired (%s); %d unpaired lost between c and d",
		dropped, atB.missing, d.Data.TunnelPairs, innerUnder, inner, outerUnder, outer, innerLAN)
	from, to, _, _ := d.lossFinding(t)
	if from != "a-under" || to != "b-under" {
		t.Errorf("top trace.loss %s -> %s, want the underlay segment a-under -> b-under", from, to)
	}
	if p := d.segment(t, "a-under", "b-under", "ICMP to 198.18.41.2"); p.Sent != 30 || p.Lost != 0 {
		t.Errorf("underlay ICMP %+v, want 30 sent, none lost", p)
	}
}

// bridgeCounter returns the packets counted by the loss rule of a switch.
func bridgeCounter(t *testing.T, topo *lab.Topology, host string) int {
	t.Helper()
	out, err := topo.Exec(t.Context(), host, "nft", "list", "table", "bridge", lab.NFTTable)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`counter packets (\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no counter in %s", out)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}
