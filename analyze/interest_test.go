package analyze_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vpndiag/vpndiag/analyze"
	"github.com/vpndiag/vpndiag/analyze/analyzetest"
	"github.com/vpndiag/vpndiag/report"
)

// plain hides an analyzer's Selective methods, so a Pass shows it every
// record.
type plain struct{ analyze.Analyzer }

// runJSON runs every registered analyzer (hidden behind plain when all is
// true; all on the reading goroutine when seq is true) over files as inputs
// 0, 1, ... and returns the report as JSON.
func runJSON(t *testing.T, all, seq bool, files ...string) []byte {
	t.Helper()
	as, _, _ := analyze.New()
	if all {
		for i, a := range as {
			as[i] = plain{a}
		}
	}
	inputs := make([]analyze.InputInfo, len(files))
	for i, f := range files {
		inputs[i] = analyze.InputInfo{Name: filepath.Base(f), Source: f}
	}
	r := report.New("analyze", "test", time.Unix(0, 0))
	p := &analyze.Pass{Analyzers: as, Sequential: seq}
	if err := p.Run(context.Background(), inputs, r); err != nil {
		t.Fatalf("analyze %v: %v", files, err)
	}
	b, err := json.MarshalIndent(r, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// reportRuns lists the runs the same-report tests compare: every capture of
// the corpus alone, and each fixture directory as one run of several inputs.
func reportRuns(t *testing.T) [][]string {
	var runs [][]string
	corpus := analyzetest.CorpusDir(t)
	filepath.WalkDir(corpus, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.Contains(d.Name(), ".pcap")) {
			runs = append(runs, []string{p})
		}
		return nil
	})
	dirs, _ := filepath.Glob(filepath.Join(analyzetest.ModuleRoot(t), "testdata", "fixtures", "*"))
	for _, d := range dirs {
		fs, _ := filepath.Glob(filepath.Join(d, "*.pcap*"))
		runs = append(runs, fs)
	}
	if len(runs) < 30 {
		t.Fatalf("only %d captures found in %s and the fixtures", len(runs), corpus)
	}
	return runs
}

// TestSelectiveSameReport runs all analyzers over every capture of the corpus
// and the fixtures (each alone, and each fixture directory as one run of
// several inputs), once with the Pass's dispatch by Interest and once showing
// every analyzer every record: the reports must be identical, byte for byte.
func TestSelectiveSameReport(t *testing.T) {
	findings := 0
	for _, files := range reportRuns(t) {
		sel, all := runJSON(t, false, true, files...), runJSON(t, true, true, files...)
		findings += bytes.Count(sel, []byte(`"severity"`))
		if !bytes.Equal(sel, all) {
			t.Errorf("%v: the report differs when analyzers see only the records they want", files)
		}
	}
	t.Logf("%d findings", findings)
	if findings < 20 {
		t.Errorf("only %d findings in all runs: the comparison proves little", findings)
	}
}

// TestConcurrentSameReport: the same runs with the analyzers after the first
// on a second goroutine (the default with two CPUs) and with all of them on
// the reading goroutine give identical reports, byte for byte.
func TestConcurrentSameReport(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Fatalf("GOMAXPROCS %d: the Pass would not run analyzers concurrently, nothing to compare", runtime.GOMAXPROCS(0))
	}
	findings := 0
	for _, files := range reportRuns(t) {
		conc, seq := runJSON(t, false, false, files...), runJSON(t, false, true, files...)
		findings += bytes.Count(conc, []byte(`"severity"`))
		if !bytes.Equal(conc, seq) {
			t.Errorf("%v: the report differs when analyzers run on a second goroutine", files)
		}
	}
	if findings < 20 {
		t.Errorf("only %d findings in all runs: the comparison proves little", findings)
	}
}
