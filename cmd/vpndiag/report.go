package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vpndiag/vpndiag/report"
)

type reportOptions struct {
	schema bool
}

func init() {
	register(func(g *globalOptions) *cobra.Command {
		o := &reportOptions{}
		cmd := &cobra.Command{
			Use:   "report [LABEL=]FILE.json...",
			Short: "Re-render saved JSON reports, or merge several into one incident report",
			Long: `report reads JSON reports that vpndiag commands wrote (--format json, schema
vpndiag.report/v1) and renders them in any format: text, json, md, html or junit.

One file is re-rendered as it was, with its charts (reports saved before a command drew
charts get them from their tables and data where possible). Several files — say a trace
from one host, a natcheck from the gateway and a probe compare from a client — are merged
into one incident report: one verdict over all findings, each finding tagged with the report
it came from, every report's tables and charts under a heading of its own, and a timeline
of what happened when (each command's start, each capture's span, findings that carry a
time, outages from probe watch, drops from natcheck).

A source is named by its command and host; prefix a file with LABEL= to name it yourself
(e.g. gw1=natcheck.json). A file that is not a vpndiag v1 JSON report is exit 2, naming the
file. The exit code otherwise follows --fail-on over the merged findings.

--schema prints the JSON Schema (draft 2020-12) of the report format and exits.`,
			Example: `  vpndiag report --format html -o incident.html trace.json natcheck.json compare.json
  vpndiag report --format md gw=natcheck.json client=watch.json
  vpndiag report --format junit -o vpndiag-junit.xml analyze.json
  vpndiag report --schema > vpndiag.report.v1.json`,
			RunE: func(cmd *cobra.Command, args []string) error {
				return runReport(g, o, args)
			},
		}
		cmd.Flags().BoolVar(&o.schema, "schema", false, "print the JSON Schema of vpndiag.report/v1 and exit")
		return cmd
	})
}

func runReport(g *globalOptions, o *reportOptions, args []string) error {
	if err := g.validate(); err != nil {
		return err
	}
	if o.schema {
		if len(args) > 0 {
			return usageErr("--schema takes no report files")
		}
		if _, err := g.stdout.Write(report.SchemaJSON()); err != nil {
			return runtimeErr(fmt.Errorf("write schema: %w", err))
		}
		return nil
	}
	if len(args) == 0 {
		return usageErr("report needs at least one JSON report file (written with --format json)")
	}
	ins := make([]report.MergeInput, 0, len(args))
	for _, a := range args {
		label, file := splitLabel(a)
		r, err := report.ReadReport(file)
		if err != nil {
			return usageErr("%v", err)
		}
		backfillCharts(r)
		ins = append(ins, report.MergeInput{Report: r, File: file, Label: label})
	}
	if len(ins) == 1 {
		return g.emit(ins[0].Report)
	}
	started := time.Time{}
	for _, in := range ins {
		if s := in.Report.Started; !s.IsZero() && (started.IsZero() || s.Before(started)) {
			started = s
		}
	}
	merged := report.Merge(ins, report.Tool{Name: "vpndiag", Version: versionString()}, started)
	merged.Args = args
	return g.emit(merged)
}

// splitLabel splits LABEL=FILE; an argument that names an existing file is
// a file even when it holds "=".
func splitLabel(arg string) (label, file string) {
	if _, err := os.Stat(arg); err == nil {
		return "", arg
	}
	if l, f, ok := strings.Cut(arg, "="); ok && l != "" && !strings.ContainsAny(l, `/\`) {
		return l, f
	}
	return "", arg
}
