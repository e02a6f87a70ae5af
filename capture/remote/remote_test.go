package remote

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/vpndiag/vpndiag/capture"
)

// hostile values: each would run a command or break the word if it were
// not quoted.
var hostile = []string{
	"", "eth0", "it's", "eth0; touch /tmp/pwned", "$(id)", "`id`", `"`, `'`, `''`, `\`, "a\nb", "a\tb",
	"$HOME", "${IFS}", "*", "-i", "--", "!", "a b  c", "'\\''", "é\x01\x7f",
}

// shEcho runs the quoted words through sh and returns what printf saw.
func shEcho(t testing.TB, words ...string) string {
	t.Helper()
	var q []string
	for _, w := range words {
		q = append(q, Quote(w))
	}
	out, err := exec.Command("/bin/sh", "-c", "printf '%s\\0' "+strings.Join(q, " ")).Output()
	if err != nil {
		t.Fatalf("sh: %v", err)
	}
	return string(out)
}

// TestQuote: every hostile value survives sh byte for byte, one word each.
func TestQuote(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "''"}, {"eth0", "'eth0'"}, {"it's", `'it'\''s'`}, {"$(id)", "'$(id)'"},
	} {
		if got := Quote(tc.in); got != tc.want {
			t.Errorf("Quote(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
	got := shEcho(t, hostile...)
	want := strings.Join(hostile, "\x00") + "\x00"
	if got != want {
		t.Errorf("sh saw %q, want %q", got, want)
	}
}

// FuzzQuote: any string without NUL (which no shell argument can hold)
// round-trips through sh as one word.
func FuzzQuote(f *testing.F) {
	for _, h := range hostile {
		f.Add(h)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.ContainsRune(s, 0) {
			t.Skip()
		}
		if got := shEcho(t, s, "end"); got != s+"\x00end\x00" {
			t.Fatalf("%q came back as %q", s, got)
		}
	})
}

// fakeTools makes a PATH directory with a fake capture tool that records
// its arguments (one per line) and its pid, prints a pcap header, then
// sleeps until killed.
func fakeTools(t *testing.T, name string) (dir, argsFile, pidFile string) {
	t.Helper()
	dir = t.TempDir()
	argsFile = filepath.Join(dir, "args")
	pidFile = filepath.Join(dir, "pid")
	fake := "#!/bin/sh\necho $$ > " + Quote(pidFile) + "\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > " + Quote(argsFile) +
		"\nprintf '\\324\\303\\262\\241\\002\\000\\004\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\004\\000\\001\\000\\000\\000'\nexec sleep 30\n"
	if err := os.WriteFile(filepath.Join(dir, name), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, argsFile, pidFile
}

// runScript runs Command's output the way sshd does (the login shell with
// -c) with PATH=path, stdin a pipe.
func runScript(t *testing.T, path, cmdline string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer, func() error) {
	t.Helper()
	c := exec.Command("/bin/sh", "-c", cmdline)
	c.Env = []string{"PATH=" + path}
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	in, err := c.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Process.Kill() })
	return c, &stdout, &stderr, in.Close
}

func waitFile(t *testing.T, path string) string {
	t.Helper()
	for range 200 {
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 && bytes.HasSuffix(b, []byte("\n")) {
			return string(b)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s not written within 2s", path)
	return ""
}

func alive(pid string) bool {
	_, err := os.Stat("/proc/" + strings.TrimSpace(pid))
	return err == nil
}

// TestScriptFakeTcpdump runs the remote script locally with a fake
// tcpdump: it gets exactly the hostile interface and filter as single
// arguments (after --), the header reaches stdout, no file is created by
// the hostile values, and closing stdin (the SSH channel closing) kills
// the capture within a second and ends the script.
func TestScriptFakeTcpdump(t *testing.T) {
	dir, argsFile, pidFile := fakeTools(t, "tcpdump")
	pwned := filepath.Join(t.TempDir(), "pwned")
	iface := "eth0; touch " + pwned + " $(touch " + pwned + ") `touch " + pwned + "`'\"\n"
	filter := "udp port 53' ; touch " + pwned + "; '"
	c, stdout, stderr, closeIn := runScript(t, dir+":/usr/bin:/bin", Command([]string{iface}, filter, "gw's", 128, ToolAuto, false))
	args := waitFile(t, argsFile)
	want := strings.Join([]string{"-U", "--immediate-mode", "-n", "-w", "-", "-s", "128", "-i", iface, "--", filter}, "\n") + "\n"
	if args != want {
		t.Errorf("tcpdump args\n%q\nwant\n%q", args, want)
	}
	pid := waitFile(t, pidFile)
	if !alive(pid) {
		t.Fatal("capture not running")
	}
	closeIn()
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatalf("script still running 3s after stdin closed; stderr %s", stderr)
	}
	if alive(pid) {
		t.Errorf("capture process %s still alive after stdin closed", pid)
	}
	if stdout.Len() != 24 {
		t.Errorf("stdout %d bytes, want the 24-byte pcap header", stdout.Len())
	}
	if !strings.Contains(stderr.String(), markTool+"tcpdump") {
		t.Errorf("stderr %q lacks the tool mark", stderr)
	}
	if _, err := os.Stat(pwned); err == nil {
		t.Fatal("a hostile value ran a command")
	}
}

// TestScriptPrefersVpndiag: with vpndiag on the PATH (auto) it runs
// vpndiag capture -w - with the hop; with ToolTcpdump it does not; with
// sudo it runs sudo -n --.
func TestScriptPrefersVpndiag(t *testing.T) {
	dir, argsFile, _ := fakeTools(t, "vpndiag")
	c, _, _, closeIn := runScript(t, dir+":/usr/bin:/bin", Command([]string{"eth0", "wg0"}, "icmp", "gw", 256, ToolAuto, false))
	got := waitFile(t, argsFile)
	want := strings.Join([]string{"capture", "-i", "eth0,wg0", "-w", "-", "--hop", "gw", "--snaplen", "256", "-f", "icmp"}, "\n") + "\n"
	if got != want {
		t.Errorf("vpndiag args %q, want %q", got, want)
	}
	closeIn()
	_ = c.Wait()

	sdir, sargs, _ := fakeTools(t, "sudo")
	c, _, _, closeIn = runScript(t, sdir+":/usr/bin:/bin", Command([]string{"eth0"}, "", "gw", 256, ToolTcpdump, true))
	got = waitFile(t, sargs)
	if !strings.HasPrefix(got, "-n\n--\ntcpdump\n-U\n") || strings.Contains(got, "\n--\n-U") {
		t.Errorf("sudo args %q, want -n -- tcpdump ... (no filter: no --)", got)
	}
	closeIn()
	_ = c.Wait()
}

// TestScriptNoTool: neither vpndiag nor tcpdump on the PATH: exit 127 and
// the mark startError turns into "tcpdump not found on HOST".
func TestScriptNoTool(t *testing.T) {
	c, _, stderr, closeIn := runScript(t, "/nonexistent", Command([]string{"eth0"}, "", "gw", 256, ToolAuto, false))
	closeIn()
	err := c.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 127 || !strings.Contains(stderr.String(), markNoTool) {
		t.Fatalf("exit %v, stderr %q; want 127 and %q", err, stderr, markNoTool)
	}
	s := &source{host: "gw1", ifaces: []string{"eth0"}, stderr: &tailBuffer{max: 1024}}
	s.stderr.Write(stderr.Bytes())
	if e := s.startError(errors.New("empty")); !strings.Contains(e.Error(), "tcpdump not found on gw1") {
		t.Errorf("startError: %v", e)
	}
}

// TestStartErrors: what tcpdump and sudo print when they cannot start
// becomes an error naming the cause.
func TestStartErrors(t *testing.T) {
	for _, tc := range []struct{ stderr, want string }{
		{markTool + "tcpdump\ntcpdump: eth9: No such device exists\n(SIOCGIFHWADDR: No such device)\n", `interface "eth9" does not exist on gw1`},
		{markTool + "tcpdump\ntcpdump: eth9: You don't have permission to perform this capture on that device\n", "permission denied capturing on eth9 of gw1"},
		{markTool + "tcpdump\nsudo: a password is required\n", "sudo on gw1 failed (sudo: a password is required)"},
		{markTool + "tcpdump\nsegfault\n", "the remote capture on gw1 failed (exit -1): segfault"},
	} {
		s := &source{host: "gw1", ifaces: []string{"eth9"}, stderr: &tailBuffer{max: 1024}}
		s.stderr.Write([]byte(tc.stderr))
		if err := s.startError(errors.New("empty")); !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.stderr, err, tc.want)
		}
	}
}

// TestResolveConfig: ~/.ssh/config values apply unless the source gives
// them; ProxyJump, IdentityFile and UserKnownHostsFile are expanded.
func TestResolveConfig(t *testing.T) {
	f := filepath.Join(t.TempDir(), "config")
	os.WriteFile(f, []byte(`Host gw1
  HostName 198.18.1.1
  User ops
  Port 2222
  IdentityFile ~/.ssh/gw_%h
  UserKnownHostsFile /etc/kh1 /etc/kh2
  ProxyJump jump@bastion:2200,ssh://other

Host *
  User fallback
`), 0o600)
	c, err := loadConfig(f, true)
	if err != nil {
		t.Fatal(err)
	}
	tg, err := c.resolve("gw1", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if tg.Addr() != "198.18.1.1:2222" || tg.User != "ops" || len(tg.Identities) != 1 ||
		tg.Identities[0] != filepath.Join(homeDir(), ".ssh", "gw_198.18.1.1") ||
		strings.Join(tg.KnownHosts, " ") != "/etc/kh1 /etc/kh2" || strings.Join(tg.ProxyJump, " ") != "jump@bastion:2200 other" {
		t.Errorf("resolved %+v", tg)
	}
	if tg, _ := c.resolve("gw1", "root", 22); tg.User != "root" || tg.Port != 22 {
		t.Errorf("explicit user/port lost: %+v", tg)
	}
	if tg, _ := c.resolve("2001:2::1", "", 0); tg.Addr() != "[2001:2::1]:22" || tg.User != "fallback" {
		t.Errorf("default: %+v", tg)
	}
	if h, u, p, err := parseJump("jump@[2001:2::9]:2200"); err != nil || h != "2001:2::9" || u != "jump" || p != 2200 {
		t.Errorf("parseJump: %q %q %d %v", h, u, p, err)
	}
	if _, err := loadConfig(filepath.Join(t.TempDir(), "missing"), true); err == nil {
		t.Error("an explicit missing config file is not an error")
	}
}

func newKey(t *testing.T) ssh.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestHostKeys: unknown key -> ErrUnknownHostKey naming host and SHA256
// fingerprint; AcceptNew adds exactly one line, after which the key is
// known; a different key for the same host -> ErrChangedHostKey even with
// AcceptNew, and known_hosts is not touched.
func TestHostKeys(t *testing.T) {
	kh := filepath.Join(t.TempDir(), "sub", "known_hosts")
	addr := &net.TCPAddr{IP: net.ParseIP("198.18.1.1"), Port: 2222}
	k1, k2 := newKey(t), newKey(t)
	strict := &hostKeys{files: []string{kh}}
	err := strict.verifier("gw1")("198.18.1.1:2222", addr, k1)
	if !errors.Is(err, ErrUnknownHostKey) || !strings.Contains(err.Error(), ssh.FingerprintSHA256(k1)) ||
		!strings.Contains(err.Error(), "gw1") || !strings.Contains(err.Error(), "--ssh-accept-new") {
		t.Fatalf("unknown: %v", err)
	}
	accept := &hostKeys{files: []string{kh}, acceptNew: true}
	if err := accept.verifier("gw1")("198.18.1.1:2222", addr, k1); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(kh)
	if want := knownhosts.Line([]string{"[198.18.1.1]:2222"}, k1) + "\n"; string(b) != want {
		t.Errorf("known_hosts %q, want %q", b, want)
	}
	if err := strict.verifier("gw1")("198.18.1.1:2222", addr, k1); err != nil {
		t.Errorf("accepted key: %v", err)
	}
	if a := strict.algorithms("198.18.1.1:2222"); len(a) != 1 || a[0] != ssh.KeyAlgoED25519 {
		t.Errorf("algorithms %v", a)
	}
	err = accept.verifier("gw1")("198.18.1.1:2222", addr, k2)
	if !errors.Is(err, ErrChangedHostKey) || !strings.Contains(err.Error(), ssh.FingerprintSHA256(k2)) ||
		!strings.Contains(err.Error(), ssh.FingerprintSHA256(k1)) || !strings.Contains(err.Error(), "ssh-keygen -R [198.18.1.1]:2222") {
		t.Fatalf("changed: %v", err)
	}
	if b2, _ := os.ReadFile(kh); !bytes.Equal(b, b2) {
		t.Errorf("known_hosts changed by a changed key: %q", b2)
	}
}

// TestOpenUnreachable: a closed port is a connection error naming the
// host and the address; an explicit config file that is missing is an
// error of NewOpener.
func TestOpenUnreachable(t *testing.T) {
	if _, err := NewOpener(Options{ConfigFile: filepath.Join(t.TempDir(), "none")}); err == nil {
		t.Error("missing explicit config accepted")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	op, err := NewOpener(Options{ConnectTimeout: 3 * time.Second, KnownHosts: []string{filepath.Join(t.TempDir(), "kh")}, NoAgent: true})
	if err != nil {
		t.Fatal(err)
	}
	spec, err := capture.ParseSpec("ssh://root@127.0.0.1:" + strconv.Itoa(port) + "/eth0")
	if err != nil {
		t.Fatal(err)
	}
	_, err = op.Open(context.Background(), spec, capture.SpecOptions{Hop: "gw"})
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1 (127.0.0.1:"+strconv.Itoa(port)+"): cannot connect: ") {
		t.Errorf("closed port: %v", err)
	}
}
