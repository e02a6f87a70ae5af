package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/vpndiag/vpndiag/probe/compare"
	"github.com/vpndiag/vpndiag/probe/iperf"
	"github.com/vpndiag/vpndiag/probe/mtu"
	"github.com/vpndiag/vpndiag/probe/ping"
	"github.com/vpndiag/vpndiag/report"
)

type compareOptions struct {
	tunnel, underlay string
	size, count      int
	interval, wait   string
	df               bool
	netns            string
	privileged       bool
	unprivileged     bool
	confidence       float64
	throughput       bool
	parallel         int
	duration         string
	port             int
	reverse          bool
	rounds           int
	connectTimeout   string
	mtu              bool
}

func init() {
	registerProbe(func(g *globalOptions) *cobra.Command {
		o := &compareOptions{}
		cmd := &cobra.Command{
			Use:   "compare --tunnel ADDR --underlay ADDR",
			Short: "What a tunnel costs over its underlay: latency overhead, loss, throughput ratio, MTU",
			Long: `compare pings the peer's tunnel address and its underlay (public) address with the same
payload (-s, default 1272), interleaved — the underlay's echoes half an interval after the
tunnel's — so both see the same conditions, and reports them side by side.

The latency overhead is the difference of the median round trips, with a percentile
bootstrap confidence interval (--confidence, paths resampled independently). It is "not
measurable" when the interval includes zero or the difference is smaller than the jitter
(the larger mdev). probe.tunnel-loss is reported when the tunnel loses significantly more
echoes than the underlay (one-sided two-proportion z >= 3).

--throughput also runs the iperf3 protocol over each path, one after the other (tunnel
first, alternating with --rounds), against an iperf3 -s or vpndiag serve on each address;
a tunnel/underlay ratio below 0.5 is probe.tunnel-throughput. --mtu searches the path MTU
of each path (as probe mtu does).`,
			Example: `  vpndiag probe compare --tunnel 10.8.0.1 --underlay 203.0.113.7
  vpndiag probe compare --tunnel 10.8.0.1 --underlay 203.0.113.7 -c 500 -i 0.05 --throughput -P 4 -t 10
  vpndiag probe compare --tunnel 10.8.0.1 --underlay 203.0.113.7 --mtu --format json -o compare.json`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, args []string) error {
				return runCompare(cmd, g, o)
			},
		}
		f := cmd.Flags()
		f.StringVar(&o.tunnel, "tunnel", "", "the peer's address inside the tunnel")
		f.StringVar(&o.underlay, "underlay", "", "the peer's underlay (public) address")
		f.IntVarP(&o.size, "size", "s", compare.DefaultSize, "ICMP payload bytes on both paths")
		f.IntVarP(&o.count, "count", "c", 100, "echoes per path")
		f.StringVarP(&o.interval, "interval", "i", "0.2", "seconds between echoes on one path")
		f.StringVarP(&o.wait, "wait", "W", "1", "seconds to wait for the last replies")
		f.BoolVar(&o.df, "df", false, "set Don't Fragment on the echoes")
		f.StringVar(&o.netns, "netns", "", "measure from network namespace `NAME` (ip netns)")
		f.BoolVar(&o.privileged, "privileged", false, "use raw ICMP sockets (root or CAP_NET_RAW)")
		f.BoolVar(&o.unprivileged, "unprivileged", false, "use unprivileged ICMP sockets (net.ipv4.ping_group_range)")
		f.Float64Var(&o.confidence, "confidence", 0.95, "confidence of the overhead interval")
		f.BoolVar(&o.throughput, "throughput", false, "also measure throughput (iperf3 protocol) over both paths")
		f.IntVarP(&o.parallel, "parallel", "P", 1, "throughput: parallel streams")
		f.StringVarP(&o.duration, "time", "t", "10", "throughput: seconds per test")
		f.IntVarP(&o.port, "port", "p", iperf.DefaultPort, "throughput: server port on both addresses")
		f.BoolVarP(&o.reverse, "reverse", "R", false, "throughput: the peer sends")
		f.IntVar(&o.rounds, "rounds", 1, "throughput: tests per path, alternating the order")
		f.StringVar(&o.connectTimeout, "connect-timeout", "10", "throughput: seconds to wait for the server at each step")
		f.BoolVar(&o.mtu, "mtu", false, "also search the path MTU of both paths")
		return cmd
	})
}

func runCompare(cmd *cobra.Command, g *globalOptions, o *compareOptions) error {
	if err := g.validate(); err != nil {
		return err
	}
	if o.tunnel == "" || o.underlay == "" {
		return usageErr("--tunnel and --underlay are both required")
	}
	interval, err := parseSeconds("--interval", o.interval)
	if err != nil {
		return err
	}
	wait, err := parseSeconds("--wait", o.wait)
	if err != nil {
		return err
	}
	dur, err := parseSeconds("--time", o.duration)
	if err != nil {
		return err
	}
	ct, err := parseSeconds("--connect-timeout", o.connectTimeout)
	if err != nil {
		return err
	}
	if o.privileged && o.unprivileged {
		return usageErr("--privileged and --unprivileged exclude each other")
	}
	if o.parallel < 1 || o.parallel > 128 || dur <= 0 || o.port <= 0 || o.port > 65535 {
		return usageErr("--parallel must be 1..128, --time > 0, --port 1..65535")
	}
	cfg := compare.Config{
		Tunnel: o.tunnel, Underlay: o.underlay, Size: o.size, Count: o.count, Interval: interval, Wait: wait,
		DontFragment: o.df, Netns: o.netns, Confidence: o.confidence, Rounds: o.rounds,
		Throughput: o.throughput, MTU: o.mtu,
		Iperf: iperf.Config{Parallel: o.parallel, Duration: dur, Port: o.port, Reverse: o.reverse, ConnectTimeout: ct},
	}
	switch {
	case o.privileged:
		cfg.Mode = ping.Privileged
	case o.unprivileged:
		cfg.Mode = ping.Unprivileged
	}
	if !g.noProgress {
		cfg.OnPhase = func(p string) { fmt.Fprintf(g.stderr, "vpndiag: compare: %s\n", p) }
	}
	res, err := compare.Run(cmd.Context(), cfg)
	if res == nil {
		return usageErr("%v", err)
	}
	rep := newReport("probe compare", []string{"--tunnel", o.tunnel, "--underlay", o.underlay})
	rep.Title = fmt.Sprintf("tunnel %s vs underlay %s, %d-byte payload, %d echoes each", o.tunnel, o.underlay, res.Size, res.Count)
	addCompareTables(rep, res)
	rep.SetData("compare", res)
	rep.Add(compare.Findings(res)...)
	for _, c := range compareCharts(res) {
		rep.AddChart(c)
	}
	rep.Sort()
	return emitPartial(g, rep, err)
}

// addCompareTables adds the side-by-side table and the overhead table.
func addCompareTables(rep *report.Report, res *compare.Result) {
	t := report.Table{Name: "compare", Title: "Tunnel and underlay side by side (ms unless stated)",
		Columns: []string{"metric", "tunnel", "underlay", "tunnel - underlay"}}
	tp, up := res.Tunnel.Ping, res.Underlay.Ping
	t.Rows = append(t.Rows, []any{"address", res.Tunnel.Target, res.Underlay.Target, ""})
	if tp != nil && up != nil {
		t.Rows = append(t.Rows,
			[]any{"echoes sent", tp.Sent, up.Sent, ""},
			[]any{"replies", tp.Received, up.Received, ""},
			[]any{"loss %", round3(tp.LossPercent), round3(up.LossPercent), round3(tp.LossPercent - up.LossPercent)})
		for _, m := range []struct {
			name string
			t, u float64
		}{
			{"rtt min", ms(tp.Min), ms(up.Min)}, {"rtt p50", ms(tp.P50), ms(up.P50)}, {"rtt p90", ms(tp.P90), ms(up.P90)},
			{"rtt p99", ms(tp.P99), ms(up.P99)}, {"rtt max", ms(tp.Max), ms(up.Max)}, {"mdev", ms(tp.Mdev), ms(up.Mdev)},
		} {
			t.Rows = append(t.Rows, []any{m.name, m.t, m.u, round3(m.t - m.u)})
		}
	}
	if res.Tunnel.BitsPerSecond > 0 || res.Underlay.BitsPerSecond > 0 || res.Tunnel.ThroughputError != "" || res.Underlay.ThroughputError != "" {
		ratio := ""
		if res.ThroughputRatio > 0 {
			ratio = fmt.Sprintf("ratio %.3f", res.ThroughputRatio)
		}
		t.Rows = append(t.Rows, []any{"throughput Mbit/s", mbps(res.Tunnel.BitsPerSecond), mbps(res.Underlay.BitsPerSecond), ratio})
	}
	if res.Tunnel.MTU != nil || res.Underlay.MTU != nil {
		pm := func(r *mtu.Result) any {
			if r == nil {
				return ""
			}
			return r.PathMTU
		}
		t.Rows = append(t.Rows, []any{"path mtu bytes", pm(res.Tunnel.MTU), pm(res.Underlay.MTU), ""})
	}
	rep.AddTable(t)
	if o := res.Overhead; o != nil {
		verdict := "measurable"
		if !o.Measurable {
			verdict = "not measurable: " + o.Reason
		}
		rep.AddTable(report.Table{Name: "overhead", Title: "Tunnel latency overhead (difference of medians)",
			Columns: []string{"overhead ms", "ci low ms", "ci high ms", "confidence", "jitter ms", "verdict", "method"},
			Rows:    [][]any{{ms(o.Median), ms(o.Low), ms(o.High), o.Confidence, ms(o.Jitter), verdict, o.Method}}})
	}
}
