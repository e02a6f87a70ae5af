package analyzetest_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/vpndiag/vpndiag/analyze"
	"github.com/vpndiag/vpndiag/analyze/analyzetest"
	"github.com/vpndiag/vpndiag/analyze/decode"
	"github.com/vpndiag/vpndiag/report"
)

// TestCorpus checks the corpus is found from this package's directory and
// that Corpus paths lie inside CorpusDir.
func TestCorpus(t *testing.T) {
	root := analyzetest.ModuleRoot(t)
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root %s: %v", root, err)
	}
	dir := analyzetest.CorpusDir(t)
	if got, want := analyzetest.Corpus(t, "SOURCES.txt"), filepath.Join(dir, "SOURCES.txt"); got != want {
		t.Fatalf("Corpus = %s, want %s", got, want)
	}
}

// TestTsharkWireGuardPort checks the wg decode-as of port 51194: every frame
// on that port of the corelight capture (172, as tcpdump counts them) is a
// WireGuard message for tshark, with its type as a second field.
func TestTsharkWireGuardPort(t *testing.T) {
	f := analyzetest.Corpus(t, "corelight_zeek-spicy-wireguard/wireguard.pcap")
	port := analyzetest.Tshark(t, f, "udp.port == 51194")
	wg := analyzetest.Tshark(t, f, "wg", "frame.number", "wg.type")
	if len(port) != 172 || len(wg) != len(port) {
		t.Fatalf("%d frames on port 51194, %d WireGuard frames: want 172 of both", len(port), len(wg))
	}
	if len(wg[0]) != 2 || wg[0][1] != "1" {
		t.Fatalf("first WireGuard row %q: want frame number and type 1 (handshake initiation)", wg[0])
	}
}

// counter counts the packets it sees and reports them as one finding.
type counter struct{ n, wg int }

func (c *counter) Name() string { return "counter" }

func (c *counter) Packet(rec *decode.Record) {
	c.n++
	if rec.WireGuard.Type != 0 {
		c.wg++
	}
}

func (c *counter) Finish(r *report.Report, _ []analyze.InputInfo) {
	r.Findings = append(r.Findings, report.Finding{ID: "counter.packets", Severity: report.SeverityInfo,
		Evidence: map[string]any{"packets": c.n, "wireguard": c.wg}})
}

// TestRunAndRecords runs a counting analyzer over two captures through Run
// and compares with Records and with tshark's frame count.
func TestRunAndRecords(t *testing.T) {
	files := []string{analyzetest.Corpus(t, "ntop_nDPI/wireguard.pcap"),
		analyzetest.Corpus(t, "corelight_zeek-spicy-wireguard/wireguard.pcap")}
	want := len(analyzetest.Tshark(t, files[0], "frame")) + len(analyzetest.Tshark(t, files[1], "frame"))
	recs := analyzetest.Records(t, files...)
	if len(recs) != want {
		t.Fatalf("Records: %d, tshark frames: %d", len(recs), want)
	}
	if recs[0].Input != 0 || recs[0].Frame != 1 || recs[len(recs)-1].Input != 1 {
		t.Fatalf("first record input %d frame %d, last input %d", recs[0].Input, recs[0].Frame, recs[len(recs)-1].Input)
	}
	c := &counter{}
	r := analyzetest.Run(t, c, files...)
	fs := analyzetest.Findings(r, "counter.packets")
	if len(fs) != 1 || analyzetest.Num(fs[0].Evidence["packets"]) != uint64(want) || c.wg == 0 {
		t.Fatalf("findings %+v, want one with %d packets and some WireGuard", r.Findings, want)
	}
	analyzetest.NoWarnings(t, r, "wireguard captures")
	if analyzetest.Table(r, "none") != nil {
		t.Fatal("Table found a table the report does not have")
	}
}
