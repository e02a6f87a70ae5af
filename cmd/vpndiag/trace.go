package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vpndiag/vpndiag/analyze/correlate"
	"github.com/vpndiag/vpndiag/capture"
)

type traceOptions struct {
	window    time.Duration
	sample    int
	reference string
	minLost   int
	minLoss   float64 // percent
	// Live hops.
	duration     time.Duration
	filter       string
	save         string
	snapLen      int
	bufferMB     int
	nativeFilter bool
	// Remote (ssh://) hops.
	ssh sshOptions
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
sequence numbers/counters show loss between the tunnel ends; a plain packet is paired with
the encrypted packet carrying it by size and timing where that is unambiguous, so its class
gets the path through the tunnel. Retransmissions are not loss; packets a capture missed
(its drop counters, packets seen before and after it, TCP data it saw acknowledged but
never saw) are reported as capture loss, apart from network loss.

Hops may be given in any order; each class's path is inferred from where and when its packets
were seen. Clocks of different machines are aligned from the matched packets (offset and
uncertainty are reported). Each capture is read twice: a bounded sample for the clock
offsets, then the whole file; memory is bounded by --window, not by the capture size.

SOURCE is a capture file (pcap, pcapng, gzip; a bare FILE is named after the file), a
live local interface, iface:NAME (Linux; needs CAP_NET_RAW: sudo), or an interface of a
remote host, ssh://[USER@]HOST[:PORT]/IFACE (see below). Live hops are captured at
the same time, one socket per hop, all opened before capturing starts, for --duration or until
Ctrl-C, into pcapng files (interface description = hop name, kernel drop counts at the end);
then they are correlated like files. --save DIR keeps them as DIR/HOP.pcapng, otherwise they
go to a temporary directory that is removed at the end. Live and file hops can be mixed.

Remote hops log in over SSH the way ssh does: the SSH agent, then key files (--ssh-identity,
IdentityFile, ~/.ssh/id_ed25519, id_ecdsa, id_rsa); User, Port, HostName, ProxyJump and
UserKnownHostsFile from ~/.ssh/config (--ssh-config); host keys checked against known_hosts
(an unknown key is an error with its SHA256 fingerprint unless --ssh-accept-new; a changed key
is always an error). On the remote host vpndiag capture runs if it is on the PATH, else
tcpdump -U -w - (--ssh-sudo: under sudo -n), every argument quoted for the remote shell; the
capture streams back over the session and stops on --duration, Ctrl-C, or when this process
dies (the remote side kills it when the SSH channel closes). All hops are opened at once and
capture starts on all of them together. Remote clocks are not trusted: each hop's offset is
estimated from the packets as for files; the SSH round trip is reported next to it. A remote
hop that cannot be captured (unreachable, login refused, no tcpdump, no such interface,
permission denied) is reported with the reason and left out; the others go on. Fewer than
two hops left is a runtime failure (exit 3). While capturing, a remote host that sends
nothing for --ssh-keepalive (default 5s) gets an SSH keepalive; after --ssh-keepalive-count
(default 3) such intervals without a byte from it (a path that died silently) its hop ends with
"lost the SSH connection", keeping what it captured; the others go on, and the report lists
it (data ended_hops, its input's error, a trace.hop-ended-early warning).`,
			Example: `  vpndiag trace client=client.pcap gw-in=gw-inside.pcap gw-out=gw-outside.pcap dns=dns-server.pcap
  vpndiag trace --format json --window 5s lan=lan.pcapng wan=wan.pcapng
  sudo vpndiag trace --duration 30s lan=iface:eth1 wan=iface:eth0 -f 'udp or icmp' --save /var/tmp/trace
  vpndiag trace client=iface:en0 vpn=ssh://ops@vpn1/eth0 gw=ssh://gw1:2222/ens5 dns=ssh://dns1/any \
    --duration 60s -f 'udp port 53 or icmp' --save incident-42/`,
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
		f.DurationVar(&o.duration, "duration", 0, "live hops: capture for this long (default: until Ctrl-C)")
		f.StringVarP(&o.filter, "filter", "f", "", "live hops: capture filter in tcpdump syntax, e.g. 'udp or icmp'")
		f.StringVar(&o.save, "save", "", "live hops: keep the captures as `DIR`/HOP.pcapng")
		f.IntVar(&o.snapLen, "snaplen", capture.DefaultSnapLen, "live hops: keep at most `N` bytes of each frame")
		f.IntVar(&o.bufferMB, "buffer", capture.DefaultBufferSize>>20, "live hops: kernel ring size per interface in `MiB`")
		f.BoolVar(&o.nativeFilter, "native-filter", false, "live hops: compile the filter with vpndiag's compiler even when tcpdump is installed")
		o.ssh.flags(f)
		return cmd
	})
}

// hopArg is one HOP=SOURCE argument.
type hopArg struct {
	name, source string
	live         bool // a live source, captured (spooled) before correlating
}

// parseSource checks one SOURCE. It is the one place that knows the
// source kinds: files, live local interfaces and remote (ssh://) ones.
func parseSource(name, source string) (live bool, err error) {
	spec, err := capture.ParseSpec(source)
	if err != nil {
		return false, usageErr("hop %s: %v", name, err)
	}
	switch spec.Kind {
	case capture.SpecInterface, capture.SpecSSH:
		if len(spec.Interfaces) != 1 {
			return false, usageErr("hop %s: %s: one interface per hop (give each interface its own hop, e.g. lan=iface:eth1 wan=iface:eth0)", name, source)
		}
		return true, nil
	}
	return false, nil
}

// parseHops parses HOP=SOURCE arguments (a bare FILE is named after its base
// name without extensions).
func parseHops(args []string) ([]hopArg, error) {
	if len(args) < 2 {
		return nil, usageErr("trace needs at least two hops, as HOP=SOURCE (e.g. gw-in=gw-inside.pcap gw-out=gw-outside.pcap)")
	}
	if len(args) > correlate.MaxHops {
		return nil, usageErr("trace takes at most %d hops, got %d", correlate.MaxHops, len(args))
	}
	seen := map[string]string{}
	var hops []hopArg
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
		live, err := parseSource(name, src)
		if err != nil {
			return nil, err
		}
		hops = append(hops, hopArg{name: name, source: src, live: live})
	}
	return hops, nil
}

func runTrace(cmd *cobra.Command, g *globalOptions, o *traceOptions, args []string) error {
	if err := g.validate(); err != nil {
		return err
	}
	args0, err := parseHops(args)
	if err != nil {
		return err
	}
	if err := o.validateLive(args0); err != nil {
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
		for i, h := range args0 {
			if h.name == o.reference {
				opt.Reference = i
			}
		}
		if opt.Reference < 0 {
			return usageErr("--reference %q is not one of the hops", o.reference)
		}
	}
	hops, live, cleanup, err := o.spoolLive(cmd, g, args0)
	if err != nil {
		return err
	}
	defer cleanup()
	// Correlate without the command's cancellation: after a live capture
	// ended by Ctrl-C that context is already cancelled.
	ctx := cmd.Context()
	if len(hops) != 0 && hasLive(args0) {
		ctx = context.WithoutCancel(ctx)
	}
	bar := startProgress(g, "correlating")
	opt.Progress = bar.update
	res, err := correlate.Run(ctx, hops, opt)
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
	if n := len(live.missing); n > 0 {
		rep.Title += fmt.Sprintf(" (%d of %d hops not captured)", n, len(args0))
	}
	if n := len(live.ended); n > 0 {
		rep.Title += fmt.Sprintf(" (%d ended early)", n)
	}
	res.Fill(rep, opt)
	live.fill(rep, res)
	for _, c := range traceCharts(res, opt) {
		rep.AddChart(c)
	}
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
