package report

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Source describes one report merged into an incident report.
type Source struct {
	// ID tags the source's findings, tables, charts and events: the label
	// the user gave, else the command (and host when recorded), made
	// unique with the file name.
	ID       string    `json:"id"`
	File     string    `json:"file,omitempty"`
	Command  string    `json:"command"`
	Host     string    `json:"host,omitempty"`
	Title    string    `json:"title,omitempty"`
	Started  time.Time `json:"started"`
	Verdict  string    `json:"verdict"`
	Worst    string    `json:"worst,omitempty"` // highest severity; empty without findings
	Findings int       `json:"findings"`
}

// Event is one entry of a merged report's timeline.
type Event struct {
	Time   time.Time `json:"time"`
	Source string    `json:"source,omitempty"`
	// Kind is "start" (a command started), "capture" (an input's first
	// packet; the duration spans to its last), "finding", "outage", "drop"
	// or "interval" (a marked interval of a time chart).
	Kind            string  `json:"kind"`
	Severity        string  `json:"severity,omitempty"`
	Text            string  `json:"text"`
	DurationSeconds float64 `json:"duration_s,omitempty"`
}

// MergeInput is one saved report to merge.
type MergeInput struct {
	Report *Report
	File   string // where it was read from
	Label  string // optional source name given by the user
}

// maxTimeline bounds the timeline of a merged report.
const maxTimeline = 500

// ReadReport reads a saved JSON report and checks that it is a
// vpndiag.report/v1 report.
func ReadReport(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read report: %w", err)
	}
	var probe struct {
		Schema *string `json:"schema"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return nil, fmt.Errorf("%s is not a vpndiag JSON report: %w", path, err)
	}
	if probe.Schema == nil {
		return nil, fmt.Errorf("%s is not a vpndiag JSON report: no \"schema\" field (write reports with --format json)", path)
	}
	if *probe.Schema != Schema {
		return nil, fmt.Errorf("%s has schema %q, this vpndiag reads %q", path, *probe.Schema, Schema)
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s is not a valid %s report: %w", path, Schema, err)
	}
	if r.Inputs == nil {
		r.Inputs = []Input{}
	}
	if r.Findings == nil {
		r.Findings = []Finding{}
	}
	if r.Tables == nil {
		r.Tables = []Table{}
	}
	return &r, nil
}

// Merge combines saved reports into one incident report: one verdict over
// all findings (each tagged with its source), every source's inputs, tables
// and charts (tagged), the sources' data under data[source id], and a
// timeline of what happened when: each command's start, each capture's
// span, findings that carry a time, and the marked intervals (outages,
// drops) of time charts.
func Merge(ins []MergeInput, tool Tool, started time.Time) *Report {
	out := New("report", tool.Version, started)
	out.Tool = tool
	ids := sourceIDs(ins)
	var cmds []string
	for i, in := range ins {
		r, id := in.Report, ids[i]
		worst, any := r.Worst()
		src := Source{ID: id, File: in.File, Command: r.Command, Host: r.Host, Title: r.Title, Started: r.Started,
			Verdict: r.Verdict(), Findings: len(r.Findings)}
		if any {
			src.Worst = worst.String()
		}
		out.Sources = append(out.Sources, src)
		cmds = append(cmds, r.Command)
		for _, inp := range r.Inputs {
			inp.Name = id + ": " + inp.Name
			out.Inputs = append(out.Inputs, inp)
		}
		if len(r.Inputs) > 0 {
			t := inputsTable(r)
			t.Source = id
			out.Tables = append(out.Tables, t)
		}
		for _, f := range r.Findings {
			f.Source = id
			out.Findings = append(out.Findings, f)
		}
		for _, t := range r.Tables {
			t.Source = id
			out.Tables = append(out.Tables, t)
		}
		for _, c := range r.Charts {
			c.Source = id
			out.Charts = append(out.Charts, c)
		}
		for _, c := range r.Checks {
			out.Checks = append(out.Checks, id+"/"+c)
		}
		if r.Data != nil {
			out.SetData(id, r.Data)
		}
		out.Timeline = append(out.Timeline, events(r, id)...)
	}
	out.Sort()
	sort.SliceStable(out.Timeline, func(i, j int) bool { return out.Timeline[i].Time.Before(out.Timeline[j].Time) })
	if n := len(out.Timeline); n > maxTimeline {
		last := out.Timeline[maxTimeline-1].Time
		out.Timeline = append(out.Timeline[:maxTimeline-1:maxTimeline-1], Event{Time: last, Kind: "interval",
			Text: fmt.Sprintf("%d more events not shown", n-maxTimeline+1)})
	}
	out.Title = fmt.Sprintf("Incident report from %d report(s): %s", len(ins), strings.Join(uniq(cmds), ", "))
	return out
}

// sourceIDs names the sources: label, else command@host, else command;
// duplicates get the file name.
func sourceIDs(ins []MergeInput) []string {
	ids := make([]string, len(ins))
	count := map[string]int{}
	for i, in := range ins {
		id := in.Label
		if id == "" {
			id = in.Report.Command
			if in.Report.Host != "" {
				id += "@" + in.Report.Host
			}
		}
		ids[i] = id
		count[id]++
	}
	seen := map[string]int{}
	for i, in := range ins {
		if count[ids[i]] > 1 && in.Label == "" {
			id := ids[i] + " (" + filepath.Base(in.File) + ")"
			seen[id]++
			if seen[id] > 1 {
				id = fmt.Sprintf("%s #%d", id, seen[id])
			}
			ids[i] = id
		}
	}
	return ids
}

// events extracts one report's timeline.
func events(r *Report, id string) []Event {
	var ev []Event
	if !r.Started.IsZero() {
		text := "vpndiag " + r.Command + " started"
		if r.Title != "" {
			text += ": " + r.Title
		}
		ev = append(ev, Event{Time: r.Started.UTC(), Source: id, Kind: "start", Text: text})
	}
	for _, in := range r.Inputs {
		if in.First == nil {
			continue
		}
		e := Event{Time: in.First.UTC(), Source: id, Kind: "capture",
			Text: fmt.Sprintf("capture %s: %s packets", in.Name, FormatCell(in.Packets))}
		if in.Last != nil && in.Last.After(*in.First) {
			e.DurationSeconds = in.Last.Sub(*in.First).Seconds()
		}
		ev = append(ev, e)
	}
	for i := range r.Findings {
		f := &r.Findings[i]
		t, ok := findingTime(f)
		if !ok {
			continue
		}
		text := f.ID + ": " + f.Summary
		if s := whereText(f.Where); s != "" {
			text += " (" + s + ")"
		}
		ev = append(ev, Event{Time: t, Source: id, Kind: "finding", Severity: f.Severity.String(), Text: text})
	}
	for _, c := range r.Charts {
		if c.XUnit != XUnitTime {
			continue
		}
		for _, m := range c.Marks {
			from, to := FromUnixSeconds(m.From), FromUnixSeconds(m.To)
			label := m.Label
			if label == "" {
				label = "marked interval"
			}
			ev = append(ev, Event{Time: from, Source: id, Kind: markKind(label), Severity: markSeverity(m),
				Text: c.Title + ": " + label, DurationSeconds: to.Sub(from).Seconds()})
		}
	}
	return ev
}

func markKind(label string) string {
	l := strings.ToLower(label)
	switch {
	case strings.Contains(l, "outage") || strings.Contains(l, "down"):
		return "outage"
	case strings.Contains(l, "drop"):
		return "drop"
	}
	return "interval"
}

// timeKeys are evidence fields that may date a finding (RFC 3339 strings).
var timeKeys = []string{"time", "first_drop", "first_seen", "start", "first", "started"}

// findingTime returns when a finding happened: Finding.Time, else an RFC
// 3339 evidence field from timeKeys, else an evidence number named
// *_unix_ns.
func findingTime(f *Finding) (time.Time, bool) {
	if f.Time != nil {
		return f.Time.UTC(), true
	}
	for _, k := range timeKeys {
		if s, ok := f.Evidence[k].(string); ok {
			if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
				return t.UTC(), true
			}
		}
	}
	for _, k := range sortedKeys(f.Evidence) {
		if strings.HasSuffix(k, "_unix_ns") {
			if n, ok := number(f.Evidence[k]); ok && n > 0 {
				return time.Unix(0, int64(n)).UTC(), true
			}
		}
	}
	return time.Time{}, false
}

func uniq(s []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
