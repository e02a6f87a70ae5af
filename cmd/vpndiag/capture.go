package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vpndiag/vpndiag/analyze/decode"
	"github.com/vpndiag/vpndiag/capture"
	"github.com/vpndiag/vpndiag/report"
)

type captureOptions struct {
	ifaces       []string
	filter       string
	write        string
	duration     time.Duration
	count        uint64
	ring         string
	hop          string
	snapLen      int
	bufferMB     int
	promisc      bool
	nativeFilter bool
}

func init() {
	register(func(g *globalOptions) *cobra.Command {
		o := &captureOptions{}
		cmd := &cobra.Command{
			Use:   "capture -i IFACE[,IFACE...] [-f FILTER] [-w FILE]",
			Short: "Capture live on one or more interfaces into pcapng (hop names, kernel drop counts, ring of files)",
			Long: `capture records packets on one or more local interfaces (Linux, AF_PACKET with a
TPACKET_V3 ring, no libpcap) into one pcapng file: an interface block per interface with its
name, link type, filter and the hop name (--hop, shown by Wireshark as the interface
description), and at the end statistics blocks with the kernel's received and dropped counts.
Ctrl-C (or --duration, --count) stops cleanly: the file is complete and opens in Wireshark,
tshark and 'vpndiag analyze'.

The filter uses tcpdump syntax; it is compiled by the local tcpdump when installed, otherwise
by vpndiag's own compiler (host, net, port, src/dst, ip, ip6, arp, tcp, udp, icmp, icmp6,
proto, and/or/not, parentheses).

--ring NxSIZE writes out.pcapng, out-1.pcapng, ... each at most SIZE, keeping the last N.

-w - streams the pcapng to standard output, each frame flushed as it is captured (this is
what trace's remote hops run over SSH); the report is then written only with -o FILE, and a
one-line summary goes to standard error.

Capturing needs CAP_NET_RAW: run as root (sudo) or grant it once with
  sudo setcap cap_net_raw,cap_net_admin+ep $(command -v vpndiag)
The report lists per interface the frames captured and the kernel's received/dropped counts.`,
			Example: `  sudo vpndiag capture -i eth0 -w gw.pcapng --duration 30s
  sudo vpndiag capture -i eth0,wg0 --hop gw -f 'udp or icmp' -w gw.pcapng
  sudo vpndiag capture -i eth1 --ring 10x100MB -w /var/tmp/wan.pcapng`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, args []string) error {
				return runCapture(cmd, g, o, args)
			},
		}
		f := cmd.Flags()
		f.StringSliceVarP(&o.ifaces, "interface", "i", nil, "capture on `IFACE` (comma-separated or repeated for several)")
		f.StringVarP(&o.filter, "filter", "f", "", "capture filter in tcpdump syntax, e.g. 'udp port 53 or icmp'")
		f.StringVarP(&o.write, "write", "w", "", "write the pcapng to `FILE`, - for standard output (default vpndiag-YYYYMMDD-HHMMSS.pcapng)")
		f.DurationVar(&o.duration, "duration", 0, "stop after this long (default: until Ctrl-C)")
		f.Uint64Var(&o.count, "count", 0, "stop after this many frames, over all interfaces (0: no limit)")
		f.StringVar(&o.ring, "ring", "", "ring of files `NxSIZE`: rotate at SIZE (e.g. 100MB), keep the last N")
		f.StringVar(&o.hop, "hop", "", "hop `NAME` recorded as the interfaces' description (what trace calls this capture point)")
		f.IntVar(&o.snapLen, "snaplen", capture.DefaultSnapLen, "keep at most `N` bytes of each frame")
		f.IntVar(&o.bufferMB, "buffer", capture.DefaultBufferSize>>20, "kernel ring size per interface in `MiB`")
		f.BoolVar(&o.promisc, "promisc", false, "put the interfaces in promiscuous mode while capturing")
		f.BoolVar(&o.nativeFilter, "native-filter", false, "compile the filter with vpndiag's compiler even when tcpdump is installed")
		return cmd
	})
}

// captureTotals counts what was written for one interface.
type captureTotals struct {
	packets, bytes uint64
	first, last    int64
}

func runCapture(cmd *cobra.Command, g *globalOptions, o *captureOptions, args []string) error {
	if err := g.validate(); err != nil {
		return err
	}
	if len(o.ifaces) == 0 {
		return usageErr("capture: give the interfaces to capture on with -i (e.g. -i eth0,wg0; see ip link)")
	}
	if o.snapLen < 64 || o.snapLen > capture.DefaultSnapLen {
		return usageErr("--snaplen %d: must be 64..%d", o.snapLen, capture.DefaultSnapLen)
	}
	if o.bufferMB < 1 || o.bufferMB > 4096 {
		return usageErr("--buffer %d: must be 1..4096 MiB", o.bufferMB)
	}
	if o.duration < 0 {
		return usageErr("--duration %v: must not be negative", o.duration)
	}
	var ring capture.RingSpec
	if o.ring != "" {
		var err error
		if ring, err = capture.ParseRing(o.ring); err != nil {
			return usageErr("--ring: %v", err)
		}
	}
	out := o.write
	if out == "" {
		out = "vpndiag-" + time.Now().Format("20060102-150405") + ".pcapng"
	}
	ctx := cmd.Context()
	if o.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.duration)
		defer cancel()
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()

	src, err := capture.OpenLive(ctx, capture.LiveConfig{
		Interfaces: o.ifaces, Hop: o.hop, Filter: o.filter, SnapLen: o.snapLen,
		BufferSize: o.bufferMB << 20, Promisc: o.promisc, NativeFilter: o.nativeFilter,
	})
	if err != nil {
		return liveOpenErr(err)
	}
	ifaces := src.Interfaces()
	var sink capture.Sink
	var ringW *capture.RingWriter
	opts := capture.WriterOptions{Comment: "vpndiag capture -i " + strings.Join(o.ifaces, ",")}
	toStdout := out == "-"
	if toStdout && o.ring != "" {
		src.Close()
		return usageErr("--ring writes files: it cannot be combined with -w -")
	}
	if toStdout {
		var w *capture.PcapngWriter
		w, err = capture.NewPcapngWriter("standard output", g.stdout, ifaces, opts)
		sink = flushingSink{w}
	} else if o.ring != "" {
		ringW, err = capture.NewRing(out, ring, ifaces, opts, src.Interfaces)
		sink = ringW
	} else {
		sink, err = capture.CreatePcapng(out, ifaces, opts)
	}
	if err != nil {
		src.Close()
		return usageErr("-w: %v", err)
	}
	tee := capture.Tee(src, sink)
	fmt.Fprintf(g.stderr, "vpndiag: capturing on %s%s into %s; Ctrl-C to stop\n", strings.Join(o.ifaces, ","), hopNote(o.hop), out)

	totals := make([]captureTotals, len(ifaces))
	var f capture.Frame
	var n uint64
	var readErr error
	for o.count == 0 || n < o.count {
		if err := tee.Next(&f); err != nil {
			if !errors.Is(err, io.EOF) {
				readErr = err
			}
			break
		}
		n++
		t := &totals[f.Iface]
		if t.packets == 0 {
			t.first = f.Time
		}
		t.packets++
		t.bytes += uint64(f.WireLen)
		t.last = f.Time
	}
	stop()
	final := tee.Interfaces()
	closeErr := tee.Close()

	files := []string{out}
	if ringW != nil {
		files = ringW.Files()
	}
	if toStdout && g.output == "" {
		// Standard output holds the capture: no report there.
		fmt.Fprintf(g.stderr, "vpndiag: captured %d frames on %s to standard output\n", n, strings.Join(o.ifaces, ","))
		switch {
		case readErr != nil:
			return runtimeErr(fmt.Errorf("capture stopped early (the stream holds everything before): %w", readErr))
		case closeErr != nil:
			return runtimeErr(closeErr)
		}
		return nil
	}
	rep := newReport("capture", args)
	rep.Title = fmt.Sprintf("Captured %d frames on %s into %s", n, strings.Join(o.ifaces, ","), strings.Join(files, ", "))
	addCaptureReport(rep, final, totals, files, o)
	if readErr != nil {
		for i := range rep.Inputs {
			rep.Inputs[i].Error = readErr.Error()
		}
	}
	if err := g.emit(rep); err != nil {
		return err
	}
	switch {
	case readErr != nil:
		return runtimeErr(fmt.Errorf("capture stopped early (the file holds everything before): %w", readErr))
	case closeErr != nil:
		return runtimeErr(closeErr)
	}
	return nil
}

// flushingSink flushes a pcapng stream after every frame, so that a reader
// at the other end of a pipe (trace over SSH) gets each frame at once.
type flushingSink struct{ *capture.PcapngWriter }

func (s flushingSink) WriteFrame(f *capture.Frame) error {
	if err := s.PcapngWriter.WriteFrame(f); err != nil {
		return err
	}
	return s.Flush()
}

func hopNote(hop string) string {
	if hop == "" {
		return ""
	}
	return " (hop " + hop + ")"
}

// liveOpenErr maps OpenLive's errors to exit codes: a missing interface or a
// bad filter is bad usage (2); missing privileges and everything else are
// runtime failures (3).
func liveOpenErr(err error) error {
	var fe *capture.FilterError
	switch {
	case errors.Is(err, capture.ErrNoInterface):
		return usageErr("%v", err)
	case errors.As(err, &fe):
		return usageErr("%v", err)
	case errors.Is(err, os.ErrPermission):
		return runtimeErr(err)
	}
	return runtimeErr(err)
}

// addCaptureReport fills the report: one input per interface, the capture
// table, data (files, interfaces) and a capture.drops finding when the
// kernel dropped frames.
func addCaptureReport(rep *report.Report, ifaces []capture.Interface, totals []captureTotals, files []string, o *captureOptions) {
	tbl := report.Table{
		Name:    "capture",
		Title:   "Capture per interface",
		Columns: []string{"interface", "hop", "link type", "captured", "bytes", "kernel received", "kernel dropped"},
		Note:    "kernel received counts every frame that passed the filter, including those dropped for lack of ring space",
	}
	type ifaceData struct {
		Name     string `json:"name"`
		Hop      string `json:"hop,omitempty"`
		LinkType string `json:"link_type"`
		Filter   string `json:"filter,omitempty"`
		Captured uint64 `json:"captured"`
		Bytes    uint64 `json:"bytes"`
		Received uint64 `json:"kernel_received"`
		Dropped  uint64 `json:"kernel_dropped"`
	}
	var data []ifaceData
	var dropped, received uint64
	var worst string
	for i, it := range ifaces {
		t := totals[i]
		lt := decode.LinkType(it.LinkType).String()
		in := report.Input{Name: it.Name, Source: "iface:" + it.Name, Format: "live", LinkTypes: []string{lt},
			Packets: t.packets, Bytes: t.bytes}
		if t.packets > 0 {
			first, last := time.Unix(0, t.first).UTC(), time.Unix(0, t.last).UTC()
			in.First, in.Last = &first, &last
		}
		d := it.Dropped
		in.Drops = &d
		rep.Inputs = append(rep.Inputs, in)
		tbl.Rows = append(tbl.Rows, []any{it.Name, it.Description, lt, t.packets, t.bytes, it.Received, it.Dropped})
		data = append(data, ifaceData{it.Name, it.Description, lt, it.Filter, t.packets, t.bytes, it.Received, it.Dropped})
		dropped += it.Dropped
		received += it.Received
		if it.Dropped > 0 && worst == "" {
			worst = it.Name
		}
	}
	rep.AddTable(tbl)
	rep.SetData("files", files)
	rep.SetData("interfaces", data)
	if dropped > 0 {
		rep.Add(report.Finding{
			ID:       "capture.drops",
			Severity: report.SeverityWarning,
			Title:    "The kernel dropped frames during the capture",
			Summary: fmt.Sprintf("The kernel dropped %d of %d frames (%.2f%%) that passed the filter, first on %s: the capture is incomplete, and loss seen in it may be capture loss.",
				dropped, received, 100*float64(dropped)/float64(max(received, 1)), worst),
			Where:    &report.Where{Hop: o.hop},
			Evidence: map[string]any{"kernel_dropped": dropped, "kernel_received": received},
			Remedy:   "Give the kernel a bigger ring (--buffer, e.g. --buffer 256), narrow the filter (-f) to the traffic in question, shorten frames (--snaplen 128), or write to a faster disk.",
		})
	}
}
