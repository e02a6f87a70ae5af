package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/vpndiag/vpndiag/report"
	"github.com/vpndiag/vpndiag/testdata/lab"
)

// Remote trace lab tests of the SSH path itself: a ProxyJump through a
// real jump host, a host whose path dies silently in the middle of the
// capture (keepalives), and a capture under a real sudo.

// jumpTopo: the client c reaches only the jump host j; the target t sits
// on j's second subnet, j does not forward and t has no route to c, so t
// can only be reached by logging in to j first.
const jumpTopo = `
host c
host j
host t
link c:eth0=198.18.21.2/24 j:eth0=198.18.21.1/24
link j:eth1=198.18.22.1/24 t:eth0=198.18.22.2/24
`

// endedData is the part of a trace report about hops that ended early.
type endedData struct {
	Inputs []report.Input `json:"inputs"`
	Data   struct {
		EndedHops []missingHop `json:"ended_hops"`
	} `json:"data"`
}

func readEnded(t *testing.T, path string) *endedData {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d endedData
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	return &d
}

func (d *traceData) hopPackets(name string) (uint64, bool) {
	for _, h := range d.Data.Hops {
		if h.Name == name {
			return h.Packets, true
		}
	}
	return 0, false
}

// TestRemoteTraceProxyJump: sshd on the jump host j (198.18.21.1, the only
// host c can reach) and on the target t (198.18.22.2, behind j); vpndiag
// runs in c with an ssh config naming t's HostName, User root and
// ProxyJump root@198.18.21.1.
//   - direct: ssh://root@198.18.22.2/eth0 cannot connect (no route): exit 3;
//   - unknown jump host key: j's key not in known_hosts fails t's hop
//     with the jump host named and its SHA256 fingerprint, although t's
//     own key is known;
//   - through j: 10 pings j -> t are seen at j (eth1) and t (eth0), none
//     lost, 20 frames each; t's remote hop lists the jump and an SSH round
//     trip in (0, 200] ms; the saved files hold the hop names.
func TestRemoteTraceProxyJump(t *testing.T) {
	lab.Require(t, "ping", "tcpdump", "tshark", "capinfos")
	topo := lab.New(t, jumpTopo)
	k := newSSHKeys(t)
	startSSHD(t, topo, k, "t", "198.18.22.2", "t", true)
	jd := startSSHD(t, topo, k, "j", "198.18.21.1", "j", false)
	knownJ := filepath.Join(k.dir, "known_hosts_j")
	if err := os.WriteFile(knownJ, []byte(knownhosts.Line([]string{"198.18.21.1"}, jd.key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(k.dir, "ssh_config")
	if err := os.WriteFile(cfg, []byte(`Host j
	HostName 198.18.21.1
	User root
Host t
	HostName 198.18.22.2
	User root
	ProxyJump root@198.18.21.1
`), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("direct", func(t *testing.T) {
		code, p := remoteTrace(t, topo, k, "c", 60*time.Second, "--ssh-config", cfg, "--ssh-known-hosts", knownJ,
			"--duration", "1s", "-f", "icmp", "j=ssh://j/eth1", "direct=ssh://root@198.18.22.2/eth0")
		if code != exitRuntime || !strings.Contains(p.Stderr(), "hop direct: 198.18.22.2 (198.18.22.2:22): cannot connect: ") {
			t.Fatalf("exit %d, want 3 with t unreachable directly; stderr %s", code, p.Stderr())
		}
	})
	t.Run("unknown jump host key", func(t *testing.T) {
		code, p := remoteTrace(t, topo, k, "c", 60*time.Second, "--ssh-config", cfg,
			"--duration", "1s", "-f", "icmp", "t=ssh://t/eth0", "j=ssh://j/eth1")
		want := "hop t: jump host root@198.18.21.1 for t: unknown host key: 198.18.21.1 (198.18.21.1:22) offers ssh-ed25519 key " +
			ssh.FingerprintSHA256(jd.key)
		if code != exitRuntime || !strings.Contains(p.Stderr(), want) {
			t.Fatalf("exit %d, want 3 and %q; stderr %s", code, want, p.Stderr())
		}
	})
	t.Run("through j", func(t *testing.T) {
		save := publicDir(t)
		out := filepath.Join(save, "report.json")
		p := startRemoteTrace(t, topo, k, "c", "--ssh-config", cfg, "--ssh-known-hosts", knownJ,
			"--duration", "3s", "-f", "icmp", "--format", "json", "-o", out, "--save", save,
			"j=ssh://j/eth1", "t=ssh://t/eth0")
		pingDuring(t, topo, p, "j", "198.18.22.2", 10)
		if code := waitTrace(t, p, 60*time.Second); code != exitOK {
			t.Fatalf("exit %d; stderr %s", code, p.Stderr())
		}
		d := readTraceFile(t, out)
		if s := d.segment(t, "j", "t", "ICMP to 198.18.22.2"); s.Sent != 10 || s.Lost != 0 {
			t.Errorf("segment %+v, want 10 sent, none lost", s)
		}
		if len(d.Data.RemoteHops) != 2 || len(d.Data.MissingHops) != 0 {
			t.Fatalf("remote hops %+v, missing %+v; want 2, none", d.Data.RemoteHops, d.Data.MissingHops)
		}
		for _, r := range d.Data.RemoteHops {
			wantJumps, wantAddr := []string(nil), "198.18.21.1:22"
			if r.Hop == "t" {
				wantJumps, wantAddr = []string{"root@198.18.21.1"}, "198.18.22.2:22"
			}
			if !slices.Equal(r.Jumps, wantJumps) || r.Addr != wantAddr || r.User != "root" || r.SSHRTTms <= 0 || r.SSHRTTms > 200 {
				t.Errorf("remote hop %+v: want address %s, jumps %v, user root, an SSH RTT in (0, 200] ms", r, wantAddr, wantJumps)
			}
		}
		for _, h := range d.Data.Hops {
			if h.Packets != 20 {
				t.Errorf("hop %s: %d packets, want 20", h.Name, h.Packets)
			}
			checkSaved(t, filepath.Join(save, h.Name+".pcapng"), h.Name, h.Packets)
		}
	})
	noCaptureLeft(t, topo, 5*time.Second, "j", "t")
}

// blackholeSSH drops TCP port 22 in both directions in host's namespace,
// silently (no reset, nothing sent back): the path to its sshd dies the
// way a firewall change or a dead link kills it.
func blackholeSSH(t *testing.T, topo *lab.Topology, host string) {
	t.Helper()
	script := `nft -f - <<'EOF'
table inet vdblackhole {
	chain in { type filter hook input priority -300; policy accept; tcp dport 22 drop; }
	chain out { type filter hook output priority -300; policy accept; tcp sport 22 drop; }
}
EOF`
	if out, err := topo.Sh(t.Context(), host, script); err != nil {
		t.Fatalf("nft blackhole in %s: %v: %s", host, err, out)
	}
}

// TestRemoteTraceLostHost: vpndiag in a captures a=iface:eth0 locally and
// gw (eth1) and b (eth0) over SSH with --ssh-keepalive 1s
// --ssh-keepalive-count 3; b's sshd has ClientAliveInterval 1 and
// ClientAliveCountMax 2. After 10 pings a -> b, TCP port 22 is silently
// dropped both ways in b. Then:
//   - within 1.5..12 s vpndiag says hop b ended early after 20 frames, the
//     error naming 198.18.12.2 and the keepalives (3s), and the trace goes
//     on: 10 more pings a -> b are captured at a and gw;
//   - b's sshd notices too and the capture in b is gone within 15 s;
//   - after SIGINT the trace ends within 60 s; the report lists b in
//     data ended_hops (error, 20 frames), its input carries the error, one
//     trace.hop-ended-early warning names it; hop b has 20 packets, a and
//     gw 40 each;
//   - tshark reads b's saved file: exactly the 20 frames captured before
//     the blackhole; a's and gw's saved files are complete (40 frames,
//     statistics).
func TestRemoteTraceLostHost(t *testing.T) {
	lab.Require(t, "ping", "tcpdump", "tshark", "capinfos")
	topo := lab.New(t, liveGWTopo)
	k := newSSHKeys(t)
	startSSHD(t, topo, k, "gw", "198.18.11.1", "gw", true)
	startSSHD(t, topo, k, "b", "198.18.12.2", "b", true, "ClientAliveInterval 1", "ClientAliveCountMax 2")
	save := publicDir(t)
	out := filepath.Join(save, "report.json")
	p := startRemoteTrace(t, topo, k, "a", "--ssh-keepalive", "1s", "--ssh-keepalive-count", "3",
		"-f", "icmp", "--format", "json", "-o", out, "--save", save,
		"a=iface:eth0", "gw=ssh://root@198.18.11.1/eth1", "b=ssh://root@198.18.12.2/eth0")
	pingDuring(t, topo, p, "a", "198.18.12.2", 10)
	time.Sleep(500 * time.Millisecond) // b's last frames stream back
	if procs := captureProcs(t, topo, "b"); len(procs) == 0 {
		t.Fatal("no capture process in b before the blackhole")
	}
	blackholeSSH(t, topo, "b")
	cut := time.Now()

	ctx, cancel := context.WithTimeout(t.Context(), 12*time.Second)
	defer cancel()
	if err := p.WaitFor(ctx, "vpndiag: hop b ended early"); err != nil {
		t.Fatalf("hop b not reported ended within 12 s of the blackhole: %v; stderr %s", err, p.Stderr())
	}
	// Silence counts from the last byte from b: the last keepalive reply
	// came at most 1.25 s (an interval and a check period) before the cut.
	if el := time.Since(cut); el < 1500*time.Millisecond {
		t.Errorf("hop b given up %v after the blackhole, before 3 keepalive intervals of silence could pass", el)
	}
	for _, w := range []string{"hop b ended early after 20 frames: lost the SSH connection to 198.18.12.2 (198.18.12.2:22): no reply to keepalives for 3s",
		"the other hops go on"} {
		if !strings.Contains(p.Stderr(), w) {
			t.Errorf("stderr lacks %q:\n%s", w, p.Stderr())
		}
	}
	// The trace goes on without b.
	if o, err := topo.Exec(ctx, "a", "ping", "-c", "10", "-i", "0.05", "-W", "2", "198.18.12.2"); err != nil {
		t.Fatalf("ping: %v: %s", err, o)
	}
	// b's sshd gives the silent client up and its capture ends with it.
	noCaptureLeft(t, topo, 15*time.Second, "b")
	select {
	case <-p.Done():
		t.Fatalf("trace ended before it was stopped; stderr %s", p.Stderr())
	default:
	}
	time.Sleep(300 * time.Millisecond)
	if err := p.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := waitTrace(t, p, 60*time.Second); code != exitOK && code != exitFindings {
		t.Fatalf("exit %d; stderr %s", code, p.Stderr())
	}
	noCaptureLeft(t, topo, 5*time.Second, "gw")

	d := readTraceFile(t, out)
	want := map[string]uint64{"a": 40, "gw": 40, "b": 20}
	for h, n := range want {
		if got, ok := d.hopPackets(h); !ok || got != n {
			t.Errorf("hop %s: %d packets (found %v), want %d", h, got, ok, n)
		}
	}
	e := readEnded(t, out)
	if len(e.Data.EndedHops) != 1 {
		t.Fatalf("ended hops %+v, want b", e.Data.EndedHops)
	}
	eh := e.Data.EndedHops[0]
	if eh.Hop != "b" || eh.Frames == nil || *eh.Frames != 20 ||
		!strings.Contains(eh.Error, "lost the SSH connection to 198.18.12.2") || !strings.Contains(eh.Error, "no reply to keepalives for 3s") {
		t.Errorf("ended hop %+v (frames %v), want b, 20 frames, the lost connection", eh, eh.Frames)
	}
	if i := slices.IndexFunc(e.Inputs, func(in report.Input) bool { return in.Name == "b" }); i < 0 ||
		!strings.Contains(e.Inputs[i].Error, "ended early: lost the SSH connection to 198.18.12.2") {
		t.Errorf("inputs %+v: want b's with the error", e.Inputs)
	}
	if d.ids("trace.hop-ended-early") != 1 || d.ids("trace.hop-missing") != 0 {
		t.Errorf("findings %+v, want one trace.hop-ended-early", d.Findings)
	}
	for _, f := range d.Findings {
		if f.ID == "trace.hop-ended-early" && (f.Where.Hop != "b" || f.Severity != "warning") {
			t.Errorf("finding %+v, want a warning at hop b", f)
		}
	}
	if len(d.Data.RemoteHops) != 2 {
		t.Errorf("remote hops %+v, want gw and b", d.Data.RemoteHops)
	}
	// b's file is complete with what came before the blackhole.
	rows := tsharkRows(t, filepath.Join(save, "b.pcapng"), "frame.interface_description", "icmp.type")
	if len(rows) != 20 {
		t.Errorf("b.pcapng: tshark reads %d frames, want the 20 captured before the blackhole", len(rows))
	}
	for _, r := range rows {
		if r[0] != "b" || (r[1] != "8" && r[1] != "0") {
			t.Errorf("b.pcapng: frame %v, want an echo request or reply on interface b", r)
			break
		}
	}
	for _, h := range []string{"a", "gw"} {
		checkSaved(t, filepath.Join(save, h+".pcapng"), h, want[h])
	}
}

// TestRemoteTraceSudo: --ssh-sudo against real sshd and the real
// /usr/bin/sudo (root may run anything without a password: no sudoers or
// user is changed): while the trace captures, b and gw run
// "sudo -n -- tcpdump ..."; 10 pings a -> b are seen at gw and b, 20
// frames each, none lost, and no capture (nor sudo) is left afterwards.
func TestRemoteTraceSudo(t *testing.T) {
	lab.Require(t, "ping", "tcpdump", "sudo")
	topo := lab.New(t, liveGWTopo)
	k := newSSHKeys(t)
	startSSHD(t, topo, k, "gw", "198.18.11.1", "gw", true)
	startSSHD(t, topo, k, "b", "198.18.12.2", "b", true)
	out := filepath.Join(k.dir, "sudo.json")
	p := startRemoteTrace(t, topo, k, "a", "--ssh-sudo", "--ssh-tool", "tcpdump", "--duration", "4s", "-f", "icmp", "--format", "json", "-o", out,
		"gw=ssh://root@198.18.11.1/eth1", "b=ssh://root@198.18.12.2/eth0")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := p.WaitFor(ctx, "vpndiag: capturing on"); err != nil {
		t.Fatalf("no capture banner: %v; stderr %s", err, p.Stderr())
	}
	for _, h := range []string{"gw", "b"} {
		procs := captureProcs(t, topo, h)
		if !slices.ContainsFunc(procs, func(s string) bool { return strings.Contains(s, ": sudo -n -- tcpdump ") }) {
			t.Errorf("%s: capture processes %v, want sudo -n -- tcpdump", h, procs)
		}
	}
	if o, err := topo.Exec(ctx, "a", "ping", "-c", "10", "-i", "0.05", "-W", "2", "198.18.12.2"); err != nil {
		t.Fatalf("ping: %v: %s", err, o)
	}
	if code := waitTrace(t, p, 60*time.Second); code != exitOK {
		t.Fatalf("exit %d; stderr %s", code, p.Stderr())
	}
	d := readTraceFile(t, out)
	if s := d.segment(t, "gw", "b", "ICMP to 198.18.12.2"); s.Sent != 10 || s.Lost != 0 {
		t.Errorf("segment %+v, want 10 sent, none lost", s)
	}
	for _, h := range []string{"gw", "b"} {
		if n, _ := d.hopPackets(h); n != 20 {
			t.Errorf("hop %s: %d packets, want 20", h, n)
		}
	}
	if len(d.Data.RemoteHops) != 2 || len(d.Data.MissingHops) != 0 {
		t.Errorf("remote hops %+v, missing %+v; want 2, none", d.Data.RemoteHops, d.Data.MissingHops)
	}
	noCaptureLeft(t, topo, 5*time.Second, "gw", "b")
}
