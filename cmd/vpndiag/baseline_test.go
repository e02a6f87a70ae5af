package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vpndiag/vpndiag/report"
)

// editcapTo runs editcap (-F pcap) from in to out, deleting frames.
func editcapTo(t *testing.T, in, out string, frames ...string) {
	t.Helper()
	if _, err := exec.LookPath("editcap"); err != nil {
		t.Fatal("editcap not found: apt-get install tshark (wireshark-common)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if b, err := exec.CommandContext(ctx, "editcap", append([]string{"-F", "pcap", in, out}, frames...)...).CombinedOutput(); err != nil {
		t.Fatalf("editcap: %v: %s", err, b)
	}
}

// TestBaselineSameInput: a report used as the baseline for the same input
// leaves no findings, so even --fail-on info exits 0; without the baseline
// the same run exits 1.
func TestBaselineSameInput(t *testing.T) {
	in := corpus(t, "the-tcpdump-group_tcpdump/isakmp4500.pcap")
	prev := filepath.Join(t.TempDir(), "prev.json")
	if _, errOut, code := vpndiag(t, "analyze", "--format", "json", "-o", prev, "--fail-on", "none", in); code != 0 {
		t.Fatalf("first run: exit %d: %s", code, errOut)
	}
	base, err := report.ReadBaseline(prev)
	if err != nil {
		t.Fatal(err)
	}
	if len(base.Findings) == 0 {
		t.Fatal("the baseline should hold findings (isakmp4500 has IKE retransmissions and NAT-T)")
	}
	if _, _, code := vpndiag(t, "analyze", "--format", "json", "--fail-on", "info", in); code != 1 {
		t.Fatalf("without baseline, --fail-on info: exit %d, want 1", code)
	}
	out, errOut, code := vpndiag(t, "analyze", "--format", "json", "--fail-on", "info", "--baseline", prev, in)
	if code != 0 {
		t.Fatalf("with baseline: exit %d, want 0: %s\n%s", code, errOut, out)
	}
	r := readReport(t, out)
	if len(r.Findings) != 0 {
		t.Errorf("findings left after the baseline: %+v", r.Findings)
	}
	d, _ := r.Data["baseline"].(map[string]any)
	if d == nil || d["unchanged"] != float64(len(base.Findings)) || d["new"] != 0.0 || d["resolved"] != 0.0 {
		t.Errorf("baseline data %v, want %d unchanged, 0 new, 0 resolved", d, len(base.Findings))
	}
}

// TestBaselineNewProblem: the baseline is a clean ESP capture; the new run
// sees the same capture with two ESP packets lost (removed with editcap).
// Only the new ESP gap finding remains, and --fail-on warning exits 1. The
// other way round, the gap is listed as resolved.
func TestBaselineNewProblem(t *testing.T) {
	orig := corpus(t, "the-tcpdump-group_tcpdump/02-sunrise-sunset-esp.pcap")
	cleanDir, lossyDir := t.TempDir(), t.TempDir()
	clean := filepath.Join(cleanDir, "esp.pcap")
	lossy := filepath.Join(lossyDir, "esp.pcap") // same name: same hop
	editcapTo(t, orig, clean)
	editcapTo(t, orig, lossy, "3", "5")
	prev := filepath.Join(t.TempDir(), "prev.json")
	if _, errOut, code := vpndiag(t, "analyze", "--format", "json", "-o", prev, "--fail-on", "none", clean); code != 0 {
		t.Fatalf("baseline run: exit %d: %s", code, errOut)
	}
	out, errOut, code := vpndiag(t, "analyze", "--format", "json", "--fail-on", "warning", "--baseline", prev, lossy)
	if code != 1 {
		t.Fatalf("exit %d, want 1: %s", code, errOut)
	}
	r := readReport(t, out)
	if len(r.Findings) != 1 || r.Findings[0].ID != "ipsec.esp-gaps" || r.Findings[0].Evidence["missing"] != 2.0 {
		t.Fatalf("want only the new ipsec.esp-gaps finding (2 missing), got %+v", r.Findings)
	}

	// Reverse: the lossy run is the baseline; the clean run resolves it.
	prev2 := filepath.Join(t.TempDir(), "prev2.json")
	if _, errOut, code := vpndiag(t, "analyze", "--format", "json", "-o", prev2, "--fail-on", "none", lossy); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	out, _, code = vpndiag(t, "analyze", "--format", "json", "--fail-on", "info", "--baseline", prev2, clean)
	r = readReport(t, out)
	if code != 0 || len(r.Findings) != 0 {
		t.Fatalf("exit %d, findings %+v: want 0 and none", code, r.Findings)
	}
	var resolved *report.Table
	for i := range r.Tables {
		if r.Tables[i].Name == "baseline-resolved" {
			resolved = &r.Tables[i]
		}
	}
	if resolved == nil || len(resolved.Rows) != 1 || resolved.Rows[0][0] != "ipsec.esp-gaps" {
		t.Fatalf("resolved table %+v, want the ESP gap", resolved)
	}
}

// TestBaselineBad: a missing, unparsable or non-report baseline is a usage
// error (exit 2) naming the flag.
func TestBaselineBad(t *testing.T) {
	in := corpus(t, "the-tcpdump-group_tcpdump/espudp1.pcap")
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"schema": "vpndiag.report/v1", "findings": [`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{filepath.Join(dir, "missing.json"), bad, in} {
		_, errOut, code := vpndiag(t, "analyze", "--baseline", b, in)
		if code != 2 || !strings.Contains(errOut, "--baseline") {
			t.Errorf("--baseline %s: exit %d, stderr %q; want 2 and a message naming --baseline", filepath.Base(b), code, errOut)
		}
	}
}
