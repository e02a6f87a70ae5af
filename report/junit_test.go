package report

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"
)

type jCase struct {
	Classname string `xml:"classname,attr"`
	Name      string `xml:"name,attr"`
	Failure   *struct {
		Message string `xml:"message,attr"`
		Type    string `xml:"type,attr"`
		Text    string `xml:",chardata"`
	} `xml:"failure"`
	SystemOut string `xml:"system-out"`
}

type jDoc struct {
	Tests    int `xml:"tests,attr"`
	Failures int `xml:"failures,attr"`
	Suites   []struct {
		Name     string  `xml:"name,attr"`
		Tests    int     `xml:"tests,attr"`
		Failures int     `xml:"failures,attr"`
		Hostname string  `xml:"hostname,attr"`
		Cases    []jCase `xml:"testcase"`
	} `xml:"testsuite"`
}

func parseJUnit(t *testing.T, b []byte) jDoc {
	t.Helper()
	var d jDoc
	if err := xml.Unmarshal(b, &d); err != nil {
		t.Fatalf("JUnit is not XML: %v\n%s", err, b)
	}
	return d
}

func TestRenderJUnit(t *testing.T) {
	r := sampleReport()
	r.Checks = []string{"nat", "dns", "nat.port-exhaustion"}
	tests := []struct {
		failAt   Severity
		failures int
	}{{SeverityWarning, 2}, {SeverityError, 1}, {SeverityInfo, 3}}
	for _, tc := range tests {
		var b bytes.Buffer
		if err := RenderJUnit(&b, r, tc.failAt); err != nil {
			t.Fatal(err)
		}
		d := parseJUnit(t, b.Bytes())
		// 3 findings + the "dns" check that found nothing ("nat" has findings).
		if d.Tests != 4 || d.Failures != tc.failures || len(d.Suites) != 1 {
			t.Fatalf("fail at %v: tests %d failures %d suites %d; want 4, %d, 1", tc.failAt, d.Tests, d.Failures, len(d.Suites), tc.failures)
		}
		s := d.Suites[0]
		if s.Name != "vpndiag natcheck" || s.Hostname != "gw1" {
			t.Errorf("suite %q host %q", s.Name, s.Hostname)
		}
		c := s.Cases[0]
		if c.Classname != "vpndiag.natcheck" || c.Name != "nat.port-exhaustion hop gw-out.pcap, segment gw-in -> gw-out, class udp" {
			t.Errorf("first case %q %q", c.Classname, c.Name)
		}
		if c.Failure == nil || c.Failure.Type != "error" || !strings.HasPrefix(c.Failure.Message, "298 of 498") ||
			!strings.Contains(c.Failure.Text, "remedy: Widen the range") || !strings.Contains(c.Failure.Text, `"dropped":298`) {
			t.Errorf("failure %+v", c.Failure)
		}
		if last := s.Cases[3]; last.Name != "dns" || last.Failure != nil || last.SystemOut != "no findings" {
			t.Errorf("passing check case %+v", last)
		}
		if tc.failAt == SeverityWarning && (s.Cases[2].Failure != nil || !strings.HasPrefix(s.Cases[2].SystemOut, "[info]")) {
			t.Errorf("info finding at fail-at warning: %+v", s.Cases[2])
		}
	}
	// No findings and no checks: one passing case.
	var b bytes.Buffer
	if err := RenderJUnit(&b, New("probe ping", "v", t0), SeverityWarning); err != nil {
		t.Fatal(err)
	}
	d := parseJUnit(t, b.Bytes())
	if d.Tests != 1 || d.Failures != 0 || d.Suites[0].Cases[0].Name != "probe ping" || d.Suites[0].Cases[0].Classname != "vpndiag.probe.ping" {
		t.Errorf("empty report: %+v", d)
	}
	// Render uses warning as the threshold.
	b.Reset()
	if err := Render(&b, r, FormatJUnit); err != nil {
		t.Fatal(err)
	}
	if d := parseJUnit(t, b.Bytes()); d.Failures != 2 {
		t.Errorf("Render junit: %d failures, want 2 (warning and error)", d.Failures)
	}
}

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]Format{"text": FormatText, "JSON": FormatJSON, "markdown": FormatMarkdown, "html": FormatHTML, "htm": FormatHTML, "junit": FormatJUnit, "junit-xml": FormatJUnit} {
		if got, err := ParseFormat(in); err != nil || got != want {
			t.Errorf("ParseFormat(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseFormat("xml"); err == nil || !strings.Contains(err.Error(), "text, json, md, html, junit") {
		t.Errorf("bad format error %v", err)
	}
}
