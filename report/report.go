// Package report holds the report model every vpndiag command produces —
// inputs, findings and tables — and renders it as text, JSON or Markdown.
//
// The JSON form is a stable, versioned contract (Schema): pipelines parse it.
// Fields are only ever added to v1, never renamed or removed.
package report

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Schema is the value of Report.Schema for this version of the contract.
const Schema = "vpndiag.report/v1"

// Severity ranks findings. The zero value is SeverityInfo.
type Severity int

// Severities, in increasing order.
const (
	SeverityInfo Severity = iota
	SeverityWarning
	SeverityError
)

var severityNames = [...]string{"info", "warning", "error"}

// String returns "info", "warning" or "error".
func (s Severity) String() string {
	if s >= 0 && int(s) < len(severityNames) {
		return severityNames[s]
	}
	return fmt.Sprintf("severity(%d)", int(s))
}

// ParseSeverity parses "info", "warning" (or "warn") and "error".
func ParseSeverity(s string) (Severity, error) {
	switch strings.ToLower(s) {
	case "info":
		return SeverityInfo, nil
	case "warning", "warn":
		return SeverityWarning, nil
	case "error":
		return SeverityError, nil
	}
	return 0, fmt.Errorf("unknown severity %q (want info, warning or error)", s)
}

// MarshalText implements encoding.TextMarshaler.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Report is the result of one vpndiag command.
type Report struct {
	Schema  string    `json:"schema"`
	Tool    Tool      `json:"tool"`
	Command string    `json:"command"`         // e.g. "analyze", "trace"
	Args    []string  `json:"args,omitempty"`  // command-line arguments (never secrets)
	Started time.Time `json:"started"`         // when the command started
	Title   string    `json:"title,omitempty"` // one line describing the run
	// Host is the machine the command ran on, when the command records it;
	// merged incident reports use it to tell their sources apart.
	Host   string  `json:"host,omitempty"`
	Inputs []Input `json:"inputs"`
	// Findings are sorted most severe first by Sort.
	Findings []Finding `json:"findings"`
	Tables   []Table   `json:"tables"`
	// Charts are figures for the HTML report (and sparklines in text and
	// Markdown): time series, bars and histograms; see Chart.
	Charts []Chart `json:"charts,omitempty"`
	// Checks names the analyzers or checks that ran, when the command knows
	// them; JUnit output turns each check without findings into a passing
	// test case.
	Checks []string `json:"checks,omitempty"`
	// Sources and Timeline are set on a merged incident report (Merge):
	// the reports it was made from, and their events ordered by time.
	Sources  []Source `json:"sources,omitempty"`
	Timeline []Event  `json:"timeline,omitempty"`
	// Data holds command-specific structured results (e.g. trace's hops and
	// segments, analyze's summary), documented per command.
	Data map[string]any `json:"data,omitempty"`
}

// Tool identifies the program that wrote the report.
type Tool struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Input is one capture file, directory entry or live source that was read.
type Input struct {
	Name      string           `json:"name"`             // hop or file name as the user gave it
	Source    string           `json:"source"`           // path or iface:NAME
	Format    string           `json:"format,omitempty"` // pcap, pcapng, pcap.gz, pcapng.gz, live
	LinkTypes []string         `json:"link_types,omitempty"`
	Packets   uint64           `json:"packets"`
	Bytes     uint64           `json:"bytes"` // bytes on the wire
	First     *time.Time       `json:"first,omitempty"`
	Last      *time.Time       `json:"last,omitempty"`
	Drops     *uint64          `json:"capture_drops,omitempty"` // from pcapng statistics or the kernel; absent when unknown
	Undecoded map[string]int64 `json:"undecoded,omitempty"`     // frames not fully decoded, by reason
	Error     string           `json:"error,omitempty"`         // damage found while reading (what came before it is still reported)
}

// Where locates a finding.
type Where struct {
	Hop     string   `json:"hop,omitempty"`
	Segment *Segment `json:"segment,omitempty"`
	Class   string   `json:"class,omitempty"`
	Flow    string   `json:"flow,omitempty"`
}

// Segment is a path segment between two hops.
type Segment struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// FrameRef points at one frame of one input; Frame is 1-based as in Wireshark.
type FrameRef struct {
	File  string `json:"file"`
	Frame uint64 `json:"frame"`
}

// Finding is one diagnosis, with the numbers behind it and what to do.
type Finding struct {
	ID       string         `json:"id"` // stable dotted id, e.g. "trace.loss"
	Severity Severity       `json:"severity"`
	Title    string         `json:"title"`
	Summary  string         `json:"summary"` // one sentence with the numbers
	Where    *Where         `json:"where,omitempty"`
	Evidence map[string]any `json:"evidence,omitempty"`
	Frames   []FrameRef     `json:"frames,omitempty"`
	Remedy   string         `json:"remedy,omitempty"`
	// Time is when the problem was seen (capture or wall time), when the
	// finding has one moment; merged reports put it on the timeline.
	Time *time.Time `json:"time,omitempty"`
	// Source is the Source.ID of the report the finding came from, set only
	// in merged reports.
	Source string `json:"source,omitempty"`
}

// Table is a titled grid of values. Cells keep their JSON types (numbers stay
// numbers); renderers format them.
type Table struct {
	Name    string   `json:"name"` // stable machine name, e.g. "protocols"
	Title   string   `json:"title"`
	Columns []string `json:"columns"`
	Rows    [][]any  `json:"rows"`
	Note    string   `json:"note,omitempty"`
	// Source is the Source.ID of the report the table came from, set only
	// in merged reports.
	Source string `json:"source,omitempty"`
}

// New returns an empty report for a command.
func New(command, version string, started time.Time) *Report {
	return &Report{
		Schema:   Schema,
		Tool:     Tool{Name: "vpndiag", Version: version},
		Command:  command,
		Started:  started.UTC(),
		Inputs:   []Input{},
		Findings: []Finding{},
		Tables:   []Table{},
	}
}

// Add appends findings.
func (r *Report) Add(f ...Finding) { r.Findings = append(r.Findings, f...) }

// AddTable appends a table.
func (r *Report) AddTable(t Table) { r.Tables = append(r.Tables, t) }

// SetData stores a command-specific result under key.
func (r *Report) SetData(key string, v any) {
	if r.Data == nil {
		r.Data = map[string]any{}
	}
	r.Data[key] = v
}

// Sort orders findings by severity (most severe first), then by id, keeping
// the analyzers' order within equal keys.
func (r *Report) Sort() {
	sort.SliceStable(r.Findings, func(i, j int) bool {
		a, b := r.Findings[i], r.Findings[j]
		if a.Severity != b.Severity {
			return a.Severity > b.Severity
		}
		return a.ID < b.ID
	})
}

// Worst returns the highest severity among the findings and whether there is
// any finding at all.
func (r *Report) Worst() (Severity, bool) {
	worst, any := SeverityInfo, false
	for _, f := range r.Findings {
		if !any || f.Severity > worst {
			worst = f.Severity
		}
		any = true
	}
	return worst, any
}

// CountAtLeast returns how many findings are at or above s.
func (r *Report) CountAtLeast(s Severity) int {
	n := 0
	for _, f := range r.Findings {
		if f.Severity >= s {
			n++
		}
	}
	return n
}

// Verdict is a one-line answer for the top of human-readable output.
func (r *Report) Verdict() string {
	if len(r.Findings) == 0 {
		return "OK: no findings."
	}
	counts := [3]int{}
	for _, f := range r.Findings {
		if f.Severity >= 0 && int(f.Severity) < len(counts) {
			counts[f.Severity]++
		}
	}
	top := r.Findings[0]
	for _, f := range r.Findings {
		if f.Severity > top.Severity {
			top = f
		}
	}
	var parts []string
	for s := SeverityError; s >= SeverityInfo; s-- {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	label := strings.ToUpper(top.Severity.String())
	return fmt.Sprintf("%s: %s (%s)", label, top.Summary, strings.Join(parts, ", "))
}
