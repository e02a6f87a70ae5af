package report

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func watchReport() *Report {
	r := New("probe watch", "1.2.3", t0.Add(-time.Minute))
	r.Host = "client1"
	base := UnixSeconds(t0)
	r.Add(Finding{ID: "probe.outage", Severity: SeverityWarning, Title: "Outages", Summary: "198.18.2.1 was unreachable 1 time", Where: &Where{Flow: "198.18.2.1"}})
	r.AddChart(Chart{Name: "watch-rtt", Title: "Round-trip time and outages", XUnit: XUnitTime, YUnit: "ms",
		Series: []Series{{Name: "198.18.2.1", Points: []Point{{X: base, Y: 1.2}, {X: base + 10, Y: 1.3}}}},
		Marks:  []Mark{{From: base + 2.5, To: base + 4.5, Label: "outage"}}})
	return r
}

func TestMerge(t *testing.T) {
	a, b, c := sampleReport(), watchReport(), sampleReport()
	c.Host = ""
	m := Merge([]MergeInput{{Report: a, File: "nat.json"}, {Report: b, File: "watch.json"}, {Report: c, File: "dir/nat2.json"}, {Report: watchReport(), File: "w2.json", Label: "lab"}},
		Tool{Name: "vpndiag", Version: "9"}, t0)
	ids := []string{}
	for _, s := range m.Sources {
		ids = append(ids, s.ID)
	}
	if strings.Join(ids, ",") != "natcheck@gw1,probe watch@client1,natcheck,lab" {
		t.Errorf("source ids %q", ids)
	}
	if m.Sources[0].Worst != "error" || m.Sources[1].Worst != "warning" || m.Sources[0].Findings != 3 {
		t.Errorf("sources %+v", m.Sources)
	}
	if len(m.Findings) != 3+1+3+1 || m.Findings[0].Severity != SeverityError || m.Findings[0].Source != "natcheck@gw1" {
		t.Errorf("findings: %d, first %+v", len(m.Findings), m.Findings[0])
	}
	if !strings.HasPrefix(m.Verdict(), "ERROR: 298 of 498") || !strings.Contains(m.Verdict(), "2 error, 4 warning, 2 info") {
		t.Errorf("verdict %q", m.Verdict())
	}
	// Tables: per source an inputs table (watch has no inputs) and its own.
	var natTables, inputTables int
	for _, tb := range m.Tables {
		if tb.Source == "" {
			t.Errorf("table %q without source", tb.Name)
		}
		if tb.Name == "inputs" {
			inputTables++
		}
		if tb.Name == "nat-pools" {
			natTables++
		}
	}
	if natTables != 2 || inputTables != 2 || len(m.Charts) != 3+1+3+1 || len(m.Inputs) != 2 || m.Inputs[0].Name != "natcheck@gw1: gw-out.pcap" {
		t.Errorf("tables %d/%d charts %d inputs %+v", natTables, inputTables, len(m.Charts), m.Inputs)
	}
	if m.Checks[0] != "natcheck@gw1/nat" {
		t.Errorf("checks %v", m.Checks)
	}
	// Timeline: ordered; starts, captures, the timed finding, marks.
	kinds := map[string]int{}
	for i, e := range m.Timeline {
		kinds[e.Kind]++
		if i > 0 && e.Time.Before(m.Timeline[i-1].Time) {
			t.Errorf("timeline out of order at %d", i)
		}
	}
	if kinds["start"] != 4 || kinds["capture"] != 2 || kinds["finding"] != 2 || kinds["outage"] != 2 || kinds["drop"] != 2 {
		t.Errorf("timeline kinds %v", kinds)
	}
	var outage *Event
	for i := range m.Timeline {
		if m.Timeline[i].Kind == "outage" {
			outage = &m.Timeline[i]
			break
		}
	}
	if outage == nil || !outage.Time.Equal(t0.Add(2500*time.Millisecond)) || outage.DurationSeconds != 2 || outage.Severity != "error" {
		t.Errorf("outage event %+v", outage)
	}
	if _, err := json.Marshal(m); err != nil {
		t.Fatal(err)
	}
}

func TestFindingTime(t *testing.T) {
	at := t0.Add(time.Second)
	for _, c := range []struct {
		f  Finding
		ok bool
	}{
		{Finding{Time: &at}, true},
		{Finding{Evidence: map[string]any{"first_drop": at.Format(time.RFC3339Nano)}}, true},
		{Finding{Evidence: map[string]any{"first_drop_unix_ns": float64(at.UnixNano())}}, true},
		{Finding{Evidence: map[string]any{"start": "yesterday"}}, false},
	} {
		got, ok := findingTime(&c.f)
		if ok != c.ok || (ok && !got.Equal(at)) {
			t.Errorf("%+v: %v %v", c.f, got, ok)
		}
	}
}

func TestReadReport(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good, _ := json.Marshal(sampleReport())
	tests := []struct {
		name, body, err string
	}{
		{"good.json", string(good), ""},
		{"v2.json", `{"schema":"vpndiag.report/v2"}`, `has schema "vpndiag.report/v2"`},
		{"none.json", `{"findings":[]}`, `no "schema" field`},
		{"junk.json", `not json`, "is not a vpndiag JSON report"},
		{"types.json", `{"schema":"vpndiag.report/v1","findings":[{"severity":"fatal"}]}`, "is not a valid vpndiag.report/v1 report"},
	}
	for _, tc := range tests {
		p := write(tc.name, tc.body)
		r, err := ReadReport(p)
		if tc.err == "" {
			if err != nil || len(r.Charts) != 3 || r.Findings[0].Time == nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), tc.name) {
			t.Errorf("%s: error %v, want %q naming the file", tc.name, err, tc.err)
		}
	}
	if _, err := ReadReport(filepath.Join(dir, "missing.json")); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("missing file: %v", err)
	}
}

func TestSourceIDsDeduplicate(t *testing.T) {
	ids := sourceIDs([]MergeInput{{Report: New("trace", "v", t0), File: "a/trace.json"}, {Report: New("trace", "v", t0), File: "b/trace.json"},
		{Report: New("trace", "v", t0), File: "c/other.json"}})
	if strings.Join(ids, "|") != "trace (trace.json)|trace (trace.json) #2|trace (other.json)" {
		t.Errorf("ids %q", ids)
	}
}
