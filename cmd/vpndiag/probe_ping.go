package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/vpndiag/vpndiag/probe/ping"
	"github.com/vpndiag/vpndiag/report"
)

type pingOptions struct {
	count        int
	interval     string
	size         int
	source       string
	iface        string
	df           bool
	privileged   bool
	unprivileged bool
	ttl          int
	wait         string
}

func init() {
	registerProbe(func(g *globalOptions) *cobra.Command {
		o := &pingOptions{}
		cmd := &cobra.Command{
			Use:   "ping TARGET",
			Short: "ICMP echo latency and loss: min/avg/p50/p90/p99/max, mdev, duplicates, reordering",
			Long: `ping sends ICMP echoes and reports loss, min/avg/p50/p90/p99/max round-trip time, mdev (as
iputils computes it), duplicates and reordered replies. Compare a tunnel with its underlay
by pinging the peer's public address and its tunnel address with the same -s.

As root it uses a raw ICMP socket; otherwise an unprivileged ICMP socket, which needs the
user's group in sysctl net.ipv4.ping_group_range. --df sets Don't Fragment, so a payload
larger than the path MTU is lost or refused instead of fragmented.`,
			Example: `  vpndiag probe ping 10.8.0.1
  vpndiag probe ping -s 1272 -c 200 -i 0.05 --df 10.8.0.1
  vpndiag probe ping --format json --source 192.0.2.10 203.0.113.7`,
			Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return runPing(cmd, g, o, args)
			},
		}
		f := cmd.Flags()
		f.IntVarP(&o.count, "count", "c", 10, "number of echoes")
		f.StringVarP(&o.interval, "interval", "i", "1", "seconds between echoes (or a duration like 50ms)")
		f.IntVarP(&o.size, "size", "s", 56, "ICMP payload bytes (at least 24)")
		f.StringVarP(&o.source, "source", "I", "", "source `ADDRESS`")
		f.StringVar(&o.iface, "interface", "", "send through interface `NAME`")
		f.BoolVar(&o.df, "df", false, "set Don't Fragment (IPv4)")
		f.BoolVar(&o.privileged, "privileged", false, "use a raw ICMP socket (root or CAP_NET_RAW)")
		f.BoolVar(&o.unprivileged, "unprivileged", false, "use an unprivileged ICMP socket (net.ipv4.ping_group_range)")
		f.IntVar(&o.ttl, "ttl", 64, "IP time to live")
		f.StringVarP(&o.wait, "wait", "W", "1", "seconds to wait for the last reply")
		return cmd
	})
}

func runPing(cmd *cobra.Command, g *globalOptions, o *pingOptions, args []string) error {
	if err := g.validate(); err != nil {
		return err
	}
	interval, err := parseSeconds("--interval", o.interval)
	if err != nil {
		return err
	}
	wait, err := parseSeconds("--wait", o.wait)
	if err != nil {
		return err
	}
	if o.privileged && o.unprivileged {
		return usageErr("--privileged and --unprivileged exclude each other")
	}
	cfg := ping.Config{
		Target: args[0], Count: o.count, Interval: interval, Size: o.size, Source: o.source,
		Interface: o.iface, DontFragment: o.df, TTL: o.ttl, Wait: wait,
	}
	switch {
	case o.privileged:
		cfg.Mode = ping.Privileged
	case o.unprivileged:
		cfg.Mode = ping.Unprivileged
	}
	if o.count <= 0 || o.size < ping.MinSize || (interval > 0 && interval < 1e6) {
		return usageErr("--count must be > 0, --size at least %d, --interval at least 1ms", ping.MinSize)
	}
	st, err := ping.Run(cmd.Context(), cfg)
	if st == nil {
		if err == nil {
			err = errors.New("no result")
		}
		return runtimeErr(err)
	}
	rep := newReport("probe ping", args)
	rep.Title = fmt.Sprintf("ping %s (%s), %d-byte payload", st.Target, st.Addr, st.Size)
	rep.AddTable(pingTable(st))
	rep.SetData("ping", st)
	rep.Add(pingFindings(st)...)
	if err != nil {
		rep.Add(report.Finding{ID: "probe.incomplete", Severity: report.SeverityError, Title: "Ping did not finish",
			Summary: fmtErr(err), Evidence: map[string]any{"sent": st.Sent, "received": st.Received}})
	}
	rep.Sort()
	return emitPartial(g, rep, err)
}

func pingTable(st *ping.Stats) report.Table {
	return report.Table{
		Name:    "ping",
		Title:   "ICMP echo round trips (ms)",
		Columns: []string{"target", "sent", "received", "loss %", "min", "avg", "p50", "p90", "p99", "max", "mdev", "dups", "reordered", "kernel-timed"},
		Rows: [][]any{{st.Target, st.Sent, st.Received, st.LossPercent, ms(st.Min), ms(st.Avg), ms(st.P50),
			ms(st.P90), ms(st.P99), ms(st.Max), ms(st.Mdev), st.Duplicates, st.Reordered, st.KernelTimed}},
	}
}

// pingFindings turns loss, duplicates and reordering into findings.
func pingFindings(st *ping.Stats) []report.Finding {
	var out []report.Finding
	ev := map[string]any{"sent": st.Sent, "received": st.Received, "loss_percent": st.LossPercent, "size": st.Size}
	where := &report.Where{Flow: st.Addr}
	switch {
	case st.Sent > 0 && st.Received == 0:
		out = append(out, report.Finding{ID: "probe.unreachable", Severity: report.SeverityError, Where: where, Evidence: ev,
			Title:   "Target does not answer ICMP echo",
			Summary: fmt.Sprintf("%s answered none of %d echoes with a %d-byte payload.", st.Target, st.Sent, st.Size),
			Remedy:  "Check the route and firewall to the target (ICMP may be filtered); if only large payloads fail, probe the path MTU."})
	case st.LossPercent > 0:
		sev := report.SeverityWarning
		if st.LossPercent >= 5 {
			sev = report.SeverityError
		}
		out = append(out, report.Finding{ID: "probe.loss", Severity: sev, Where: where, Evidence: ev,
			Title:   "Packet loss to target",
			Summary: fmt.Sprintf("%.1f%% of %d echoes to %s were lost (%d answered).", st.LossPercent, st.Sent, st.Target, st.Received),
			Remedy:  "Localize the loss with vpndiag trace on both ends of the tunnel, and compare with the underlay (same -s)."})
	}
	if st.Duplicates > 0 {
		out = append(out, report.Finding{ID: "probe.duplicates", Severity: report.SeverityWarning, Where: where,
			Evidence: map[string]any{"duplicates": st.Duplicates},
			Title:    "Duplicate echo replies",
			Summary:  fmt.Sprintf("%d duplicate replies from %s: a loop, a mirrored port or two hosts answering.", st.Duplicates, st.Target)})
	}
	if st.Reordered > 0 {
		out = append(out, report.Finding{ID: "probe.reorder", Severity: report.SeverityInfo, Where: where,
			Evidence: map[string]any{"reordered": st.Reordered},
			Title:    "Replies arrived out of order",
			Summary:  fmt.Sprintf("%d of %d replies from %s arrived after a later one (parallel paths or ECMP).", st.Reordered, st.Received, st.Target)})
	}
	return out
}
