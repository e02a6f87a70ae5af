package report

import (
	"encoding/json"
	"io"
	"strings"
)

// RenderMarkdown writes the report as Markdown suited to pasting into an issue
// tracker: the verdict, the findings, tables, and long evidence folded into a
// <details> block.
func RenderMarkdown(w io.Writer, r *Report) error {
	ew := &errWriter{w: w}
	title := r.Title
	if title == "" {
		title = "vpndiag " + r.Command
	}
	ew.printf("## %s\n\n**%s**\n", mdEscape(title), mdEscape(r.Verdict()))
	if len(r.Findings) > 0 {
		ew.printf("\n### Findings\n")
	}
	for _, f := range r.Findings {
		ew.printf("\n- **%s** `%s` — %s  \n  %s\n", strings.ToUpper(f.Severity.String()), f.ID, mdEscape(f.Title), mdEscape(f.Summary))
		if s := whereText(f.Where); s != "" {
			ew.printf("  - where: %s\n", mdEscape(s))
		}
		if len(f.Frames) > 0 {
			ew.printf("  - frames: %s\n", mdEscape(framesText(f.Frames, 8)))
		}
		if f.Remedy != "" {
			ew.printf("  - remedy: %s\n", mdEscape(f.Remedy))
		}
		if f.Source != "" {
			ew.printf("  - source: %s\n", mdEscape(f.Source))
		}
		if len(f.Evidence) > 0 {
			b, err := json.MarshalIndent(f.Evidence, "  ", "  ")
			if err == nil {
				ew.printf("\n  <details><summary>evidence</summary>\n\n  ```json\n  %s\n  ```\n\n  </details>\n", b)
			}
		}
	}
	if len(r.Timeline) > 0 {
		ew.printf("\n### Timeline\n\n| time (UTC) | kind | source | event |\n|---|---|---|---|\n")
		for _, e := range r.Timeline {
			text := e.Text
			if e.DurationSeconds > 0 {
				text += " (" + durationText(e.DurationSeconds) + ")"
			}
			ew.printf("| %s | %s | %s | %s |\n", e.Time.UTC().Format("2006-01-02 15:04:05.000"), mdCell(e.Kind), mdCell(mdEscape(e.Source)), mdCell(mdEscape(text)))
		}
	}
	if len(r.Charts) > 0 {
		ew.printf("\n### Charts\n")
	}
	for i := range r.Charts {
		c := &r.Charts[i]
		title := c.Title
		if c.Source != "" {
			title = "[" + c.Source + "] " + title
		}
		ew.printf("\n**%s** (see --format html for the figure)\n\n```text\n%s\n```\n", mdEscape(title), strings.Join(chartLines(c), "\n"))
	}
	for _, t := range humanTables(r) {
		ew.printf("\n### %s\n\n", mdEscape(t.Title))
		if len(t.Rows) > mdFoldRows {
			// Long tables are folded so the findings stay in view; the blank
			// lines around the table are what issue trackers need to render
			// Markdown inside HTML.
			ew.printf("<details><summary>%d rows</summary>\n\n%s\n</details>\n", len(t.Rows), mdTable(t))
		} else {
			ew.printf("%s", mdTable(t))
		}
		if t.Note != "" {
			ew.printf("\n%s\n", mdEscape(t.Note))
		}
	}
	return ew.err
}

// mdFoldRows is the longest table printed open in Markdown.
const mdFoldRows = 30

func mdTable(t Table) string {
	var b strings.Builder
	b.WriteString("|")
	for _, c := range t.Columns {
		b.WriteString(" " + mdCell(c) + " |")
	}
	b.WriteString("\n|")
	for i := range t.Columns {
		if columnNumeric(t, i) {
			b.WriteString("---:|")
		} else {
			b.WriteString("---|")
		}
	}
	b.WriteString("\n")
	for _, row := range t.Rows {
		b.WriteString("|")
		for i := range t.Columns {
			cell := ""
			if i < len(row) {
				cell = FormatCell(row[i])
			}
			b.WriteString(" " + mdCell(cell) + " |")
		}
		b.WriteString("\n")
	}
	return b.String()
}

func mdCell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}

var mdReplacer = strings.NewReplacer("*", `\*`, "_", `\_`, "`", "\\`", "<", "&lt;", ">", "&gt;")

func mdEscape(s string) string { return mdReplacer.Replace(s) }
