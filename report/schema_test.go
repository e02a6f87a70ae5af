package report_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vpndiag/vpndiag/report"
	"github.com/vpndiag/vpndiag/report/schematest"
)

// placeholder is what golden JSON files hold instead of the start time.
var placeholder = regexp.MustCompile(`"started": "X"`)

// TestSchemaGoldenReports validates every golden JSON report of the
// repository against the schema (testdata/golden/*.json), with the start
// time placeholder replaced by a real time.
func TestSchemaGoldenReports(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "testdata", "golden", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 10 {
		t.Fatalf("only %d golden JSON reports found", len(files))
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		b = placeholder.ReplaceAll(b, []byte(`"started": "2026-01-02T03:04:05Z"`))
		if err := schematest.Validate(b); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// TestSchemaEveryField validates a merged report that uses every field of
// the model, so a field added to the Go types without the schema fails.
func TestSchemaEveryField(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	first, last := t0, t0.Add(time.Second)
	drops := uint64(2)
	r := report.New("natcheck", "1", t0)
	r.Args, r.Title, r.Host, r.Checks = []string{"-x"}, "t", "h", []string{"nat"}
	r.Inputs = []report.Input{{Name: "a", Source: "a.pcap", Format: "pcap", LinkTypes: []string{"EN10MB"}, Packets: 1, Bytes: 60,
		First: &first, Last: &last, Drops: &drops, Undecoded: map[string]int64{"short": 1}, Error: "cut"}}
	r.Add(report.Finding{ID: "nat.port-exhaustion", Severity: report.SeverityError, Title: "t", Summary: "s",
		Where:    &report.Where{Hop: "h", Segment: &report.Segment{From: "a", To: "b"}, Class: "c", Flow: "f"},
		Evidence: map[string]any{"n": 1}, Frames: []report.FrameRef{{File: "a", Frame: 1}}, Remedy: "r", Time: &first})
	r.AddTable(report.Table{Name: "x", Title: "X", Columns: []string{"a", "b", "c", "d"}, Rows: [][]any{{"s", 1.5, true, nil}}, Note: "n"})
	r.AddTable(report.Table{Name: "empty", Title: "E", Columns: []string{"a"}})
	r.AddChart(report.Chart{Name: "c", Title: "C", Kind: report.ChartHistogram, XLabel: "x", YLabel: "y", XUnit: "ms", YUnit: "%",
		Categories: []string{"a"}, BinWidth: 0.5, Series: []report.Series{{Name: "s", Points: []report.Point{{X: 1, Y: 2, Gap: true}}}},
		Marks: []report.Mark{{From: 1, To: 2, Label: "m", Severity: "warning"}}, Limits: []report.Limit{{Y: 3, Label: "l"}}, Note: "n"})
	r.SetData("nat", map[string]any{"k": []int{1}})
	m := report.Merge([]report.MergeInput{{Report: r, File: "a.json"}, {Report: r, File: "b.json", Label: "gw"}}, report.Tool{Name: "vpndiag", Version: "1"}, t0)
	for _, rep := range []*report.Report{r, m} {
		var b bytes.Buffer
		if err := report.RenderJSON(&b, rep); err != nil {
			t.Fatal(err)
		}
		if err := schematest.Validate(b.Bytes()); err != nil {
			t.Errorf("%s report: %v", rep.Command, err)
		}
		// Every key the Go types wrote is named in the schema.
		for _, k := range jsonKeys(t, b.Bytes()) {
			if !bytes.Contains(report.SchemaJSON(), []byte(`"`+k+`"`)) {
				t.Errorf("field %q is not in the schema", k)
			}
		}
	}
}

// jsonKeys lists the object keys of a report outside data, evidence and
// undecoded (whose keys are free).
func jsonKeys(t *testing.T, b []byte) []string {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				seen[k] = true
				if k != "data" && k != "evidence" && k != "undecoded" {
					walk(c)
				}
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(v)
	var out []string
	for k := range seen {
		out = append(out, k)
	}
	return out
}

// TestSchemaRejects proves the schema is not vacuous: each broken report
// fails, naming the place.
func TestSchemaRejects(t *testing.T) {
	good := `{"schema":"vpndiag.report/v1","tool":{"name":"vpndiag","version":"1"},"command":"analyze","started":"2026-01-02T03:04:05Z","inputs":[],"findings":[],"tables":[]}`
	if err := schematest.Validate([]byte(good)); err != nil {
		t.Fatalf("minimal report rejected: %v", err)
	}
	tests := []struct{ name, from, to, where string }{
		{"schema version", `"vpndiag.report/v1"`, `"vpndiag.report/v2"`, "/schema"},
		{"missing tables", `,"tables":[]`, ``, "tables"},
		{"started not a time", `"2026-01-02T03:04:05Z"`, `"yesterday"`, "/started"},
		{"unknown field", `"command":"analyze"`, `"command":"analyze","comand":"x"`, "comand"},
		{"severity", `"findings":[]`, `"findings":[{"id":"a.b","severity":"fatal","title":"t","summary":"s"}]`, "/findings/0/severity"},
		{"finding id", `"findings":[]`, `"findings":[{"id":"NoDots","severity":"info","title":"t","summary":"s"}]`, "/findings/0/id"},
		{"frame 0", `"findings":[]`, `"findings":[{"id":"a.b","severity":"info","title":"t","summary":"s","frames":[{"file":"f","frame":0}]}]`, "/findings/0/frames/0/frame"},
		{"table cell object", `"tables":[]`, `"tables":[{"name":"t","title":"T","columns":["a"],"rows":[[{"x":1}]]}]`, "/tables/0/rows/0/0"},
		{"chart kind", `"tables":[]`, `"tables":[],"charts":[{"name":"c","title":"C","kind":"pie","series":[]}]`, "/charts/0/kind"},
		{"chart point", `"tables":[]`, `"tables":[],"charts":[{"name":"c","title":"C","kind":"line","series":[{"name":"s","points":[{"x":1}]}]}]`, "/charts/0/series/0/points/0"},
		{"negative packets", `"inputs":[]`, `"inputs":[{"name":"a","source":"a","packets":-1,"bytes":0}]`, "/inputs/0/packets"},
	}
	for _, tc := range tests {
		doc := strings.Replace(good, tc.from, tc.to, 1)
		if doc == good {
			t.Fatalf("%s: replacement did not apply", tc.name)
		}
		err := schematest.Validate([]byte(doc))
		if err == nil || !strings.Contains(err.Error(), tc.where) {
			t.Errorf("%s: error %v, want one at %s", tc.name, err, tc.where)
		}
	}
}
