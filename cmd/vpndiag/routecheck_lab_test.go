//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vpndiag/vpndiag/analyze/analyzetest"
	"github.com/vpndiag/vpndiag/report"
	"github.com/vpndiag/vpndiag/testdata/lab"
)

// The lab proof of routecheck (issue 5): two real BGP speakers (BIRD 2)
// peer over a tunnel; the far one (AS 65002) exports 0.0.0.0/0; the near
// one (AS 65001) reaches the far tunnel endpoint through an underlay default
// route (metric 100) and installs what it learns into the kernel at metric
// 32, so an accepted default wins and the route to the tunnel's own
// endpoint recurses into the tunnel: the tunnel breaks, the far side's hold
// timer expires, the session drops, the route goes, the session comes back,
// and so on forever. routecheck must see that from a capture and from the
// live routing table; with an import filter or a static /32 to the endpoint
// via the underlay, the session is stable and neither mode raises it.

const (
	labNearAS      = 65001
	labFarAS       = 65002
	labNearTunnel  = "198.18.100.1"
	labFarTunnel   = "198.18.100.2" // the BGP peer that advertises the default
	labNearOuter   = "198.18.1.1"
	labFarEndpoint = "198.18.2.2" // the far tunnel endpoint (underlay address)
	labUnderlayGW  = "198.18.1.254"
	labWGPort      = 51820
	// labHold is the BGP hold time (BIRD's minimum): a broken tunnel is
	// noticed within 3 s, which keeps every scenario short.
	labHold = 3
)

// labTopology: near (n) and far (f) routers joined by a forwarding underlay
// router (r); n reaches f's underlay address only through its default
// route. The tunnel device (vx0, or WireGuard set up by the test) carries
// 198.18.100.0/24.
func labTopology(vxlan, pin bool) string {
	s := `
host n
host r forward
host f
link n:eth0=198.18.1.1/24 r:eth0=198.18.1.254/24
link r:eth1=198.18.2.254/24 f:eth0=198.18.2.2/24
route n default via 198.18.1.254 metric 100
route f default via 198.18.2.254
`
	if vxlan {
		// No "dev": the outer packets follow the routing table, as on the
		// router of the incident.
		s += "vxlan n:vx0 vni 100 local 198.18.1.1 remote 198.18.2.2 addr 198.18.100.1/24 mtu 1450\n"
		s += "vxlan f:vx0 vni 100 local 198.18.2.2 remote 198.18.1.1 addr 198.18.100.2/24 mtu 1450\n"
	}
	if pin {
		s += "route n 198.18.2.2/32 via 198.18.1.254 dev eth0\n"
	}
	return s
}

// birdTimers make a broken tunnel visible within seconds and bring the
// session back at once, so a capture of ~10 s shows a flap.
var birdTimers = fmt.Sprintf(`	hold time %d;
	keepalive time 1;
	connect delay time 1;
	connect retry time 2;
	error wait time 1, 2;
`, labHold)

// nearBirdConf is the near router: every route learned over BGP goes into
// the kernel at metric 32 (the underlay default has metric 100).
func nearBirdConf(filter bool) string {
	imp := "import all;"
	if filter {
		// The remedy routecheck prints for BIRD 2, keeping the rejected
		// route visible to "show route filtered".
		imp = "import keep filtered on;\n\t\timport filter { if net = 0.0.0.0/0 then reject; accept; };"
	}
	return fmt.Sprintf(`log stderr all;
router id %s;
protocol device { scan time 2; }
protocol kernel {
	ipv4 { import none; export all; };
	metric 32;
}
protocol bgp tunnel {
	local %s as %d;
	neighbor %s as %d;
%s	ipv4 {
		%s
		export none;
	};
}
`, labNearTunnel, labNearTunnel, labNearAS, labFarTunnel, labFarAS, birdTimers, imp)
}

// farBirdConf is the cloud side: it exports a default route, as the
// downloadable configuration of the incident did.
func farBirdConf() string {
	return fmt.Sprintf(`log stderr all;
router id %s;
protocol device { scan time 2; }
protocol static defaults {
	ipv4;
	route 0.0.0.0/0 blackhole;
}
protocol bgp tunnel {
	local %s as %d;
	neighbor %s as %d;
%s	ipv4 {
		import none;
		export where proto = "defaults";
	};
}
`, labFarTunnel, labFarTunnel, labFarAS, labNearTunnel, labNearAS, birdTimers)
}

// birdSpeaker is one running bird.
type birdSpeaker struct {
	topo *lab.Topology
	host string
	sock string
	proc *lab.Proc
}

func startBird(t *testing.T, ctx context.Context, topo *lab.Topology, host, conf string) *birdSpeaker {
	t.Helper()
	dir := t.TempDir()
	cf := filepath.Join(dir, "bird.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "bird.ctl")
	p, err := topo.Start(ctx, host, "bird", "-f", "-c", cf, "-s", sock)
	if err != nil {
		t.Fatal(err)
	}
	return &birdSpeaker{topo: topo, host: host, sock: sock, proc: p}
}

func (b *birdSpeaker) cli(ctx context.Context, args ...string) (string, error) {
	out, err := b.topo.Exec(ctx, b.host, append([]string{"birdc", "-s", b.sock}, args...)...)
	return string(out), err
}

// waitEstablished polls "show protocols" until the BGP session is
// Established, at most 30 s.
func (b *birdSpeaker) waitEstablished(t *testing.T, ctx context.Context) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		out, err := b.cli(ctx, "show", "protocols", "tunnel")
		last = out
		if err == nil && strings.Contains(out, "Established") {
			return
		}
		select {
		case <-b.proc.Done():
			t.Fatalf("bird on %s exited: %s", b.host, b.proc.Stderr())
		case <-time.After(200 * time.Millisecond):
		}
	}
	t.Fatalf("bird on %s: BGP session not Established after 30 s:\n%s\nbird log:\n%s", b.host, last, tailLines(b.proc.Stderr(), 30))
}

func tailLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// kernelDefaults returns the IPv4 default routes of host's main table, one
// per line as "ip route" prints them.
func kernelDefaults(t *testing.T, ctx context.Context, topo *lab.Topology, host string) []string {
	t.Helper()
	out, err := topo.Exec(ctx, host, "ip", "-4", "route", "show", "default")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

func birdDefault(lines []string, dev string) bool {
	for _, l := range lines {
		if strings.Contains(l, "proto bird") && strings.Contains(l, "dev "+dev+" ") {
			return true
		}
	}
	return false
}

// labFinding is what a scenario expects of one finding.
type labFinding struct {
	id       string
	severity report.Severity
	evidence map[string]any // compared with fmt.Sprint
	frames   bool           // the finding must reference frames
}

// checkFindings asserts that r holds exactly the findings of want (in any
// order), with the evidence values given.
func checkFindings(t *testing.T, what string, r *report.Report, want []labFinding) {
	t.Helper()
	got := r.Findings
	var gotIDs []string
	for _, f := range got {
		gotIDs = append(gotIDs, f.ID+"/"+f.Severity.String())
	}
	if len(got) != len(want) {
		t.Errorf("%s: findings %v, want %d", what, gotIDs, len(want))
		for _, f := range got {
			t.Logf("%s: %s/%s: %s", what, f.ID, f.Severity, f.Summary)
		}
	}
	for _, w := range want {
		i := slices.IndexFunc(got, func(f report.Finding) bool { return f.ID == w.id })
		if i < 0 {
			t.Errorf("%s: no %s finding (have %v)", what, w.id, gotIDs)
			continue
		}
		f := got[i]
		if f.Severity != w.severity {
			t.Errorf("%s: %s severity %s, want %s: %s", what, w.id, f.Severity, w.severity, f.Summary)
		}
		for k, v := range w.evidence {
			if fmt.Sprint(f.Evidence[k]) != fmt.Sprint(v) {
				t.Errorf("%s: %s evidence %s = %v, want %v", what, w.id, k, f.Evidence[k], v)
			}
		}
		if w.frames && len(f.Frames) == 0 {
			t.Errorf("%s: %s names no frames", what, w.id)
		}
		if f.Remedy == "" {
			t.Errorf("%s: %s has no remedy", what, w.id)
		}
	}
}

// requireBird fails unless bird and birdc (Debian package bird2) are
// installed, and the lab's own tools and tshark (the oracle) are there.
func requireBird(t *testing.T) {
	t.Helper()
	lab.Require(t, "tshark")
	for _, tool := range []string{"bird", "birdc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("routecheck lab tests need %s: apt-get install -y bird2", tool)
		}
	}
}

// labScenario is one lab run.
type labScenario struct {
	name   string
	wg     bool // WireGuard tunnel instead of VXLAN
	filter bool // import filter on the near router
	pin    bool // static /32 route to the far endpoint via the underlay
}

func (sc labScenario) flaps() bool { return !sc.filter && !sc.pin }

// TestRoutecheckLab runs the scenarios in parallel, each in its own lab.
func TestRoutecheckLab(t *testing.T) {
	requireBird(t)
	for _, sc := range []labScenario{
		{name: "vxlan-default"},
		{name: "vxlan-import-filter", filter: true},
		{name: "vxlan-static-endpoint-route", pin: true},
		{name: "wireguard-default", wg: true},
	} {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			runLabScenario(t, sc)
		})
	}
}

func runLabScenario(t *testing.T, sc labScenario) {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
	defer cancel()
	topo := lab.New(t, labTopology(!sc.wg, sc.pin))
	dev := "vx0"
	if sc.wg {
		dev = setupWireGuard(t, ctx, topo)
	}
	dir := t.TempDir()
	underlay, tunnel := filepath.Join(dir, "n-underlay.pcap"), filepath.Join(dir, "n-tunnel.pcap")
	cu, err := topo.Capture(ctx, "n", "eth0", underlay, "")
	if err != nil {
		t.Fatal(err)
	}
	ct, err := topo.Capture(ctx, "n", dev, tunnel, "")
	if err != nil {
		t.Fatal(err)
	}
	far := startBird(t, ctx, topo, "f", farBirdConf())
	near := startBird(t, ctx, topo, "n", nearBirdConf(sc.filter))
	near.waitEstablished(t, ctx)
	start := time.Now()

	ns := topo.NS("n")
	if sc.flaps() {
		liveRecursion(t, ctx, topo, ns, dev)
		// Let the session break twice. The near side's packets no longer
		// leave, the far side stops sending new data once its segments go
		// unacknowledged, so both hold timers expire (and neither
		// NOTIFICATION gets through reliably); the near side withdraws
		// the default and the session comes back.
		waitLog(t, near, "Hold timer expired", 2, 40*time.Second)
	} else {
		// Stable: stay for more than two hold times and prove the session
		// never dropped.
		time.Sleep(time.Duration(2*labHold+1) * time.Second)
		out, err := near.cli(ctx, "show", "protocols", "tunnel")
		if err != nil || !strings.Contains(out, "Established") {
			t.Fatalf("session not established after %v: %v\n%s", time.Since(start), err, out)
		}
		if n := strings.Count(near.proc.Stderr(), "Hold timer expired") + strings.Count(far.proc.Stderr(), "Hold timer expired"); n != 0 {
			t.Fatalf("stable scenario: %d hold timer expiries:\n%s", n, tailLines(near.proc.Stderr(), 20))
		}
		defaults := kernelDefaults(t, ctx, topo, "n")
		switch {
		case sc.filter:
			// Received on the wire, rejected on import, never in the kernel.
			out, err := near.cli(ctx, "show", "route", "filtered")
			if err != nil || !strings.Contains(out, "0.0.0.0/0") {
				t.Errorf("the default is not among the filtered routes: %v\n%s", err, out)
			}
			if birdDefault(defaults, dev) {
				t.Errorf("filtered default installed: %q", defaults)
			}
		case sc.pin:
			// Installed and active, but the /32 keeps the endpoint on the underlay.
			if !birdDefault(defaults, dev) {
				t.Errorf("learned default not installed: %q", defaults)
			}
		}
		out, errOut, code := vpndiag(t, "routecheck", "--format", "json", "--netns", ns)
		if code != 0 {
			t.Errorf("live: exit %d, want 0: %s", code, errOut)
		}
		r := readReport(t, out)
		checkFindings(t, "live", r, nil)
		// The endpoint leaves via the underlay; with the pin, live mode
		// names the /32 that protects it.
		pinned := ""
		if sc.pin {
			pinned = labFarEndpoint + "/32 dev eth0"
		}
		want := fmt.Sprint(labFarEndpoint, "vxlan vx0", "eth0", labUnderlayGW, false, pinned)
		if rows := tableRows(r, "endpoint_routes"); len(rows) != 1 || rows[0] != want {
			t.Errorf("live endpoint routes %q, want [%q]", rows, want)
		}
	}
	for _, c := range []*lab.Capture{cu, ct} {
		if err := c.Stop(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("captured %d underlay and %d tunnel frames in %v", cu.Stats().Packets, ct.Stats().Packets, time.Since(start).Round(time.Second))
	checkCaptureMode(t, sc, underlay, tunnel)
}

// tableRows returns the rows of r's table name, each as fmt.Sprint(cells...).
func tableRows(r *report.Report, name string) []string {
	var rows []string
	for _, tb := range r.Tables {
		if tb.Name == name {
			for _, row := range tb.Rows {
				rows = append(rows, fmt.Sprint(row...))
			}
		}
	}
	return rows
}

// waitLog waits until b's log holds substr at least n times, at most max.
func waitLog(t *testing.T, b *birdSpeaker, substr string, n int, max time.Duration) {
	t.Helper()
	deadline := time.Now().Add(max)
	for strings.Count(b.proc.Stderr(), substr) < n {
		if time.Now().After(deadline) {
			t.Fatalf("bird on %s: %q seen %d times in %v, want %d:\n%s", b.host, substr,
				strings.Count(b.proc.Stderr(), substr), max, n, tailLines(b.proc.Stderr(), 30))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// liveRecursion runs the live check while the learned default is in the
// near router's kernel. The session flaps, so the default comes and goes: a
// check is only judged when the default was there before and after it (at
// most 5 tries).
func liveRecursion(t *testing.T, ctx context.Context, topo *lab.Topology, ns, dev string) {
	t.Helper()
	kind := "vxlan"
	if dev != "vx0" {
		kind = "wireguard"
	}
	for try := 1; try <= 5; try++ {
		deadline := time.Now().Add(20 * time.Second)
		for !birdDefault(kernelDefaults(t, ctx, topo, "n"), dev) {
			if time.Now().After(deadline) {
				t.Fatalf("the learned default never reached the kernel: %q", kernelDefaults(t, ctx, topo, "n"))
			}
			time.Sleep(50 * time.Millisecond)
		}
		out, errOut, code := vpndiag(t, "routecheck", "--format", "json", "--netns", ns)
		if !birdDefault(kernelDefaults(t, ctx, topo, "n"), dev) {
			t.Logf("try %d: the default was withdrawn during the check", try)
			continue
		}
		if code != exitFindings {
			t.Errorf("live: exit %d, want %d: %s", code, exitFindings, errOut)
		}
		r := readReport(t, out)
		checkFindings(t, "live", r, []labFinding{{id: "route.endpoint-recursion", severity: report.SeverityError,
			evidence: map[string]any{"endpoint": labFarEndpoint, "tunnel_kind": kind, "tunnel_device": dev,
				"route_device": dev, "gateway": labFarTunnel}}})
		// The failover table shows which default is active: the learned one.
		rows := tableRows(r, "tunnel_failover")
		want := []string{
			fmt.Sprint("0.0.0.0/0", dev, labFarTunnel, 32, "bird", true, true),
			fmt.Sprint("0.0.0.0/0", "eth0", labUnderlayGW, 100, "boot", false, false),
		}
		if !slices.Equal(rows, want) {
			t.Errorf("failover table\n got %q\nwant %q", rows, want)
		}
		return
	}
	t.Fatal("the learned default was withdrawn during each of 5 live checks")
}

// setupWireGuard starts userspace WireGuard on n and f (unique device names:
// their control sockets in /var/run/wireguard are shared by all
// namespaces), peers them over the underlay and addresses the tunnel like
// vx0. It returns n's device name.
func setupWireGuard(t *testing.T, ctx context.Context, topo *lab.Topology) string {
	t.Helper()
	wgGo := wireguardGo(t)
	if _, err := exec.LookPath("wg"); err != nil {
		t.Fatal("the WireGuard scenario needs wg: apt-get install -y wireguard-tools")
	}
	dir := t.TempDir()
	key := func(name string) (priv, pub string) {
		k, err := exec.CommandContext(ctx, "wg", "genkey").Output()
		if err != nil {
			t.Fatalf("wg genkey: %v", err)
		}
		priv = filepath.Join(dir, name+".key")
		if err := os.WriteFile(priv, k, 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.CommandContext(ctx, "wg", "pubkey")
		cmd.Stdin = strings.NewReader(string(k))
		p, err := cmd.Output()
		if err != nil {
			t.Fatalf("wg pubkey: %v", err)
		}
		return priv, strings.TrimSpace(string(p))
	}
	type side struct{ host, dev, addr, peerEndpoint, priv, pub string }
	sides := []*side{
		{host: "n", dev: "wn" + topo.ID(), addr: labNearTunnel + "/24", peerEndpoint: labFarEndpoint},
		{host: "f", dev: "wf" + topo.ID(), addr: labFarTunnel + "/24", peerEndpoint: labNearOuter},
	}
	for _, s := range sides {
		s.priv, s.pub = key(s.host)
		p, err := topo.Start(ctx, s.host, wgGo, "-f", s.dev)
		if err != nil {
			t.Fatal(err)
		}
		// wireguard-go leaves its control socket behind when killed;
		// removing it also makes a running wireguard-go exit.
		sock := filepath.Join("/var/run/wireguard", s.dev+".sock")
		t.Cleanup(func() { os.Remove(sock) })
		deadline := time.Now().Add(10 * time.Second)
		for {
			if _, err := os.Stat(sock); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("wireguard-go %s on %s: no control socket after 10 s: %s", s.dev, s.host, p.Stderr())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for i, s := range sides {
		peer := sides[1-i]
		for _, argv := range [][]string{
			{"wg", "set", s.dev, "private-key", s.priv, "listen-port", fmt.Sprint(labWGPort),
				"peer", peer.pub, "allowed-ips", "198.18.100.0/24", "endpoint", fmt.Sprintf("%s:%d", s.peerEndpoint, labWGPort)},
			{"ip", "addr", "add", s.addr, "dev", s.dev},
			{"ip", "link", "set", s.dev, "mtu", "1420", "up"},
		} {
			if _, err := topo.Exec(ctx, s.host, argv...); err != nil {
				t.Fatal(err)
			}
		}
	}
	return sides[0].dev
}

// wireguardGo finds the userspace WireGuard binary in PATH or in
// $(go env GOPATH)/bin.
func wireguardGo(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("wireguard"); err == nil {
		return p
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, d := range filepath.SplitList(strings.TrimSpace(string(out))) {
			p := filepath.Join(d, "bin", "wireguard")
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	t.Fatal("the WireGuard scenario needs userspace WireGuard: GOFLAGS= go install golang.zx2c4.com/wireguard@latest")
	return ""
}

// tsharkFrames returns the frame numbers tshark selects with filter.
func tsharkFrames(t *testing.T, file, filter string) []uint64 {
	t.Helper()
	var fs []uint64
	for _, row := range analyzetest.Tshark(t, file, filter, "frame.number") {
		var n uint64
		fmt.Sscan(row[0], &n)
		fs = append(fs, n)
	}
	return fs
}

// tsharkSessions counts, with tshark, the TCP connections on which both
// speakers sent a KEEPALIVE: the BGP sessions that reached Established.
func tsharkSessions(t *testing.T, file string) int {
	t.Helper()
	dirs := map[string]map[bool]bool{}
	for _, row := range analyzetest.Tshark(t, file, "bgp.type == 4", "tcp.stream", "tcp.srcport") {
		if dirs[row[0]] == nil {
			dirs[row[0]] = map[bool]bool{}
		}
		dirs[row[0]][row[1] == "179"] = true
	}
	n := 0
	for _, d := range dirs {
		if len(d) == 2 {
			n++
		}
	}
	return n
}

func findingByID(r *report.Report, id string) *report.Finding {
	for i := range r.Findings {
		if r.Findings[i].ID == id {
			return &r.Findings[i]
		}
	}
	return nil
}

// checkCaptureMode runs routecheck --pcap over the captures of a scenario
// and checks its findings against the scenario and against tshark.
func checkCaptureMode(t *testing.T, sc labScenario, underlay, tunnel string) {
	t.Helper()
	type run struct {
		file   string
		flags  []string // --endpoint / --tunnel-peer
		kind   string   // tunnel_kind evidence ("" = no BGP visible)
		covers []string
	}
	endpoint := []string{"--endpoint", labFarEndpoint}
	runs := []run{
		// On the tunnel device there are no outer headers: the endpoint
		// is given, as the command's help says.
		{file: tunnel, flags: endpoint, kind: "tunnel", covers: []string{labFarEndpoint}},
		// On the underlay the VXLAN headers name both endpoints.
		{file: underlay, kind: "vxlan", covers: []string{labNearOuter, labFarEndpoint}},
	}
	if sc.wg {
		// While the learned default is installed, wireguard-go's own UDP
		// packets to the endpoint are routed into its TUN device, so the
		// tunnel capture also holds WireGuard packets 198.18.100.1 ->
		// 198.18.2.2:51820. The analyzer then takes 198.18.100.1 for an
		// outer tunnel address and the session for one between tunnel
		// endpoints (not inside a tunnel): with --endpoint alone it raises
		// only route.session-flapping (warning). --tunnel-peer names the
		// peer whose session runs inside the tunnel.
		runs[0].flags = append(endpoint, "--tunnel-peer", labFarTunnel)
		// BGP is encrypted on the WireGuard underlay: nothing to see there.
		runs[1] = run{file: underlay, flags: endpoint}
	}
	for _, rn := range runs {
		name := filepath.Base(rn.file)
		args := append([]string{"routecheck", "--format", "json", "--pcap", rn.file}, rn.flags...)
		out, errOut, code := vpndiag(t, args...)
		r := readReport(t, out)
		if rn.kind == "" {
			if code != 0 {
				t.Errorf("%s: exit %d: %s", name, code, errOut)
			}
			checkFindings(t, name, r, nil)
			if n := len(tsharkFrames(t, rn.file, "bgp")); n != 0 {
				t.Errorf("%s: tshark sees %d BGP frames on the WireGuard underlay", name, n)
			}
			continue
		}
		// The oracle: UPDATEs announcing 0.0.0.0/0, sessions that reached
		// Established, hold-timer NOTIFICATIONs.
		updates := tsharkFrames(t, rn.file, "bgp.type == 2 && bgp.prefix_length == 0")
		sessions := tsharkSessions(t, rn.file)
		holds := tsharkFrames(t, rn.file, "bgp.notify.major_error == 4")
		if len(updates) == 0 {
			t.Fatalf("%s: tshark finds no UPDATE announcing 0.0.0.0/0", name)
		}
		def := labFinding{id: "route.default-over-tunnel", severity: report.SeverityWarning, frames: true,
			evidence: map[string]any{"peer": labFarTunnel, "peer_as": labFarAS, "local": labNearTunnel,
				"prefix": "0.0.0.0/0", "as_path": fmt.Sprint(labFarAS), "next_hop": labFarTunnel,
				"tunnel_kind": rn.kind, "covers_endpoints": rn.covers, "first_update_frame": updates[0],
				"session_downs_after": 0}}
		want := []labFinding{def}
		wantCode := 0
		if sc.flaps() {
			// Every session but the last was torn down before the next
			// one was established: silently (both hold timers expire, and
			// neither NOTIFICATION nor FIN gets through the broken tunnel)
			// or, when it got through, by a hold-timer NOTIFICATION. The
			// last one may still be up or its end may not be captured.
			if sessions < 2 {
				t.Errorf("%s: tshark finds %d established sessions, want at least 2", name, sessions)
			}
			downs := sessions - 1
			if f := findingByID(r, "route.session-flapping"); f != nil {
				if d, ok := f.Evidence["downs"].(float64); ok && int(d) == sessions {
					downs = sessions
				}
			}
			def.severity = report.SeverityError
			def.evidence["session_downs_after"] = downs
			want = []labFinding{def, {id: "route.session-flapping", severity: report.SeverityError, frames: true,
				evidence: map[string]any{"established": sessions, "downs": downs, "teardowns_after_risky_route": downs,
					"in_tunnel": true}}}
			wantCode = exitFindings
			if f := findingByID(r, "route.session-flapping"); f != nil {
				// Every teardown has a cause; all but the last are
				// hold-timer expiries (the last may end with a reset when
				// a side gives up and closes its socket), and every reset
				// counted is a TCP RST on the BGP session in tshark's view.
				c, _ := f.Evidence["causes"].(map[string]any)
				sum := 0
				for _, v := range c {
					n, _ := v.(float64)
					sum += int(n)
				}
				h, _ := c["hold-expired"].(float64)
				resets, _ := c["reset"].(float64)
				if sum != downs || int(h) < downs-1 {
					t.Errorf("%s: teardown causes %v, want %d with at least %d hold-expired", name, c, downs, downs-1)
				}
				if rst := tsharkFrames(t, rn.file, "tcp.port == 179 && tcp.flags.reset == 1"); int(resets) > len(rst) {
					t.Errorf("%s: %v resets counted, tshark finds TCP RSTs in frames %v", name, resets, rst)
				}
			}
			t.Logf("%s: tshark: %d sessions, hold-timer NOTIFICATIONs in frames %v", name, sessions, holds)
		} else {
			if len(holds) != 0 || sessions != 1 {
				t.Errorf("%s: stable session, yet tshark finds %d sessions and hold-timer NOTIFICATIONs in frames %v", name, sessions, holds)
			}
		}
		if code != wantCode {
			t.Errorf("%s: exit %d, want %d: %s", name, code, wantCode, errOut)
		}
		checkFindings(t, name, r, want)
		for _, f := range r.Findings {
			if f.ID != def.id {
				continue
			}
			// A stable session: advertised, but not proven harmful.
			verdict := "no session drop followed in this capture"
			if sc.flaps() {
				verdict = "the session went down"
			}
			if !strings.Contains(f.Summary, verdict) {
				t.Errorf("%s: %s summary lacks %q: %s", name, f.ID, verdict, f.Summary)
			}
			for _, fr := range f.Frames {
				if fr.File != name || !slices.Contains(updates, fr.Frame) {
					t.Errorf("%s: %s names %s frame %d, not an UPDATE announcing 0.0.0.0/0 (tshark: %v)", name, f.ID, fr.File, fr.Frame, updates)
				}
			}
			t.Logf("%s: %s/%s frames %v: %s", name, f.ID, f.Severity, f.Frames, f.Summary)
		}
	}
}
