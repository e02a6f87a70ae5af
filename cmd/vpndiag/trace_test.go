package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vpndiag/vpndiag/analyze/correlate"
)

// fixture returns the path of a lab fixture, relative to the test directory.
func fixture(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join(moduleRoot(t), "testdata", "fixtures", name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("fixture missing (regenerate with go test ./testdata/lab -run TestFixtures -fixtures): %v", err)
	}
	return relTo(t, p)
}

// traceData is the part of trace's JSON report the tests read.
type traceData struct {
	Findings []struct {
		ID       string         `json:"id"`
		Severity string         `json:"severity"`
		Summary  string         `json:"summary"`
		Evidence map[string]any `json:"evidence"`
		Where    struct {
			Hop     string `json:"hop"`
			Class   string `json:"class"`
			Segment *struct {
				From string `json:"from"`
				To   string `json:"to"`
			} `json:"segment"`
		} `json:"where"`
		Frames []struct {
			File  string `json:"file"`
			Frame uint64 `json:"frame"`
		} `json:"frames"`
	} `json:"findings"`
	Data struct {
		Hops        []correlate.HopData        `json:"hops"`
		Segments    []correlate.SegmentData    `json:"segments"`
		NATPools    []correlate.NATPool        `json:"nat_pools"`
		NATMappings []correlate.NATMapping     `json:"nat_mappings"`
		NATTotal    int                        `json:"nat_mappings_total"`
		Tunnels     []correlate.TunnelCounters `json:"tunnels"`
		TunnelPairs uint64                     `json:"tunnel_pairs"`
		MissingHops []missingHop               `json:"missing_hops"`
		RemoteHops  []remoteHopData            `json:"remote_hops"`
	} `json:"data"`
}

func parseTrace(t *testing.T, out string) *traceData {
	t.Helper()
	readReport(t, out)
	var d traceData
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatal(err)
	}
	return &d
}

func (d *traceData) segment(t *testing.T, from, to, class string) correlate.SegmentData {
	t.Helper()
	for _, s := range d.Data.Segments {
		if s.From == from && s.To == to && s.Class == class {
			return s
		}
	}
	t.Fatalf("no segment %s -> %s %s in %+v", from, to, class, d.Data.Segments)
	return correlate.SegmentData{}
}

func (d *traceData) ids(id string) int {
	n := 0
	for _, f := range d.Findings {
		if f.ID == id {
			n++
		}
	}
	return n
}

func natDNSArgs(t *testing.T) []string {
	dir := fixture(t, "nat-dns")
	// Hops deliberately not in path order.
	return []string{"gw-out=" + filepath.Join(dir, "gw-out.pcap"), "client=" + filepath.Join(dir, "client.pcap"),
		"dns=" + filepath.Join(dir, "dns.pcap"), "gw-in=" + filepath.Join(dir, "gw-in.pcap")}
}

// TestTraceGolden renders the trace of the NAT DNS fixture in every format.
func TestTraceGolden(t *testing.T) {
	for _, f := range []string{"text", "json", "md"} {
		out, errOut, code := vpndiag(t, append([]string{"trace", "--format", f}, natDNSArgs(t)...)...)
		if code != exitFindings {
			t.Fatalf("exit %d, want 1 (an error finding); stderr: %s", code, errOut)
		}
		golden(t, "trace-nat-dns."+f, out)
	}
}

// TestTraceNATDNS checks the numbers of the NAT DNS fixture against its
// truth.json: 298 of 500 NAT'd queries dropped inside gw (conntrack
// insert_failed=298), the direct resolver's 100 queries all answered, and
// the NAT's 200-port pool 20000-20199.
func TestTraceNATDNS(t *testing.T) {
	out, errOut, code := vpndiag(t, append([]string{"trace", "--format", "json"}, natDNSArgs(t)...)...)
	if code != exitFindings {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	d := parseTrace(t, out)
	if d.ids("trace.loss") != 1 {
		t.Fatalf("%d trace.loss findings, want 1: %+v", d.ids("trace.loss"), d.Findings)
	}
	f := d.Findings[0]
	if f.ID != "trace.loss" || f.Where.Segment.From != "gw-in" || f.Where.Segment.To != "gw-out" || f.Where.Class != "UDP to 198.18.2.53:53" {
		t.Errorf("finding %+v", f)
	}
	if !strings.HasPrefix(f.Summary, "59.6% of UDP to 198.18.2.53:53 is lost inside gw between gw-in and gw-out (298 of 500 packets)") ||
		f.Evidence["control_class"] != "UDP to 198.18.3.53:53" {
		t.Errorf("summary %q, control %v", f.Summary, f.Evidence["control_class"])
	}
	if len(f.Frames) == 0 || f.Frames[0].File != "gw-in.pcap" {
		t.Errorf("frames %+v, want frames of gw-in.pcap", f.Frames)
	}
	s := d.segment(t, "gw-in", "gw-out", "UDP to 198.18.2.53:53")
	if s.Sent != 500 || s.Received != 202 || s.Lost != 298 || !s.NAT {
		t.Errorf("NAT'd segment %+v, want 500 sent, 202 received, 298 lost, NAT'd", s)
	}
	direct := d.segment(t, "client", "gw-in", "UDP to 198.18.3.53:53")
	answers := d.segment(t, "gw-in", "client", "UDP from 198.18.3.53:53")
	if direct.Sent != 100 || direct.Lost != 0 || direct.NAT || answers.Received != 100 {
		t.Errorf("direct class %+v, answers %+v, want 100 each, none lost", direct, answers)
	}
	for _, s := range d.Data.Segments {
		if s.Lost != 0 && s.Class != "UDP to 198.18.2.53:53" {
			t.Errorf("unexpected loss %+v", s)
		}
	}
	if len(d.Data.NATPools) != 1 || d.Data.NATPools[0].DistinctPorts != 200 || d.Data.NATPools[0].PortMin != 20000 ||
		d.Data.NATPools[0].PortMax != 20199 || d.Data.NATPools[0].Outside != "198.18.2.1" {
		t.Errorf("NAT pools %+v, want 198.18.2.1 ports 20000-20199 (200)", d.Data.NATPools)
	}
	if d.Data.NATTotal != 200 {
		t.Errorf("%d NAT mappings, want 200 (conntrack listed 200)", d.Data.NATTotal)
	}
	for _, h := range d.Data.Hops {
		if h.OffsetMs > 0.1 || h.OffsetMs < -0.1 {
			t.Errorf("hop %s clock offset %v ms, want ~0 (one machine)", h.Name, h.OffsetMs)
		}
	}
}

// TestTraceLossWire checks the loss-wire fixture: 120 of 400 UDP to port
// 5000 dropped between r1 and r2 (nft counter 120), port 5001 untouched.
func TestTraceLossWire(t *testing.T) {
	dir := fixture(t, "loss-wire")
	out, errOut, code := vpndiag(t, "trace", "--format", "json", "r2="+filepath.Join(dir, "r2-eth1.pcap"), "r1="+filepath.Join(dir, "r1-eth1.pcap"))
	if code != exitFindings {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	d := parseTrace(t, out)
	s := d.segment(t, "r1", "r2", "UDP to 198.18.3.2:5000")
	c := d.segment(t, "r1", "r2", "UDP to 198.18.3.2:5001")
	if s.Sent != 400 || s.Lost != 120 || c.Sent != 100 || c.Lost != 0 || d.ids("trace.loss") != 1 {
		t.Errorf("lossy %+v control %+v findings %d, want 120 of 400 lost, control 0 of 100, one finding", s, c, d.ids("trace.loss"))
	}
}

// TestTraceBadInput: every kind of bad usage is exit 2 with a message
// naming what is wrong.
func TestTraceBadInput(t *testing.T) {
	dir := fixture(t, "nat-dns")
	cl, gw := filepath.Join(dir, "client.pcap"), filepath.Join(dir, "gw-in.pcap")
	notCapture := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(notCapture, []byte("this is not a capture file\n"), 0o644)
	vx := filepath.Join(fixture(t, "vxlan"), "vxlan.pcap")
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"one hop", []string{"a=" + cl}, "at least two hops"},
		{"duplicate names", []string{"a=" + cl, "a=" + gw}, `duplicate hop name "a"`},
		{"two interfaces in one hop", []string{"a=" + cl, "b=iface:eth0,eth1"}, "one interface per hop"},
		{"--save without live hops", []string{"--save", t.TempDir(), "a=" + cl, "b=" + gw}, "--save applies to live hops"},
		{"--duration without live hops", []string{"--duration", "1s", "a=" + cl, "b=" + gw}, "--duration applies to live hops"},
		{"bad filter", []string{"-f", "port eighty", "a=" + cl, "b=iface:lo"}, "eighty"},
		{"two remote interfaces in one hop", []string{"a=" + cl, "b=ssh://root@gw1/eth0,eth1"}, "one interface per hop"},
		{"bad ssh source", []string{"a=" + cl, "b=ssh://gw1:99999/eth0"}, "want 1..65535"},
		{"bad --ssh-tool", []string{"--ssh-tool", "wireshark", "a=" + cl, "b=ssh://gw1/eth0"}, "want auto, vpndiag or tcpdump"},
		{"not a capture", []string{"a=" + cl, "b=" + notCapture}, "hop b:"},
		{"missing file", []string{"a=" + cl, "b=/nonexistent/x.pcap"}, "hop b:"},
		{"no common packets", []string{"a=" + cl, "b=" + vx}, "no packets in common"},
		{"bad window", []string{"--window", "0s", "a=" + cl, "b=" + gw}, "--window"},
		{"bad reference", []string{"--reference", "zz", "a=" + cl, "b=" + gw}, "--reference"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, errOut, code := vpndiag(t, append([]string{"trace", "--format", "json"}, c.args...)...)
			if code != exitUsage || !strings.Contains(errOut, c.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, errOut, c.want)
			}
			if c.name == "no common packets" {
				if d := parseTrace(t, out); d.ids("trace.no-common-packets") != 1 {
					t.Errorf("report lacks trace.no-common-packets: %s", out)
				}
			}
		})
	}
}

// TestParseHops: HOP=SOURCE, bare files named after the file, iface: and
// ssh sources live.
func TestParseHops(t *testing.T) {
	hops, err := parseHops([]string{"gw-in=a/b.pcap", "captures/site.pcapng.gz"})
	if err != nil {
		t.Fatal(err)
	}
	if hops[0].name != "gw-in" || hops[0].source != "a/b.pcap" || hops[0].live || hops[1].name != "site" || hops[1].source != "captures/site.pcapng.gz" {
		t.Errorf("hops %+v", hops)
	}
	hops, err = parseHops([]string{"lan=iface:eth1", "wan=file:iface:x.pcap"})
	if err != nil {
		t.Fatal(err)
	}
	if !hops[0].live || hops[0].source != "iface:eth1" || hops[1].live {
		t.Errorf("live hops %+v, want lan live, wan a file", hops)
	}
	hops, err = parseHops([]string{"vpn=ssh://ops@vpn1/eth0", "gw=ssh:gw1:ens5"})
	if err != nil || !hops[0].live || !hops[1].live {
		t.Errorf("ssh hops %+v, %v; want both live", hops, err)
	}
}

// TestTraceESPCorpus: real ESP captures from the corpus traced against a
// copy with frames 3, 5 and 7 removed (editcap): ESP-in-UDP (8 packets,
// SPI 0x12345678, all with the same timestamp so no segment can judge
// them) gives trace.tunnel-loss from the sequence numbers alone, 3 of 8
// missing at b; ESP over IPv6 (timestamps apart) also loses 3 on a -> b.
func TestTraceESPCorpus(t *testing.T) {
	if _, err := exec.LookPath("editcap"); err != nil {
		t.Fatal("editcap is needed: apt-get install wireshark-common")
	}
	cut := func(src string) string {
		out := filepath.Join(t.TempDir(), "b.pcap")
		if b, err := exec.Command("editcap", src, out, "3", "5", "7").CombinedOutput(); err != nil {
			t.Fatalf("editcap: %v: %s", err, b)
		}
		return out
	}
	src := corpus(t, "the-tcpdump-group_tcpdump/espudp1.pcap")
	d := runTraceJSON(t, exitFindings, "a="+src, "b="+cut(src))
	if d.ids("trace.tunnel-loss") != 1 {
		t.Fatalf("findings %+v, want one trace.tunnel-loss", d.Findings)
	}
	for _, f := range d.Findings {
		if f.ID == "trace.tunnel-loss" && (f.Where.Hop != "b" || f.Where.Segment == nil || f.Where.Segment.From != "a" ||
			f.Evidence["missing"] != 3.0 || f.Evidence["expected"] != 8.0 || f.Evidence["kind"] != "esp-in-udp" || f.Evidence["id"] != float64(0x12345678)) {
			t.Errorf("trace.tunnel-loss %+v %v", f.Where, f.Evidence)
		}
	}
	src = corpus(t, "zeek_zeek/ip6_esp.pcap")
	d = runTraceJSON(t, exitFindings, "a="+src, "b="+cut(src))
	if s := d.segment(t, "a", "b", "ESP to 3ffe::2"); s.Lost != 3 || s.Tunnel != "esp" {
		t.Errorf("segment %+v, want 3 lost through esp", s)
	}
}
