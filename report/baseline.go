package report

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strings"
)

// Baseline comparison lets CI hold captures to a known state: given the
// report of a previous run, only findings that are new or worse are kept.
//
// Two findings are the same finding when their Key is equal: the id, the
// where (hop, segment from/to, class, flow) and evidence["key"] when an
// analyzer sets it to a string to tell apart findings that share id and
// where. When several findings share a key they are matched in order.
//
// A matched finding is worse when its severity is higher, or when a
// "badness" number in its evidence grew: a top-level numeric evidence field
// named in WorseKeys or ending in one of WorseSuffixes (any increase
// counts; identical inputs give identical numbers). Other evidence fields
// (totals, durations, frame numbers) never make a finding worse.

// WorseKeys are the evidence fields whose growth makes a finding worse.
var WorseKeys = []string{"count", "missing", "lost", "loss_percent", "unanswered", "incomplete", "retransmissions",
	"replays", "duplicates", "attempts", "peak_rate", "sustained_rate", "roams", "capture_drops", "drops", "errors", "timeouts"}

// WorseSuffixes are name endings of evidence fields whose growth makes a
// finding worse.
var WorseSuffixes = []string{"_percent", "_lost", "_missing", "_unanswered", "_retransmissions", "_drops", "_errors"}

// Key returns the identity of a finding for baseline comparison.
func Key(f *Finding) string {
	var b strings.Builder
	b.WriteString(f.ID)
	if w := f.Where; w != nil {
		b.WriteString("|hop=" + w.Hop)
		if w.Segment != nil {
			b.WriteString("|segment=" + w.Segment.From + ">" + w.Segment.To)
		}
		b.WriteString("|class=" + w.Class + "|flow=" + w.Flow)
	}
	if k, ok := f.Evidence["key"].(string); ok {
		b.WriteString("|key=" + k)
	}
	return b.String()
}

// Comparison is the outcome of comparing a report with a baseline.
type Comparison struct {
	New       []Finding // not in the baseline
	Worse     []Finding // in the baseline, now more severe or with a grown number
	Unchanged int       // in the baseline, not worse
	Resolved  []Finding // in the baseline, gone now
}

// Compare matches cur's findings against prev's. It does not change either
// report.
func Compare(prev, cur *Report) Comparison {
	old := map[string][]int{}
	for i := range prev.Findings {
		k := Key(&prev.Findings[i])
		old[k] = append(old[k], i)
	}
	var c Comparison
	used := make([]bool, len(prev.Findings))
	for i := range cur.Findings {
		f := cur.Findings[i]
		k := Key(&f)
		idx := old[k]
		if len(idx) == 0 {
			c.New = append(c.New, f)
			continue
		}
		p := &prev.Findings[idx[0]]
		old[k] = idx[1:]
		used[idx[0]] = true
		if grew := worse(p, &f); grew != nil {
			ev := make(map[string]any, len(f.Evidence)+1)
			for k, v := range f.Evidence {
				ev[k] = v
			}
			ev["baseline"] = map[string]any{"previous_severity": p.Severity.String(), "grew": grew}
			f.Evidence = ev
			c.Worse = append(c.Worse, f)
			continue
		}
		c.Unchanged++
	}
	for i, u := range used {
		if !u {
			c.Resolved = append(c.Resolved, prev.Findings[i])
		}
	}
	return c
}

// worse returns nil when cur is not worse than prev, else what grew
// (field -> previous value; "severity" for a severity increase).
func worse(prev, cur *Finding) map[string]any {
	grew := map[string]any{}
	if cur.Severity > prev.Severity {
		grew["severity"] = prev.Severity.String()
	}
	for k, v := range cur.Evidence {
		if !worseKey(k) {
			continue
		}
		now, ok1 := number(v)
		was, ok2 := number(prev.Evidence[k])
		if ok1 && ok2 && now > was {
			grew[k] = was
		}
	}
	if len(grew) == 0 {
		return nil
	}
	return grew
}

func worseKey(k string) bool {
	for _, w := range WorseKeys {
		if k == w {
			return true
		}
	}
	for _, s := range WorseSuffixes {
		if strings.HasSuffix(k, s) {
			return true
		}
	}
	return false
}

// number converts any Go or JSON number to float64.
func number(v any) (float64, bool) {
	switch x := v.(type) {
	case nil:
		return 0, false
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	}
	r := reflect.ValueOf(v)
	switch r.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return float64(r.Int()), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return float64(r.Uint()), true
	case reflect.Float32, reflect.Float64:
		return r.Float(), true
	}
	return 0, false
}

// ReadBaseline reads a previous vpndiag JSON report (schema
// vpndiag.report/v1) for ApplyBaseline.
func ReadBaseline(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read baseline: %w", err)
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("baseline %s is not a vpndiag JSON report: %w", path, err)
	}
	if r.Schema != Schema {
		return nil, fmt.Errorf("baseline %s has schema %q, want %q (write it with --format json)", path, r.Schema, Schema)
	}
	return &r, nil
}

// BaselineData is the "baseline" entry of a compared report's data.
type BaselineData struct {
	File      string `json:"file"`
	Previous  int    `json:"previous_findings"`
	New       int    `json:"new"`
	Worse     int    `json:"worse"`
	Unchanged int    `json:"unchanged"`
	Resolved  int    `json:"resolved"`
}

// ApplyBaseline keeps in cur only the findings that are new or worse than
// in prev, lists the findings of prev that are gone in a table
// "baseline-resolved", and records the counts under data "baseline". file
// names the baseline in the report.
func ApplyBaseline(prev, cur *Report, file string) Comparison {
	c := Compare(prev, cur)
	cur.Findings = append(append(make([]Finding, 0, len(c.New)+len(c.Worse)), c.New...), c.Worse...)
	cur.Sort()
	cur.SetData("baseline", BaselineData{File: file, Previous: len(prev.Findings), New: len(c.New), Worse: len(c.Worse),
		Unchanged: c.Unchanged, Resolved: len(c.Resolved)})
	if len(c.Resolved) > 0 {
		t := Table{Name: "baseline-resolved", Title: "Resolved since baseline", Columns: []string{"id", "severity", "where", "summary"},
			Note: fmt.Sprintf("Findings of %s that no longer appear.", file)}
		for _, f := range c.Resolved {
			t.Rows = append(t.Rows, []any{f.ID, f.Severity.String(), whereText(f.Where), f.Summary})
		}
		cur.AddTable(t)
	}
	return c
}
