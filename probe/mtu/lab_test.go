//go:build linux

package mtu

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vpndiag/vpndiag/probe/ping"
	"github.com/vpndiag/vpndiag/testdata/lab"
)

// routed: a reaches b through router r, whose link towards b has MTU 1400.
const routed = `
host a
host r forward
host b
link a:eth0=198.18.20.1/24 r:eth0=198.18.20.254/24
link r:eth1=198.18.21.254/24 b:eth0=198.18.21.2/24 mtu 1400
route a default via 198.18.20.254
route b default via 198.18.21.254
`

func runIn(t *testing.T, l *lab.Topology, cfg Config) (*Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cfg.Netns = l.NS("a")
	var probes []string
	cfg.OnProbe = func(p Probe) { probes = append(probes, fmt.Sprintf("%d:%s", p.Size, p.Outcome)) }
	res, err := Run(ctx, cfg)
	t.Logf("probes: %s", strings.Join(probes, " "))
	return res, err
}

var iputilsMTU = regexp.MustCompile(`mtu ?= ?(\d+)`)

// TestLabFragNeeded: the router answers 1401+ byte DF probes with
// "fragmentation needed, MTU 1400"; iputils ping -M do agrees.
func TestLabFragNeeded(t *testing.T) {
	l := lab.New(t, routed)
	lab.Require(t, "ping")
	res, err := runIn(t, l, Config{Target: "198.18.21.2", Timeout: 500 * time.Millisecond, Mode: ping.Privileged})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("result: mtu %d refused %d by %s, frag %+v, interface %s/%d, %d probes in %.2fs",
		res.PathMTU, res.Refused, res.RefusedBy, res.FragNeeded, res.Interface, res.InterfaceMTU, len(res.Probes), res.Seconds)
	if res.PathMTU != 1400 || res.Refused != 1401 || res.RefusedBy != FragNeeded || res.BlackHole {
		t.Errorf("path MTU %d, refused %d by %s, black hole %v; want 1400, 1401 by frag-needed", res.PathMTU, res.Refused, res.RefusedBy, res.BlackHole)
	}
	if len(res.FragNeeded) != 1 || res.FragNeeded[0].From != "198.18.20.254" || res.FragNeeded[0].MTU != 1400 {
		t.Errorf("frag-needed sources %+v, want 198.18.20.254 advertising 1400", res.FragNeeded)
	}
	if res.Interface != "eth0" || res.InterfaceMTU != 1500 || res.Max != 1500 {
		t.Errorf("interface %s MTU %d max %d", res.Interface, res.InterfaceMTU, res.Max)
	}
	if len(res.Probes) > 8 {
		t.Errorf("%d probes; the advertised MTU should shortcut the search", len(res.Probes))
	}
	// Oracle: iputils ping with DF, one byte either side of the path MTU.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if out, err := l.Exec(ctx, "a", "ping", "-n", "-c", "1", "-W", "2", "-M", "do", "-s", strconv.Itoa(Payload(1400)), "198.18.21.2"); err != nil {
		t.Errorf("iputils: 1400-byte DF echo failed: %v\n%s", err, out)
	}
	// The kernel learned the path MTU from the frag-needed our probes got;
	// iputils reports it from the cache as a local error (or from the ICMP
	// error itself when the cache has expired).
	out, _ := l.Exec(ctx, "a", "sh", "-c", fmt.Sprintf("ping -n -c 2 -i 0.3 -W 2 -M do -s %d 198.18.21.2 2>&1; true", Payload(1401)))
	m := iputilsMTU.FindStringSubmatch(string(out))
	if m == nil || m[1] != "1400" {
		t.Errorf("iputils ping -M do -s %d: no 'mtu = 1400':\n%s", Payload(1401), out)
	}
	if out, err := l.Exec(ctx, "a", "ip", "route", "get", "198.18.21.2"); err != nil || !strings.Contains(string(out), "mtu 1400") {
		t.Errorf("kernel route cache has no PMTU 1400: %v\n%s", err, out)
	}
}

// TestLabBlackHole: the same path with the router's ICMP destination
// unreachable dropped by nftables: no frag-needed arrives, 1401+ byte probes
// vanish, and the search still finds 1400 by timeouts.
func TestLabBlackHole(t *testing.T) {
	l := lab.New(t, routed)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rules := `add table inet vdmtu
add chain inet vdmtu output_chain { type filter hook output priority 0; }
add chain inet vdmtu forward_chain { type filter hook forward priority 0; }
add rule inet vdmtu output_chain icmp type destination-unreachable counter drop
add rule inet vdmtu forward_chain icmp type destination-unreachable counter drop
`
	if out, err := l.Sh(ctx, "r", "nft -f - <<'EOF'\n"+rules+"EOF"); err != nil {
		t.Fatalf("nft: %v\n%s", err, out)
	}
	res, err := runIn(t, l, Config{Target: "198.18.21.2", Timeout: 300 * time.Millisecond, Mode: ping.Privileged})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("result: mtu %d refused %d by %s, black hole %v, vanished %d lost %d, %d probes in %.2fs",
		res.PathMTU, res.Refused, res.RefusedBy, res.BlackHole, res.Vanished, res.Lost, len(res.Probes), res.Seconds)
	if res.PathMTU != 1400 || res.Refused != 1401 || res.RefusedBy != Timeout || !res.BlackHole || len(res.FragNeeded) != 0 {
		t.Errorf("path MTU %d, refused %d by %s, black hole %v, frag %v; want 1400, 1401 by timeout, black hole, no frag-needed",
			res.PathMTU, res.Refused, res.RefusedBy, res.BlackHole, res.FragNeeded)
	}
	// Every refused size vanished on all 3 attempts.
	if res.Vanished%3 != 0 || res.Vanished < 3 {
		t.Errorf("vanished %d probes, want a multiple of 3", res.Vanished)
	}
	// The router really generated and dropped the errors.
	out, err := l.Exec(ctx, "r", "nft", "list", "chain", "inet", "vdmtu", "output_chain")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`packets (\d+)`).FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("no counter in:\n%s", out)
	}
	if n, _ := strconv.Atoi(m[1]); n != res.Vanished {
		t.Errorf("router dropped %d ICMP errors, probes vanished %d", n, res.Vanished)
	}
}

// TestLabUnprivileged: the same search with an unprivileged ICMP socket.
func TestLabUnprivileged(t *testing.T) {
	l := lab.New(t, routed)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if out, err := l.Exec(ctx, "a", "sysctl", "-w", "net.ipv4.ping_group_range=0 2147483647"); err != nil {
		t.Fatalf("sysctl: %v\n%s", err, out)
	}
	res, err := runIn(t, l, Config{Target: "198.18.21.2", Timeout: 500 * time.Millisecond, Mode: ping.Unprivileged})
	if err != nil {
		t.Fatal(err)
	}
	if res.Privileged || res.PathMTU != 1400 || len(res.FragNeeded) != 1 || res.FragNeeded[0].From != "198.18.20.254" {
		t.Errorf("result %+v", res)
	}
}

// TestLabUnreachable: a target that never answers is an error, quickly.
func TestLabUnreachable(t *testing.T) {
	l := lab.New(t, routed)
	start := time.Now()
	res, err := runIn(t, l, Config{Target: "198.18.21.99", Timeout: 200 * time.Millisecond, Retries: 2, Mode: ping.Privileged})
	if err == nil || res == nil || res.PathMTU != 0 || time.Since(start) > 10*time.Second {
		t.Fatalf("err %v result %+v after %v", err, res, time.Since(start))
	}
	t.Log(err)
}

// routed6 is routed over IPv6 (2001:2::/48): r's link towards b has MTU
// 1400.
const routed6 = `
host a
host r forward
host b
link a:eth0=2001:2:0:20::1/64 r:eth0=2001:2:0:20::fe/64
link r:eth1=2001:2:0:21::fe/64 b:eth0=2001:2:0:21::2/64 mtu 1400
route a default6 via 2001:2:0:20::fe
route b default6 via 2001:2:0:21::fe
`

// TestLabIPv6PacketTooBig: over IPv6 the router answers 1401+ byte probes
// with ICMPv6 Packet Too Big (MTU 1400), raw and unprivileged sockets; with
// the router's ICMPv6 errors dropped, a black hole.
func TestLabIPv6PacketTooBig(t *testing.T) {
	l := lab.New(t, routed6)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if out, err := l.Exec(ctx, "a", "sysctl", "-w", "net.ipv4.ping_group_range=0 2147483647"); err != nil {
		t.Fatalf("sysctl: %v\n%s", err, out)
	}
	for _, mode := range []ping.Mode{ping.Privileged, ping.Unprivileged} {
		res, err := runIn(t, l, Config{Target: "2001:2:0:21::2", Timeout: 500 * time.Millisecond, Mode: mode})
		if err != nil {
			t.Fatal(err)
		}
		if !res.IPv6 || res.Min != DefaultMin6 || res.PathMTU != 1400 || res.Refused != 1401 || res.RefusedBy != FragNeeded || res.BlackHole ||
			len(res.FragNeeded) != 1 || res.FragNeeded[0].From != "2001:2:0:20::fe" || res.FragNeeded[0].MTU != 1400 {
			t.Errorf("mode %v: %+v", mode, res)
		}
	}
	if out, err := l.Sh(ctx, "r", "nft add table ip6 vdbh && nft 'add chain ip6 vdbh o { type filter hook output priority 0; }' && nft add rule ip6 vdbh o icmpv6 type packet-too-big drop"); err != nil {
		t.Fatalf("nft: %v\n%s", err, out)
	}
	res, err := runIn(t, l, Config{Target: "2001:2:0:21::2", Timeout: 300 * time.Millisecond, Mode: ping.Privileged})
	if err != nil {
		t.Fatal(err)
	}
	if res.PathMTU != 1400 || !res.BlackHole || len(res.FragNeeded) != 0 {
		t.Errorf("black hole: %+v", res)
	}
}
