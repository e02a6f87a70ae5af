package wireguard

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vpndiag/vpndiag/analyze/analyzetest"
	"github.com/vpndiag/vpndiag/report"
	"github.com/vpndiag/vpndiag/testdata/lab"
)

// wgLab is two hosts a and b joined by a switch "wire", optionally with
// loss on UDP 51820 from a to b, and a WireGuard tunnel from a to b
// (userspace wireguard-go, one unique interface name per host).
type wgLab struct {
	topo *lab.Topology
	ifc  map[string]string // host -> WireGuard interface
	dir  string
}

const wgTopo = `
host a
switch wire
host b
link a:eth0=198.18.41.1/24 wire:p1
link b:eth0=198.18.41.2/24 wire:p2
`

func requireWG(t *testing.T) {
	for tool, pkg := range map[string]string{"wireguard": "GOFLAGS= go install golang.zx2c4.com/wireguard@latest", "wg": "apt-get install wireguard-tools"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: %s", tool, pkg)
		}
	}
}

func cmdOut(t *testing.T, stdin string, name string, args ...string) string {
	t.Helper()
	c := exec.Command(name, args...)
	c.Stdin = strings.NewReader(stdin)
	b, err := c.Output()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return strings.TrimSpace(string(b))
}

// newWGLab brings the topology up with extra lines, then WireGuard on a
// (and on b when withB, handshake done), tunnel addresses 198.18.200.1 and .2.
func newWGLab(t *testing.T, extra string, withB bool) *wgLab {
	requireWG(t)
	lab.Require(t, "tshark")
	topo := lab.New(t, wgTopo+extra)
	l := &wgLab{topo: topo, ifc: map[string]string{}, dir: t.TempDir()}
	id := topo.ID()
	if len(id) > 6 {
		id = id[len(id)-6:]
	}
	keys := map[string][2]string{}
	for _, h := range []string{"a", "b"} {
		priv := cmdOut(t, "", "wg", "genkey")
		keys[h] = [2]string{priv, cmdOut(t, priv, "wg", "pubkey")}
		if err := os.WriteFile(filepath.Join(l.dir, h+".key"), []byte(priv+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tun := map[string]string{"a": "198.18.200.1", "b": "198.18.200.2"}
	underlay := map[string]string{"a": "198.18.41.1", "b": "198.18.41.2"}
	hosts := []string{"a"}
	if withB {
		hosts = append(hosts, "b")
	}
	for _, h := range hosts {
		other := "b"
		if h == "b" {
			other = "a"
		}
		name := "vdwg" + id + h // unique: control sockets in /var/run/wireguard are shared
		l.ifc[h] = name
		p, err := topo.Start(context.Background(), h, "wireguard", "-f", name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Stop() })
		sock := "/var/run/wireguard/" + name + ".sock"
		for i := 0; i < 100; i++ {
			if _, err := os.Stat(sock); err == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		for _, argv := range [][]string{
			{"wg", "set", name, "listen-port", "51820", "private-key", filepath.Join(l.dir, h+".key"),
				"peer", keys[other][1], "endpoint", underlay[other] + ":51820", "allowed-ips", tun[other] + "/32"},
			{"ip", "addr", "add", tun[h] + "/24", "dev", name},
			{"ip", "link", "set", name, "up"},
		} {
			if out, err := topo.Exec(ctx, h, argv...); err != nil {
				t.Fatalf("%s on %s: %v %s\n%s", strings.Join(argv, " "), h, err, out, p.Stderr())
			}
		}
	}
	if withB {
		// Handshake before the test captures and sends: with loss on the
		// underlay an initiation may be dropped, WireGuard retries only
		// after 5 s, and meanwhile drops what it cannot queue.
		for i := 0; ; i++ {
			if _, err := topo.Exec(ctx, "a", "ping", "-c", "1", "-W", "7", tun["b"]); err == nil {
				break
			} else if i == 3 {
				t.Fatalf("no handshake through the tunnel after 4 tries: %v", err)
			}
		}
	}
	return l
}

func (l *wgLab) capture(t *testing.T, host string) *lab.Capture {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := l.topo.Capture(ctx, host, "eth0", filepath.Join(l.dir, host+".pcap"), "udp port 51820")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (l *wgLab) send(t *testing.T, count, rate int) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := l.topo.Exec(ctx, "a", lab.Tool(t), "udp-send", "-to", "198.18.200.2:9000", "-count", strconv.Itoa(count),
		"-rate", strconv.Itoa(rate), "-size", "200"); err != nil {
		t.Fatalf("udp-send: %v %s", err, out)
	}
}

// counters returns tshark's transport counters per receiver index.
func counters(t *testing.T, file string) map[string]map[uint64]bool {
	m := map[string]map[uint64]bool{}
	for _, r := range analyzetest.Tshark(t, file, "wg.type == 4", "wg.receiver", "wg.counter") {
		c, _ := strconv.ParseUint(r[1], 10, 64)
		if m[r[0]] == nil {
			m[r[0]] = map[uint64]bool{}
		}
		m[r[0]][c] = true
	}
	return m
}

// TestLabUnderlayLoss sends 2000 datagrams through a WireGuard tunnel whose
// underlay drops 10% of a's UDP to port 51820. Captures at the sender (a)
// and after the loss (b) give the truth: the counters a sent between the
// lowest and the highest one b received and b never saw. The analyzer on b's
// capture must report exactly those as missing. Counters lost before b's
// first one are not in the truth: the handshake happened before the
// captures began, so b's capture cannot tell them from counters sent before
// it started (the analyzer counts from 0 only when it saw the handshake).
func TestLabUnderlayLoss(t *testing.T) {
	l := newWGLab(t, "loss wire forward iif p1 udp dport 51820 10%\n", true)
	ca, cb := l.capture(t, "a"), l.capture(t, "b")
	l.send(t, 2000, 1000)
	time.Sleep(500 * time.Millisecond)
	for _, c := range []*lab.Capture{ca, cb} {
		if err := c.Stop(); err != nil {
			t.Fatal(err)
		}
	}
	sent, got := counters(t, ca.File), counters(t, cb.File)
	var truth, first, last uint64
	var receiver string
	for idx, cs := range got {
		low, top := uint64(1<<64-1), uint64(0)
		for c := range cs {
			low, top = min(low, c), max(top, c)
		}
		var lost uint64
		for c := range sent[idx] {
			if c > low && c < top && !cs[c] {
				lost++
			}
		}
		if len(cs) > 1000 {
			receiver, truth, first, last = idx, lost, low, top
		}
	}
	if receiver == "" || truth < 100 || truth > 320 {
		t.Fatalf("truth from the captures: receiver %q lost %d of ~2000, want about 10%%", receiver, truth)
	}
	rep := analyzetest.Run(t, New(), cb.File)
	var missing, gotFirst, gotLast uint64
	var sev report.Severity
	for _, f := range analyzetest.Findings(rep, "wireguard.counter-gaps") {
		if strings.Contains(f.Where.Flow, receiver) {
			missing, sev = analyzetest.Num(f.Evidence["missing"]), f.Severity
			gotFirst, gotLast = analyzetest.Num(f.Evidence["first_counter"]), analyzetest.Num(f.Evidence["last_counter"])
		}
	}
	if missing != truth || sev != report.SeverityError || gotFirst != first || gotLast != last {
		t.Errorf("receiver %s: analyzer reports %d missing (%s) in counters %d-%d, truth %d in %d-%d (error: loss >= 5%%)\n%+v",
			receiver, missing, sev, gotFirst, gotLast, truth, first, last, rep.Findings)
	}
	// The sender's capture, before the loss, has no gaps at all.
	if fs := analyzetest.Findings(analyzetest.Run(t, New(), ca.File), "wireguard.counter-gaps"); len(fs) != 0 {
		t.Errorf("gaps on the sender's capture: %+v", fs)
	}
	t.Logf("receiver %s: %d counters lost in %d-%d, reported %d", receiver, truth, first, last, missing)
}

// TestLabDeadPeer configures a with a peer b that runs no WireGuard: a's
// initiations (every 5 s) are never answered. Over about 22 s the analyzer
// must count as unanswered exactly the initiations tshark sees that are
// older than the grace period, and call it an error.
func TestLabDeadPeer(t *testing.T) {
	l := newWGLab(t, "", false)
	ca := l.capture(t, "a")
	l.send(t, 1, 1)
	time.Sleep(22 * time.Second)
	if err := ca.Stop(); err != nil {
		t.Fatal(err)
	}
	rows := analyzetest.Tshark(t, ca.File, "wg", "wg.type", "frame.time_epoch")
	var last float64
	for _, r := range rows {
		ts, _ := strconv.ParseFloat(r[1], 64)
		last = max(last, ts)
	}
	var inits, old uint64
	for _, r := range rows {
		if r[0] != "1" {
			t.Fatalf("message type %s from a dead peer's tunnel: only initiations expected", r[0])
		}
		inits++
		ts, _ := strconv.ParseFloat(r[1], 64)
		if ts < last-DefaultConfig().Grace.Seconds() {
			old++
		}
	}
	if inits < 4 || old < 3 {
		t.Fatalf("tshark: %d initiations, %d older than the grace; want at least 4 and 3", inits, old)
	}
	rep := analyzetest.Run(t, New(), ca.File)
	fs := analyzetest.Findings(rep, "wireguard.handshake-unanswered")
	if len(fs) != 1 || analyzetest.Num(fs[0].Evidence["unanswered"]) != old || analyzetest.Num(fs[0].Evidence["initiations"]) != inits || fs[0].Severity != report.SeverityError {
		t.Fatalf("want one error with %d unanswered of %d initiations (tshark), got %+v", old, inits, fs)
	}
	if r := fs[0].Evidence["retry_interval_seconds"].(float64); r < 4.5 || r > 6.5 {
		t.Errorf("retry interval %.1f s, want about 5 s (WireGuard's REKEY_TIMEOUT)", r)
	}
	t.Log(fmt.Sprint(fs[0].Summary))
}
