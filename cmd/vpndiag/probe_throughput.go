package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/vpndiag/vpndiag/probe/iperf"
	"github.com/vpndiag/vpndiag/report"
)

type throughputOptions struct {
	port       int
	udp        bool
	reverse    bool
	parallel   int
	duration   string
	bitrate    string
	length     string
	interval   string
	bind       string
	counters64 bool
	timeout    string
}

func init() {
	registerProbe(func(g *globalOptions) *cobra.Command {
		o := &throughputOptions{}
		cmd := &cobra.Command{
			Use:   "throughput SERVER",
			Short: "Throughput with the iperf3 wire protocol, against iperf3 -s or vpndiag serve",
			Long: `throughput runs an iperf3 test (same protocol, same flags) against any iperf3 server or
vpndiag serve: TCP with -P parallel streams, -R reverse, -b pacing and -l block size, or UDP
(-u) with loss, jitter and out-of-order counts. It reports every interval per stream and
summed, and the end result as sender and receiver saw it.

A server that is busy, refuses, or disappears mid-test gives exit code 3; what was measured
before is still reported.`,
			Example: `  vpndiag probe throughput 10.8.0.1
  vpndiag probe throughput -P 4 -t 30 10.8.0.1
  vpndiag probe throughput -u -b 200M -R --format json 10.8.0.1:5201`,
			Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return runThroughput(cmd, g, o, args)
			},
		}
		f := cmd.Flags()
		f.IntVarP(&o.port, "port", "p", iperf.DefaultPort, "server port")
		f.BoolVarP(&o.udp, "udp", "u", false, "UDP instead of TCP")
		f.BoolVarP(&o.reverse, "reverse", "R", false, "the server sends, this side receives")
		f.IntVarP(&o.parallel, "parallel", "P", 1, "parallel streams")
		f.StringVarP(&o.duration, "time", "t", "10", "test duration in seconds (or a duration like 1m)")
		f.StringVarP(&o.bitrate, "bitrate", "b", "", "target bits/s per stream, K/M/G suffixes (default unlimited for TCP, 1M for UDP)")
		f.StringVarP(&o.length, "length", "l", "", "bytes per write, K/M suffixes (default 128K TCP, 1460 UDP)")
		f.StringVarP(&o.interval, "interval", "i", "1", "seconds between interval reports")
		f.StringVarP(&o.bind, "bind", "B", "", "source `ADDRESS`")
		f.BoolVar(&o.counters64, "udp-counters-64bit", false, "64-bit UDP packet counters")
		f.StringVar(&o.timeout, "connect-timeout", "10", "seconds to wait for the server at each step")
		return cmd
	})
}

func runThroughput(cmd *cobra.Command, g *globalOptions, o *throughputOptions, args []string) error {
	if err := g.validate(); err != nil {
		return err
	}
	dur, err := parseSeconds("--time", o.duration)
	if err != nil {
		return err
	}
	interval, err := parseSeconds("--interval", o.interval)
	if err != nil {
		return err
	}
	timeout, err := parseSeconds("--connect-timeout", o.timeout)
	if err != nil {
		return err
	}
	rate, err := parseSize("--bitrate", o.bitrate, false)
	if err != nil {
		return err
	}
	length, err := parseSize("--length", o.length, true)
	if err != nil {
		return err
	}
	if o.parallel < 1 || o.parallel > 128 || dur <= 0 || o.port <= 0 || o.port > 65535 {
		return usageErr("--parallel must be 1..128, --time > 0, --port 1..65535")
	}
	if interval == 0 {
		interval = -1
	}
	cfg := iperf.Config{
		Server: args[0], Port: o.port, UDP: o.udp, Reverse: o.reverse, Parallel: o.parallel,
		Duration: dur, Bitrate: rate, Length: int(length), Interval: interval, Counters64: o.counters64,
		LocalAddr: o.bind, ConnectTimeout: timeout,
	}
	res, runErr := iperf.Run(cmd.Context(), cfg)
	if res == nil {
		return runtimeErr(runErr)
	}
	rep := newReport("probe throughput", args)
	dir := "to"
	if res.Reverse {
		dir = "from"
	}
	rep.Title = fmt.Sprintf("iperf3 %s throughput %s %s, %d stream(s), %.1f s", res.Protocol, dir, res.Remote, res.Parallel, res.Seconds)
	addThroughputTables(rep, res)
	rep.SetData("throughput", res)
	if c, ok := throughputChart(res); ok {
		rep.AddChart(c)
	}
	rep.Add(throughputFindings(res)...)
	if runErr != nil {
		rep.Add(report.Finding{ID: "probe.incomplete", Severity: report.SeverityError, Title: "Throughput test did not finish",
			Summary:  fmtErr(runErr),
			Evidence: map[string]any{"seconds": res.Seconds, "sent_bytes": res.Sum.SentBytes, "received_bytes": res.Sum.ReceivedBytes},
			Remedy:   "Check that the server is reachable and not busy (iperf3 runs one test at a time), then retry."})
	}
	rep.Sort()
	return emitPartial(g, rep, runErr)
}

// addThroughputTables adds per-interval and per-stream tables.
func addThroughputTables(rep *report.Report, res *iperf.Result) {
	udp := res.Protocol == "udp"
	cols := []string{"start s", "end s", "stream", "bytes", "Mbit/s"}
	if udp {
		cols = append(cols, "packets", "lost", "jitter ms")
	}
	iv := report.Table{Name: "throughput-intervals", Title: "Per interval, as measured on this side", Columns: cols}
	row := func(i iperf.Interval, id string, s iperf.IntervalStream) []any {
		r := []any{round3(i.Start), round3(i.End), id, s.Bytes, mbps(s.BitsPerSecond)}
		if udp {
			r = append(r, s.Packets, s.Lost, round3(s.JitterMs))
		}
		return r
	}
	for _, i := range res.Intervals {
		if res.Parallel > 1 {
			for _, s := range i.Streams {
				iv.Rows = append(iv.Rows, row(i, fmt.Sprint(s.ID), s))
			}
		}
		iv.Rows = append(iv.Rows, row(i, "sum", i.Sum))
	}
	rep.AddTable(iv)

	cols = []string{"stream", "sent bytes", "sender Mbit/s", "received bytes", "receiver Mbit/s"}
	if udp {
		cols = append(cols, "packets", "lost", "loss %", "out of order", "jitter ms")
	}
	st := report.Table{Name: "throughput-streams", Title: "End result per stream", Columns: cols}
	srow := func(id string, s iperf.StreamResult) []any {
		r := []any{id, s.SentBytes, mbps(s.SentBitsPerSecond), s.ReceivedBytes, mbps(s.ReceivedBitsPerSecond)}
		if udp {
			r = append(r, s.Packets, s.Lost, round3(s.LossPercent), s.OutOfOrder, round3(s.JitterMs))
		}
		return r
	}
	for _, s := range res.Streams {
		st.Rows = append(st.Rows, srow(fmt.Sprint(s.ID), s))
	}
	st.Rows = append(st.Rows, srow("sum", res.Sum))
	if !res.Complete {
		st.Note = "incomplete: the peer's numbers are missing"
	}
	rep.AddTable(st)
}

func round3(f float64) float64 { return float64(int64(f*1000+0.5)) / 1000 }

// throughputFindings reports UDP loss.
func throughputFindings(res *iperf.Result) []report.Finding {
	if res.Protocol != "udp" || res.Sum.Lost == 0 || !res.Complete {
		return nil
	}
	sev := report.SeverityWarning
	if res.Sum.LossPercent >= 5 {
		sev = report.SeverityError
	}
	return []report.Finding{{
		ID: "probe.loss", Severity: sev, Title: "UDP datagrams lost in the throughput test",
		Summary: fmt.Sprintf("%d of %d datagrams (%.2f%%) were lost at %.1f Mbit/s offered; jitter %.3f ms.",
			res.Sum.Lost, res.Sum.Packets, res.Sum.LossPercent, res.Sum.SentBitsPerSecond/1e6, res.Sum.JitterMs),
		Where:    &report.Where{Flow: res.Remote},
		Evidence: map[string]any{"lost": res.Sum.Lost, "packets": res.Sum.Packets, "loss_percent": res.Sum.LossPercent, "sent_bits_per_second": res.Sum.SentBitsPerSecond, "duration_s": time.Duration(res.Seconds * float64(time.Second)).Seconds()},
		Remedy:   "Lower -b until loss stops to find the path's capacity; loss well below it points at a policer, a full queue or a too-large MTU.",
	}}
}
