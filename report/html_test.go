package report

import (
	"bytes"
	"encoding/xml"
	"io"
	"regexp"
	"strings"
	"testing"
)

// svgCounts parses an SVG fragment as XML and counts elements by name.
func svgCounts(t *testing.T, svg string) map[string]int {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(svg))
	counts := map[string]int{}
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v\n%s", err, svg)
		}
		if se, ok := tok.(xml.StartElement); ok {
			counts[se.Name.Local]++
		}
	}
	return counts
}

func TestRenderSVG(t *testing.T) {
	r := sampleReport()
	tests := []struct {
		chart                 int
		paths, circles, rects int // data paths, data circles, rects including frame, marks, legend swatches
		texts                 []string
	}{
		// line: 2 series -> 2 paths; 4+4 circles; frame + 1 mark + 2 series swatches + 1 mark swatch.
		{0, 2, 8, 5, []string{"port range: 200 ports", "live mappings", "flows dropped", "10:00:01", "mappings"}},
		// bar: 3 categories x 2 series = 6 bars + frame + 2 swatches.
		{1, 0, 0, 9, []string{"outer ipv4", "inner udp", "packets", "share", "%"}},
	}
	for _, tc := range tests {
		var b strings.Builder
		RenderSVG(&b, &r.Charts[tc.chart], "c")
		svg := b.String()
		n := svgCounts(t, svg)
		if n["path"] != tc.paths || n["circle"] != tc.circles || n["rect"] != tc.rects {
			t.Errorf("chart %d: %d paths, %d circles, %d rects; want %d, %d, %d", tc.chart, n["path"], n["circle"], n["rect"], tc.paths, tc.circles, tc.rects)
		}
		for _, s := range tc.texts {
			if !strings.Contains(svg, s) {
				t.Errorf("chart %d: %q missing", tc.chart, s)
			}
		}
	}
	// The gap point starts a new subpath: "M" twice in the first series.
	var b strings.Builder
	RenderSVG(&b, &r.Charts[0], "c")
	m := regexp.MustCompile(`<path class="line s0" d="([^"]*)"`).FindStringSubmatch(b.String())
	if m == nil || strings.Count(m[1], "M") != 2 || strings.Count(m[1], "L") != 2 {
		t.Errorf("first series path %v: want 2 moves (one after the gap) and 2 lines", m)
	}
	// Histogram: one rect per non-empty bin.
	h := r.Charts[2]
	bins := h.Points()
	b.Reset()
	RenderSVG(&b, &h, "h")
	if got := strings.Count(b.String(), `class="bin `); got != bins {
		t.Errorf("histogram: %d bin rects, want %d", got, bins)
	}
	// No data: a frame and a message, still well-formed.
	b.Reset()
	RenderSVG(&b, &Chart{Title: "empty", Kind: ChartLine, Series: []Series{}}, "e")
	if !strings.Contains(b.String(), "no data") {
		t.Error("empty chart has no 'no data' text")
	}
	svgCounts(t, b.String())
}

func TestTimeTicksAndLabels(t *testing.T) {
	base := UnixSeconds(t0)
	ts := timeTicks(base, base+300)
	if len(ts) < 3 || len(ts) > 9 || ts[0].label != "10:00:00" {
		t.Errorf("5-minute span ticks %+v", ts)
	}
	ts = timeTicks(base, base+0.5)
	if len(ts) < 3 || !strings.Contains(ts[1].label, ".") {
		t.Errorf("sub-second ticks %+v", ts)
	}
	if got := tickLabel(1.5e9, 5e8, "bit/s", true); got != "1.5G" {
		t.Errorf("SI tick %q", got)
	}
	if got := valueText(2.5e6, "bit/s"); got != "2.5Mbit/s" {
		t.Errorf("value text %q", got)
	}
}

// externalRef finds anything that would make a browser fetch: src/href/
// action attributes that are not in-page anchors, CSS url(), @import, and
// http(s) or protocol-relative URLs inside tags.
var externalRef = regexp.MustCompile(`(?i)(\b(src|href|action|srcset|poster|data)\s*=\s*"(?:[^"#][^"]*)")|url\(|@import|<(script|link|iframe|img|object|embed|base)\b|<[^>]*\b(https?:)?//[^>]*>`)

func TestRenderHTML(t *testing.T) {
	var b bytes.Buffer
	if err := RenderHTML(&b, sampleReport()); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	if m := externalRef.FindString(page); m != "" {
		t.Errorf("page references something outside itself: %q", m)
	}
	order := []string{"<h1>NAT port pools &lt;test&gt; &amp; more</h1>", `class="verdict sev-error"`, `id="findings"`, "nat.port-exhaustion",
		"nat.range-small", "nat.info", `id="charts"`, "<svg", `id="tables"`, "Inputs", "Pools | per destination"}
	last := -1
	for _, s := range order {
		i := strings.Index(page, s)
		if i < 0 {
			t.Fatalf("%q missing", s)
		}
		if i < last {
			t.Errorf("%q comes before the previous section", s)
		}
		last = i
	}
	for _, s := range []string{"prefers-color-scheme: dark", "@media print", "details::details-content",
		`<details class="evidence"><summary>Evidence (3 values)</summary>`, "<pre>[\n  1,\n  2,\n  3\n]</pre>",
		`<details class="long-table"`, "Mappings (40 rows)", "remedy</dt><dd class=\"remedy\">Widen the range",
		"gw-in.pcap#465, #476", "2026-03-04 10:00:03.000 UTC", "host gw1"} {
		if !strings.Contains(page, s) {
			t.Errorf("%q missing", s)
		}
	}
	if n := strings.Count(page, "<svg"); n != 3 {
		t.Errorf("%d charts, want 3", n)
	}
	// Each inline SVG is well-formed XML.
	for _, m := range regexp.MustCompile(`(?s)<svg.*?</svg>`).FindAllString(page, -1) {
		svgCounts(t, m)
	}
}

func TestRenderMarkdownFoldsAndCharts(t *testing.T) {
	var b bytes.Buffer
	if err := RenderMarkdown(&b, sampleReport()); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, s := range []string{"<details><summary>40 rows</summary>\n\n| frame | inside | outside |", "\n</details>\n",
		"### Charts", "**Port pool usage** (see --format html for the figure)", "live mappings", "▁",
		"limit: port range: 200 ports at 200", "### Pools | per destination", "<details><summary>evidence</summary>"} {
		if !strings.Contains(md, s) {
			t.Errorf("Markdown lacks %q", s)
		}
	}
	// A short table is not folded.
	if strings.Contains(md, "<summary>1 rows</summary>") {
		t.Error("one-row table folded")
	}
}

func TestRenderTextCharts(t *testing.T) {
	var b bytes.Buffer
	if err := RenderText(&b, sampleReport()); err != nil {
		t.Fatal(err)
	}
	txt := b.String()
	for _, s := range []string{"Chart: Port pool usage", "live mappings    ", "91 .. 200 (4 points)", "marked: flows dropped 10:00:02.000 – 10:00:03.000 (1s)",
		"Chart: Protocol share", "outer ipv4 97.85%"} {
		if !strings.Contains(txt, s) {
			t.Errorf("text lacks %q\n%s", s, txt)
		}
	}
}
