package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// maxOpenRows is the longest table shown open in HTML; longer ones are
// folded into a <details> block.
const maxOpenRows = 25

// RenderHTML writes the report as one self-contained HTML page: inline CSS
// and inline SVG charts, no scripts, no fonts, images or links to anything
// outside the file. The verdict comes first, then the findings with their
// remedies (evidence folded), the timeline of a merged report, the charts
// and the tables. Light and dark mode follow the reader's system setting
// (prefers-color-scheme); printing uses the light palette and unfolds the
// evidence.
func RenderHTML(w io.Writer, r *Report) error {
	var b strings.Builder
	title := r.Title
	if title == "" {
		title = "vpndiag " + r.Command
	}
	worst, any := r.Worst()
	vclass := "ok"
	if any {
		vclass = worst.String()
	}
	b.WriteString("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
	b.WriteString("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")
	b.WriteString("<meta name=\"color-scheme\" content=\"light dark\">\n")
	b.WriteString("<meta name=\"generator\" content=\"" + esc(r.Tool.Name+" "+r.Tool.Version) + "\">\n")
	fmt.Fprintf(&b, "<title>%s</title>\n<style>\n%s</style>\n</head>\n<body>\n", esc(title), htmlCSS)

	// Header and verdict.
	b.WriteString("<header>\n")
	fmt.Fprintf(&b, "<h1>%s</h1>\n", esc(title))
	fmt.Fprintf(&b, "<p class=\"meta\">%s</p>\n", metaLine(r))
	fmt.Fprintf(&b, "<p class=\"verdict sev-%s\" role=\"status\">%s</p>\n", vclass, esc(r.Verdict()))
	b.WriteString("</header>\n")

	// Contents.
	b.WriteString("<nav><ul>")
	fmt.Fprintf(&b, "<li><a href=\"#findings\">Findings (%d)</a></li>", len(r.Findings))
	if len(r.Timeline) > 0 {
		fmt.Fprintf(&b, "<li><a href=\"#timeline\">Timeline (%d)</a></li>", len(r.Timeline))
	}
	if len(r.Sources) > 0 {
		for i, s := range r.Sources {
			fmt.Fprintf(&b, "<li><a href=\"#src-%d\">%s</a></li>", i+1, esc(s.ID))
		}
	} else {
		if len(r.Charts) > 0 {
			fmt.Fprintf(&b, "<li><a href=\"#charts\">Charts (%d)</a></li>", len(r.Charts))
		}
		fmt.Fprintf(&b, "<li><a href=\"#tables\">Tables (%d)</a></li>", len(r.Tables)+1)
	}
	b.WriteString("</ul></nav>\n<main>\n")

	// Findings.
	b.WriteString("<section id=\"findings\">\n<h2>Findings</h2>\n")
	if len(r.Findings) == 0 {
		b.WriteString("<p class=\"none\">No findings.</p>\n")
	}
	for i := range r.Findings {
		htmlFinding(&b, &r.Findings[i], i+1)
	}
	b.WriteString("</section>\n")

	if len(r.Timeline) > 0 {
		htmlTimeline(&b, r)
	}

	if len(r.Sources) == 0 {
		htmlCharts(&b, r.Charts, "", "charts")
		b.WriteString("<section id=\"tables\">\n<h2>Tables</h2>\n")
		if len(r.Inputs) > 0 {
			htmlTable(&b, inputsTable(r), "t-inputs")
		}
		for i, t := range r.Tables {
			htmlTable(&b, t, fmt.Sprintf("t-%d", i+1))
		}
		b.WriteString("</section>\n")
	} else {
		htmlSources(&b, r)
	}
	b.WriteString("</main>\n<footer>\n")
	fmt.Fprintf(&b, "<p>Written by %s %s as %s. This page is self-contained: it loads nothing and runs no scripts.</p>\n",
		esc(r.Tool.Name), esc(r.Tool.Version), esc(r.Schema))
	b.WriteString("</footer>\n</body>\n</html>\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write html: %w", err)
	}
	return nil
}

func metaLine(r *Report) string {
	var parts []string
	cmd := "vpndiag " + r.Command
	for _, a := range r.Args {
		cmd += " " + a
	}
	parts = append(parts, "<code>"+esc(cmd)+"</code>")
	if !r.Started.IsZero() {
		parts = append(parts, "started <time>"+esc(r.Started.UTC().Format("2006-01-02 15:04:05 UTC"))+"</time>")
	}
	if r.Host != "" {
		parts = append(parts, "host "+esc(r.Host))
	}
	parts = append(parts, esc(r.Tool.Name+" "+r.Tool.Version))
	return strings.Join(parts, " · ")
}

func htmlFinding(b *strings.Builder, f *Finding, n int) {
	sev := f.Severity.String()
	fmt.Fprintf(b, "<article class=\"finding sev-%s\" id=\"f-%d\">\n", sev, n)
	fmt.Fprintf(b, "<h3><span class=\"badge sev-%s\">%s</span> <code class=\"fid\">%s</code> %s", sev, sev, esc(f.ID), esc(f.Title))
	if f.Source != "" {
		fmt.Fprintf(b, " <span class=\"src\">%s</span>", esc(f.Source))
	}
	b.WriteString("</h3>\n")
	fmt.Fprintf(b, "<p class=\"summary\">%s</p>\n", esc(f.Summary))
	var dl strings.Builder
	if s := whereText(f.Where); s != "" {
		fmt.Fprintf(&dl, "<dt>where</dt><dd>%s</dd>", esc(s))
	}
	if f.Time != nil {
		fmt.Fprintf(&dl, "<dt>when</dt><dd><time>%s</time></dd>", esc(f.Time.UTC().Format("2006-01-02 15:04:05.000 UTC")))
	}
	if len(f.Frames) > 0 {
		fmt.Fprintf(&dl, "<dt>frames</dt><dd>%s</dd>", esc(framesText(f.Frames, 12)))
	}
	if f.Remedy != "" {
		fmt.Fprintf(&dl, "<dt>remedy</dt><dd class=\"remedy\">%s</dd>", esc(f.Remedy))
	}
	if dl.Len() > 0 {
		fmt.Fprintf(b, "<dl>%s</dl>\n", dl.String())
	}
	if len(f.Evidence) > 0 {
		fmt.Fprintf(b, "<details class=\"evidence\"><summary>Evidence (%d values)</summary>\n<table class=\"kv\"><tbody>", len(f.Evidence))
		for _, k := range sortedKeys(f.Evidence) {
			fmt.Fprintf(b, "<tr><th scope=\"row\">%s</th><td>%s</td></tr>", esc(k), evidenceHTML(f.Evidence[k]))
		}
		b.WriteString("</tbody></table></details>\n")
	}
	b.WriteString("</article>\n")
}

// evidenceHTML shows a scalar as text and anything nested as indented JSON.
func evidenceHTML(v any) string {
	switch v.(type) {
	case map[string]any, []any:
	default:
		if _, ok := number(v); ok || isScalar(v) {
			return esc(FormatCell(v))
		}
	}
	js, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return esc(fmt.Sprint(v))
	}
	s := string(js)
	if !strings.ContainsAny(s, "{[") {
		return esc(s)
	}
	return "<pre>" + esc(s) + "</pre>"
}

func isScalar(v any) bool {
	switch v.(type) {
	case nil, string, bool, time.Time, time.Duration:
		return true
	}
	return false
}

func htmlTimeline(b *strings.Builder, r *Report) {
	b.WriteString("<section id=\"timeline\">\n<h2>Timeline</h2>\n<ol class=\"timeline\">\n")
	day := ""
	for _, e := range r.Timeline {
		sev := "none"
		if e.Severity != "" {
			sev = e.Severity
		}
		t := e.Time.UTC()
		stamp := t.Format("15:04:05.000")
		if d := t.Format("2006-01-02"); d != day {
			day = d
			stamp = d + " " + stamp
		}
		fmt.Fprintf(b, "<li class=\"ev ev-%s sev-%s\"><time datetime=\"%s\">%s</time> <span class=\"kind\">%s</span>",
			esc(e.Kind), esc(sev), esc(t.Format(time.RFC3339Nano)), esc(stamp), esc(e.Kind))
		if e.Source != "" {
			fmt.Fprintf(b, " <span class=\"src\">%s</span>", esc(e.Source))
		}
		fmt.Fprintf(b, " %s", esc(e.Text))
		if e.DurationSeconds > 0 {
			fmt.Fprintf(b, " <span class=\"dur\">(%s)</span>", esc(durationText(e.DurationSeconds)))
		}
		b.WriteString("</li>\n")
	}
	b.WriteString("</ol>\n</section>\n")
}

func durationText(sec float64) string {
	return time.Duration(sec * float64(time.Second)).Round(time.Millisecond).String()
}

func htmlSources(b *strings.Builder, r *Report) {
	for i, s := range r.Sources {
		fmt.Fprintf(b, "<section class=\"source\" id=\"src-%d\">\n<h2>%s <small>%s</small></h2>\n", i+1, esc(s.ID), esc(sourceLine(s)))
		vclass := "ok"
		if s.Worst != "" {
			vclass = s.Worst
		}
		fmt.Fprintf(b, "<p class=\"verdict small sev-%s\">%s</p>\n", esc(vclass), esc(s.Verdict))
		var charts []Chart
		for _, c := range r.Charts {
			if c.Source == s.ID {
				charts = append(charts, c)
			}
		}
		htmlCharts(b, charts, fmt.Sprintf("s%d-", i+1), "")
		for j, t := range r.Tables {
			if t.Source == s.ID {
				htmlTable(b, t, fmt.Sprintf("s%d-t-%d", i+1, j+1))
			}
		}
		b.WriteString("</section>\n")
	}
}

func sourceLine(s Source) string {
	parts := []string{"vpndiag " + s.Command}
	if s.Title != "" {
		parts = append(parts, s.Title)
	}
	if s.Host != "" {
		parts = append(parts, "host "+s.Host)
	}
	if !s.Started.IsZero() {
		parts = append(parts, "started "+s.Started.UTC().Format("2006-01-02 15:04:05 UTC"))
	}
	parts = append(parts, s.File)
	return strings.Join(parts, " · ")
}

func htmlCharts(b *strings.Builder, charts []Chart, prefix, sectionID string) {
	if len(charts) == 0 {
		return
	}
	if sectionID != "" {
		fmt.Fprintf(b, "<section id=\"%s\">\n<h2>Charts</h2>\n", sectionID)
	}
	for i := range charts {
		c := &charts[i]
		fmt.Fprintf(b, "<figure class=\"fig\">\n<figcaption>%s</figcaption>\n", esc(c.Title))
		RenderSVG(b, c, fmt.Sprintf("%sc-%d", prefix, i+1))
		b.WriteString("\n")
		if c.Note != "" {
			fmt.Fprintf(b, "<p class=\"note\">%s</p>\n", esc(c.Note))
		}
		b.WriteString("</figure>\n")
	}
	if sectionID != "" {
		b.WriteString("</section>\n")
	}
}

func htmlTable(b *strings.Builder, t Table, id string) {
	long := len(t.Rows) > maxOpenRows
	if long {
		fmt.Fprintf(b, "<details class=\"long-table\" id=\"%s\"><summary>%s (%d rows)</summary>\n", esc(id), esc(t.Title), len(t.Rows))
	}
	b.WriteString("<div class=\"table-wrap\">")
	if long {
		b.WriteString("<table>")
	} else {
		fmt.Fprintf(b, "<table id=\"%s\">", esc(id))
	}
	fmt.Fprintf(b, "<caption>%s</caption><thead><tr>", esc(t.Title))
	numeric := make([]bool, len(t.Columns))
	for i, c := range t.Columns {
		numeric[i] = columnNumeric(t, i)
		cls := ""
		if numeric[i] {
			cls = " class=\"num\""
		}
		fmt.Fprintf(b, "<th scope=\"col\"%s>%s</th>", cls, esc(c))
	}
	b.WriteString("</tr></thead><tbody>")
	for _, row := range t.Rows {
		b.WriteString("<tr>")
		for i := range t.Columns {
			cell := ""
			if i < len(row) {
				cell = FormatCell(row[i])
			}
			if numeric[i] {
				fmt.Fprintf(b, "<td class=\"num\">%s</td>", esc(cell))
			} else {
				fmt.Fprintf(b, "<td>%s</td>", esc(cell))
			}
		}
		b.WriteString("</tr>")
	}
	if len(t.Rows) == 0 {
		fmt.Fprintf(b, "<tr><td colspan=\"%d\" class=\"none\">(none)</td></tr>", max(len(t.Columns), 1))
	}
	b.WriteString("</tbody></table></div>\n")
	if t.Note != "" {
		fmt.Fprintf(b, "<p class=\"note\">%s</p>\n", esc(t.Note))
	}
	if long {
		b.WriteString("</details>\n")
	}
}

// htmlCSS styles the page; colours are CSS variables so one rule set serves
// light mode, dark mode and print.
const htmlCSS = `:root {
  color-scheme: light dark;
  --bg: #ffffff; --fg: #1f2328; --muted: #59636e; --border: #d1d9e0; --panel: #f6f8fa;
  --err: #c62828; --warn: #9a6700; --info: #0969da; --ok: #1a7f37;
  --err-bg: #ffebe9; --warn-bg: #fff8c5; --info-bg: #ddf4ff; --ok-bg: #dafbe1;
  --grid: #e3e7eb; --axis: #59636e; --plot: #ffffff;
  --mark-error: rgba(207, 34, 46, 0.16); --mark-warning: rgba(154, 103, 0, 0.18); --mark-info: rgba(9, 105, 218, 0.14);
  --limit: #8250df;
  --s0: #0969da; --s1: #d1242f; --s2: #1a7f37; --s3: #bc4c00; --s4: #8250df; --s5: #1b7c83; --s6: #bf3989; --s7: #6e7781;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0d1117; --fg: #e6edf3; --muted: #9198a1; --border: #3d444d; --panel: #151b23;
    --err: #ff7b72; --warn: #d29922; --info: #58a6ff; --ok: #3fb950;
    --err-bg: #3c1618; --warn-bg: #3a2c0a; --info-bg: #0c2d6b; --ok-bg: #0f2e1a;
    --grid: #262c36; --axis: #9198a1; --plot: #0d1117;
    --mark-error: rgba(255, 123, 114, 0.22); --mark-warning: rgba(210, 153, 34, 0.24); --mark-info: rgba(88, 166, 255, 0.2);
    --limit: #d2a8ff;
    --s0: #58a6ff; --s1: #ff7b72; --s2: #3fb950; --s3: #f0883e; --s4: #d2a8ff; --s5: #56d4dd; --s6: #f778ba; --s7: #9198a1;
  }
}
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1100px; padding: 24px 20px 40px; background: var(--bg); color: var(--fg);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
code, pre, .fid { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace; font-size: 0.9em; }
h1 { font-size: 1.6em; margin: 0 0 4px; }
h2 { font-size: 1.25em; margin: 28px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--border); }
h2 small { font-weight: normal; color: var(--muted); font-size: 0.7em; }
h3 { font-size: 1.05em; margin: 0 0 6px; }
.meta { color: var(--muted); margin: 0 0 12px; word-break: break-word; }
.verdict { font-size: 1.15em; font-weight: 600; padding: 12px 16px; border-radius: 6px; border-left: 6px solid var(--muted); background: var(--panel); margin: 0; }
.verdict.small { font-size: 1em; padding: 8px 12px; }
.verdict.sev-error { border-color: var(--err); background: var(--err-bg); }
.verdict.sev-warning { border-color: var(--warn); background: var(--warn-bg); }
.verdict.sev-info { border-color: var(--info); background: var(--info-bg); }
.verdict.sev-ok { border-color: var(--ok); background: var(--ok-bg); }
nav ul { list-style: none; padding: 0; margin: 14px 0 0; display: flex; flex-wrap: wrap; gap: 6px 16px; }
a { color: var(--info); }
.finding { border: 1px solid var(--border); border-left: 5px solid var(--muted); border-radius: 6px; padding: 10px 14px; margin: 0 0 12px; background: var(--panel); break-inside: avoid; }
.finding.sev-error { border-left-color: var(--err); }
.finding.sev-warning { border-left-color: var(--warn); }
.finding.sev-info { border-left-color: var(--info); }
.badge { display: inline-block; font-size: 0.75em; font-weight: 700; text-transform: uppercase; letter-spacing: 0.04em; padding: 1px 7px; border-radius: 10px; color: var(--bg); background: var(--muted); vertical-align: 2px; }
.badge.sev-error { background: var(--err); } .badge.sev-warning { background: var(--warn); } .badge.sev-info { background: var(--info); }
.src { font-size: 0.8em; font-weight: normal; color: var(--muted); border: 1px solid var(--border); border-radius: 4px; padding: 0 5px; }
.summary { margin: 0 0 6px; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 6px 0; }
dt { color: var(--muted); } dd { margin: 0; word-break: break-word; }
.remedy { font-weight: 500; }
details { margin: 6px 0; }
summary { cursor: pointer; color: var(--muted); }
pre { margin: 0; white-space: pre-wrap; word-break: break-word; }
.table-wrap { overflow-x: auto; margin: 10px 0; }
table { border-collapse: collapse; font-size: 0.9em; min-width: 40%; }
caption { text-align: left; font-weight: 600; padding: 4px 0; }
th, td { border: 1px solid var(--border); padding: 3px 8px; text-align: left; vertical-align: top; }
thead th { background: var(--panel); }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
table.kv th { font-weight: normal; color: var(--muted); }
.none { color: var(--muted); font-style: italic; }
.note { color: var(--muted); font-size: 0.9em; margin: 4px 0 10px; }
.fig { margin: 12px 0 20px; break-inside: avoid; }
figcaption { font-weight: 600; margin-bottom: 4px; }
svg.chart { width: 100%; height: auto; max-width: 900px; display: block; font-size: 11px; font-family: inherit; }
svg.chart text { fill: var(--fg); }
svg.chart .plot { fill: var(--plot); stroke: none; }
svg.chart .grid line { stroke: var(--grid); stroke-width: 1; }
svg.chart .axis line { stroke: var(--axis); stroke-width: 1; }
svg.chart .axis text, svg.chart .label { fill: var(--muted); }
svg.chart .label { font-size: 12px; }
svg.chart .empty { fill: var(--muted); font-size: 14px; }
svg.chart .line { fill: none; stroke-width: 2; stroke-linejoin: round; stroke-linecap: round; }
svg.chart .mark-error { fill: var(--mark-error); } svg.chart .mark-warning { fill: var(--mark-warning); } svg.chart .mark-info { fill: var(--mark-info); }
svg.chart .limit line { stroke: var(--limit); stroke-width: 1.5; stroke-dasharray: 6 4; }
svg.chart .limit text { fill: var(--limit); font-weight: 600; }
svg.chart .bin { fill-opacity: 0.6; }
svg.chart .legend text { fill: var(--fg); }
.s0 { stroke: var(--s0); fill: var(--s0); } .s1 { stroke: var(--s1); fill: var(--s1); } .s2 { stroke: var(--s2); fill: var(--s2); } .s3 { stroke: var(--s3); fill: var(--s3); }
.s4 { stroke: var(--s4); fill: var(--s4); } .s5 { stroke: var(--s5); fill: var(--s5); } .s6 { stroke: var(--s6); fill: var(--s6); } .s7 { stroke: var(--s7); fill: var(--s7); }
svg.chart path.line { fill: none; }
svg.chart .sw { stroke: none; }
ol.timeline { list-style: none; padding: 0; margin: 0; border-left: 2px solid var(--border); }
ol.timeline li { position: relative; padding: 3px 0 3px 16px; }
ol.timeline li::before { content: ""; position: absolute; left: -6px; top: 10px; width: 10px; height: 10px; border-radius: 50%; background: var(--muted); }
ol.timeline li.sev-error::before { background: var(--err); } ol.timeline li.sev-warning::before { background: var(--warn); } ol.timeline li.sev-info::before { background: var(--info); }
ol.timeline time { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.88em; color: var(--muted); }
ol.timeline .kind { font-size: 0.8em; text-transform: uppercase; letter-spacing: 0.04em; color: var(--muted); }
.dur { color: var(--muted); }
footer { margin-top: 32px; color: var(--muted); font-size: 0.85em; border-top: 1px solid var(--border); }
@media print {
  :root {
    --bg: #ffffff; --fg: #000000; --muted: #444c56; --border: #c0c7cf; --panel: #ffffff;
    --err: #b3261e; --warn: #7d5400; --info: #0550ae; --ok: #116329;
    --err-bg: #ffffff; --warn-bg: #ffffff; --info-bg: #ffffff; --ok-bg: #ffffff;
    --grid: #e3e7eb; --axis: #444c56; --plot: #ffffff;
    --s0: #0969da; --s1: #d1242f; --s2: #1a7f37; --s3: #bc4c00; --s4: #8250df; --s5: #1b7c83; --s6: #bf3989; --s7: #6e7781;
  }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  body { max-width: none; padding: 0; font-size: 11pt; }
  nav { display: none; }
  details > summary { list-style: none; }
  details::details-content { content-visibility: visible; display: contents; }
  .table-wrap { overflow: visible; }
  h2 { break-after: avoid; }
}
`
