package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/vpndiag/vpndiag/report"
)

// globalOptions are the flags every command shares.
type globalOptions struct {
	format     string
	output     string
	failOn     string
	noProgress bool
	host       string
	stdout     io.Writer
	stderr     io.Writer
}

func (g *globalOptions) bind(root *cobra.Command) {
	f := root.PersistentFlags()
	f.StringVar(&g.format, "format", "", "output format: text, json, md, html (one self-contained page with charts) or junit (JUnit XML for CI; warnings and errors are failures) (default text)")
	f.StringVarP(&g.output, "output", "o", "", "write the report to `FILE` instead of standard output")
	f.StringVar(&g.failOn, "fail-on", "error", "exit 1 when a finding at or above this severity exists: info, warning, error, or none")
	f.BoolVar(&g.noProgress, "no-progress", false, "never show a progress bar")
	hostname, _ := os.Hostname()
	f.StringVar(&g.host, "host", hostname, "the host `NAME` recorded in the report (merged incident reports name their sources by it)")
	_ = root.RegisterFlagCompletionFunc("format", cobra.FixedCompletions(report.FormatNames(), cobra.ShellCompDirectiveNoFileComp))
	_ = root.RegisterFlagCompletionFunc("fail-on", cobra.FixedCompletions([]string{"info", "warning", "error", "none"}, cobra.ShellCompDirectiveNoFileComp))
}

// resolvedFormat validates --format.
func (g *globalOptions) resolvedFormat() (report.Format, error) {
	if g.format == "" {
		return report.FormatText, nil
	}
	f, err := report.ParseFormat(g.format)
	if err != nil {
		return "", usageErr("--format: %v", err)
	}
	return f, nil
}

// validate checks the shared flags before a command does any work, so bad
// usage fails fast with exit 2.
func (g *globalOptions) validate() error {
	if _, err := g.resolvedFormat(); err != nil {
		return err
	}
	if g.failOn != "none" {
		if _, err := report.ParseSeverity(g.failOn); err != nil {
			return usageErr("--fail-on: %v", err)
		}
	}
	return nil
}

// showProgress reports whether a progress bar may be drawn: only on a
// terminal, never for JSON, never when the report itself goes to stderr.
func (g *globalOptions) showProgress() bool {
	if g.noProgress {
		return false
	}
	if f, _ := g.resolvedFormat(); f == report.FormatJSON {
		return false
	}
	f, ok := g.stderr.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// emit renders the report to stdout or --output and turns findings at or
// above --fail-on into exit code 1.
func (g *globalOptions) emit(r *report.Report) error {
	format, err := g.resolvedFormat()
	if err != nil {
		return err
	}
	if r.Host == "" && len(r.Sources) == 0 {
		// A report made here names this host; a merged report names the
		// host of each of its sources instead.
		r.Host = g.host
	}
	if err := g.write(r, format); err != nil {
		return runtimeErr(err)
	}
	if g.failOn == "none" {
		return nil
	}
	level, _ := report.ParseSeverity(g.failOn)
	if r.CountAtLeast(level) > 0 {
		return &exitError{code: exitFindings}
	}
	return nil
}

func (g *globalOptions) write(r *report.Report, format report.Format) error {
	if g.output == "" || g.output == "-" {
		w := bufio.NewWriter(g.stdout)
		if err := report.RenderWith(w, r, format, g.renderOptions()); err != nil {
			return err
		}
		return w.Flush()
	}
	// Write to a temporary file in the same directory and rename it, so a
	// reader never sees a half-written report.
	dir := filepath.Dir(g.output)
	tmp, err := os.CreateTemp(dir, ".vpndiag-report-*")
	if err != nil {
		return fmt.Errorf("write report %s: %w", g.output, err)
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriter(tmp)
	if err := report.RenderWith(w, r, format, g.renderOptions()); err != nil {
		tmp.Close()
		return fmt.Errorf("write report %s: %w", g.output, err)
	}
	if err := w.Flush(); err != nil {
		tmp.Close()
		return fmt.Errorf("write report %s: %w", g.output, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write report %s: %w", g.output, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("write report %s: %w", g.output, err)
	}
	if err := os.Rename(tmp.Name(), g.output); err != nil {
		return fmt.Errorf("write report %s: %w", g.output, err)
	}
	return nil
}

// emitPartial writes a report that a run-time failure err (target
// unreachable, peer gone, interrupted) cut short: the partial report is
// written, and err then wins over the findings' exit code 1, so the exit code
// is 3 as documented.
func emitPartial(g *globalOptions, rep *report.Report, err error) error {
	eerr := g.emit(rep)
	var ee *exitError
	if err != nil && (eerr == nil || (errors.As(eerr, &ee) && ee.code == exitFindings)) {
		return runtimeErr(err)
	}
	return eerr
}

// renderOptions makes JUnit output fail the same findings --fail-on does.
func (g *globalOptions) renderOptions() report.Options {
	if g.failOn == "none" {
		never := report.SeverityError + 1
		return report.Options{JUnitFailAt: &never}
	}
	level, err := report.ParseSeverity(g.failOn)
	if err != nil {
		return report.Options{}
	}
	return report.Options{JUnitFailAt: &level}
}

// newReport starts a report for a command with its arguments.
func newReport(command string, args []string) *report.Report {
	r := report.New(command, versionString(), time.Now())
	r.Args = args
	return r
}
