package tcp

// Test helpers shared by this package's tests: the corpus, tshark as the
// oracle, and runs through the real analyze pipeline.

import (
	"context"
	"errors"
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
// root (the directory holding go.mod), failing the test if it is missing.
func corpus(tb testing.TB, rel string) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
	p := filepath.Join(dir, "..", "shared", "corpus", rel)
	if _, err := os.Stat(p); err != nil {
		tb.Fatalf("corpus file missing: %v (the corpus lives in ../shared/corpus next to the module)", err)
	}
	return p
}

// tshark runs tshark -r file -Y filter -T fields -e fields... and returns the
// rows (one per matching frame, tab-separated fields split).
func tshark(tb testing.TB, file, filter string, fields ...string) [][]string {
	tb.Helper()
	return tsharkWith(tb, nil, file, filter, fields...)
}

// tsharkWith is tshark with extra options (e.g. -2, -o pref:value) first.
func tsharkWith(tb testing.TB, opts []string, file, filter string, fields ...string) [][]string {
	tb.Helper()
	if _, err := exec.LookPath("tshark"); err != nil {
		tb.Fatal("tshark not found: apt-get install tshark")
	}
	if len(fields) == 0 {
		fields = []string{"frame.number"}
	}
	args := append(append([]string{}, opts...), "-r", file, "-n", "-Y", filter, "-T", "fields")
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "tshark", args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("tshark %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	var rows [][]string
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if line != "" {
			rows = append(rows, strings.Split(line, "\t"))
		}
	}
	return rows
}

// run runs the analyzer over files through analyze.Pass and returns the report.
func run(tb testing.TB, a analyze.Analyzer, files ...string) *report.Report {
	tb.Helper()
	var inputs []analyze.InputInfo
	for _, f := range files {
		inputs = append(inputs, analyze.InputInfo{Name: filepath.Base(f), Source: f})
	}
	r := report.New("analyze", "test", time.Now())
	p := analyze.Pass{Analyzers: []analyze.Analyzer{a}}
	if err := p.Run(context.Background(), inputs, r); err != nil {
		tb.Fatal(err)
	}
	return r
}

// byID returns the findings with the given id.
func byID(r *report.Report, id string) []report.Finding {
	var out []report.Finding
	for _, f := range r.Findings {
		if f.ID == id {
			out = append(out, f)
		}
	}
	return out
}

// table returns the named table, or nil.
func table(r *report.Report, name string) *report.Table {
	for i := range r.Tables {
		if r.Tables[i].Name == name {
			return &r.Tables[i]
		}
	}
	return nil
}

// noWarnings fails unless every finding is info.
func noWarnings(tb testing.TB, r *report.Report, file string) {
	tb.Helper()
	for _, f := range r.Findings {
		if f.Severity >= report.SeverityWarning {
			tb.Errorf("%s: clean capture produced %s %s: %s", file, f.Severity, f.ID, f.Summary)
		}
	}
}

// decoded reads and decodes every frame of files, for benchmarks: each
// record keeps its own copy of the frame so its payload stays valid.
func decoded(tb testing.TB, files ...string) []decode.Record {
	tb.Helper()
	var recs []decode.Record
	var dec decode.Decoder
	for i, f := range files {
		src, err := capture.Open(corpus(tb, f))
		if err != nil {
			tb.Fatal(err)
		}
		var fr capture.Frame
		for {
			err := src.Next(&fr)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				tb.Fatal(err)
			}
			var rec decode.Record
			data := append([]byte(nil), fr.Data...)
			dec.Decode(decode.LinkType(fr.LinkType), data, &rec)
			rec.Frame, rec.Input, rec.Time, rec.CapLen, rec.WireLen = fr.Number, i, fr.Time, len(data), fr.WireLen
			recs = append(recs, rec)
		}
		src.Close()
	}
	return recs
}

// benchFiles is the corpus mix the benchmarks cycle through.
var benchFiles = []string{
	"zeek_zeek/smtp.pcap", "zeek_zeek/retransmit-fast009.pcap", "ntop_nDPI/dns_fragmented.pcap",
	"ntop_nDPI/vxlan.pcap", "zeek_zeek/linuxsll-arp.pcap", "zeek_zeek/fragmented-1.pcap",
	"the-tcpdump-group_tcpdump/bgp-4byte-asn.pcap", "zeek_zeek/vxlan-encapsulated-http.pcap",
}

// benchPackets feeds the records to the analyzer over and over and reports
// ns/packet. Times advance every cycle so the analyzer sees one long capture.
func benchPackets(b *testing.B, a analyze.Analyzer, recs []decode.Record) {
	b.ReportAllocs()
	var span int64
	for i := range recs {
		span = max(span, recs[i].Time-recs[0].Time)
	}
	base := make([]int64, len(recs))
	for i := range recs {
		base[i] = recs[i].Time
	}
	// Warm up: one pass creates the state of every flow.
	for i := range recs {
		a.Packet(&recs[i])
	}
	n, cycle, count := 0, int64(1), 0
	for b.Loop() {
		count++
		r := &recs[n]
		r.Time = base[n] + cycle*(span+int64(time.Second))
		a.Packet(r)
		if n++; n == len(recs) {
			n = 0
			cycle++
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(count), "ns/packet")
}
