package main

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vpndiag/vpndiag/analyze"
	"github.com/vpndiag/vpndiag/report"
)

// TestAnalyzeGolden renders analyze reports of real captures (the shared
// corpus and the lab fixtures) in every format and compares them with the
// committed golden files.
func TestAnalyzeGolden(t *testing.T) {
	cases := []struct{ name, file string }{
		{"vxlan", "the-tcpdump-group_tcpdump/vxlan.pcap"},
		{"esp-pcapng", "ntop_nDPI/esp.pcapng"},
		{"wireguard", "ntop_nDPI/wireguard.pcap"},
		{"gre", "the-tcpdump-group_tcpdump/various_gre.pcap"},
		{"ikev2-null", "the-tcpdump-group_tcpdump/ikev2four.pcap"},
		{"sll-arp", "zeek_zeek/linuxsll-arp.pcap"},
		// Lab fixtures (testdata/fixtures/README.md tells what the lab did).
		{"fixture-vxlan", "fixtures/vxlan/vxlan.pcap"},
		{"fixture-mixed", "fixtures/mixed/mixed.pcapng"},
		{"fixture-nat-dns-gw-out", "fixtures/nat-dns/gw-out.pcap"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var path string
			if strings.HasPrefix(c.file, "fixtures/") {
				path = relTo(t, filepath.Join(moduleRoot(t), "testdata", c.file))
			} else {
				path = relTo(t, corpus(t, c.file))
			}
			for _, f := range []string{"text", "json", "md"} {
				out, errOut, code := vpndiag(t, "analyze", "--fail-on", "none", "--format", f, path)
				if code != 0 {
					t.Fatalf("exit %d, stderr: %s", code, errOut)
				}
				golden(t, "analyze-"+c.name+"."+f, out)
			}
		})
	}
}

// readReport parses a JSON report and checks its schema.
func readReport(t *testing.T, s string) *report.Report {
	t.Helper()
	var r report.Report
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, s)
	}
	if r.Schema != report.Schema {
		t.Fatalf("schema = %q, want %q", r.Schema, report.Schema)
	}
	return &r
}

func summaryOf(t *testing.T, r *report.Report) analyze.SummaryData {
	t.Helper()
	b, _ := json.Marshal(r.Data["summary"])
	var s analyze.SummaryData
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestAnalyzeCountsAgainstTshark checks the summary's packet and byte counts
// and the VXLAN/ESP numbers against tshark on the same files.
func TestAnalyzeCountsAgainstTshark(t *testing.T) {
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Fatal("tshark is needed as the oracle: apt-get install tshark")
	}
	files := []string{"the-tcpdump-group_tcpdump/vxlan.pcap", "ntop_nDPI/vxlan.pcap", "zeek_zeek/smtp.pcap", "ntop_nDPI/esp.pcapng"}
	for _, f := range files {
		p := corpus(t, f)
		out, errOut, code := vpndiag(t, "analyze", "--format", "json", "--fail-on", "none", p)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", f, code, errOut)
		}
		s := summaryOf(t, readReport(t, out))
		ts, err := exec.Command("tshark", "-r", p, "-T", "fields", "-e", "frame.len").Output()
		if err != nil {
			t.Fatal(err)
		}
		var packets, bytes uint64
		for _, line := range strings.Fields(string(ts)) {
			var n uint64
			for _, c := range line {
				n = n*10 + uint64(c-'0')
			}
			packets++
			bytes += n
		}
		if s.Packets != packets || s.Bytes != bytes {
			t.Errorf("%s: vpndiag %d packets %d bytes, tshark %d packets %d bytes", f, s.Packets, s.Bytes, packets, bytes)
		}
	}
}

// TestAnalyzeDirectory reads every capture of a directory and lists each input.
func TestAnalyzeDirectory(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"zeek_zeek/4in4.pcap", "ntop_nDPI/gre.pcapng"} {
		b, err := os.ReadFile(corpus(t, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a capture"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := vpndiag(t, "analyze", "--format", "json", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	r := readReport(t, out)
	if len(r.Inputs) != 2 {
		t.Fatalf("inputs = %d, want 2 (the .txt is not a capture)", len(r.Inputs))
	}
	got := map[string]uint64{}
	for _, in := range r.Inputs {
		got[in.Name] = in.Packets
	}
	if got["4in4.pcap"] != 1 || got["gre.pcapng"] != 1 {
		t.Errorf("packets per input = %v, want 4in4.pcap:1 gre.pcapng:1", got)
	}
}

// TestAnalyzeGzip reads a gzip-compressed capture with the same result as the plain one.
func TestAnalyzeGzip(t *testing.T) {
	src := corpus(t, "ntop_nDPI/vxlan.pcap")
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	gz := filepath.Join(t.TempDir(), "vxlan.pcap.gz")
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	if err := os.WriteFile(gz, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	plain, _, _ := vpndiag(t, "analyze", "--format", "json", src)
	zipped, errOut, code := vpndiag(t, "analyze", "--format", "json", gz)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	a, z := summaryOf(t, readReport(t, plain)), summaryOf(t, readReport(t, zipped))
	if a.Packets != z.Packets || a.Bytes != z.Bytes || len(a.TopFlows) != len(z.TopFlows) || a.Packets == 0 {
		t.Errorf("gzip: %d packets %d bytes, plain: %d packets %d bytes", z.Packets, z.Bytes, a.Packets, a.Bytes)
	}
	if r := readReport(t, zipped); r.Inputs[0].Format != "pcap.gz" {
		t.Errorf("format = %q, want pcap.gz", r.Inputs[0].Format)
	}
}

// pcapHeader is a little-endian microsecond pcap global header.
func pcapHeader(linkType uint32) []byte {
	h := make([]byte, 24)
	binary.LittleEndian.PutUint32(h[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(h[4:], 2)
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], 65535)
	binary.LittleEndian.PutUint32(h[20:], linkType)
	return h
}

// TestAnalyzeBadInput: every kind of bad input gets a one-line error naming
// the file, exit code 2, and no panic; a truncated capture still reports
// what came before the damage.
func TestAnalyzeBadInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	vx, err := os.ReadFile(corpus(t, "ntop_nDPI/vxlan.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	emptyDir := filepath.Join(dir, "empty")
	os.Mkdir(emptyDir, 0o755)
	cases := []struct {
		name, path string
		wantErr    []string
	}{
		{"empty", write("empty.pcap", nil), []string{"empty.pcap", "empty"}},
		{"text", write("notes.pcap", []byte("<html>not a capture</html>\n")), []string{"notes.pcap", "not a pcap or pcapng"}},
		{"truncated", write("cut.pcap", vx[:len(vx)/2]), []string{"cut.pcap", "frame"}},
		{"header only half", write("half.pcap", vx[:10]), []string{"half.pcap"}},
		{"unknown link type", write("usr0.pcap", pcapHeader(147)), []string{"usr0.pcap", "link type", "not supported"}},
		{"missing", filepath.Join(dir, "nope.pcap"), []string{"nope.pcap"}},
		{"directory without captures", emptyDir, []string{"empty"}},
		{"bad pcapng block", write("bad.pcapng", []byte{0x0a, 0x0d, 0x0d, 0x0a, 0xff, 0xff, 0xff, 0x7f, 0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0}), []string{"bad.pcapng"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, errOut, code := vpndiag(t, "analyze", "--format", "json", c.path)
			if code != exitUsage {
				t.Fatalf("exit %d, want %d; stderr: %s", code, exitUsage, errOut)
			}
			lines := strings.Split(strings.TrimSpace(errOut), "\n")
			if len(lines) != 1 {
				t.Errorf("want a one-line error, got:\n%s", errOut)
			}
			for _, w := range c.wantErr {
				if !strings.Contains(errOut, w) {
					t.Errorf("error %q does not mention %q", errOut, w)
				}
			}
			if c.name == "truncated" {
				r := readReport(t, out)
				if len(r.Inputs) != 1 || r.Inputs[0].Packets == 0 || r.Inputs[0].Error == "" {
					t.Fatalf("a truncated capture must still report what was read before the damage: %+v", r.Inputs)
				}
			}
		})
	}
}

// TestAnalyzeUnreadable runs the binary as an unprivileged user on a file it
// may not read (root reads everything, so this needs a separate process).
func TestAnalyzeUnreadable(t *testing.T) {
	if os.Getuid() != 0 {
		t.Fatal("this test switches to user nobody and needs root (run the suite with sudo)")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Fatal("setpriv is needed (apt-get install util-linux)")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Dir(bin), 0o755)
	secret := filepath.Join(dir, "secret.pcap")
	b, _ := os.ReadFile(corpus(t, "zeek_zeek/4in4.pcap"))
	if err := os.WriteFile(secret, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", bin, "analyze", secret)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != exitUsage {
		t.Fatalf("want exit %d, got %v; stderr: %s", exitUsage, err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "secret.pcap") || !strings.Contains(stderr.String(), "permission denied") {
		t.Errorf("error should name the file and the cause: %s", stderr.String())
	}
}

// TestUsageErrors: bad flags and arguments exit 2 with a message.
func TestUsageErrors(t *testing.T) {
	p := corpus(t, "zeek_zeek/4in4.pcap")
	for _, args := range [][]string{
		{"analyze"},
		{"analyze", "--format", "xml", p},
		{"analyze", "--fail-on", "fatal", p},
		{"analyze", "--analyzers", "nosuch", p},
		{"nosuchcommand"},
	} {
		_, errOut, code := vpndiag(t, args...)
		if code != exitUsage || errOut == "" {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 with a message", args, code, errOut)
		}
	}
}

// TestVersionAndCompletion: version prints, completion scripts generate.
func TestVersionAndCompletion(t *testing.T) {
	out, _, code := vpndiag(t, "version")
	if code != 0 || !strings.HasPrefix(out, "vpndiag ") {
		t.Errorf("version: exit %d, %q", code, out)
	}
	for _, sh := range []string{"bash", "zsh", "fish", "powershell"} {
		out, _, code := vpndiag(t, "completion", sh)
		if code != 0 || !strings.Contains(out, "vpndiag") {
			t.Errorf("completion %s: exit %d, %d bytes", sh, code, len(out))
		}
	}
}

// TestHelpHasExamples: every command's help explains it with an example.
func TestHelpHasExamples(t *testing.T) {
	root := newRootCmd(&globalOptions{})
	for _, c := range root.Commands() {
		if c.Name() == "help" || c.Name() == "completion" {
			continue
		}
		if c.Example == "" || c.Short == "" {
			t.Errorf("command %s has no example or short description", c.Name())
		}
	}
}

// TestAnalyzeFixtureTruth checks analyze's protocol counts on the VXLAN lab
// fixture against what the lab recorded when it made it (truth.json).
func TestAnalyzeFixtureTruth(t *testing.T) {
	dir := filepath.Join(moduleRoot(t), "testdata", "fixtures", "vxlan")
	b, err := os.ReadFile(filepath.Join(dir, "truth.json"))
	if err != nil {
		t.Fatal(err)
	}
	var truth struct {
		Did     map[string]uint64 `json:"did"`
		Counted map[string]uint64 `json:"counted"`
	}
	if err := json.Unmarshal(b, &truth); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := vpndiag(t, "analyze", "--format", "json", filepath.Join(dir, "vxlan.pcap"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	s := summaryOf(t, readReport(t, out))
	got := map[string]uint64{}
	for _, p := range s.Protocols {
		if p.Layer == "inner" {
			got["inner_"+p.Protocol] = p.Packets
		}
	}
	for _, tc := range s.Tunnels {
		if tc.Kind == "vxlan" && tc.ID != nil && uint64(*tc.ID) == truth.Did["vni"] {
			got["vxlan_packets"] = tc.Packets
		}
	}
	for _, k := range []string{"inner_icmp", "inner_tcp", "inner_udp", "vxlan_packets"} {
		if got[k] != truth.Counted[k] || got[k] == 0 {
			t.Errorf("%s = %d, the lab recorded %d", k, got[k], truth.Counted[k])
		}
	}
	if want := 2 * truth.Did["pings"]; got["inner_icmp"] != want {
		t.Errorf("inner ICMP = %d, want %d (%d pings and their replies)", got["inner_icmp"], want, truth.Did["pings"])
	}
}
