package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"math"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/vpndiag/vpndiag/testdata/lab"
)

// Remote trace lab tests: real OpenSSH servers (/usr/sbin/sshd) in lab
// namespaces, keys made by the test, and the built vpndiag binary running
// in another namespace of the topology, capturing over SSH.

// sshKeys are the keys of a remote lab: the client's key (in
// authorized_keys of every sshd), a key no server accepts, and a
// known_hosts file for the servers started with startSSHD.
type sshKeys struct {
	dir        string
	identity   string // private key file the servers accept
	stranger   string // private key file no server accepts
	knownHosts string
	authorized string
}

// writeKey writes an ed25519 private key in OpenSSH format and returns its
// public key.
func writeKey(t *testing.T, path string) ssh.PublicKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	blk, err := ssh.MarshalPrivateKey(priv, "vpndiag lab")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(blk), 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newSSHKeys(t *testing.T) *sshKeys {
	t.Helper()
	dir := publicDir(t)
	k := &sshKeys{dir: dir, identity: filepath.Join(dir, "id_client"), stranger: filepath.Join(dir, "id_stranger"),
		knownHosts: filepath.Join(dir, "known_hosts"), authorized: filepath.Join(dir, "authorized_keys")}
	pub := writeKey(t, k.identity)
	writeKey(t, k.stranger)
	if err := os.WriteFile(k.authorized, ssh.MarshalAuthorizedKey(pub), 0o600); err != nil {
		t.Fatal(err)
	}
	return k
}

// sshd is one OpenSSH server in a lab namespace.
type sshd struct {
	host, addr string
	key        ssh.PublicKey
	proc       *lab.Proc
}

// startSSHD starts sshd in host listening on addr:22 with the host key
// named keyName (made on first use), accepting root with k's identity;
// extra lines go into sshd_config. With known, the host key is added to
// k's known_hosts.
func startSSHD(t *testing.T, topo *lab.Topology, k *sshKeys, host, addr, keyName string, known bool, extra ...string) *sshd {
	t.Helper()
	lab.Require(t, "/usr/sbin/sshd")
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatal(err)
	}
	hostKey := filepath.Join(k.dir, "hostkey_"+keyName)
	var pub ssh.PublicKey
	if b, err := os.ReadFile(hostKey); err == nil {
		signer, err := ssh.ParsePrivateKey(b)
		if err != nil {
			t.Fatal(err)
		}
		pub = signer.PublicKey()
	} else {
		pub = writeKey(t, hostKey)
	}
	cfg := filepath.Join(k.dir, "sshd_"+host+"_"+addr+".conf")
	lines := []string{
		"ListenAddress " + addr, "Port 22", "HostKey " + hostKey, "AuthorizedKeysFile " + k.authorized,
		"PermitRootLogin prohibit-password", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
		"StrictModes no", "UsePAM no", "PidFile none", "LogLevel VERBOSE",
	}
	lines = append(lines, extra...)
	if err := os.WriteFile(cfg, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := topo.Start(t.Context(), host, "/usr/sbin/sshd", "-D", "-e", "-f", cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	if err := p.WaitFor(ctx, "Server listening on"); err != nil {
		t.Fatalf("sshd on %s: %v", host, err)
	}
	if known {
		f, err := os.OpenFile(k.knownHosts, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintln(f, knownhosts.Line([]string{addr}, pub))
		f.Close()
	}
	return &sshd{host: host, addr: addr, key: pub, proc: p}
}

// remoteTrace runs the built vpndiag trace in host with k's identity and
// known_hosts, HOME a temporary directory (no ~/.ssh), no agent; it
// returns the process after it exited (or fails after limit).
func remoteTrace(t *testing.T, topo *lab.Topology, k *sshKeys, host string, limit time.Duration, args ...string) (code int, p *lab.Proc) {
	t.Helper()
	p = startRemoteTrace(t, topo, k, host, args...)
	return waitTrace(t, p, limit), p
}

func startRemoteTrace(t *testing.T, topo *lab.Topology, k *sshKeys, host string, args ...string) *lab.Proc {
	t.Helper()
	home := t.TempDir()
	argv := append([]string{"env", "-u", "SSH_AUTH_SOCK", "HOME=" + home, captureBinary(t), "trace",
		"--ssh-known-hosts", k.knownHosts, "--ssh-timeout", "10s"}, args...)
	if !strings.Contains(strings.Join(args, " "), "--ssh-identity") {
		argv = append(argv[:6], append([]string{"--ssh-identity", k.identity}, argv[6:]...)...)
	}
	p, err := topo.Start(t.Context(), host, argv...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// captureProcs returns the tcpdump / vpndiag capture processes running in
// host's namespace.
func captureProcs(t *testing.T, topo *lab.Topology, host string) []string {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), "ip", "netns", "pids", topo.NS(host)).Output()
	if err != nil {
		t.Fatalf("ip netns pids %s: %v", topo.NS(host), err)
	}
	var found []string
	for pid := range strings.FieldsSeq(string(out)) {
		b, err := os.ReadFile("/proc/" + pid + "/cmdline")
		if err != nil {
			continue
		}
		cmd := strings.ReplaceAll(strings.TrimRight(string(b), "\x00"), "\x00", " ")
		if strings.Contains(cmd, "tcpdump") || strings.Contains(cmd, "vpndiag capture") {
			found = append(found, pid+": "+cmd)
		}
	}
	return found
}

// noCaptureLeft waits (at most limit) until no capture process runs in
// any of hosts.
func noCaptureLeft(t *testing.T, topo *lab.Topology, limit time.Duration, hosts ...string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		var left []string
		for _, h := range hosts {
			left = append(left, captureProcs(t, topo, h)...)
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("capture processes still running %v after the local vpndiag ended: %v", limit, left)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// pingDuring waits for the trace's capture banner, then pings from host to
// dst count times.
func pingDuring(t *testing.T, topo *lab.Topology, p *lab.Proc, host, dst string, count int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := p.WaitFor(ctx, "vpndiag: capturing on"); err != nil {
		t.Fatalf("no capture banner: %v", err)
	}
	if out, err := topo.Exec(ctx, host, "ping", "-c", strconv.Itoa(count), "-i", "0.05", "-W", "2", dst); err != nil {
		t.Fatalf("ping: %v: %s", err, out)
	}
}

// readTraceFile reads a trace report written with -o.
func readTraceFile(t *testing.T, path string) *traceData {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return parseTrace(t, string(b))
}

// TestRemoteTraceLab: sshd in gw (198.18.11.1, and a second one on
// 198.18.12.1 whose sessions have no tcpdump or vpndiag on the PATH) and
// in b (198.18.12.2); vpndiag runs in a. Each failing case is a two-hop
// trace whose bad hop leaves fewer than two: exit 3 with the reason.
//   - unknown host key: the error names the host and its SHA256
//     fingerprint; with --ssh-accept-new the trace runs (10 pings a -> b
//     seen at both hops, none lost) and known_hosts gains exactly the line
//     for 198.18.11.1; a changed key is refused even with --ssh-accept-new;
//   - a key the server does not accept: authentication refused;
//   - no tcpdump on the remote PATH: "tcpdump not found on 198.18.12.1";
//   - an interface that does not exist: its name;
//   - hostile interface names and filters (;, $(), backticks, quotes,
//     newlines) create no file and fail with the interface's or the
//     filter's error;
//   - one failing hop of three: the other two are traced, the report lists
//     the missing hop with its reason (data, input, trace.hop-missing) and
//     each remote hop's SSH round trip.
func TestRemoteTraceLab(t *testing.T) {
	lab.Require(t, "ping", "tcpdump")
	topo := lab.New(t, liveGWTopo)
	k := newSSHKeys(t)
	startSSHD(t, topo, k, "b", "198.18.12.2", "b", true)
	gw := startSSHD(t, topo, k, "gw", "198.18.11.1", "gw", false)
	startSSHD(t, topo, k, "gw", "198.18.12.1", "gw-dmz", true, "SetEnv PATH=/nonexistent")
	const good = "b=ssh://root@198.18.12.2/eth0"
	pt := t // servers restarted in a subtest live on: started with the test's context

	fail := func(t *testing.T, want []string, args ...string) string {
		t.Helper()
		code, p := remoteTrace(t, topo, k, "a", 60*time.Second, append([]string{"--duration", "1s", "-f", "icmp"}, args...)...)
		if code != exitRuntime {
			t.Fatalf("exit %d, want 3; stderr %s", code, p.Stderr())
		}
		for _, w := range want {
			if !strings.Contains(p.Stderr(), w) {
				t.Errorf("stderr lacks %q:\n%s", w, p.Stderr())
			}
		}
		return p.Stderr()
	}

	t.Run("unknown host key", func(t *testing.T) {
		fail(t, []string{"only 1 of 2 hops can be captured", "hop gw: unknown host key: 198.18.11.1 (198.18.11.1:22) offers ssh-ed25519 key " + ssh.FingerprintSHA256(gw.key), "--ssh-accept-new"},
			"gw=ssh://root@198.18.11.1/eth1", good)
	})
	t.Run("accept new", func(t *testing.T) {
		before, _ := os.ReadFile(k.knownHosts)
		out := filepath.Join(k.dir, "accept.json")
		p := startRemoteTrace(t, topo, k, "a", "--ssh-accept-new", "--duration", "3s", "-f", "icmp", "--format", "json", "-o", out,
			"gw=ssh://root@198.18.11.1/eth1", good)
		pingDuring(t, topo, p, "a", "198.18.12.2", 10)
		if code := waitTrace(t, p, 60*time.Second); code != exitOK {
			t.Fatalf("exit %d; stderr %s", code, p.Stderr())
		}
		after, _ := os.ReadFile(k.knownHosts)
		added := strings.TrimPrefix(string(after), string(before))
		if want := knownhosts.Line([]string{"198.18.11.1"}, gw.key) + "\n"; added != want {
			t.Errorf("known_hosts gained %q, want %q", added, want)
		}
		d := readTraceFile(t, out)
		if s := d.segment(t, "gw", "b", "ICMP to 198.18.12.2"); s.Sent != 10 || s.Lost != 0 {
			t.Errorf("segment %+v, want 10 sent, none lost", s)
		}
		if len(d.Data.RemoteHops) != 2 || len(d.Data.MissingHops) != 0 {
			t.Errorf("remote hops %+v, missing %+v; want 2 and none", d.Data.RemoteHops, d.Data.MissingHops)
		}
		for _, r := range d.Data.RemoteHops {
			if r.SSHRTTms <= 0 || r.SSHRTTms > 200 || r.Tool != "tcpdump" || r.User != "root" {
				t.Errorf("remote hop %+v: want an SSH RTT in (0, 200] ms, tool tcpdump, user root", r)
			}
		}
	})
	t.Run("changed host key", func(t *testing.T) {
		if err := gw.proc.Stop(); err != nil {
			t.Fatal(err)
		}
		gw2 := startSSHD(pt, topo, k, "gw", "198.18.11.1", "gw-reinstalled", false)
		before, _ := os.ReadFile(k.knownHosts)
		fail(t, []string{"host key changed: 198.18.11.1 (198.18.11.1:22) offers ssh-ed25519 key " + ssh.FingerprintSHA256(gw2.key),
			ssh.FingerprintSHA256(gw.key), "ssh-keygen -R 198.18.11.1"},
			"--ssh-accept-new", "gw=ssh://root@198.18.11.1/eth1", good)
		if after, _ := os.ReadFile(k.knownHosts); string(after) != string(before) {
			t.Errorf("known_hosts changed by a changed key:\n%s", after)
		}
		// Back to the accepted key for the cases below.
		if err := gw2.proc.Stop(); err != nil {
			t.Fatal(err)
		}
		gw = startSSHD(pt, topo, k, "gw", "198.18.11.1", "gw", false)
	})
	t.Run("refused auth", func(t *testing.T) {
		fail(t, []string{"hop gw: 198.18.12.1 (198.18.12.1:22): authentication refused for user root: tried " + k.stranger},
			"--ssh-identity", k.stranger, "gw=ssh://root@198.18.12.1/eth1", good)
	})
	t.Run("missing tcpdump", func(t *testing.T) {
		fail(t, []string{"hop gw: tcpdump not found on 198.18.12.1"}, "gw=ssh://root@198.18.12.1/eth1", good)
	})
	t.Run("no such interface", func(t *testing.T) {
		fail(t, []string{`hop nope: interface "vdnosuch0" does not exist on 198.18.12.2`}, "nope=ssh://root@198.18.12.2/vdnosuch0", good)
	})
	t.Run("hostile", func(t *testing.T) {
		pwned := filepath.Join(k.dir, "pwned")
		for _, iface := range []string{"eth0; touch " + pwned, "$(touch " + pwned + ")", "`touch " + pwned + "`", "eth0' ; touch " + pwned + " ; '", "eth0\ntouch " + pwned, `eth0"; touch ` + pwned + `; "`} {
			fail(t, []string{"hop x: interface " + strconv.Quote(iface) + " does not exist on 198.18.12.2"}, "x=ssh://root@198.18.12.2/"+iface, good)
		}
		for _, filter := range []string{"icmp' ; touch " + pwned + " ; '", "icmp $(touch " + pwned + ")", "icmp `touch " + pwned + "`", "icmp\ntouch " + pwned} {
			code, p := remoteTrace(t, topo, k, "a", 60*time.Second, "--duration", "1s", "-f", filter, "x=ssh://root@198.18.12.2/eth0", good)
			// The local filter compiler refuses it first (exit 2), or
			// tcpdump does: neither runs it.
			if code != exitUsage && code != exitRuntime {
				t.Errorf("filter %q: exit %d; stderr %s", filter, code, p.Stderr())
			}
		}
		if _, err := os.Stat(pwned); err == nil {
			t.Fatal("a hostile interface name or filter ran a command on the remote host")
		}
	})
	t.Run("one hop of three missing", func(t *testing.T) {
		out := filepath.Join(k.dir, "partial.json")
		p := startRemoteTrace(t, topo, k, "a", "--duration", "3s", "-f", "icmp", "--format", "json", "-o", out,
			"gw=ssh://root@198.18.11.1/eth1", "dmz=ssh://root@198.18.12.1/eth1", good)
		pingDuring(t, topo, p, "a", "198.18.12.2", 10)
		code := waitTrace(t, p, 60*time.Second)
		if code != exitOK || !strings.Contains(p.Stderr(), "hop dmz (ssh://root@198.18.12.1/eth1) is not captured: tcpdump not found on 198.18.12.1") {
			t.Fatalf("exit %d, want 0 and dmz reported; stderr %s", code, p.Stderr())
		}
		d := readTraceFile(t, out)
		if s := d.segment(t, "gw", "b", "ICMP to 198.18.12.2"); s.Sent != 10 || s.Lost != 0 {
			t.Errorf("segment %+v, want 10 sent, none lost", s)
		}
		if len(d.Data.MissingHops) != 1 || d.Data.MissingHops[0].Hop != "dmz" || !strings.Contains(d.Data.MissingHops[0].Error, "tcpdump not found on 198.18.12.1") {
			t.Errorf("missing hops %+v, want dmz with tcpdump not found", d.Data.MissingHops)
		}
		if d.ids("trace.hop-missing") != 1 || len(d.Data.RemoteHops) != 2 {
			t.Errorf("findings %+v, remote hops %+v; want one trace.hop-missing, two remote hops", d.Findings, d.Data.RemoteHops)
		}
	})
	noCaptureLeft(t, topo, 5*time.Second, "gw", "b")
}

// TestRemoteTraceKill: SIGKILL of the local vpndiag while it captures on
// gw and b over SSH (capture processes verified running there first)
// leaves no tcpdump in either namespace within 5 s: the remote script sees
// the SSH channel close and kills its capture.
func TestRemoteTraceKill(t *testing.T) {
	lab.Require(t, "tcpdump")
	topo := lab.New(t, liveGWTopo)
	k := newSSHKeys(t)
	startSSHD(t, topo, k, "gw", "198.18.11.1", "gw", true)
	startSSHD(t, topo, k, "b", "198.18.12.2", "b", true)
	p := startRemoteTrace(t, topo, k, "a", "-f", "icmp", "gw=ssh://root@198.18.11.1/eth1", "b=ssh://root@198.18.12.2/eth0")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := p.WaitFor(ctx, "vpndiag: capturing on"); err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"gw", "b"} {
		if procs := captureProcs(t, topo, h); len(procs) == 0 {
			t.Fatalf("no capture process in %s while trace captures", h)
		}
	}
	if err := p.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("vpndiag not dead 5 s after SIGKILL")
	}
	noCaptureLeft(t, topo, 5*time.Second, "gw", "b")
}

// TestRemoteTraceNATIncident is scenario 1 (TestTraceLabNATIncident)
// captured over SSH on three hosts: vpndiag runs on client and captures
// client=iface:eth0 locally, gw-in, gw-out and gw-dmz on gw and dns on dns
// over SSH (dns reached through gw's NAT), until SIGINT after the traffic.
// The verdict is the file-based one: trace.loss inside gw between gw-in
// and gw-out for UDP to 198.18.2.53:53 only, lost within 1% (+3) of
// conntrack's insert_failed, 2600 sent, the direct class 300 sent and none
// lost, the 1976-port pool; every remote hop has its SSH round trip, and
// the --save files hold the hop names as interface descriptions.
func TestRemoteTraceNATIncident(t *testing.T) {
	lab.Require(t, "dnsmasq", "conntrack", "tcpdump", "ping", "tshark", "capinfos")
	topo := lab.New(t, natIncidentTopo)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	for _, d := range []struct{ host, addr string }{{"dns", "198.18.2.53"}, {"dns2", "198.18.3.53"}} {
		if _, err := topo.StartDNS(ctx, d.host, netip.MustParseAddr(d.addr), "lab.test", netip.MustParseAddr("198.18.9.9")); err != nil {
			t.Fatal(err)
		}
	}
	k := newSSHKeys(t)
	startSSHD(t, topo, k, "gw", "198.18.1.1", "gw", true)
	startSSHD(t, topo, k, "dns", "198.18.2.53", "dns", true)
	lab.Tool(t)
	save := publicDir(t)
	out := filepath.Join(save, "report.json")
	p := startRemoteTrace(t, topo, k, "client", "-f", "udp port 53 or icmp", "--format", "json", "-o", out, "--save", save,
		"client=iface:eth0", "gw-in=ssh://root@198.18.1.1/eth0", "gw-out=ssh://root@198.18.1.1/eth1",
		"gw-dmz=ssh://root@198.18.1.1/eth2", "dns=ssh://root@198.18.2.53/eth0")
	if err := p.WaitFor(ctx, "vpndiag: capturing on"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if o, err := topo.Exec(ctx, "client", "ping", "-c", "3", "-i", "0.05", "-W", "2", "198.18.2.53"); err != nil {
		t.Fatalf("ping: %v: %s", err, o)
	}
	done := make(chan error, 1)
	go func() {
		_, err := toolErr(t, topo, "client", "dns", "-to", "198.18.3.53:53", "-count", "300", "-rate", "100", "-name", "direct.lab.test")
		done <- err
	}()
	tool(t, topo, "client", "dns", "-to", "198.18.2.53:53", "-count", "2600", "-rate", "800", "-name", "nat.lab.test")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if o, err := topo.Exec(ctx, "client", "ping", "-c", "5", "-i", "0.05", "-W", "2", "198.18.2.53"); err != nil {
		t.Fatalf("ping: %v: %s", err, o)
	}
	time.Sleep(500 * time.Millisecond)
	if err := p.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := waitTrace(t, p, 2*time.Minute); code != exitFindings {
		t.Fatalf("trace exit %d, want 1 (trace.loss); stderr %s", code, p.Stderr())
	}
	noCaptureLeft(t, topo, 5*time.Second, "gw", "dns")
	insertFailed, st := conntrackInsertFailed(t, topo, "gw")
	if insertFailed < 300 {
		t.Fatalf("conntrack insert_failed=%d: the pool was not exhausted:\n%s", insertFailed, st)
	}
	d := readTraceFile(t, out)
	from, to, class, lost := d.lossFinding(t)
	if from != "gw-in" || to != "gw-out" || class != "UDP to 198.18.2.53:53" {
		t.Errorf("trace.loss at %s -> %s for %s, want gw-in -> gw-out for UDP to 198.18.2.53:53", from, to, class)
	}
	if math.Abs(lost-float64(insertFailed)) > 0.01*float64(insertFailed)+3 {
		t.Errorf("trace says %v lost, conntrack insert_failed=%d", lost, insertFailed)
	}
	if n := d.ids("trace.loss"); n != 1 {
		t.Errorf("%d trace.loss findings, want 1: %+v", n, d.Findings)
	}
	if direct := d.segment(t, "gw-in", "gw-dmz", "UDP to 198.18.3.53:53"); direct.Sent != 300 || direct.Lost != 0 || direct.NAT {
		t.Errorf("direct class %+v, want 300 sent, none lost, not NAT'd", direct)
	}
	if nat := d.segment(t, "gw-in", "gw-out", "UDP to 198.18.2.53:53"); nat.Sent != 2600 || !nat.NAT {
		t.Errorf("NAT'd class %+v, want 2600 sent, NAT'd", nat)
	}
	if len(d.Data.NATPools) == 0 || d.Data.NATPools[0].DistinctPorts != 1976 {
		t.Errorf("NAT pool %+v, want 1976 ports", d.Data.NATPools)
	}
	if len(d.Data.RemoteHops) != 4 || len(d.Data.MissingHops) != 0 {
		t.Errorf("remote hops %+v, missing %+v; want 4, none", d.Data.RemoteHops, d.Data.MissingHops)
	}
	for _, r := range d.Data.RemoteHops {
		if r.SSHRTTms <= 0 || r.SSHRTTms > 200 {
			t.Errorf("remote hop %s: SSH RTT %v ms", r.Hop, r.SSHRTTms)
		}
		if math.Abs(r.OffsetMs) > 5 {
			t.Errorf("remote hop %s: clock offset %v ms, want ~0 (one kernel clock)", r.Hop, r.OffsetMs)
		}
	}
	for _, h := range d.Data.Hops {
		checkSaved(t, filepath.Join(save, h.Name+".pcapng"), h.Name, h.Packets)
	}
}

// TestRemoteTraceVpndiagTool: a remote host with vpndiag on its PATH (sshd
// SetEnv) captures with vpndiag capture -w - (pcapng streamed, hop name as
// interface description) and a host without it with tcpdump; 10 pings
// a -> b are matched across the two, none lost, and the saved files are
// complete with the hop names.
func TestRemoteTraceVpndiagTool(t *testing.T) {
	lab.Require(t, "ping", "tcpdump", "tshark", "capinfos")
	topo := lab.New(t, liveGWTopo)
	k := newSSHKeys(t)
	startSSHD(t, topo, k, "gw", "198.18.11.1", "gw", true, "SetEnv PATH="+filepath.Dir(captureBinary(t))+":/usr/bin:/bin")
	startSSHD(t, topo, k, "b", "198.18.12.2", "b", true)
	save := publicDir(t)
	out := filepath.Join(save, "report.json")
	p := startRemoteTrace(t, topo, k, "a", "--duration", "3s", "-f", "icmp", "--format", "json", "-o", out, "--save", save,
		"gw=ssh://root@198.18.11.1/eth1", "b=ssh://root@198.18.12.2/eth0")
	pingDuring(t, topo, p, "a", "198.18.12.2", 10)
	if code := waitTrace(t, p, 60*time.Second); code != exitOK {
		t.Fatalf("exit %d; stderr %s", code, p.Stderr())
	}
	d := readTraceFile(t, out)
	if s := d.segment(t, "gw", "b", "ICMP to 198.18.12.2"); s.Sent != 10 || s.Lost != 0 {
		t.Errorf("segment %+v, want 10 sent, none lost", s)
	}
	tools := map[string]string{}
	for _, r := range d.Data.RemoteHops {
		tools[r.Hop] = r.Tool
	}
	if tools["gw"] != "vpndiag" || tools["b"] != "tcpdump" {
		t.Errorf("tools %v, want gw vpndiag, b tcpdump", tools)
	}
	for _, h := range d.Data.Hops {
		if h.Packets != 20 {
			t.Errorf("hop %s: %d packets, want 20", h.Name, h.Packets)
		}
		checkSaved(t, filepath.Join(save, h.Name+".pcapng"), h.Name, h.Packets)
	}
	noCaptureLeft(t, topo, 5*time.Second, "gw", "b")
}
