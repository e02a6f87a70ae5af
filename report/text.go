package report

import (
	"fmt"
	"io"
	"strings"

	"github.com/jedib0t/go-pretty/v6/table"
	"github.com/jedib0t/go-pretty/v6/text"
)

// RenderText writes the report for a terminal: the verdict first, then the
// findings with their remedies, the tables, the inputs, and the charts as
// sparklines.
func RenderText(w io.Writer, r *Report) error {
	ew := &errWriter{w: w}
	if r.Title != "" {
		ew.printf("%s\n\n", r.Title)
	}
	ew.printf("%s\n", r.Verdict())
	for _, f := range r.Findings {
		ew.printf("\n[%s] %s: %s\n", strings.ToUpper(f.Severity.String()), f.ID, f.Title)
		ew.printf("  %s\n", f.Summary)
		if s := whereText(f.Where); s != "" {
			ew.printf("  where:    %s\n", s)
		}
		if len(f.Frames) > 0 {
			ew.printf("  frames:   %s\n", framesText(f.Frames, 8))
		}
		if f.Remedy != "" {
			ew.printf("  remedy:   %s\n", f.Remedy)
		}
		if f.Source != "" {
			ew.printf("  source:   %s\n", f.Source)
		}
	}
	if len(r.Timeline) > 0 {
		ew.printf("\nTimeline\n")
		for _, e := range r.Timeline {
			ew.printf("  %s\n", eventLine(e))
		}
	}
	for _, t := range humanTables(r) {
		ew.printf("\n")
		ew.printf("%s", textTable(t))
	}
	for i := range r.Charts {
		c := &r.Charts[i]
		title := c.Title
		if c.Source != "" {
			title = "[" + c.Source + "] " + title
		}
		ew.printf("\nChart: %s\n", title)
		for _, l := range chartLines(c) {
			ew.printf("  %s\n", l)
		}
	}
	for _, in := range r.Inputs {
		if in.Error != "" {
			ew.printf("\nwarning: %s\n", in.Error)
		}
	}
	return ew.err
}

func textTable(t Table) string {
	tw := table.NewWriter()
	tw.SetStyle(table.StyleLight)
	tw.Style().Format.Header = text.FormatDefault
	tw.SetTitle(t.Title)
	header := make(table.Row, len(t.Columns))
	for i, c := range t.Columns {
		header[i] = c
	}
	tw.AppendHeader(header)
	var align []table.ColumnConfig
	for i := range t.Columns {
		if columnNumeric(t, i) {
			align = append(align, table.ColumnConfig{Number: i + 1, Align: text.AlignRight})
		}
	}
	tw.SetColumnConfigs(align)
	for _, row := range t.Rows {
		r := make(table.Row, len(row))
		for i, v := range row {
			r[i] = FormatCell(v)
		}
		tw.AppendRow(r)
	}
	if len(t.Rows) == 0 {
		tw.AppendRow(table.Row{"(none)"})
	}
	out := tw.Render() + "\n"
	if t.Note != "" {
		out += t.Note + "\n"
	}
	return out
}

// columnNumeric reports whether every non-empty cell of column i is a number.
func columnNumeric(t Table, i int) bool {
	seen := false
	for _, row := range t.Rows {
		if i >= len(row) || row[i] == nil {
			continue
		}
		switch row[i].(type) {
		case int, int64, uint64, uint32, uint16, float64, float32:
			seen = true
		default:
			return false
		}
	}
	return seen
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err != nil {
		return
	}
	_, e.err = fmt.Fprintf(e.w, format, args...)
}
