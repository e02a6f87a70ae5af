package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vpndiag/vpndiag/analyze/correlate"
)

type traceOptions struct {
	window    time.Duration
	sample    int
	reference string
	minLost   int
	minLoss   float64 // percent
}

func init() {
	register(func(g *globalOptions) *cobra.Command {
		o := &traceOptions{}
		cmd := &cobra.Command{
			Use:   "trace HOP=SOURCE HOP=SOURCE...",
			Short: "Match packets across hops (through NAT and tunnels) and localize loss per segment and class",
			Long: `trace reads the captures taken at several hops of a path, matches the same packets across
them — through NAT (by IP ID, payload, TCP sequence, DNS ID and question) and unencrypted
tunnels (VXLAN, GENEVE, GRE, IP-in-IP: the inner packet at the underlay hop matches the
plain packet at the LAN hop) — and reports, per segment (a hop and the next hop on a traffic
class's path) and per traffic class, packets sent, received and lost, one-way delay p50/p99
and reordering. Encrypted tunnels (ESP, WireGuard) are matched on the underlay and their
sequence numbers/counters show loss between the tunnel ends.

Hops may be given in any order; each class's path is inferred from where and when its packets
were seen. Clocks of different machines are aligned from the matched packets (offset and
uncertainty are reported). Each capture is read twice: a bounded sample for the clock
offsets, then the whole file; memory is bounded by --window, not by the capture size.

SOURCE is a capture file (pcap, pcapng, gzip). A bare FILE is named after the file.
Live sources (iface:NAME, ssh:HOST:IFACE) are not supported yet.`,
			Example: `  vpndiag trace client=client.pcap gw-in=gw-inside.pcap gw-out=gw-outside.pcap dns=dns-server.pcap
  vpndiag trace --format json --window 5s lan=lan.pcapng wan=wan.pcapng`,
			RunE: func(cmd *cobra.Command, args []string) error {
				return runTrace(cmd, g, o, args)
			},
		}
		f := cmd.Flags()
		f.DurationVar(&o.window, "window", correlate.DefaultWindow, "a packet not seen at the next hop within this `duration` is lost")
		f.IntVar(&o.sample, "sample", correlate.DefaultSampleSize, "frames per hop read to estimate clock offsets")
		f.StringVar(&o.reference, "reference", "", "hop whose clock the others are aligned to (default: the first hop)")
		f.IntVar(&o.minLost, "min-lost", correlate.DefaultMinLost, "report loss on a segment from this many lost packets")
		f.Float64Var(&o.minLoss, "min-loss", 100*correlate.DefaultMinLossRatio, "report loss on a segment from this `percent` lost")
		return cmd
	})
}

// openHop turns one SOURCE into a hop. It is the one place that knows the
// source kinds: files today; live interfaces and SSH sources plug in here.
func openHop(name, source string) (correlate.Hop, error) {
	switch {
	case strings.HasPrefix(source, "iface:"):
		return correlate.Hop{}, usageErr("hop %s: live capture (%s) is not supported yet: capture with tcpdump or dumpcap and pass the file", name, source)
	case strings.HasPrefix(source, "ssh:"):
		return correlate.Hop{}, usageErr("hop %s: remote capture (%s) is not supported yet: capture on the host and copy the file", name, source)
	}
	return correlate.FileHop(name, source), nil
}

// parseHops parses HOP=SOURCE arguments (a bare FILE is named after its base
// name without extensions).
func parseHops(args []string) ([]correlate.Hop, error) {
	if len(args) < 2 {
		return nil, usageErr("trace needs at least two hops, as HOP=SOURCE (e.g. gw-in=gw-inside.pcap gw-out=gw-outside.pcap)")
	}
	if len(args) > correlate.MaxHops {
		return nil, usageErr("trace takes at most %d hops, got %d", correlate.MaxHops, len(args))
	}
	seen := map[string]string{}
	var hops []correlate.Hop
	for _, a := range args {
		name, src, ok := strings.Cut(a, "=")
		if !ok || strings.ContainsAny(name, `/\`) {
			src = a
			name = filepath.Base(a)
			for ext := filepath.Ext(name); ext != "" && ext != name; ext = filepath.Ext(name) {
				name = strings.TrimSuffix(name, ext)
			}
		}
		if name == "" || src == "" {
			return nil, usageErr("bad hop %q: want HOP=SOURCE, e.g. gw-in=gw-inside.pcap", a)
		}
		if prev, dup := seen[name]; dup {
			return nil, usageErr("duplicate hop name %q (%s and %s): give every hop its own name", name, prev, src)
		}
		seen[name] = src
		h, err := openHop(name, src)
		if err != nil {
			return nil, err
		}
		hops = append(hops, h)
	}
	return hops, nil
}

func runTrace(cmd *cobra.Command, g *globalOptions, o *traceOptions, args []string) error {
	if err := g.validate(); err != nil {
		return err
	}
	hops, err := parseHops(args)
	if err != nil {
		return err
	}
	if o.window <= 0 {
		return usageErr("--window must be positive, got %s", o.window)
	}
	if o.minLoss < 0 || o.minLoss > 100 {
		return usageErr("--min-loss is a percentage 0..100, got %g", o.minLoss)
	}
	opt := correlate.Options{Window: o.window, SampleSize: o.sample, MinLost: o.minLost, MinLossRatio: o.minLoss / 100}
	if o.reference != "" {
		opt.Reference = -1
		for i, h := range hops {
			if h.Name == o.reference {
				opt.Reference = i
			}
		}
		if opt.Reference < 0 {
			return usageErr("--reference %q is not one of the hops", o.reference)
		}
	}
	bar := startProgress(g, "correlating")
	opt.Progress = bar.update
	res, err := correlate.Run(cmd.Context(), hops, opt)
	bar.stop()
	var he *correlate.HopError
	switch {
	case errors.As(err, &he):
		return usageErr("%v", err)
	case err != nil:
		return runtimeErr(err)
	}
	rep := newReport("trace", args)
	rep.Title = fmt.Sprintf("trace over %d hops", len(hops))
	res.Fill(rep, opt)
	emitErr := g.emit(rep)
	var ee *exitError
	if emitErr != nil && (!errors.As(emitErr, &ee) || ee.code != exitFindings) {
		return emitErr
	}
	if nc := res.NoCommon(); len(nc) > 0 {
		return usageErr("hops with no packets in common with any other hop: %s", strings.Join(nc, ", "))
	}
	for _, h := range res.Hops {
		if h.Err != nil {
			return usageErr("hop %s: %v", h.Name, h.Err)
		}
	}
	return emitErr
}
