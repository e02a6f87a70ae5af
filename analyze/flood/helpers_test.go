package flood

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vpndiag/vpndiag/analyze"
	"github.com/vpndiag/vpndiag/analyze/decode"
	"github.com/vpndiag/vpndiag/capture"
	"github.com/vpndiag/vpndiag/report"
)

// corpus returns the path of a file in ../shared/corpus next to the module
// root (the directory above this package holding go.mod).
func corpus(t testing.TB, rel string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the package directory")
		}
		dir = parent
	}
	p := filepath.Join(dir, "..", "shared", "corpus", rel)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("corpus file missing: %v (expected ../shared/corpus next to the module root)", err)
	}
	return p
}

// tool runs a Wireshark command-line tool and returns its output.
func tool(t testing.TB, name string, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Fatalf("%s not found: apt-get install tshark (it brings %s)", name, name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).Output()
	if err != nil {
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return string(out)
}

// tshark returns one row of fields per packet matching filter.
func tshark(t testing.TB, file, filter string, fields ...string) [][]string {
	t.Helper()
	// The corelight capture runs WireGuard on port 51194, which tshark
	// only decodes when told.
	args := []string{"-r", file, "-d", "udp.port==51194,wg", "-Y", filter, "-T", "fields", "-E", "separator=|"}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	var rows [][]string
	for _, line := range strings.Split(tool(t, "tshark", args...), "\n") {
		if line != "" {
			rows = append(rows, strings.Split(line, "|"))
		}
	}
	return rows
}

// run passes files through the real pipeline with one flood analyzer.
func run(t testing.TB, cfg Config, files ...string) *report.Report {
	t.Helper()
	inputs := make([]analyze.InputInfo, len(files))
	for i, f := range files {
		inputs[i] = analyze.InputInfo{Name: filepath.Base(f), Source: f}
	}
	rep := report.New("analyze", "test", time.Now())
	p := &analyze.Pass{Analyzers: []analyze.Analyzer{NewConfig(cfg)}}
	if err := p.Run(context.Background(), inputs, rep); err != nil {
		t.Fatalf("analyze %v: %v", files, err)
	}
	return rep
}

func table(t testing.TB, r *report.Report, name string) report.Table {
	t.Helper()
	for _, tb := range r.Tables {
		if tb.Name == name {
			return tb
		}
	}
	t.Fatalf("no table %q in the report", name)
	return report.Table{}
}

func findings(r *report.Report, id string) []report.Finding {
	var out []report.Finding
	for _, f := range r.Findings {
		if f.ID == id {
			out = append(out, f)
		}
	}
	return out
}

// noWarnings fails when r holds a finding at warning or above.
func noWarnings(t testing.TB, r *report.Report) {
	t.Helper()
	for _, f := range r.Findings {
		if f.Severity >= report.SeverityWarning {
			t.Errorf("unexpected %s %s: %s", f.Severity, f.ID, f.Summary)
		}
	}
}

// num converts a table cell or evidence value to a uint64.
func num(v any) uint64 {
	switch x := v.(type) {
	case uint64:
		return x
	case int:
		return uint64(x)
	case uint32:
		return uint64(x)
	case float64:
		return uint64(x)
	}
	return 1<<64 - 1
}

// editcap runs editcap with options on in and returns the output file.
func editcap(t testing.TB, in string, opts []string, frames ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "edited.pcap")
	args := append(append([]string{"-F", "pcap"}, opts...), in, out)
	tool(t, "editcap", append(args, frames...)...)
	return out
}

// concat concatenates captures (mergecap -a) into a new file.
func concat(t testing.TB, files ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "merged.pcap")
	tool(t, "mergecap", append([]string{"-a", "-F", "pcap", "-w", out}, files...)...)
	return out
}

// records decodes every frame of files into stable records (payloads point
// into copies of the frames), for allocation tests and benchmarks.
func records(t testing.TB, files ...string) []decode.Record {
	t.Helper()
	var out []decode.Record
	var dec decode.Decoder
	for in, f := range files {
		src, err := capture.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		var fr capture.Frame
		for {
			err := src.Next(&fr)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			var rec decode.Record
			rec.Frame, rec.Input, rec.Time, rec.CapLen, rec.WireLen = fr.Number, in, fr.Time, len(fr.Data), fr.WireLen
			dec.Decode(decode.LinkType(fr.LinkType), append([]byte(nil), fr.Data...), &rec)
			out = append(out, rec)
		}
		src.Close()
	}
	return out
}
