package analyzetest

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/vpndiag/vpndiag/analyze"
	"github.com/vpndiag/vpndiag/report"
)

// Run runs the analyzer a over files (read and decoded by the real pipeline,
// analyze.Pass, in that order as inputs 0, 1, ...) and returns the report.
func Run(tb testing.TB, a analyze.Analyzer, files ...string) *report.Report {
	tb.Helper()
	inputs := make([]analyze.InputInfo, len(files))
	for i, f := range files {
		inputs[i] = analyze.InputInfo{Name: filepath.Base(f), Source: f}
	}
	r := report.New("analyze", "test", time.Now())
	p := &analyze.Pass{Analyzers: []analyze.Analyzer{a}}
	if err := p.Run(context.Background(), inputs, r); err != nil {
		tb.Fatalf("analyze %v: %v", files, err)
	}
	return r
}

// Findings returns the findings of r with the given id, in report order.
func Findings(r *report.Report, id string) []report.Finding {
	var out []report.Finding
	for _, f := range r.Findings {
		if f.ID == id {
			out = append(out, f)
		}
	}
	return out
}

// Table returns the table of r with the given name, or nil.
func Table(r *report.Report, name string) *report.Table {
	for i := range r.Tables {
		if r.Tables[i].Name == name {
			return &r.Tables[i]
		}
	}
	return nil
}

// MustTable is Table failing the test when r has no such table.
func MustTable(tb testing.TB, r *report.Report, name string) *report.Table {
	tb.Helper()
	t := Table(r, name)
	if t == nil {
		tb.Fatalf("no table %q in the report", name)
	}
	return t
}

// NoWarnings reports an error for every finding of r at warning severity or
// above: file names the capture, which is expected to be clean.
func NoWarnings(tb testing.TB, r *report.Report, file string) {
	tb.Helper()
	for _, f := range r.Findings {
		if f.Severity >= report.SeverityWarning {
			tb.Errorf("%s: clean capture produced %s %s: %s", file, f.Severity, f.ID, f.Summary)
		}
	}
}

// Num converts a table cell or evidence value (uint64, int, uint32 or
// float64) to a uint64. Any other type gives 1<<64-1, which no count matches.
func Num(v any) uint64 {
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
