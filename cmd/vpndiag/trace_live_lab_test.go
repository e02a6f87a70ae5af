package main

import (
	"context"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vpndiag/vpndiag/testdata/lab"
)

// Live trace lab tests: the built binary runs inside one namespace (a
// gateway with both the LAN and the WAN interface: one process captures in
// one namespace) and captures both hops at once.

const liveGWTopo = `
host a
host gw forward
host b
link a:eth0=198.18.11.2/24 gw:eth0=198.18.11.1/24
link gw:eth1=198.18.12.1/24 b:eth0=198.18.12.2/24
route a default via 198.18.11.1
route b default via 198.18.12.1
`

// startTrace runs vpndiag trace in host and waits for its capture banner.
func startTrace(t *testing.T, topo *lab.Topology, host string, args ...string) *lab.Proc {
	t.Helper()
	p, err := topo.Start(t.Context(), host, append([]string{captureBinary(t), "trace"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	if err := p.WaitFor(ctx, "vpndiag: capturing on"); err != nil {
		t.Fatalf("no capture banner: %v; stderr %s", err, p.Stderr())
	}
	// The banner is printed just before the sockets are opened.
	time.Sleep(300 * time.Millisecond)
	return p
}

// waitTrace waits for a trace process and returns its exit code.
func waitTrace(t *testing.T, p *lab.Proc, limit time.Duration) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), limit)
	defer cancel()
	err := p.Wait(ctx)
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	t.Fatalf("trace did not exit within %v: %v; stderr %s", limit, err, p.Stderr())
	return -1
}

// nftCounter returns the packets counted by the first counter of the lab's
// inet table on host.
func nftCounter(t *testing.T, topo *lab.Topology, host string) int {
	t.Helper()
	out, err := topo.Exec(t.Context(), host, "nft", "list", "table", "inet", lab.NFTTable)
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

// checkSaved checks a --save file: tshark reads it without complaint, every
// frame's interface description is the hop name, the frame count is what
// trace reported for the hop, and capinfos finds the statistics block
// written at the end (the file is complete).
func checkSaved(t *testing.T, path, hop string, packets uint64) {
	t.Helper()
	rows := tsharkRows(t, path, "frame.interface_description")
	if uint64(len(rows)) != packets || packets == 0 {
		t.Errorf("%s: tshark reads %d frames, trace reported %d for hop %s", path, len(rows), packets, hop)
	}
	for _, r := range rows {
		if r[0] != hop {
			t.Fatalf("%s: interface description %q, want the hop name %q", path, r[0], hop)
		}
	}
	if n := statEntries(t, path); len(n) != 1 || n[0] == "0" {
		t.Errorf("%s: statistics entries %v, want one interface with its end-of-capture statistics", path, n)
	}
}

// TestTraceLiveGateway: trace captures gw-lan=iface:eth0 and
// gw-wan=iface:eth1 inside the gateway for --duration 6s while 3000
// datagrams to b:5000 (20% dropped by nftables in gw's forward path), 1000
// to b:5001 and 10 pings cross it. The verdict must name the gateway's
// segment gw-lan -> gw-wan and the class UDP to 198.18.12.2:5000 with the
// lost count within 1% (+3) of the nft counter; the control class loses
// none; --save leaves two complete pcapng files with the hop names as
// interface descriptions and as many frames as trace reported.
func TestTraceLiveGateway(t *testing.T) {
	lab.Require(t, "ping", "tshark", "capinfos")
	topo := lab.New(t, liveGWTopo+"loss gw forward iif eth0 udp dport 5000 20%\n")
	sink := startTool(t, topo, "b", "udp-sink", "-listen", "198.18.12.2:5000", "-duration", "60s", "-idle", "3s")
	ctl := startTool(t, topo, "b", "udp-sink", "-listen", "198.18.12.2:5001", "-duration", "60s", "-idle", "3s")
	save := publicDir(t)
	reportFile := filepath.Join(save, "report.json")
	p := startTrace(t, topo, "gw", "--duration", "6s", "--format", "json", "-o", reportFile, "--save", save,
		"-f", "udp or icmp", "gw-lan=iface:eth0", "gw-wan=iface:eth1")
	start := time.Now()
	// A few pings first: trace does not judge a packet lost before the next
	// hop's capture has visibly started (its first frame), so the lossy burst
	// must come after frames have crossed both hops.
	if out, err := topo.Exec(t.Context(), "a", "ping", "-c", "3", "-i", "0.05", "-W", "2", "198.18.12.2"); err != nil {
		t.Fatalf("ping: %v: %s", err, out)
	}
	done := make(chan error, 1)
	go func() {
		_, err := toolErr(t, topo, "a", "udp-send", "-to", "198.18.12.2:5001", "-count", "1000", "-rate", "1000", "-size", "100")
		done <- err
	}()
	tool(t, topo, "a", "udp-send", "-to", "198.18.12.2:5000", "-count", "3000", "-rate", "1500", "-size", "100")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if out, err := topo.Exec(t.Context(), "a", "ping", "-c", "10", "-i", "0.05", "-W", "2", "198.18.12.2"); err != nil {
		t.Fatalf("ping: %v: %s", err, out)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("traffic took %v, longer than the 6 s capture", el)
	}
	code := waitTrace(t, p, 30*time.Second)
	if code != exitFindings {
		t.Fatalf("trace exit %d, want 1 (trace.loss); stderr %s", code, p.Stderr())
	}
	_ = sink.Wait(t.Context())
	_ = ctl.Wait(t.Context())
	dropped := nftCounter(t, topo, "gw")
	if dropped < 450 || dropped > 750 {
		t.Fatalf("nft dropped %d of 3000, want about 20%%: the lab did not do what the test expects", dropped)
	}
	b, err := os.ReadFile(reportFile)
	if err != nil {
		t.Fatal(err)
	}
	d := parseTrace(t, string(b))
	from, to, class, lost := d.lossFinding(t)
	if from != "gw-lan" || to != "gw-wan" || class != "UDP to 198.18.12.2:5000" {
		t.Errorf("trace.loss %s -> %s %s, want gw-lan -> gw-wan UDP to 198.18.12.2:5000", from, to, class)
	}
	if math.Abs(lost-float64(dropped)) > 0.01*float64(dropped)+3 {
		t.Errorf("trace says %v lost, the nft counter %d", lost, dropped)
	}
	t.Logf("trace: %v lost inside gw; nft counter %d", lost, dropped)
	for _, f := range d.Findings {
		if f.ID == "trace.loss" && !strings.Contains(f.Summary, "inside gw between gw-lan and gw-wan") {
			t.Errorf("summary %q does not place the loss inside gw", f.Summary)
		}
	}
	if n := d.ids("trace.loss"); n != 1 {
		t.Errorf("%d trace.loss findings, want 1", n)
	}
	s := d.segment(t, "gw-lan", "gw-wan", "UDP to 198.18.12.2:5000")
	if s.Sent != 3000 {
		t.Errorf("lossy class %+v, want 3000 sent", s)
	}
	if c := d.segment(t, "gw-lan", "gw-wan", "UDP to 198.18.12.2:5001"); c.Sent != 1000 || c.Lost != 0 {
		t.Errorf("control %+v, want 1000 sent, none lost", c)
	}
	if e := d.segment(t, "gw-lan", "gw-wan", "ICMP to 198.18.12.2"); e.Sent != 13 || e.Lost != 0 {
		t.Errorf("pings %+v, want 13 sent (3 before, 10 after), none lost", e)
	}
	if len(d.Data.Hops) != 2 {
		t.Fatalf("hops %+v", d.Data.Hops)
	}
	for _, h := range d.Data.Hops {
		want := filepath.Join(save, h.Name+".pcapng")
		if h.File != want || !strings.HasPrefix(h.Source, "iface:eth") || h.CaptureDrops == nil || *h.CaptureDrops != 0 {
			t.Errorf("hop %+v, want source iface:ethN, file %s, 0 capture drops", h, want)
		}
		checkSaved(t, want, h.Name, h.Packets)
	}
	// lan: 3000 + 1000 datagrams + 26 ICMP; wan: 3000 - dropped + 1000 + 26.
	if d.Data.Hops[0].Packets != 4026 || d.Data.Hops[1].Packets != uint64(4026-dropped) {
		t.Errorf("packets lan %d wan %d, want 4026 and %d", d.Data.Hops[0].Packets, d.Data.Hops[1].Packets, 4026-dropped)
	}
	for _, f := range d.Findings {
		if len(f.Frames) > 0 && f.Frames[0].File != "gw-lan.pcapng" {
			t.Errorf("finding %s frames refer to %q, want the saved gw-lan.pcapng", f.ID, f.Frames[0].File)
		}
	}
}

// TestTraceLiveSIGINT: a live trace without --duration runs until SIGINT;
// then it correlates what it captured (20 pings: exit 0, no loss) and the
// saved files are complete (tshark reads 40 frames each, statistics block
// present), a mixed trace (one live hop, one file hop) is also accepted.
func TestTraceLiveSIGINT(t *testing.T) {
	lab.Require(t, "ping", "tshark", "capinfos")
	topo := lab.New(t, liveGWTopo)
	save := publicDir(t)
	reportFile := filepath.Join(save, "report.json")
	p := startTrace(t, topo, "gw", "--format", "json", "-o", reportFile, "--save", save, "-f", "icmp",
		"lan=iface:eth0", "wan=iface:eth1")
	if !strings.Contains(p.Stderr(), "press Ctrl-C to stop") {
		t.Errorf("banner %q does not say how to stop", p.Stderr())
	}
	if out, err := topo.Exec(t.Context(), "a", "ping", "-c", "20", "-i", "0.05", "-W", "2", "198.18.12.2"); err != nil {
		t.Fatalf("ping: %v: %s", err, out)
	}
	time.Sleep(2 * time.Second)
	select {
	case <-p.Done():
		t.Fatalf("trace ended before SIGINT: %s", p.Stderr())
	default:
	}
	sent := time.Now()
	if err := p.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := waitTrace(t, p, 20*time.Second); code != exitOK {
		t.Fatalf("exit %d after SIGINT, want 0 (no loss); stderr %s", code, p.Stderr())
	}
	if el := time.Since(sent); el > 5*time.Second {
		t.Errorf("trace took %v to finish after SIGINT", el)
	}
	b, err := os.ReadFile(reportFile)
	if err != nil {
		t.Fatal(err)
	}
	d := parseTrace(t, string(b))
	if s := d.segment(t, "lan", "wan", "ICMP to 198.18.12.2"); s.Sent != 20 || s.Lost != 0 {
		t.Errorf("echo requests %+v, want 20, none lost", s)
	}
	if s := d.segment(t, "wan", "lan", "ICMP from 198.18.12.2"); s.Sent != 20 || s.Lost != 0 {
		t.Errorf("echo replies %+v, want 20, none lost", s)
	}
	for _, h := range d.Data.Hops {
		if h.Packets != 40 {
			t.Errorf("hop %s: %d packets, want 40", h.Name, h.Packets)
		}
		checkSaved(t, filepath.Join(save, h.Name+".pcapng"), h.Name, h.Packets)
	}
	// Mixed: the saved lan file against a live wan hop (no traffic): runs
	// and reports the file hop's packets; no packets in common is exit 2.
	mixed := startTrace(t, topo, "gw", "--duration", "1s", "--format", "json", "-f", "icmp",
		"lan="+filepath.Join(save, "lan.pcapng"), "wan=iface:eth1")
	if code := waitTrace(t, mixed, 20*time.Second); code != exitUsage || !strings.Contains(mixed.Stderr(), "no packets in common") {
		t.Errorf("mixed trace with an idle live hop: exit %d, stderr %s; want 2, no packets in common", code, mixed.Stderr())
	}
}

// TestTraceLiveErrors: an interface that does not exist is exit 2 naming
// it (before anything is captured); as user nobody without capabilities
// it is exit 3 naming CAP_NET_RAW; no file is left in --save.
func TestTraceLiveErrors(t *testing.T) {
	lab.Require(t, "setpriv")
	topo := lab.New(t, liveGWTopo)
	save := publicDir(t)
	_, err := topo.Exec(t.Context(), "gw", captureBinary(t), "trace", "--duration", "1s", "--save", save, "lan=iface:eth0", "wan=iface:vdnosuch0")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitUsage || !strings.Contains(err.Error(), "vdnosuch0") {
		t.Errorf("missing interface: %v, want exit 2 naming vdnosuch0", err)
	}
	_, err = topo.Exec(t.Context(), "gw", "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
		captureBinary(t), "trace", "--duration", "1s", "--save", save, "lan=iface:eth0", "wan=iface:eth1")
	if !errors.As(err, &ee) || ee.ExitCode() != exitRuntime || !strings.Contains(err.Error(), "CAP_NET_RAW") {
		t.Errorf("as nobody: %v, want exit 3 naming CAP_NET_RAW", err)
	}
	if entries, _ := os.ReadDir(save); len(entries) != 0 {
		t.Errorf("files left in --save after failing to capture: %v", entries)
	}
}
