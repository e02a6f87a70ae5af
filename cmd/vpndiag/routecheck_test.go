package main

import (
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vpndiag/vpndiag/report"
)

func countIDs(r *report.Report) map[string]int {
	m := map[string]int{}
	for _, f := range r.Findings {
		m[f.ID+"/"+f.Severity.String()]++
	}
	return m
}

// TestRoutecheckPcap: the real BGP capture with --endpoint 1.1.1.1 (announced
// as 1.1.1.1/32 by 5 speakers, tshark frames 13, 37, 52, 75, 79, 81, 83).
func TestRoutecheckPcap(t *testing.T) {
	path := relTo(t, corpus(t, "the-tcpdump-group_tcpdump/bgp-4byte-asn.pcap"))
	out, errOut, code := vpndiag(t, "routecheck", "--format", "json", "--pcap", path, "--endpoint", "1.1.1.1")
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr %s", code, errOut)
	}
	r := readReport(t, out)
	if got := countIDs(r); got["route.endpoint-recursion/error"] != 5 || len(got) != 1 {
		t.Errorf("findings %v", got)
	}
	if r.Inputs[0].Packets != 91 {
		t.Errorf("input packets %d, want 91", r.Inputs[0].Packets)
	}
	frames := map[uint64]bool{}
	for _, f := range r.Findings {
		for _, fr := range f.Frames {
			frames[fr.Frame] = fr.File == "bgp-4byte-asn.pcap"
		}
	}
	for _, n := range []uint64{13, 37, 52, 75, 79, 81, 83} {
		if !frames[n] {
			t.Errorf("frame %d not referenced: %v", n, frames)
		}
	}
	// Without endpoints: sessions are not in a tunnel, nothing is raised.
	out, _, code = vpndiag(t, "routecheck", "--format", "json", "--pcap", path)
	if r := readReport(t, out); code != 0 || len(r.Findings) != 0 {
		t.Errorf("exit %d findings %v", code, countIDs(r))
	}
}

// TestRoutecheckMRT: BIRD's RIB dump holds a default route (warning, or an
// error once its peer is named a tunnel peer); the RIS updates file has none.
func TestRoutecheckMRT(t *testing.T) {
	rib := relTo(t, corpus(t, "t2mune_mrtparse/bird-mrtdump_rib"))
	out, errOut, code := vpndiag(t, "routecheck", "--format", "json", "--mrt", rib)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	r := readReport(t, out)
	if got := countIDs(r); got["route.default-over-tunnel/warning"] != 1 || len(got) != 1 {
		t.Errorf("findings %v", got)
	}
	if f := r.Findings[0]; f.Frames[0].File != "bird-mrtdump_rib" || f.Frames[0].Frame != 2 || f.Evidence["prefix"] != "0.0.0.0/0" {
		t.Errorf("finding %+v", f)
	}
	_, _, code = vpndiag(t, "routecheck", "--mrt", rib, "--tunnel-peer", "0.0.0.0")
	if code != 1 {
		t.Errorf("with --tunnel-peer: exit %d, want 1", code)
	}
	upd := relTo(t, corpus(t, "RIPE-NCC_bgpdump/updates.20020722.2238.gz"))
	out, _, code = vpndiag(t, "routecheck", "--format", "json", "--mrt", upd, "--endpoint", "65.209.117.9", "--tunnel-peer", "193.203.0.1")
	r = readReport(t, out)
	// 193.203.0.1 announced 65.209.117.0/24 (bgpdump: 4 times, first in record 19).
	if got := countIDs(r); code != 1 || got["route.endpoint-recursion/error"] != 1 || len(got) != 1 {
		t.Fatalf("exit %d findings %v", code, got)
	}
	if f := r.Findings[0]; f.Evidence["prefix"] != "65.209.117.0/24" || f.Frames[0].Frame != 19 || f.Evidence["announcements"] != float64(4) {
		t.Errorf("finding %+v", f)
	}
	if r.Inputs[0].Packets != 1121 || r.Inputs[0].Format != "mrt" {
		t.Errorf("input %+v", r.Inputs[0])
	}
}

func TestRoutecheckBadInput(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--endpoint", "foo", "--mrt", "x"}, `--endpoint "foo": not an IP address`},
		{[]string{"--mrt", "/nonexistent.mrt"}, "open MRT file"},
		{[]string{"--pcap", "/nonexistent.pcap"}, "nonexistent.pcap"},
		{[]string{"extra-arg"}, "unknown command"},
	} {
		_, errOut, code := vpndiag(t, append([]string{"routecheck"}, c.args...)...)
		if code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, stderr %q (want 2 and %q)", c.args, code, errOut, c.want)
		}
	}
	// A truncated MRT file: the report keeps the records before the damage
	// and the error names the record and offset.
	raw, err := exec.Command("sh", "-c", "zcat "+corpus(t, "RIPE-NCC_bgpdump/updates.20020722.2238.gz")+" | head -c 5000").Output()
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(t.TempDir(), "cut.mrt")
	if err := os.WriteFile(cut, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := vpndiag(t, "routecheck", "--format", "json", "--mrt", cut)
	if code != 2 || !strings.Contains(errOut, "cut.mrt: MRT record") || !strings.Contains(errOut, "at byte offset") {
		t.Fatalf("exit %d stderr %s", code, errOut)
	}
	if r := readReport(t, out); r.Inputs[0].Packets == 0 || r.Inputs[0].Error == "" {
		t.Errorf("input %+v", r.Inputs[0])
	}
}

// TestRoutecheckLive runs the live check in a namespace with a VXLAN tunnel
// whose endpoint is routed into the tunnel by a default route.
func TestRoutecheckLive(t *testing.T) {
	id := fmt.Sprintf("vd%06x", rand.Intn(1<<24))
	ns, far := id+"-cn", id+"-cf"
	t.Cleanup(func() {
		exec.Command("ip", "netns", "del", ns).Run()
		exec.Command("ip", "netns", "del", far).Run()
	})
	for _, c := range [][]string{
		{"netns", "add", ns}, {"netns", "add", far},
		{"-n", ns, "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", far},
		{"-n", ns, "addr", "add", "198.18.0.1/30", "dev", "va"}, {"-n", ns, "link", "set", "va", "up"},
		{"-n", far, "addr", "add", "198.18.0.2/30", "dev", "vb"}, {"-n", far, "link", "set", "vb", "up"},
		{"-n", ns, "route", "add", "default", "via", "198.18.0.2", "metric", "100"},
		{"-n", ns, "link", "add", "vx1", "type", "vxlan", "id", "7", "remote", "198.18.2.2", "local", "198.18.0.1", "dstport", "4789", "dev", "va"},
		{"-n", ns, "addr", "add", "198.18.1.1/30", "dev", "vx1"}, {"-n", ns, "link", "set", "vx1", "up"},
		{"-n", ns, "route", "add", "default", "via", "198.18.1.2", "dev", "vx1", "metric", "10"},
	} {
		if out, err := exec.Command("ip", c...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v %s", c, err, out)
		}
	}
	out, errOut, code := vpndiag(t, "routecheck", "--format", "json", "--netns", ns)
	if code != 1 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if got := countIDs(readReport(t, out)); got["route.endpoint-recursion/error"] != 1 {
		t.Errorf("findings %v", got)
	}
	if out, err := exec.Command("ip", "-n", ns, "route", "add", "198.18.2.2/32", "via", "198.18.0.2", "dev", "va").CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	out, _, code = vpndiag(t, "routecheck", "--format", "json", "--netns", ns)
	if got := countIDs(readReport(t, out)); code != 0 || got["route.endpoint-recursion/error"] != 0 || got["route.default-over-tunnel/warning"] != 0 {
		t.Errorf("with static endpoint route: exit %d findings %v", code, got)
	}
}
