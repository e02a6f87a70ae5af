package report

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func finding(id string, sev Severity, flow string, ev map[string]any) Finding {
	return Finding{ID: id, Severity: sev, Title: id, Summary: id + " " + flow, Where: &Where{Hop: "gw.pcap", Flow: flow}, Evidence: ev}
}

// roundTrip returns r as a later run would read it back from JSON.
func roundTrip(t *testing.T, r *Report) *Report {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "prev.json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := ReadBaseline(p)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCompare(t *testing.T) {
	gap := func(sev Severity, missing uint64, packets uint64) Finding {
		return finding("ipsec.esp-gaps", sev, "esp a -> b", map[string]any{"missing": missing, "expected": packets, "key": "0x1"})
	}
	tests := []struct {
		name                            string
		prev, cur                       []Finding
		new, worse, unchanged, resolved int
	}{
		{"identical", []Finding{gap(SeverityWarning, 3, 100)}, []Finding{gap(SeverityWarning, 3, 100)}, 0, 0, 1, 0},
		{"new finding", nil, []Finding{gap(SeverityWarning, 3, 100)}, 1, 0, 0, 0},
		{"severity up", []Finding{gap(SeverityWarning, 3, 100)}, []Finding{gap(SeverityError, 3, 100)}, 0, 1, 0, 0},
		{"missing grew", []Finding{gap(SeverityWarning, 3, 100)}, []Finding{gap(SeverityWarning, 4, 100)}, 0, 1, 0, 0},
		{"missing shrank", []Finding{gap(SeverityWarning, 3, 100)}, []Finding{gap(SeverityWarning, 2, 100)}, 0, 0, 1, 0},
		{"only a total grew", []Finding{gap(SeverityWarning, 3, 100)}, []Finding{gap(SeverityWarning, 3, 500)}, 0, 0, 1, 0},
		{"resolved", []Finding{gap(SeverityWarning, 3, 100)}, nil, 0, 0, 0, 1},
		{"other flow is new", []Finding{gap(SeverityWarning, 3, 100)},
			[]Finding{finding("ipsec.esp-gaps", SeverityWarning, "esp c -> d", map[string]any{"missing": 3, "key": "0x1"})}, 1, 0, 0, 1},
		{"other key is new", []Finding{gap(SeverityWarning, 3, 100)},
			[]Finding{finding("ipsec.esp-gaps", SeverityWarning, "esp a -> b", map[string]any{"missing": 3, "key": "0x2"})}, 1, 0, 0, 1},
		{"same key twice, in order", []Finding{gap(SeverityWarning, 3, 100), gap(SeverityWarning, 5, 100)},
			[]Finding{gap(SeverityWarning, 3, 100), gap(SeverityWarning, 5, 100), gap(SeverityWarning, 1, 100)}, 1, 0, 2, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prev := New("analyze", "1", time.Now())
			prev.Add(tt.prev...)
			cur := New("analyze", "2", time.Now())
			cur.Add(tt.cur...)
			c := Compare(roundTrip(t, prev), cur)
			if len(c.New) != tt.new || len(c.Worse) != tt.worse || c.Unchanged != tt.unchanged || len(c.Resolved) != tt.resolved {
				t.Errorf("new %d worse %d unchanged %d resolved %d, want %d %d %d %d",
					len(c.New), len(c.Worse), c.Unchanged, len(c.Resolved), tt.new, tt.worse, tt.unchanged, tt.resolved)
			}
			for _, w := range c.Worse {
				if _, ok := w.Evidence["baseline"]; !ok {
					t.Errorf("worse finding without baseline evidence: %+v", w)
				}
			}
		})
	}
}

func TestApplyBaseline(t *testing.T) {
	prev := New("analyze", "1", time.Now())
	prev.Add(finding("a.x", SeverityInfo, "f1", nil), finding("b.y", SeverityWarning, "f2", map[string]any{"count": 1}))
	cur := New("analyze", "2", time.Now())
	cur.Add(finding("a.x", SeverityInfo, "f1", nil), finding("c.z", SeverityError, "f3", nil))
	c := ApplyBaseline(roundTrip(t, prev), cur, "prev.json")
	if len(cur.Findings) != 1 || cur.Findings[0].ID != "c.z" || len(c.Resolved) != 1 {
		t.Fatalf("findings %+v, resolved %+v: want only c.z, b.y resolved", cur.Findings, c.Resolved)
	}
	var tb *Table
	for i := range cur.Tables {
		if cur.Tables[i].Name == "baseline-resolved" {
			tb = &cur.Tables[i]
		}
	}
	if tb == nil || tb.Title != "Resolved since baseline" || len(tb.Rows) != 1 || tb.Rows[0][0] != "b.y" {
		t.Fatalf("resolved table %+v", tb)
	}
	d := cur.Data["baseline"].(BaselineData)
	if d.Previous != 2 || d.New != 1 || d.Unchanged != 1 || d.Resolved != 1 || d.File != "prev.json" {
		t.Errorf("baseline data %+v", d)
	}
}

func TestReadBaselineErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct{ path, want string }{
		{filepath.Join(dir, "missing.json"), "no such file"},
		{write("bad.json", "{not json"), "not a vpndiag JSON report"},
		{write("other.json", `{"schema":"something/v9"}`), `schema "something/v9"`},
	} {
		if _, err := ReadBaseline(tc.path); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ReadBaseline(%s) = %v, want an error containing %q", filepath.Base(tc.path), err, tc.want)
		}
	}
}
