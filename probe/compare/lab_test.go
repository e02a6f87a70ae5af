package compare

import (
	"context"
	"encoding/json"
	"math"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/vpndiag/vpndiag/probe/iperf"
	"github.com/vpndiag/vpndiag/probe/ping"
	"github.com/vpndiag/vpndiag/testdata/lab"
)

// vxlanPair: a and b joined by a veth (the underlay, 198.18.30.0/24) and a
// VXLAN tunnel over it (198.18.31.0/24). Static neighbors: no ARP crosses
// the tunnel, so with loss on the underlay a lost ARP reply cannot hold
// echo replies in the neighbor queue (loss the drop rule did not cause).
const vxlanPair = `
host a
host b
link a:eth0=198.18.30.1/24 b:eth0=198.18.30.2/24
vxlan a:vx0 vni 42 local 198.18.30.1 remote 198.18.30.2 dev eth0 addr 198.18.31.1/24 neigh static
vxlan b:vx0 vni 42 local 198.18.30.2 remote 198.18.30.1 dev eth0 addr 198.18.31.2/24 neigh static
`

func compareIn(t *testing.T, l *lab.Topology, cfg Config) *Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg.Netns, cfg.Mode = l.NS("a"), ping.Privileged
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res
}

var nftPackets = regexp.MustCompile(`packets (\d+)`)

// TestLabTunnelLoss: the underlay drops 20% of the encapsulated packets
// (UDP 4789) arriving at b, ICMP over the underlay passes. compare finds
// ~20% loss in the tunnel (binomial tolerance) and none on the underlay,
// and the drop rule's counter accounts for every lost echo.
func TestLabTunnelLoss(t *testing.T) {
	l := lab.New(t, vxlanPair+"loss b input udp dport 4789 20%\n")
	const n = 500
	res := compareIn(t, l, Config{Tunnel: "198.18.31.2", Underlay: "198.18.30.2", Count: n, Interval: 10 * time.Millisecond})
	tp, up := res.Tunnel.Ping, res.Underlay.Ping
	if tp == nil || up == nil {
		t.Fatalf("ping errors: %q %q", res.Tunnel.PingError, res.Underlay.PingError)
	}
	tl := tp.Sent - tp.Received
	t.Logf("tunnel: sent %d lost %d (%.1f%%), p50 %v; underlay: sent %d lost %d, p50 %v; z %.1f; overhead %+v",
		tp.Sent, tl, tp.LossPercent, tp.P50, up.Sent, up.Sent-up.Received, up.P50, res.LossZ, *res.Overhead)
	if tp.Sent != n || up.Sent != n || tp.Size != DefaultSize || up.Size != DefaultSize {
		t.Errorf("sent %d/%d with payload %d/%d, want %d with %d", tp.Sent, up.Sent, tp.Size, up.Size, n, DefaultSize)
	}
	// Binomial: sd = sqrt(n p (1-p)) = 8.9 echoes; allow 4 sd.
	sd := math.Sqrt(n * 0.2 * 0.8)
	if math.Abs(float64(tl)-0.2*n) > 4*sd {
		t.Errorf("tunnel lost %d of %d, want %.0f ± %.0f", tl, n, 0.2*n, 4*sd)
	}
	if up.Received != up.Sent {
		t.Errorf("underlay lost %d of %d, want none", up.Sent-up.Received, up.Sent)
	}
	// The RTT series over time account for every echo of each path.
	for _, p := range []struct {
		s    *RTTSeries
		st   *ping.Stats
		name string
	}{{res.Tunnel.RTT, tp, "tunnel"}, {res.Underlay.RTT, up, "underlay"}} {
		if p.s == nil {
			t.Fatalf("%s: no RTT series", p.name)
		}
		replies, lost := 0, 0
		for _, b := range p.s.Buckets {
			replies += b.Replies
			lost += b.Lost
		}
		if replies != p.st.Received || lost != p.st.Sent-p.st.Received || len(p.s.Buckets) != n || p.s.Width != 10*time.Millisecond {
			t.Errorf("%s series: %d replies, %d lost in %d intervals of %v; stats %d of %d", p.name, replies, lost,
				len(p.s.Buckets), p.s.Width, p.st.Received, p.st.Sent)
		}
	}
	// Ground truth: the rule's counter. The only encapsulated packets a
	// sends are the echo requests (no ARP: static neighbors), so every
	// drop is one lost echo.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := l.Exec(ctx, "b", "nft", "list", "table", "inet", "vdlab")
	if err != nil {
		t.Fatal(err)
	}
	m := nftPackets.FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("no counter:\n%s", out)
	}
	dropped, _ := strconv.Atoi(m[1])
	if dropped < tl-2 || dropped > tl+2 {
		t.Errorf("nft dropped %d encapsulated packets, compare counted %d lost echoes", dropped, tl)
	}
	ids := map[string]bool{}
	for _, f := range Findings(res) {
		ids[f.ID] = true
	}
	if !ids["probe.tunnel-loss"] || !ids["probe.tunnel-overhead"] || len(ids) != 2 {
		t.Errorf("findings %v", ids)
	}
	if res.Overhead == nil || res.Overhead.Low > res.Overhead.Median || res.Overhead.High < res.Overhead.Median {
		t.Errorf("overhead %+v", res.Overhead)
	}
}

// TestLabTunnelThroughput: a 50 Mbit/s token bucket on a's tunnel device.
// The tunnel's throughput (iperf3 protocol against Debian's iperf3 -s on b)
// is within [0.6, 1.05] × 50 Mbit/s — TCP goodput over the shaped inner
// frames — and agrees with iperf3's own client within 10%; the underlay is
// unshaped, so the ratio is far below 0.5 and probe.tunnel-throughput is
// reported.
func TestLabTunnelThroughput(t *testing.T) {
	lab.Require(t, "iperf3", "tc")
	l := lab.New(t, vxlanPair+"exec a tc qdisc add dev vx0 root tbf rate 50mbit burst 32kbit latency 50ms\n")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := l.Start(ctx, "b", "iperf3", "-s", "--forceflush")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.WaitFor(ctx, "Server listening"); err != nil {
		t.Fatalf("iperf3 -s: %v", err)
	}
	res := compareIn(t, l, Config{Tunnel: "198.18.31.2", Underlay: "198.18.30.2", Count: 20, Interval: 20 * time.Millisecond,
		Throughput: true, Iperf: iperf.Config{Duration: 3 * time.Second, Parallel: 2}})
	if res.Tunnel.ThroughputError != "" || res.Underlay.ThroughputError != "" {
		t.Fatalf("throughput errors: %q %q", res.Tunnel.ThroughputError, res.Underlay.ThroughputError)
	}
	tun, und := res.Tunnel.BitsPerSecond, res.Underlay.BitsPerSecond
	t.Logf("tunnel %.1f Mbit/s, underlay %.1f Mbit/s, ratio %.4f", tun/1e6, und/1e6, res.ThroughputRatio)
	if tun < 0.6*50e6 || tun > 1.05*50e6 {
		t.Errorf("tunnel %.1f Mbit/s, want 30..52.5 (tbf 50 Mbit/s)", tun/1e6)
	}
	if res.ThroughputRatio >= 0.5 || math.Abs(res.ThroughputRatio-tun/und) > 1e-9 {
		t.Errorf("ratio %.3f", res.ThroughputRatio)
	}
	found := false
	for _, f := range Findings(res) {
		found = found || f.ID == "probe.tunnel-throughput"
	}
	if !found {
		t.Error("no probe.tunnel-throughput finding")
	}
	// Oracle: iperf3's own client over the tunnel, same duration and streams,
	// once iperf3 -s listens again after compare's two tests (it reopens
	// its socket between tests, and iperf3 -c does not retry).
	if err := srv.WaitForN(ctx, "Server listening", 3); err != nil {
		t.Fatalf("iperf3 -s after two tests: %v", err)
	}
	out, err := l.Exec(ctx, "a", "iperf3", "-c", "198.18.31.2", "-t", "3", "-P", "2", "-J")
	if err != nil {
		t.Fatalf("iperf3 -c: %v", err)
	}
	var js struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal(out, &js); err != nil {
		t.Fatal(err)
	}
	theirs := js.End.SumReceived.BitsPerSecond
	t.Logf("iperf3 -c over the tunnel: %.1f Mbit/s", theirs/1e6)
	if math.Abs(tun-theirs) > 0.1*theirs {
		t.Errorf("tunnel %.1f Mbit/s vs iperf3 %.1f Mbit/s: more than 10%% apart", tun/1e6, theirs/1e6)
	}
}

// TestLabMTUBoth: the tunnel's path MTU is the VXLAN device's (1450), the
// underlay's the veth's (1500).
func TestLabMTUBoth(t *testing.T) {
	l := lab.New(t, vxlanPair)
	res := compareIn(t, l, Config{Tunnel: "198.18.31.2", Underlay: "198.18.30.2", Count: 10, Interval: 10 * time.Millisecond, MTU: true})
	if res.Tunnel.MTU == nil || res.Underlay.MTU == nil {
		t.Fatalf("mtu errors %q %q", res.Tunnel.MTUError, res.Underlay.MTUError)
	}
	if res.Tunnel.MTU.PathMTU != 1450 || res.Underlay.MTU.PathMTU != 1500 {
		t.Errorf("path MTU tunnel %d underlay %d, want 1450 and 1500", res.Tunnel.MTU.PathMTU, res.Underlay.MTU.PathMTU)
	}
}

// TestLabUnreachableTunnel: a tunnel address nobody has: the underlay is
// still measured, the tunnel is reported unreachable, nothing hangs.
func TestLabUnreachableTunnel(t *testing.T) {
	l := lab.New(t, vxlanPair)
	start := time.Now()
	res := compareIn(t, l, Config{Tunnel: "198.18.31.99", Underlay: "198.18.30.2", Count: 10, Interval: 10 * time.Millisecond, Wait: 300 * time.Millisecond})
	if res.Underlay.Ping == nil || res.Underlay.Ping.Received != 10 || res.Tunnel.Ping == nil || res.Tunnel.Ping.Received != 0 || time.Since(start) > 10*time.Second {
		t.Fatalf("result %+v after %v", res, time.Since(start))
	}
	ids := map[string]bool{}
	for _, f := range Findings(res) {
		ids[f.ID] = true
	}
	if !ids["probe.unreachable"] || ids["probe.tunnel-loss"] {
		t.Errorf("findings %v", ids)
	}
}
