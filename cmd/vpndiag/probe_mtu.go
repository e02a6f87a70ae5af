package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vpndiag/vpndiag/probe/mtu"
	"github.com/vpndiag/vpndiag/probe/ping"
	"github.com/vpndiag/vpndiag/report"
)

type mtuOptions struct {
	min, max     int
	retries      int
	timeout      string
	source       string
	netns        string
	privileged   bool
	unprivileged bool
}

func init() {
	registerProbe(func(g *globalOptions) *cobra.Command {
		o := &mtuOptions{}
		cmd := &cobra.Command{
			Use:   "mtu TARGET",
			Short: "Path MTU by Don't-Fragment probes: largest size that passes, frag-needed sources, black holes",
			Long: `mtu finds the path MTU to a target with ICMP echoes that have Don't Fragment set (IPv6:
never fragmented locally): a binary search between --min (576, IPv6 1280) and the MTU of the
interface the route uses (or --max), each size tried up to --retries times so that loss is
not taken for a size limit. Sizes are whole IP packets (ping -s plus 28, IPv6 plus 48).

It reports the largest size that passes, every router that answered a too-large probe with
ICMP "fragmentation needed" or ICMPv6 "packet too big" (its address and the MTU it
advertised), and a PMTU black hole
(probe.pmtu-blackhole) when large probes vanish without any ICMP error while small ones are
answered — the case where TCP connects but stalls on full-size segments.

As root it uses a raw ICMP socket; otherwise an unprivileged ICMP socket, which needs the
user's group in sysctl net.ipv4.ping_group_range.`,
			Example: `  vpndiag probe mtu 10.8.0.1
  vpndiag probe mtu --max 9000 --timeout 0.5 203.0.113.7
  vpndiag probe mtu --netns vpn --format json -o pmtu.json 10.8.0.1`,
			Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return runMTU(cmd, g, o, args)
			},
		}
		f := cmd.Flags()
		f.IntVar(&o.min, "min", 0, "smallest IP packet size of the search (default 576 for IPv4, 1280 for IPv6)")
		f.IntVar(&o.max, "max", 0, "largest IP packet size to try (default: MTU of the route's interface)")
		f.IntVar(&o.retries, "retries", 3, "probes per size before it counts as not passing")
		f.StringVar(&o.timeout, "timeout", "1", "seconds to wait for each probe's reply or ICMP error")
		f.StringVarP(&o.source, "source", "I", "", "source `ADDRESS`")
		f.StringVar(&o.netns, "netns", "", "probe from network namespace `NAME` (ip netns)")
		f.BoolVar(&o.privileged, "privileged", false, "use a raw ICMP socket (root or CAP_NET_RAW)")
		f.BoolVar(&o.unprivileged, "unprivileged", false, "use an unprivileged ICMP socket (net.ipv4.ping_group_range)")
		return cmd
	})
}

func runMTU(cmd *cobra.Command, g *globalOptions, o *mtuOptions, args []string) error {
	if err := g.validate(); err != nil {
		return err
	}
	timeout, err := parseSeconds("--timeout", o.timeout)
	if err != nil {
		return err
	}
	if o.privileged && o.unprivileged {
		return usageErr("--privileged and --unprivileged exclude each other")
	}
	cfg := mtu.Config{Target: args[0], Min: o.min, Max: o.max, Retries: o.retries, Timeout: timeout, Source: o.source, Netns: o.netns}
	switch {
	case o.privileged:
		cfg.Mode = ping.Privileged
	case o.unprivileged:
		cfg.Mode = ping.Unprivileged
	}
	if timeout <= 0 || o.retries < 1 || o.retries > 20 || (o.min != 0 && o.min < mtu.SmallSize) || (o.max != 0 && o.max < max(o.min, mtu.SmallSize)) || o.max > mtu.MaxSize {
		return usageErr("--timeout must be > 0, --retries 1..20, --min at least %d, --max at least --min and at most %d", mtu.SmallSize, mtu.MaxSize)
	}
	res, err := mtu.Run(cmd.Context(), cfg)
	if res == nil {
		if err == nil {
			err = errors.New("no result")
		}
		if strings.Contains(err.Error(), "bad source") {
			return usageErr("%v", err)
		}
		return runtimeErr(err)
	}
	rep := newReport("probe mtu", args)
	rep.Title = fmt.Sprintf("path MTU to %s (%s)", res.Target, res.Addr)
	addMTUTables(rep, res)
	rep.SetData("mtu", res)
	rep.Add(mtuFindings(res, err)...)
	rep.Sort()
	return emitPartial(g, rep, err)
}

func addMTUTables(rep *report.Report, res *mtu.Result) {
	rep.AddTable(report.Table{Name: "mtu", Title: "Path MTU (IP packet bytes)",
		Columns: []string{"target", "interface", "interface mtu", "searched", "path mtu", "refused", "refused by", "black hole", "probes", "lost", "seconds"},
		Rows: [][]any{{res.Addr, res.Interface, res.InterfaceMTU, fmt.Sprintf("%d-%d", res.Min, res.Max), res.PathMTU, res.Refused,
			string(res.RefusedBy), res.BlackHole, len(res.Probes), res.Lost, round3(res.Seconds)}}})
	fr := report.Table{Name: "frag-needed", Title: "ICMP fragmentation needed received",
		Columns: []string{"from", "advertised mtu", "count", "smallest refused size"}}
	for _, f := range res.FragNeeded {
		fr.Rows = append(fr.Rows, []any{f.From, f.MTU, f.Count, f.Smallest})
	}
	rep.AddTable(fr)
	pr := report.Table{Name: "mtu-probes", Title: "Probes in the order sent",
		Columns: []string{"size", "attempt", "outcome", "ms", "icmp from", "mtu"}}
	for _, p := range res.Probes {
		pr.Rows = append(pr.Rows, []any{p.Size, p.Attempt, string(p.Outcome), ms(p.RTT), p.From, p.MTU})
	}
	rep.AddTable(pr)
}

// mtuFindings: the path MTU (info), a black hole (error), failures.
func mtuFindings(res *mtu.Result, err error) []report.Finding {
	var out []report.Finding
	where := &report.Where{Flow: res.Addr}
	if err != nil {
		id, title := "probe.incomplete", "Path MTU search did not finish"
		if errors.Is(err, mtu.ErrUnreachable) {
			id, title = "probe.unreachable", "Target does not answer ICMP echo"
		}
		out = append(out, report.Finding{ID: id, Severity: report.SeverityError, Where: where, Title: title, Summary: fmtErr(err),
			Evidence: map[string]any{"probes": len(res.Probes), "path_mtu": res.PathMTU},
			Remedy:   "Check the route and firewall to the target (ICMP echo must be answered for this probe)."})
		if res.PathMTU == 0 {
			return out
		}
	}
	var from []string
	for _, f := range res.FragNeeded {
		from = append(from, fmt.Sprintf("%s (MTU %d)", f.From, f.MTU))
	}
	ev := map[string]any{"path_mtu": res.PathMTU, "refused": res.Refused, "interface": res.Interface, "interface_mtu": res.InterfaceMTU,
		"frag_needed_from": from, "probes": len(res.Probes)}
	if res.BlackHole {
		out = append(out, report.Finding{ID: "probe.pmtu-blackhole", Severity: report.SeverityError, Where: where, Evidence: ev,
			Title: "Path MTU black hole",
			Summary: fmt.Sprintf("Probes of %d bytes and more to %s vanished without any ICMP error (%d tries each) while %d-byte probes were answered: path MTU discovery cannot work on this path.",
				res.Refused, res.Addr, countAttempts(res, res.Refused), res.PathMTU),
			Remedy: fmt.Sprintf("Let ICMP type 3 code 4 (fragmentation needed) through the firewalls on the path, or lower the tunnel/interface MTU to %d and clamp TCP MSS to %d (iptables -t mangle -A FORWARD -p tcp --tcp-flags SYN,RST SYN -j TCPMSS --set-mss %d; nft: tcp flags syn tcp option maxseg size set %d).",
				res.PathMTU, res.PathMTU-40, res.PathMTU-40, res.PathMTU-40)})
	}
	summary := fmt.Sprintf("The largest packet that reaches %s with Don't Fragment is %d bytes", res.Addr, res.PathMTU)
	switch {
	case res.Refused == 0:
		summary += fmt.Sprintf(" (the whole searched range up to %d passed).", res.Max)
	case len(from) > 0:
		summary += fmt.Sprintf("; %s refused larger ones with fragmentation needed.", strings.Join(from, ", "))
	case res.RefusedBy == mtu.LocalTooBig:
		summary += "; this host's interface MTU refuses larger ones."
	default:
		summary += "."
	}
	out = append(out, report.Finding{ID: "probe.path-mtu", Severity: report.SeverityInfo, Where: where, Evidence: ev,
		Title: "Path MTU", Summary: summary})
	return out
}

func countAttempts(res *mtu.Result, size int) int {
	n := 0
	for _, p := range res.Probes {
		if p.Size == size {
			n++
		}
	}
	return n
}
