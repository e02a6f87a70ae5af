package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/vpndiag/vpndiag/analyze"
	natana "github.com/vpndiag/vpndiag/analyze/nat"
	promserve "github.com/vpndiag/vpndiag/probe/metrics"
	"github.com/vpndiag/vpndiag/probe/nat"
	"github.com/vpndiag/vpndiag/report"
)

type natcheckOptions struct {
	watch      time.Duration
	interval   time.Duration
	count      int
	textfile   string
	listen     string
	netns      string
	top        int
	outside    string
	inside     string
	udpTimeout time.Duration
	tcpTimeout time.Duration
	maxFlows   int
}

func init() {
	register(func(g *globalOptions) *cobra.Command {
		o := &natcheckOptions{}
		cmd := &cobra.Command{
			Use:   "natcheck",
			Short: "Find NAT port-pool exhaustion on a live Linux gateway or in captures of any NAT",
			Long: `natcheck answers whether a NAT's port pool is exhausted, and how big it is.

Live mode (Linux, root or CAP_NET_ADMIN) reads the conntrack table and its per-CPU
statistics over netlink, the nftables and iptables source-NAT rules with their port
ranges and flags, and the sysctls that size the NAT. It groups mappings into pools per
NAT address, protocol and destination (Linux reuses a port towards different
destinations) and compares the ports in use with the configured range. Two samples
--interval apart give the rates of insert_failed, drop and early_drop. --watch prints a
row per interval with the time to exhaustion; --textfile and --listen export Prometheus
metrics (vpndiag_nat_*).

Capture mode works for any NAT device: --outside FILE alone gives the NAT addresses,
the port range each uses per protocol and destination, the peak concurrent mappings and
the ceiling signature (a block of ports used completely, all at once). With --inside
FILE (captured at the same time on the NAT's inside) every inside flow is matched to
its translated flow, and the flows that entered the NAT and never left are counted
against the live mappings at that moment; the nat-drops table names every class
(protocol and destination) exhausted, clean, or dropped below the pool's peak.
A mapping is live from a flow's first packet until its last plus the idle timeout
(--udp-timeout; TCP: 120 s opening or closing, 5 days established, 10 s after a
reset, as Linux). Flows are forgotten when their mapping expires, so memory follows
the live flows; --max-flows bounds them (with --inside every flow of the pair is kept
for matching) and the report says how many new flows went untracked.

In capture mode nat.range-small is raised when a pool's ports are spread over their
span the way a random allocator spreads them (so the span estimates the configured
range) and at least half of that span was mapped at once, before the pool is full. It
cannot be judged from ports used in ascending order (a sequential allocator, or
client ports kept untranslated): their span says nothing about the range.

Findings: nat.port-exhaustion, nat.conntrack-full (live only: the conntrack table
is not in a capture), nat.range-small, nat.flow-limit (capture mode, info).`,
			Example: `  sudo vpndiag natcheck
  sudo vpndiag natcheck --watch 5s --textfile /var/lib/node_exporter/textfile
  sudo vpndiag natcheck --listen :9789
  vpndiag natcheck --outside gw-outside.pcap --inside gw-inside.pcap`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, args []string) error {
				return runNatcheck(cmd, g, o, args)
			},
		}
		f := cmd.Flags()
		f.DurationVar(&o.watch, "watch", 0, "live: print a row every `INTERVAL` (e.g. 5s) until interrupted")
		f.DurationVar(&o.interval, "interval", time.Second, "live: time between the two samples that give rates")
		f.IntVar(&o.count, "count", 0, "live: with --watch or --listen, stop after this many samples (0: until interrupted)")
		f.StringVar(&o.textfile, "textfile", "", "live: write Prometheus metrics to `DIR`/vpndiag_nat.prom (atomically) at every sample")
		f.StringVar(&o.listen, "listen", "", "live: serve Prometheus metrics on `ADDR` (e.g. :9789) at /metrics; samples every --watch or --interval")
		f.StringVar(&o.netns, "netns", "", "live: inspect the named network namespace (ip netns) instead of the current one")
		f.IntVar(&o.top, "top", 10, "live: how many top destinations and clients to list")
		f.StringVar(&o.outside, "outside", "", "capture mode: capture `FILE` of the NAT's outside (translated side)")
		f.StringVar(&o.inside, "inside", "", "capture mode: capture `FILE` of the NAT's inside, taken at the same time (needs --outside)")
		f.DurationVar(&o.udpTimeout, "udp-timeout", 30*time.Second, "capture mode: how long an idle UDP mapping stays live")
		f.DurationVar(&o.tcpTimeout, "tcp-established-timeout", 5*24*time.Hour, "capture mode: how long an idle established TCP mapping stays live (Linux: 5 days; cloud NATs: minutes)")
		f.IntVar(&o.maxFlows, "max-flows", natana.DefaultMaxFlows, "capture mode: most flows tracked at once per capture (about 350 bytes each; with --inside, all flows)")
		return cmd
	})
}

func runNatcheck(cmd *cobra.Command, g *globalOptions, o *natcheckOptions, args []string) error {
	if err := g.validate(); err != nil {
		return err
	}
	if o.inside != "" && o.outside == "" {
		return usageErr("--inside needs --outside (the capture of the NAT's translated side)")
	}
	if o.outside != "" {
		if o.udpTimeout <= 0 || o.tcpTimeout <= 0 || o.maxFlows < 1 {
			return usageErr("--udp-timeout and --tcp-established-timeout must be positive and --max-flows at least 1")
		}
		for _, fl := range []string{"watch", "textfile", "listen", "netns", "count"} {
			if cmd.Flags().Changed(fl) {
				return usageErr("--%s is for live mode and cannot be used with --outside", fl)
			}
		}
		return natcheckCaptures(cmd, g, o, args)
	}
	if o.interval <= 0 {
		return usageErr("--interval %s: must be positive", o.interval)
	}
	if cmd.Flags().Changed("watch") && o.watch <= 0 {
		return usageErr("--watch %s: must be positive", o.watch)
	}
	if o.count < 0 || o.top < 1 {
		return usageErr("--count must be 0 or more and --top at least 1")
	}
	return natcheckLive(cmd.Context(), g, o, args)
}

func natcheckCaptures(cmd *cobra.Command, g *globalOptions, o *natcheckOptions, args []string) error {
	rep := newReport("natcheck", args)
	rep.Title = "NAT port pools from captures"
	bar := startProgress(g, "reading")
	err := natana.Run(cmd.Context(), o.outside, o.inside, natana.Options{UDPTimeout: o.udpTimeout, TCPEstablishedTimeout: o.tcpTimeout, MaxFlows: o.maxFlows}, rep, bar.update)
	bar.stop()
	var ie *analyze.InputError
	if err != nil && !errors.As(err, &ie) {
		return runtimeErr(err)
	}
	if ie != nil && len(rep.Inputs) == 0 {
		return &exitError{code: exitUsage, err: ie}
	}
	for _, c := range natcheckCharts(rep) {
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

func natcheckLive(ctx context.Context, g *globalOptions, o *natcheckOptions, args []string) error {
	opt := nat.Options{NetNS: o.netns}
	metrics := nat.NewMetrics()
	if o.listen != "" {
		srv, err := promserve.Listen(o.listen, metrics.Registry())
		if err != nil {
			return usageErr("--listen: %v", err)
		}
		defer srv.Close()
		fmt.Fprintf(g.stderr, "vpndiag: serving metrics on http://%s/metrics\n", srv.Addr())
	}
	export := func(s nat.Sample) error {
		metrics.Update(s.Snapshot, s.Analysis)
		if o.textfile != "" {
			if err := metrics.WriteTextfile(o.textfile); err != nil {
				return fmt.Errorf("--textfile: %w", err)
			}
		}
		return nil
	}
	var last, prev *nat.Sample
	keep := func(s nat.Sample) {
		if last != nil {
			prev = last
		}
		last = &s
	}
	watch := o.watch
	if watch == 0 && o.listen != "" {
		watch = o.interval
	}
	var err error
	hist := &nat.History{}
	if watch > 0 {
		rows := g.stdout
		if f, _ := g.resolvedFormat(); f == report.FormatJSON && (g.output == "" || g.output == "-") {
			rows = g.stderr // keep stdout valid JSON
		}
		rw := nat.NewRowWriter(rows)
		err = nat.Watch(ctx, opt, watch, o.count, o.top, func(s nat.Sample) error {
			if err := export(s); err != nil {
				return err
			}
			keep(s)
			hist.Add(s)
			return rw.Write(s)
		})
		if cerr := rw.Close(); err == nil && cerr != nil {
			err = cerr
		}
	} else {
		err = nat.Watch(ctx, opt, o.interval, 2, o.top, func(s nat.Sample) error {
			keep(s)
			return export(s)
		})
	}
	if err != nil {
		return runtimeErr(natcheckErr(err))
	}
	if last == nil {
		return runtimeErr(errors.New("interrupted before the first sample"))
	}
	rep := newReport("natcheck", args)
	rep.Title = "NAT port pools on this gateway"
	if o.netns != "" {
		rep.Title += " (network namespace " + o.netns + ")"
	}
	rep.Inputs = append(rep.Inputs, liveInput(o, last.Snapshot))
	s, a, d := last.Snapshot, last.Analysis, last.Delta
	if d == nil && prev != nil {
		d = nat.Diff(prev.Snapshot, s, prev.Analysis, a)
	}
	rep.Add(nat.Findings(s, a, d, nat.Thresholds{})...)
	for _, t := range nat.Tables(s, a, d) {
		rep.AddTable(t)
	}
	rep.SetData("natcheck", nat.Data(s, a, d))
	for _, c := range natWatchCharts(hist) {
		rep.AddChart(c)
	}
	rep.Sort()
	return g.emit(rep)
}

// liveInput describes the conntrack table read; Packets holds the number of
// source-NAT mappings.
func liveInput(o *natcheckOptions, s *nat.Snapshot) report.Input {
	src := "conntrack"
	if o.netns != "" {
		src = "conntrack:netns=" + o.netns
	}
	t := s.Time.UTC()
	return report.Input{Name: "conntrack", Source: src, Format: "live", Packets: uint64(len(s.Mappings)), First: &t, Last: &t}
}

// natcheckErr keeps the capability message of a refused read and explains
// the other errors.
func natcheckErr(err error) error {
	var pe *nat.PermissionError
	if errors.As(err, &pe) {
		return pe
	}
	if errors.Is(err, nat.ErrUnsupported) {
		return err
	}
	return fmt.Errorf("natcheck: %w", err)
}
