package main

import (
	"errors"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vpndiag/vpndiag/analyze"
	"github.com/vpndiag/vpndiag/capture"
	"github.com/vpndiag/vpndiag/report"
)

type analyzeOptions struct {
	analyzers []string
	baseline  string // previous JSON report: keep only new or worse findings
}

func init() {
	register(func(g *globalOptions) *cobra.Command {
		o := &analyzeOptions{}
		cmd := &cobra.Command{
			Use:   "analyze FILE|DIR...",
			Short: "Summarize and diagnose capture files (pcap, pcapng, gzip)",
			Long: `analyze reads pcap, pcapng and gzip-compressed captures in one streaming pass (memory does
not grow with file size), decodes every frame through its tunnels (VXLAN, GENEVE, GRE,
IP-in-IP, L2TPv3, ESP, WireGuard) and reports packets, bytes, time span, capture drops,
link types, a protocol and tunnel breakdown (outer and inner headers) and the top flows
with their Community ID. Directories are read for capture files.

Damaged input is reported with the file, frame and byte offset; everything read before
the damage is still analysed, and the exit code is 2.`,
			Example: `  vpndiag analyze gw-outside.pcapng
  vpndiag analyze --format json -o summary.json captures/
  vpndiag analyze --format md site-a.pcap.gz site-b.pcap.gz`,
			Args: cobra.MinimumNArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return runAnalyze(cmd, g, o, args)
			},
		}
		cmd.Flags().StringVar(&o.baseline, "baseline", "", "report only findings that are new or worse than in this previous JSON report (`FILE`, vpndiag.report/v1); resolved ones are listed in a table")
		cmd.Flags().StringSliceVar(&o.analyzers, "analyzers", nil, "run only these analyzers (default all: "+strings.Join(analyze.Names(), ",")+")")
		_ = cmd.RegisterFlagCompletionFunc("analyzers", cobra.FixedCompletions(analyze.Names(), cobra.ShellCompDirectiveNoFileComp))
		return cmd
	})
}

func runAnalyze(cmd *cobra.Command, g *globalOptions, o *analyzeOptions, args []string) error {
	if err := g.validate(); err != nil {
		return err
	}
	var baseline *report.Report
	if o.baseline != "" {
		var err error
		if baseline, err = report.ReadBaseline(o.baseline); err != nil {
			return usageErr("--baseline: %v", err)
		}
	}
	analyzers, unknown, ok := analyze.New(o.analyzers...)
	if !ok {
		return usageErr("--analyzers: unknown analyzer %q (have %s)", unknown, strings.Join(analyze.Names(), ", "))
	}
	paths, err := capture.Expand(args)
	if err != nil {
		return usageErr("%v", err)
	}
	inputs := make([]analyze.InputInfo, len(paths))
	for i, p := range paths {
		inputs[i] = analyze.InputInfo{Name: filepath.Base(p), Source: p}
	}
	rep := newReport("analyze", args)
	for _, a := range analyzers {
		rep.Checks = append(rep.Checks, a.Name())
	}
	pass := &analyze.Pass{Analyzers: analyzers}
	bar := startProgress(g, "reading")
	pass.Progress = bar.update
	runErr := pass.Run(cmd.Context(), inputs, rep)
	bar.stop()
	var ie *analyze.InputError
	if runErr != nil && !errors.As(runErr, &ie) {
		return runtimeErr(runErr)
	}
	if ie != nil && len(rep.Inputs) == 0 {
		// Nothing could be opened: there is no report to print.
		return &exitError{code: exitUsage, err: ie}
	}
	if baseline != nil {
		report.ApplyBaseline(baseline, rep, o.baseline)
	}
	if c, ok := protocolChart(rep); ok {
		rep.AddChart(c)
	}
	if err := g.emit(rep); err != nil {
		return err
	}
	if ie != nil {
		return &exitError{code: exitUsage, err: ie}
	}
	return nil
}
