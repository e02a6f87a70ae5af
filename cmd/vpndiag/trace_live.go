package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

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
// every hop, live ones as their spooled files, in the order given, and
// what became of the live hops (remote hops that could not be captured are
// left out and listed there). cleanup removes the temporary directory (not
// a --save directory).
func (o *traceOptions) spoolLive(cmd *cobra.Command, g *globalOptions, args []hopArg) (hops []correlate.Hop, lr *liveResult, cleanup func(), err error) {
	cleanup = func() {}
	lr = &liveResult{}
	var live []capture.SpoolHop
	var remote bool
	for _, a := range args {
		if a.live {
			spec, _ := capture.ParseSpec(a.source) // parseHops checked it
			r := spec.Kind == capture.SpecSSH
			remote = remote || r
			live = append(live, capture.SpoolHop{Name: a.name, Spec: a.source, Optional: r})
		}
	}
	if len(live) == 0 {
		for _, a := range args {
			hops = append(hops, correlate.FileHop(a.name, a.source))
		}
		return hops, lr, cleanup, nil
	}
	sopts := capture.SpecOptions{Filter: o.filter, SnapLen: o.snapLen, BufferSize: o.bufferMB << 20, NativeFilter: o.nativeFilter}
	if remote {
		if lr.opener, err = o.ssh.opener(); err != nil {
			return nil, nil, cleanup, err
		}
		sopts.OpenRemote = lr.opener.Open
	}
	dir := o.save
	if dir == "" {
		tmp, err := os.MkdirTemp("", "vpndiag-trace-")
		if err != nil {
			return nil, nil, cleanup, runtimeErr(fmt.Errorf("temporary directory for the live captures: %w", err))
		}
		dir = tmp
		cleanup = func() { os.RemoveAll(tmp) }
	}
	// --duration counts from when every hop is open (remote hops take a
	// login to open), not from the start of the command.
	capCtx, cancel := context.WithCancel(cmd.Context())
	defer cancel()
	until := "press Ctrl-C to stop"
	if o.duration > 0 {
		until = fmt.Sprintf("for %s (Ctrl-C stops earlier)", o.duration)
	}
	sp, err := capture.OpenSpool(capCtx, dir, live, sopts)
	if err != nil {
		cleanup()
		var fe *capture.FilterError
		if errors.Is(err, capture.ErrNoInterface) || errors.As(err, &fe) {
			return nil, nil, func() {}, usageErr("%v", err)
		}
		// os.ErrPermission: the message names CAP_NET_RAW, sudo and setcap.
		return nil, nil, func() {}, runtimeErr(err)
	}
	var names []string
	for _, a := range live {
		names = append(names, a.Name+"="+a.Spec)
	}
	for _, r := range sp.Failures() {
		lr.missing = append(lr.missing, missingHop{Hop: r.Name, Source: r.Spec, Error: r.Err.Error()})
		fmt.Fprintf(g.stderr, "vpndiag: hop %s (%s) is not captured: %v\n", r.Name, r.Spec, r.Err)
		names = slices.DeleteFunc(names, func(n string) bool { return n == r.Name+"="+r.Spec })
	}
	if left := len(args) - len(lr.missing); left < 2 {
		sp.Abort()
		cleanup()
		var why []string
		for _, m := range lr.missing {
			why = append(why, fmt.Sprintf("hop %s: %s", m.Hop, m.Error))
		}
		return nil, nil, func() {}, runtimeErr(fmt.Errorf("only %d of %d hops can be captured, trace needs two:\n  %s", left, len(args), strings.Join(why, "\n  ")))
	}
	// Every socket is open and receiving: only now is "capturing" true.
	fmt.Fprintf(g.stderr, "vpndiag: capturing on %s %s\n", strings.Join(names, " "), until)
	if o.duration > 0 {
		t := time.AfterFunc(o.duration, cancel)
		defer t.Stop()
	}
	// A hop that ends with an error (a remote host lost) is told at once;
	// the others capture on, and it is correlated with what it captured.
	var mu sync.Mutex
	res := sp.RunNotify(func(r capture.SpoolResult) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(g.stderr, "vpndiag: hop %s ended early after %d frames: %v; the other hops go on, and its frames are kept\n", r.Name, r.Frames, r.Err)
	})
	spooled := map[string]capture.SpoolResult{}
	var total uint64
	for _, r := range res {
		if r.Failed {
			continue
		}
		spooled[r.Name] = r
		total += r.Frames
		if r.Err != nil {
			lr.ended = append(lr.ended, missingHop{Hop: r.Name, Source: r.Spec, Error: r.Err.Error(), Frames: &r.Frames})
		}
	}
	where := "a temporary directory"
	if o.save != "" {
		where = o.save
	}
	fmt.Fprintf(g.stderr, "vpndiag: captured %d frames on %d live hops into %s; correlating\n", total, len(spooled), where)
	for _, a := range args {
		if r, ok := spooled[a.name]; ok {
			hops = append(hops, correlate.SpooledHop(a.name, a.source, r.Path))
			if lr.opener != nil {
				if info, ok := lr.opener.Info(a.name); ok {
					lr.remoteHops = append(lr.remoteHops, info)
				}
			}
		} else if !a.live {
			hops = append(hops, correlate.FileHop(a.name, a.source))
		}
	}
	return hops, lr, cleanup, nil
}
