package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/vpndiag/vpndiag/probe/metrics"
	"github.com/vpndiag/vpndiag/probe/ping"
	"github.com/vpndiag/vpndiag/probe/watch"
	"github.com/vpndiag/vpndiag/report"
)

type watchOptions struct {
	interval   string
	duration   string
	timeout    string
	size       int
	source     string
	netns      string
	privileged bool
	unpriv     bool
	textfile   string
	listen     string
	rowsEvery  string
}

func init() {
	registerProbe(func(g *globalOptions) *cobra.Command {
		o := &watchOptions{}
		cmd := &cobra.Command{
			Use:   "watch TARGET...",
			Short: "Probe continuously and time every outage (failover, link flaps)",
			Long: `watch sends an ICMP echo to every target at a fine interval (default 50 ms) until --duration
passes or it is interrupted (Ctrl-C), and reports every outage — start, end, length and
probes lost — the longest, total downtime and availability.

While it runs it prints live rows (a streaming table): one when a target goes DOWN or comes
back UP, and a status row per target every --rows-every. They go to standard output before
the report when the report is text on standard output, else to standard error; --no-progress
turns them off. --textfile DIR and --listen ADDR export Prometheus metrics (vpndiag_probe_*:
probes sent and lost, outages, downtime, up, last RTT and an RTT histogram, per target); the
textfile is rewritten atomically every second.

An outage starts at the first probe without a reply within --timeout and ends at the next
answered probe, so its length is exact to one interval. Probes held in a queue while a link
is down and answered later than --timeout count as lost.`,
			Example: `  vpndiag probe watch 10.8.0.1
  vpndiag probe watch -i 20ms --duration 5m --timeout 200ms 10.8.0.1 10.9.0.1
  vpndiag probe watch --format json -o failover.json --duration 2m 10.8.0.1
  vpndiag probe watch --textfile /var/lib/node_exporter/textfile --rows-every 0 10.8.0.1
  vpndiag probe watch --listen :9790 10.8.0.1`,
			Args: cobra.MinimumNArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return runWatch(cmd, g, o, args)
			},
		}
		f := cmd.Flags()
		f.StringVarP(&o.interval, "interval", "i", "50ms", "time between probes")
		f.StringVar(&o.duration, "duration", "", "stop after this long (default: until interrupted)")
		f.StringVar(&o.timeout, "timeout", "1s", "a probe without a reply after this long is lost")
		f.IntVarP(&o.size, "size", "s", 56, "ICMP payload bytes")
		f.StringVarP(&o.source, "source", "I", "", "source `ADDRESS`")
		f.StringVar(&o.netns, "netns", "", "probe from network namespace `NAME` (ip netns)")
		f.BoolVar(&o.privileged, "privileged", false, "use a raw ICMP socket")
		f.BoolVar(&o.unpriv, "unprivileged", false, "use an unprivileged ICMP socket")
		f.StringVar(&o.textfile, "textfile", "", "write Prometheus metrics to `DIR`/"+watch.TextfileName+" (atomically, every second)")
		f.StringVar(&o.listen, "listen", "", "serve Prometheus metrics on `ADDR` (e.g. :9790) at /metrics")
		f.StringVar(&o.rowsEvery, "rows-every", "1s", "print a status row per target this often (0: only DOWN/UP rows)")
		return cmd
	})
}

func runWatch(cmd *cobra.Command, g *globalOptions, o *watchOptions, args []string) error {
	if err := g.validate(); err != nil {
		return err
	}
	interval, err := parseSeconds("--interval", o.interval)
	if err != nil {
		return err
	}
	duration, err := parseSeconds("--duration", o.duration)
	if err != nil {
		return err
	}
	timeout, err := parseSeconds("--timeout", o.timeout)
	if err != nil {
		return err
	}
	if interval < time.Millisecond || o.size < ping.MinSize {
		return usageErr("--interval must be at least 1ms and --size at least %d", ping.MinSize)
	}
	if o.privileged && o.unpriv {
		return usageErr("--privileged and --unprivileged exclude each other")
	}
	rowsEvery, err := parseSeconds("--rows-every", o.rowsEvery)
	if err != nil {
		return err
	}
	if o.textfile != "" {
		if st, err := os.Stat(o.textfile); err != nil || !st.IsDir() {
			return usageErr("--textfile %s: not a directory", o.textfile)
		}
	}
	m := watch.NewMetrics(args...)
	if o.listen != "" {
		srv, err := metrics.Listen(o.listen, m.Registry())
		if err != nil {
			return usageErr("--listen: %v", err)
		}
		defer srv.Close()
		fmt.Fprintf(g.stderr, "vpndiag: serving metrics on http://%s/metrics\n", srv.Addr())
	}
	var rows *watch.RowWriter
	if !g.noProgress {
		rows = watch.NewRowWriter(watchRowsOut(g))
	}
	var rowErr error
	var rowMu sync.Mutex
	rtt := newRTTRecorder(interval)
	cfg := watch.Config{
		Targets: args, Interval: interval, Duration: duration, Timeout: timeout, Size: o.size,
		Source: o.source, Netns: o.netns,
		OnEvent: func(e watch.Event) {
			rtt.observe(e)
			m.Observe(e)
			if rows == nil || e.Kind == watch.Tick {
				return
			}
			for _, c := range m.Live().Snapshot() {
				if c.Target == e.Target {
					if err := rows.Event(e, c); err != nil {
						rowMu.Lock()
						rowErr = err
						rowMu.Unlock()
					}
				}
			}
		},
	}
	switch {
	case o.privileged:
		cfg.Mode = ping.Privileged
	case o.unpriv:
		cfg.Mode = ping.Unprivileged
	}
	export := func() error {
		if o.textfile == "" {
			return nil
		}
		if err := m.WriteTextfile(o.textfile); err != nil {
			return fmt.Errorf("--textfile: %w", err)
		}
		return nil
	}
	stop := make(chan struct{})
	tickerDone := make(chan struct{})
	var exportErr error
	go func() {
		defer close(tickerDone)
		exportEvery := time.NewTicker(time.Second)
		defer exportEvery.Stop()
		var status <-chan time.Time
		if rows != nil && rowsEvery > 0 {
			st := time.NewTicker(rowsEvery)
			defer st.Stop()
			status = st.C
		}
		for {
			select {
			case <-stop:
				return
			case <-exportEvery.C:
				if err := export(); err != nil && exportErr == nil {
					exportErr = err
					fmt.Fprintf(g.stderr, "vpndiag: %v\n", err)
				}
			case now := <-status:
				_ = rows.Status(now, m.Live().Snapshot())
			}
		}
	}()
	res, err := watch.Run(cmd.Context(), cfg)
	close(stop)
	<-tickerDone
	if rows != nil {
		if cerr := rows.Close(); cerr != nil && rowErr == nil {
			rowErr = cerr
		}
		if rowErr != nil {
			fmt.Fprintf(g.stderr, "vpndiag: live rows: %v\n", rowErr)
		}
	}
	if xerr := export(); xerr != nil && err == nil {
		err = xerr
	} else if exportErr != nil && err == nil {
		err = exportErr
	}
	if res == nil {
		return usageErr("%v", err)
	}
	rep := newReport("probe watch", args)
	rep.Title = fmt.Sprintf("watch of %d target(s) every %v for %v", len(args), interval, res.Ended.Sub(res.Started).Round(time.Millisecond))
	addWatchTables(rep, res)
	rep.SetData("watch", res)
	if c, ok := watchChart(res, rtt); ok {
		rep.AddChart(c)
	}
	rep.Add(watchFindings(res)...)
	rep.Sort()
	if eerr := g.emit(rep); eerr != nil {
		return eerr
	}
	if err != nil {
		return runtimeErr(err)
	}
	return nil
}

func addWatchTables(rep *report.Report, res *watch.Result) {
	t := report.Table{Name: "watch-targets", Title: "Per target",
		Columns: []string{"target", "sent", "received", "availability %", "outages", "longest ms", "downtime ms", "rtt p50 ms", "rtt p99 ms", "error"}}
	o := report.Table{Name: "outages", Title: "Outages (start and end are probe send times)",
		Columns: []string{"target", "start", "end", "length ms", "probes lost", "ongoing"}}
	for _, tr := range res.Targets {
		t.Rows = append(t.Rows, []any{tr.Target, tr.Sent, tr.Received, round3(tr.Availability), len(tr.Outages),
			ms(tr.Longest), ms(tr.Downtime), ms(tr.P50), ms(tr.P99), tr.Error})
		for _, out := range tr.Outages {
			o.Rows = append(o.Rows, []any{out.Target, out.Start.UTC().Format("2006-01-02T15:04:05.000Z"),
				out.End.UTC().Format("2006-01-02T15:04:05.000Z"), ms(out.Duration), out.Lost, out.Ongoing})
		}
	}
	rep.AddTable(t)
	rep.AddTable(o)
}

func watchFindings(res *watch.Result) []report.Finding {
	var out []report.Finding
	for _, tr := range res.Targets {
		if tr.Error != "" {
			out = append(out, report.Finding{ID: "probe.error", Severity: report.SeverityError, Where: &report.Where{Flow: tr.Target},
				Title: "Target could not be probed", Summary: tr.Error})
			continue
		}
		if len(tr.Outages) == 0 {
			continue
		}
		sev := report.SeverityWarning
		last := tr.Outages[len(tr.Outages)-1]
		if last.Ongoing {
			sev = report.SeverityError
		}
		out = append(out, report.Finding{
			ID: "probe.outage", Severity: sev, Where: &report.Where{Flow: tr.Target},
			Title: "Connectivity outages",
			Summary: fmt.Sprintf("%s was unreachable %d time(s), longest %v, total %v (availability %.2f%% of %d probes)%s.",
				tr.Target, len(tr.Outages), tr.Longest.Round(time.Millisecond), tr.Downtime.Round(time.Millisecond), tr.Availability, tr.Sent,
				map[bool]string{true: "; still down at the end", false: ""}[last.Ongoing]),
			Evidence: map[string]any{"outages": len(tr.Outages), "longest_ms": ms(tr.Longest), "downtime_ms": ms(tr.Downtime),
				"availability_percent": tr.Availability, "probes": tr.Sent},
			Remedy: "Correlate the outage times with failover and routing logs; an HA failover that takes seconds can usually be tuned (dead-peer detection, BFD, keepalive intervals).",
		})
	}
	return out
}

// watchRowsOut is where live rows go: standard output when the report is
// text on standard output (rows first, then the report), else standard
// error, so a JSON or Markdown report on standard output stays clean.
func watchRowsOut(g *globalOptions) io.Writer {
	f, _ := g.resolvedFormat()
	if f == report.FormatText && (g.output == "" || g.output == "-") {
		return g.stdout
	}
	return g.stderr
}
