package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vpndiag/vpndiag/analyze/correlate"
	"github.com/vpndiag/vpndiag/capture"
)

func hasLive(hops []hopArg) bool {
	for _, h := range hops {
		if h.live {
			return true
		}
	}
	return false
}

// validateLive checks the live-capture flags: they only make sense with a
// live hop.
func (o *traceOptions) validateLive(hops []hopArg) error {
	if o.duration < 0 {
		return usageErr("--duration %v: must not be negative", o.duration)
	}
	if o.snapLen < 64 || o.snapLen > capture.DefaultSnapLen {
		return usageErr("--snaplen %d: must be 64..%d", o.snapLen, capture.DefaultSnapLen)
	}
	if o.bufferMB < 1 || o.bufferMB > 4096 {
		return usageErr("--buffer %d: must be 1..4096 MiB", o.bufferMB)
	}
	if hasLive(hops) {
		return nil
	}
	for _, f := range []struct {
		name string
		set  bool
	}{{"--duration", o.duration != 0}, {"--filter", o.filter != ""}, {"--save", o.save != ""}} {
		if f.set {
			return usageErr("%s applies to live hops (HOP=iface:NAME) only; every hop here is a file", f.name)
		}
	}
	return nil
}

// spoolLive captures the live hops at the same time into pcapng files (for
// --duration or until the command's context ends: Ctrl-C), and returns
// every hop, live ones as their spooled files, in the order given. cleanup
// removes the temporary directory (not a --save directory).
func (o *traceOptions) spoolLive(cmd *cobra.Command, g *globalOptions, args []hopArg) (hops []correlate.Hop, cleanup func(), err error) {
	cleanup = func() {}
	var live []capture.SpoolHop
	var names []string
	for _, a := range args {
		if a.live {
			live = append(live, capture.SpoolHop{Name: a.name, Spec: a.source})
			names = append(names, a.name+"="+a.source)
		}
	}
	if len(live) == 0 {
		for _, a := range args {
			hops = append(hops, correlate.FileHop(a.name, a.source))
		}
		return hops, cleanup, nil
	}
	dir := o.save
	if dir == "" {
		tmp, err := os.MkdirTemp("", "vpndiag-trace-")
		if err != nil {
			return nil, cleanup, runtimeErr(fmt.Errorf("temporary directory for the live captures: %w", err))
		}
		dir = tmp
		cleanup = func() { os.RemoveAll(tmp) }
	}
	capCtx, cancel := context.WithCancel(cmd.Context())
	until := "press Ctrl-C to stop"
	if o.duration > 0 {
		capCtx, cancel = context.WithTimeout(cmd.Context(), o.duration)
		until = fmt.Sprintf("for %s (Ctrl-C stops earlier)", o.duration)
	}
	defer cancel()
	sp, err := capture.OpenSpool(capCtx, dir, live, capture.SpecOptions{Filter: o.filter, SnapLen: o.snapLen,
		BufferSize: o.bufferMB << 20, NativeFilter: o.nativeFilter})
	if err != nil {
		cleanup()
		var fe *capture.FilterError
		if errors.Is(err, capture.ErrNoInterface) || errors.As(err, &fe) {
			return nil, func() {}, usageErr("%v", err)
		}
		// os.ErrPermission: the message names CAP_NET_RAW, sudo and setcap.
		return nil, func() {}, runtimeErr(err)
	}
	// Every socket is open and receiving: only now is "capturing" true.
	fmt.Fprintf(g.stderr, "vpndiag: capturing on %s %s\n", strings.Join(names, " "), until)
	res := sp.Run()
	spooled := map[string]capture.SpoolResult{}
	var total uint64
	for _, r := range res {
		spooled[r.Name] = r
		total += r.Frames
		if r.Err != nil {
			fmt.Fprintf(g.stderr, "vpndiag: hop %s: capture stopped early (%v); correlating what it captured\n", r.Name, r.Err)
		}
	}
	where := "a temporary directory"
	if o.save != "" {
		where = o.save
	}
	fmt.Fprintf(g.stderr, "vpndiag: captured %d frames on %d live hops into %s; correlating\n", total, len(live), where)
	for _, a := range args {
		if r, ok := spooled[a.name]; ok {
			hops = append(hops, correlate.SpooledHop(a.name, a.source, r.Path))
		} else {
			hops = append(hops, correlate.FileHop(a.name, a.source))
		}
	}
	return hops, cleanup, nil
}
