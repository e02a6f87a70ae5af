// Package analyze runs passive analyzers over decoded packet records in one
// streaming pass.
//
// Every analyzer implements Analyzer: it sees each packet record and, at the
// end, adds its findings and tables to the report. Adding an analyzer is one
// file with a type and one Register line in its init function.
package analyze

import (
	"sort"

	"github.com/vpndiag/vpndiag/analyze/decode"
	"github.com/vpndiag/vpndiag/report"
)

// InputInfo describes one input as the pipeline knows it, for analyzers that
// need names (e.g. for frame references).
type InputInfo struct {
	Name   string // what the user called it (hop name or file name)
	Source string // path or iface:NAME
}

// Analyzer sees every packet record of a run and reports at the end.
//
// Packet is called once per frame, in input order, with a Record that is
// reused for the next frame: copy what you keep, and do not allocate per
// packet on the common path.
type Analyzer interface {
	// Name is the analyzer's short name ("summary", "dns", ...).
	Name() string
	// Packet sees one decoded frame.
	Packet(rec *decode.Record)
	// Finish adds findings, tables and data to r. inputs are indexed by
	// Record.Input.
	Finish(r *report.Report, inputs []InputInfo)
}

// Factory makes a fresh analyzer for one run.
type Factory func() Analyzer

var registry = map[string]Factory{}

// Register makes an analyzer available under name. It is called from init
// functions; registering a name twice panics (a programming error).
func Register(name string, f Factory) {
	if _, dup := registry[name]; dup {
		panic("analyze: analyzer registered twice: " + name)
	}
	registry[name] = f
}

// Names returns the registered analyzer names: "summary" first (its tables
// lead a report), then the others sorted.
func Names() []string {
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		if (names[i] == "summary") != (names[j] == "summary") {
			return names[i] == "summary"
		}
		return names[i] < names[j]
	})
	return names
}

// New returns fresh instances of the named analyzers (all when names is
// empty), in name order, and false with the first unknown name.
func New(names ...string) ([]Analyzer, string, bool) {
	if len(names) == 0 {
		names = Names()
	}
	out := make([]Analyzer, 0, len(names))
	for _, n := range names {
		f, ok := registry[n]
		if !ok {
			return nil, n, false
		}
		out = append(out, f())
	}
	return out, "", true
}
