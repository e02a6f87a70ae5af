package report

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

// DefaultJUnitFailAt is the severity from which findings become JUnit
// failures when the caller gives none (Render): warnings and errors fail,
// info findings are passing test cases that carry their summary.
const DefaultJUnitFailAt = SeverityWarning

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr,omitempty"`
	Hostname   string          `xml:"hostname,attr,omitempty"`
	Properties []junitProperty `xml:"properties>property,omitempty"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Classname string        `xml:"classname,attr"`
	Name      string        `xml:"name,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	SystemOut *junitText    `xml:"system-out,omitempty"`
}

type junitText struct {
	Text string `xml:",cdata"`
}

func sysOut(s string) *junitText { return &junitText{Text: s} }

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",cdata"`
}

// RenderJUnit writes the report as JUnit XML for CI: one <testsuite> per
// report (per source of a merged report), one <testcase> per finding
// (classname "vpndiag.<command>", name "<finding id> <where>"), failing when
// its severity is at least failAt, with the summary as the message and the
// where, frames, remedy and evidence in the body. Each check in
// Report.Checks without a finding is a passing test case; a report with
// neither findings nor checks has one passing case named after the command.
func RenderJUnit(w io.Writer, r *Report, failAt Severity) error {
	doc := junitSuites{Name: "vpndiag"}
	if len(r.Sources) == 0 {
		doc.Suites = append(doc.Suites, junitSuiteFor(r, r.Command, r.Host, r.Started.UTC().Format("2006-01-02T15:04:05"), r.Verdict(), r.Findings, r.Checks, "", failAt))
	} else {
		for _, s := range r.Sources {
			var fs []Finding
			for _, f := range r.Findings {
				if f.Source == s.ID {
					fs = append(fs, f)
				}
			}
			var checks []string
			for _, c := range r.Checks {
				if rest, ok := strings.CutPrefix(c, s.ID+"/"); ok {
					checks = append(checks, rest)
				}
			}
			doc.Suites = append(doc.Suites, junitSuiteFor(r, s.Command, s.Host, s.Started.UTC().Format("2006-01-02T15:04:05"), s.Verdict, fs, checks, s.ID, failAt))
		}
	}
	for _, s := range doc.Suites {
		doc.Tests += s.Tests
		doc.Failures += s.Failures
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return fmt.Errorf("write junit: %w", err)
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("write junit: %w", err)
	}
	if _, err := io.WriteString(w, "\n"); err != nil {
		return fmt.Errorf("write junit: %w", err)
	}
	return nil
}

func junitSuiteFor(r *Report, command, host, stamp, verdict string, findings []Finding, checks []string, source string, failAt Severity) junitSuite {
	class := "vpndiag." + strings.ReplaceAll(command, " ", ".")
	name := "vpndiag " + command
	if source != "" {
		name += " (" + source + ")"
	}
	s := junitSuite{Name: name, Time: "0", Timestamp: stamp, Hostname: host,
		Properties: []junitProperty{{"schema", r.Schema}, {"tool", r.Tool.Name + " " + r.Tool.Version}, {"fail_at", failAt.String()}}}
	if source != "" {
		s.Properties = append(s.Properties, junitProperty{"source", source})
	}
	seen := map[string]int{}
	prefixes := map[string]bool{}
	for _, f := range findings {
		name := f.ID
		if wt := whereText(f.Where); wt != "" {
			name += " " + wt
		}
		if seen[name]++; seen[name] > 1 {
			name = fmt.Sprintf("%s #%d", name, seen[name])
		}
		c := junitCase{Classname: class, Name: name, Time: "0"}
		body := junitBody(&f)
		if f.Severity >= failAt {
			c.Failure = &junitFailure{Message: f.Summary, Type: f.Severity.String(), Text: body}
			s.Failures++
		} else {
			c.SystemOut = sysOut("[" + f.Severity.String() + "] " + f.Summary + "\n" + body)
		}
		s.Cases = append(s.Cases, c)
		if i := strings.IndexByte(f.ID, '.'); i > 0 {
			prefixes[f.ID[:i]] = true
		}
		prefixes[f.ID] = true
	}
	for _, chk := range checks {
		if prefixes[chk] {
			continue
		}
		s.Cases = append(s.Cases, junitCase{Classname: class, Name: chk, Time: "0", SystemOut: sysOut("no findings")})
	}
	if len(s.Cases) == 0 {
		s.Cases = append(s.Cases, junitCase{Classname: class, Name: command, Time: "0", SystemOut: sysOut(verdict)})
	}
	s.Tests = len(s.Cases)
	return s
}

func junitBody(f *Finding) string {
	var b strings.Builder
	b.WriteString(f.Title + "\n" + f.Summary + "\n")
	if s := whereText(f.Where); s != "" {
		b.WriteString("where: " + s + "\n")
	}
	if len(f.Frames) > 0 {
		b.WriteString("frames: " + framesText(f.Frames, 12) + "\n")
	}
	if f.Remedy != "" {
		b.WriteString("remedy: " + f.Remedy + "\n")
	}
	if len(f.Evidence) > 0 {
		if js, err := json.Marshal(f.Evidence); err == nil {
			b.WriteString("evidence: " + string(js) + "\n")
		}
	}
	return b.String()
}
