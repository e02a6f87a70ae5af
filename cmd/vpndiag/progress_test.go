package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestProgressBarOnlyOnTerminal runs the binary on a pseudo-terminal (with
// util-linux script) and through a pipe: the bar is drawn on the terminal for
// text output, and never for JSON or when stderr is not a terminal.
func TestProgressBarOnlyOnTerminal(t *testing.T) {
	if _, err := exec.LookPath("script"); err != nil {
		t.Fatal("script (util-linux) is needed to give the binary a terminal: apt-get install bsdutils")
	}
	bin := buildBinary(t)
	capFile := corpus(t, "zeek_zeek/smtp.pcap")
	onTerminal := func(format string) string {
		out := filepath.Join(t.TempDir(), "report")
		cmdline := bin + " analyze --format " + format + " -o " + out + " " + capFile
		b, err := exec.Command("script", "-qfec", cmdline, "/dev/null").CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", cmdline, err, b)
		}
		return string(b)
	}
	if s := onTerminal("text"); !strings.Contains(s, "reading") || !strings.Contains(s, "done!") {
		t.Errorf("no progress bar on a terminal for text output:\n%q", s)
	}
	if s := onTerminal("json"); strings.Contains(s, "reading") {
		t.Errorf("progress bar drawn for JSON output:\n%q", s)
	}
	b, err := exec.Command(bin, "analyze", "-o", filepath.Join(t.TempDir(), "r"), capFile).CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "reading") {
		t.Errorf("progress bar drawn when stderr is not a terminal:\n%q", b)
	}
}
