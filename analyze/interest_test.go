package analyze_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
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
// true) over files as inputs 0, 1, ... and returns the report as JSON.
func runJSON(t *testing.T, all bool, files ...string) []byte {
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
	p := &analyze.Pass{Analyzers: as}
	if err := p.Run(context.Background(), inputs, r); err != nil {
		t.Fatalf("analyze %v: %v", files, err)
	}
	b, err := json.MarshalIndent(r, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSelectiveSameReport runs all analyzers over every capture of the corpus
// and the fixtures (each alone, and each fixture directory as one run of
// several inputs), once with the Pass's dispatch by Interest and once showing
// every analyzer every record: the reports must be identical, byte for byte.
func TestSelectiveSameReport(t *testing.T) {
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
	findings := 0
	for _, files := range runs {
		sel, all := runJSON(t, false, files...), runJSON(t, true, files...)
		findings += bytes.Count(sel, []byte(`"severity"`))
		if !bytes.Equal(sel, all) {
			t.Errorf("%v: the report differs when analyzers see only the records they want", files)
		}
	}
	t.Logf("%d runs, %d findings", len(runs), findings)
	if findings < 20 {
		t.Errorf("only %d findings in all runs: the comparison proves little", findings)
	}
}
