package main

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/vpndiag/vpndiag/analyze"
	"github.com/vpndiag/vpndiag/analyze/bgp"
	"github.com/vpndiag/vpndiag/probe/routes"
	"github.com/vpndiag/vpndiag/report"
)

type routecheckOptions struct {
	pcaps       []string
	mrts        []string
	endpoints   []string
	tunnelPeers []string
	netns       string
}

func init() {
	register(func(g *globalOptions) *cobra.Command {
		o := &routecheckOptions{}
		cmd := &cobra.Command{
			Use:   "routecheck [--pcap FILE]... [--mrt FILE]... [--endpoint ADDR]...",
			Short: "Find default routes and endpoint-covering prefixes learned over tunnels, and recursive tunnel routing",
			Long: `routecheck looks for the routing mistake that makes tunnels flap forever: a default route
(or any prefix covering a tunnel endpoint) learned over the tunnel itself, so that the route
to the tunnel's own endpoint points into the tunnel.

--pcap: reassembles BGP over TCP (both directions, split and packed messages, retransmissions,
capture gaps), decodes OPEN/UPDATE/NOTIFICATION/KEEPALIVE, keeps each peer pair's session
timeline, learns tunnel endpoints from the capture (ESP/IKE/WireGuard/VXLAN/GENEVE/GRE outer
headers) and reports route.default-over-tunnel, route.endpoint-recursion and
route.session-flapping with the UPDATE's frame numbers and the fix. For a capture taken on the
tunnel interface (no outer headers), give the tunnel endpoints with --endpoint.

--mrt: the same checks per peer in MRT dumps (TABLE_DUMP_V2 RIBs, BGP4MP updates; plain, gzip
or bzip2). Frame numbers are MRT record numbers. Name peers whose sessions run in a tunnel with
--tunnel-peer.

Without --pcap or --mrt (Linux, as root): inspects the live host: tunnels (WireGuard peers,
xfrm states, VXLAN/GRE/IPIP/VTI remotes), asks the kernel how each endpoint is routed, and
reports endpoints routed into a tunnel (error), default routes via a tunnel device without a
more specific underlay route (warning), and which of several routes to a prefix is active.`,
			Example: `  vpndiag routecheck --pcap tunnel.pcap --endpoint 203.0.113.7
  vpndiag routecheck --mrt updates.20240101.0000.gz --tunnel-peer 169.254.21.1 --endpoint 203.0.113.7
  sudo vpndiag routecheck
  vpndiag routecheck --format json -o routes.json`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, args []string) error {
				return runRoutecheck(cmd, g, o, args)
			},
		}
		f := cmd.Flags()
		f.StringArrayVar(&o.pcaps, "pcap", nil, "capture `FILE` (pcap, pcapng, gzip) to read BGP and tunnels from; repeatable")
		f.StringArrayVar(&o.mrts, "mrt", nil, "MRT dump `FILE` (TABLE_DUMP_V2 or BGP4MP, plain/gzip/bzip2); repeatable")
		f.StringSliceVar(&o.endpoints, "endpoint", nil, "tunnel endpoint `ADDR` (outer/underlay address); repeatable")
		f.StringSliceVar(&o.tunnelPeers, "tunnel-peer", nil, "BGP peer `ADDR` whose session runs inside a tunnel; repeatable")
		f.StringVar(&o.netns, "netns", "", "live mode: inspect the network namespace `NAME` (ip netns) instead of the current one")
		return cmd
	})
}

func parseAddrs(flag string, in []string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, s := range in {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, usageErr("--%s %q: not an IP address", flag, s)
		}
		out = append(out, a.Unmap())
	}
	return out, nil
}

func runRoutecheck(cmd *cobra.Command, g *globalOptions, o *routecheckOptions, args []string) error {
	if err := g.validate(); err != nil {
		return err
	}
	endpoints, err := parseAddrs("endpoint", o.endpoints)
	if err != nil {
		return err
	}
	peers, err := parseAddrs("tunnel-peer", o.tunnelPeers)
	if err != nil {
		return err
	}
	rep := newReport("routecheck", args)
	ctx := cmd.Context()
	var inputErr error
	if len(o.pcaps) > 0 {
		a := bgp.New()
		a.Endpoints, a.TunnelPeers = endpoints, peers
		inputs := make([]analyze.InputInfo, len(o.pcaps))
		for i, p := range o.pcaps {
			inputs[i] = analyze.InputInfo{Name: filepath.Base(p), Source: p}
		}
		pass := &analyze.Pass{Analyzers: []analyze.Analyzer{a}}
		bar := startProgress(g, "reading")
		pass.Progress = bar.update
		runErr := pass.Run(ctx, inputs, rep)
		bar.stop()
		var ie *analyze.InputError
		if runErr != nil && !errors.As(runErr, &ie) {
			return runtimeErr(runErr)
		}
		if ie != nil && len(rep.Inputs) == 0 {
			return &exitError{code: exitUsage, err: ie}
		}
		if ie != nil {
			inputErr = ie
		}
	}
	for _, path := range o.mrts {
		d, err := bgp.ReadMRT(ctx, path)
		if d == nil {
			return usageErr("%v", err)
		}
		if err != nil && ctx.Err() != nil {
			return runtimeErr(ctx.Err())
		}
		in := report.Input{Name: filepath.Base(path), Source: path, Format: "mrt", Packets: uint64(d.Records)}
		if err != nil {
			in.Error = err.Error()
			if inputErr == nil {
				inputErr = err
			}
		}
		rep.Inputs = append(rep.Inputs, in)
		d.File = filepath.Base(path)
		bgp.CheckMRT(rep, d, endpoints, peers)
	}
	if len(o.pcaps) == 0 && len(o.mrts) == 0 {
		snap, err := routes.Inspect(ctx, routes.Options{NetNS: o.netns})
		if errors.Is(err, routes.ErrUnsupported) {
			return usageErr("%v", err)
		}
		if err != nil {
			return runtimeErr(fmt.Errorf("inspect routes: %w", err))
		}
		name := "localhost"
		if o.netns != "" {
			name = "netns:" + o.netns
		}
		rep.Inputs = append(rep.Inputs, report.Input{Name: name, Source: "live", Format: "live"})
		routes.Check(rep, snap)
	}
	rep.Sort()
	if err := g.emit(rep); err != nil {
		return err
	}
	if inputErr != nil {
		return &exitError{code: exitUsage, err: inputErr}
	}
	return nil
}
