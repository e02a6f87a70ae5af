package main

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"

	"github.com/spf13/cobra"

	"github.com/vpndiag/vpndiag/probe/iperf"
	"github.com/vpndiag/vpndiag/report"
)

type serveOptions struct {
	port    int
	bind    string
	oneOff  bool
	timeout string
}

func init() {
	register(func(g *globalOptions) *cobra.Command {
		o := &serveOptions{}
		cmd := &cobra.Command{
			Use:   "serve",
			Short: "Throughput server, wire-compatible with iperf3 (iperf3 -c and vpndiag probe throughput)",
			Long: `serve answers throughput tests from iperf3 -c or vpndiag probe throughput: TCP with parallel
streams, reverse mode and pacing, and UDP, on one TCP and UDP port (default 5201). It runs
one test at a time and tells a second client that it is busy, as iperf3 does. Each test is
summarized on standard error when it ends; the report lists every test when serve stops
(Ctrl-C, or after one test with --one-off).`,
			Example: `  vpndiag serve
  vpndiag serve -p 5202 -B 10.8.0.1
  vpndiag serve --one-off --format json -o test.json`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, args []string) error {
				return runServe(cmd, g, o, args)
			},
		}
		f := cmd.Flags()
		f.IntVarP(&o.port, "port", "p", iperf.DefaultPort, "TCP and UDP port")
		f.StringVarP(&o.bind, "bind", "B", "", "listen on `ADDRESS` only")
		f.BoolVarP(&o.oneOff, "one-off", "1", false, "exit after one test")
		f.StringVar(&o.timeout, "timeout", "10", "seconds to wait for a client at each protocol step")
		return cmd
	})
}

type servedTest struct {
	res *iperf.Result
	err error
}

func runServe(cmd *cobra.Command, g *globalOptions, o *serveOptions, args []string) error {
	if err := g.validate(); err != nil {
		return err
	}
	timeout, err := parseSeconds("--timeout", o.timeout)
	if err != nil {
		return err
	}
	if o.port <= 0 || o.port > 65535 {
		return usageErr("--port: %d out of range 1..65535", o.port)
	}
	if o.bind != "" && net.ParseIP(o.bind) == nil {
		return usageErr("--bind: %q is not an IP address", o.bind)
	}
	addr := net.JoinHostPort(o.bind, strconv.Itoa(o.port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return runtimeErr(fmt.Errorf("listen on %s: %w (is another server running there?)", addr, err))
	}
	ctx, cancel := context.WithCancel(cmd.Context())
	defer cancel()
	var mu sync.Mutex
	var tests []servedTest
	srv := &iperf.Server{
		Timeout: timeout,
		OnResult: func(r *iperf.Result, err error) {
			mu.Lock()
			tests = append(tests, servedTest{r, err})
			mu.Unlock()
			if r != nil {
				fmt.Fprintf(g.stderr, "test from %s: %s %d stream(s) %.1f s, received %.1f Mbit/s, sent %.1f Mbit/s",
					r.Remote, r.Protocol, r.Parallel, r.Seconds, r.Sum.ReceivedBitsPerSecond/1e6, r.Sum.SentBitsPerSecond/1e6)
			}
			if err != nil {
				fmt.Fprintf(g.stderr, " error: %v", err)
			}
			fmt.Fprintln(g.stderr)
			if o.oneOff {
				cancel()
			}
		},
	}
	fmt.Fprintf(g.stderr, "vpndiag serve: listening on %s (TCP and UDP)\n", ln.Addr())
	if err := srv.Serve(ctx, ln); err != nil {
		return runtimeErr(err)
	}
	rep := newReport("serve", args)
	rep.Title = fmt.Sprintf("iperf3-compatible server on %s: %d test(s)", ln.Addr(), len(tests))
	t := report.Table{Name: "tests", Title: "Tests served",
		Columns: []string{"client", "protocol", "streams", "reverse", "seconds", "received Mbit/s", "sent Mbit/s", "lost", "error"}}
	var results []*iperf.Result
	for _, s := range tests {
		errText := ""
		if s.err != nil {
			errText = s.err.Error()
			rep.Add(report.Finding{ID: "serve.test-failed", Severity: report.SeverityWarning, Title: "A test ended abnormally", Summary: errText})
		}
		if s.res == nil {
			t.Rows = append(t.Rows, []any{"", "", 0, false, 0, 0, 0, 0, errText})
			continue
		}
		r := s.res
		results = append(results, r)
		t.Rows = append(t.Rows, []any{r.Remote, r.Protocol, r.Parallel, r.Reverse, round3(r.Seconds),
			mbps(r.Sum.ReceivedBitsPerSecond), mbps(r.Sum.SentBitsPerSecond), r.Sum.Lost, errText})
	}
	rep.AddTable(t)
	rep.SetData("tests", results)
	rep.Sort()
	return g.emit(rep)
}
