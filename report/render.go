package report

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Format is an output format name.
type Format string

// Output formats every command supports.
const (
	FormatText     Format = "text"
	FormatJSON     Format = "json"
	FormatMarkdown Format = "md"
	FormatHTML     Format = "html"
	FormatJUnit    Format = "junit"
)

// Formats lists the supported output formats.
func Formats() []Format {
	return []Format{FormatText, FormatJSON, FormatMarkdown, FormatHTML, FormatJUnit}
}

// FormatNames lists the supported output formats as strings, for flag help
// and shell completion.
func FormatNames() []string {
	var out []string
	for _, f := range Formats() {
		out = append(out, string(f))
	}
	return out
}

// ParseFormat validates a --format value ("markdown" is accepted for "md",
// "htm" for "html", "junit-xml" for "junit").
func ParseFormat(s string) (Format, error) {
	switch strings.ToLower(s) {
	case "text", "txt":
		return FormatText, nil
	case "json":
		return FormatJSON, nil
	case "md", "markdown":
		return FormatMarkdown, nil
	case "html", "htm":
		return FormatHTML, nil
	case "junit", "junit-xml":
		return FormatJUnit, nil
	}
	return "", fmt.Errorf("unknown format %q (want %s)", s, strings.Join(FormatNames(), ", "))
}

// Options tune rendering; the zero value is what Render uses.
type Options struct {
	// JUnitFailAt is the severity from which findings are JUnit failures;
	// nil means DefaultJUnitFailAt (warning).
	JUnitFailAt *Severity
}

// Render writes r to w in format f with default options.
func Render(w io.Writer, r *Report, f Format) error {
	return RenderWith(w, r, f, Options{})
}

// RenderWith writes r to w in format f.
func RenderWith(w io.Writer, r *Report, f Format, o Options) error {
	switch f {
	case FormatJSON:
		return RenderJSON(w, r)
	case FormatMarkdown:
		return RenderMarkdown(w, r)
	case FormatHTML:
		return RenderHTML(w, r)
	case FormatJUnit:
		failAt := DefaultJUnitFailAt
		if o.JUnitFailAt != nil {
			failAt = *o.JUnitFailAt
		}
		return RenderJUnit(w, r, failAt)
	case FormatText, "":
		return RenderText(w, r)
	}
	return fmt.Errorf("render: unknown format %q", f)
}

// RenderJSON writes the report as indented JSON (the vpndiag.report/v1 contract).
func RenderJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	return nil
}

// FormatCell renders one table cell for text and Markdown output: integers as
// they are (no thousands separators: cells hold ports, ASNs and VNIs as well
// as counts, and engineers copy them), floats with up to 3 decimals, times in
// RFC 3339.
func FormatCell(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case int:
		return strconv.FormatInt(int64(x), 10)
	case int64:
		return strconv.FormatInt(x, 10)
	case uint64:
		return strconv.FormatUint(x, 10)
	case uint32:
		return strconv.FormatUint(uint64(x), 10)
	case uint16:
		return strconv.FormatUint(uint64(x), 10)
	case float64:
		return formatFloat(x)
	case float32:
		return formatFloat(float64(x))
	case bool:
		if x {
			return "yes"
		}
		return "no"
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case time.Duration:
		return x.String()
	case fmt.Stringer:
		return x.String()
	}
	return fmt.Sprint(v)
}

func formatFloat(f float64) string {
	s := strconv.FormatFloat(f, 'f', 3, 64)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// sortedKeys returns a map's keys in order, for deterministic output.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// whereText renders a finding's location in one line.
func whereText(w *Where) string {
	if w == nil {
		return ""
	}
	var parts []string
	if w.Hop != "" {
		parts = append(parts, "hop "+w.Hop)
	}
	if w.Segment != nil {
		parts = append(parts, "segment "+w.Segment.From+" -> "+w.Segment.To)
	}
	if w.Class != "" {
		parts = append(parts, "class "+w.Class)
	}
	if w.Flow != "" {
		parts = append(parts, "flow "+w.Flow)
	}
	return strings.Join(parts, ", ")
}

// framesText renders frame references compactly: "gw-out.pcap#12, #15".
func framesText(frames []FrameRef, max int) string {
	var b strings.Builder
	last := ""
	for i, f := range frames {
		if i == max {
			fmt.Fprintf(&b, " (+%d more)", len(frames)-max)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		if f.File != last {
			b.WriteString(f.File)
			last = f.File
		}
		fmt.Fprintf(&b, "#%d", f.Frame)
	}
	return b.String()
}

// inputsTable turns the report's inputs into a table for human formats.
func inputsTable(r *Report) Table {
	t := Table{Name: "inputs", Title: "Inputs",
		Columns: []string{"input", "format", "link types", "packets", "bytes", "first", "duration", "capture drops", "undecoded"}}
	for _, in := range r.Inputs {
		first, dur := "", ""
		if in.First != nil {
			first = in.First.UTC().Format("2006-01-02 15:04:05.000000")
			if in.Last != nil {
				dur = in.Last.Sub(*in.First).Round(time.Microsecond).String()
			}
		}
		drops := "n/a"
		if in.Drops != nil {
			drops = FormatCell(*in.Drops)
		}
		var und []string
		for _, k := range sortedKeys(in.Undecoded) {
			und = append(und, fmt.Sprintf("%s %d", k, in.Undecoded[k]))
		}
		name := in.Name
		if in.Error != "" {
			name += " (damaged)"
		}
		t.Rows = append(t.Rows, []any{name, in.Format, strings.Join(in.LinkTypes, ","), in.Packets, in.Bytes,
			first, dur, drops, strings.Join(und, ", ")})
	}
	return t
}
