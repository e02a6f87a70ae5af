package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/vpndiag/vpndiag/analyze/correlate"
	"github.com/vpndiag/vpndiag/capture/remote"
	"github.com/vpndiag/vpndiag/report"
)

// sshOptions are trace's flags for remote (ssh://) hops.
type sshOptions struct {
	config     string
	knownHosts []string
	acceptNew  bool
	identities []string
	noAgent    bool
	sudo       bool
	tool       string
	timeout    time.Duration
	keepalive  time.Duration
	kaCount    int
}

func (o *sshOptions) flags(f *pflag.FlagSet) {
	f.StringVar(&o.config, "ssh-config", "", "remote hops: ssh_config `FILE` (default ~/.ssh/config)")
	f.StringSliceVar(&o.knownHosts, "ssh-known-hosts", nil, "remote hops: known_hosts `FILE` (repeatable; default ~/.ssh/known_hosts and UserKnownHostsFile)")
	f.BoolVar(&o.acceptNew, "ssh-accept-new", false, "remote hops: add the key of a host never seen before to known_hosts (a changed key is always refused)")
	f.StringSliceVar(&o.identities, "ssh-identity", nil, "remote hops: private key `FILE` to try before ~/.ssh/id_* (repeatable)")
	f.BoolVar(&o.noAgent, "ssh-no-agent", false, "remote hops: do not use the SSH agent (SSH_AUTH_SOCK)")
	f.BoolVar(&o.sudo, "ssh-sudo", false, "remote hops: run the capture with sudo -n (fails at once if sudo wants a password)")
	f.StringVar(&o.tool, "ssh-tool", "auto", "remote hops: capture with `TOOL`: auto (vpndiag if on the remote PATH, else tcpdump), vpndiag or tcpdump")
	f.DurationVar(&o.timeout, "ssh-timeout", 15*time.Second, "remote hops: time to connect, log in and start the capture, per host")
	f.DurationVar(&o.keepalive, "ssh-keepalive", remote.DefaultKeepaliveInterval, "remote hops: send an SSH keepalive after this `interval` without data from the host (0: never)")
	f.IntVar(&o.kaCount, "ssh-keepalive-count", remote.DefaultKeepaliveCount, "remote hops: end a hop (keeping what it captured) after this many keepalive intervals without anything from its host")
}

func (o *sshOptions) opener() (*remote.Opener, error) {
	if o.timeout <= 0 {
		return nil, usageErr("--ssh-timeout %v: must be positive", o.timeout)
	}
	if o.keepalive < 0 || o.kaCount < 1 {
		return nil, usageErr("--ssh-keepalive %v --ssh-keepalive-count %d: want an interval >= 0 (0: no keepalives) and a count >= 1", o.keepalive, o.kaCount)
	}
	ka := o.keepalive
	if ka == 0 {
		ka = -1 // remote.Options: negative is off, 0 the default
	}
	op, err := remote.NewOpener(remote.Options{ConfigFile: o.config, KnownHosts: o.knownHosts, AcceptNew: o.acceptNew,
		Identities: o.identities, NoAgent: o.noAgent, Sudo: o.sudo, Tool: remote.Tool(o.tool), ConnectTimeout: o.timeout,
		KeepaliveInterval: ka, KeepaliveCount: o.kaCount})
	if err != nil {
		return nil, usageErr("%v", err)
	}
	return op, nil
}

// missingHop is a live hop that could not be captured (data
// missing_hops), or whose capture ended with an error before the trace
// stopped it (data ended_hops, with the frames it captured until then,
// which are correlated), such as a remote host whose SSH connection was
// lost.
type missingHop struct {
	Hop    string  `json:"hop"`
	Source string  `json:"source"`
	Error  string  `json:"error"`
	Frames *uint64 `json:"frames,omitempty"` // ended hops: frames captured
}

// remoteHopData is one captured remote hop in trace's data.
type remoteHopData struct {
	Hop       string   `json:"hop"`
	Host      string   `json:"host"`
	Addr      string   `json:"addr"`
	User      string   `json:"user"`
	Jumps     []string `json:"proxy_jump,omitempty"`
	Tool      string   `json:"tool"`
	SSHRTTms  float64  `json:"ssh_rtt_ms"`
	OffsetMs  float64  `json:"clock_offset_ms"`
	OffsetUnc *float64 `json:"clock_offset_uncertainty_ms,omitempty"`
}

// liveResult is what became of the live hops: remote hops captured (with
// their SSH round trip), hops that could not be captured, and hops whose
// capture ended early.
type liveResult struct {
	opener     *remote.Opener
	remoteHops []remote.HopInfo
	missing    []missingHop
	ended      []missingHop
}

func msDur(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

// fill adds the remote hops and the hops not (fully) captured to trace's
// report: data remote_hops, missing_hops and ended_hops, a table of the
// remote hops with their SSH round trip next to the clock offset estimated
// from the packets, for each missing hop an input with its error and a
// trace.hop-missing finding, and for each hop that ended early the error
// on its input and a trace.hop-ended-early finding.
func (lr *liveResult) fill(rep *report.Report, res *correlate.Result) {
	if lr == nil || (lr.opener == nil && len(lr.missing) == 0 && len(lr.ended) == 0) {
		return
	}
	var captured []string
	for _, h := range res.Hops {
		captured = append(captured, h.Name)
	}
	for _, m := range lr.missing {
		rep.Inputs = append(rep.Inputs, report.Input{Name: m.Hop, Source: m.Source, Format: "live", Error: "not captured: " + m.Error})
		rep.Add(report.Finding{
			ID:       "trace.hop-missing",
			Severity: report.SeverityWarning,
			Title:    fmt.Sprintf("Hop %s was not captured", m.Hop),
			Summary:  fmt.Sprintf("Hop %s (%s) was not captured: %s. The trace covers the other %d hops (%s); loss located between them may lie at %s.", m.Hop, m.Source, m.Error, len(captured), strings.Join(captured, ", "), m.Hop),
			Where:    &report.Where{Hop: m.Hop},
			Evidence: map[string]any{"source": m.Source, "error": m.Error},
			Remedy:   "Fix what the error names (host reachable over SSH, key accepted, host key in known_hosts, tcpdump installed, interface name, root or --ssh-sudo) and run the trace again.",
		})
	}
	for _, m := range lr.ended {
		msg := "ended early: " + m.Error
		if i := slices.IndexFunc(rep.Inputs, func(in report.Input) bool { return in.Name == m.Hop }); i >= 0 {
			if rep.Inputs[i].Error != "" {
				msg = rep.Inputs[i].Error + "; " + msg
			}
			rep.Inputs[i].Error = msg
		} else {
			rep.Inputs = append(rep.Inputs, report.Input{Name: m.Hop, Source: m.Source, Format: "live", Error: msg})
		}
		var frames uint64
		if m.Frames != nil {
			frames = *m.Frames
		}
		rep.Add(report.Finding{
			ID:       "trace.hop-ended-early",
			Severity: report.SeverityWarning,
			Title:    fmt.Sprintf("Hop %s stopped capturing before the trace ended", m.Hop),
			Summary: fmt.Sprintf("Hop %s (%s) stopped capturing before the trace ended: %s. Its %d frames captured until then are correlated; "+
				"the other hops went on. Packets after its end were not seen at %s, so loss next to %s after that time may lie at the capture, not the network.",
				m.Hop, m.Source, m.Error, frames, m.Hop, m.Hop),
			Where:    &report.Where{Hop: m.Hop},
			Evidence: map[string]any{"source": m.Source, "error": m.Error, "frames": frames},
			Remedy: "Check the path to the host (a lost SSH connection: a firewall or route change, the host down or overloaded) and run the trace again; " +
				"--ssh-keepalive and --ssh-keepalive-count set how soon a silent connection is given up.",
		})
	}
	rep.Sort()
	for _, kv := range []struct {
		key string
		v   []missingHop
	}{{"missing_hops", lr.missing}, {"ended_hops", lr.ended}} {
		if kv.v == nil {
			kv.v = []missingHop{}
		}
		rep.SetData(kv.key, kv.v)
	}
	data := []remoteHopData{}
	t := report.Table{Name: "remote_hops", Title: "Remote hops (SSH)",
		Columns: []string{"hop", "host", "address", "user", "tool", "ssh rtt ms", "clock offset ms", "± ms"},
		Note: "Remote clocks are not trusted: each offset is estimated from the packets, like a file's. " +
			"The SSH round trip is a sanity bound: the hops' captures started within about one round trip of each other, " +
			"and an offset uncertainty far above it deserves a look."}
	for _, info := range lr.remoteHops {
		d := remoteHopData{Hop: info.Hop, Host: info.Host, Addr: info.Addr, User: info.User, Jumps: info.Jumps, Tool: info.Tool, SSHRTTms: msDur(info.RTT)}
		var unc any
		if i := slices.IndexFunc(res.Hops, func(h correlate.HopResult) bool { return h.Name == info.Hop }); i >= 0 {
			h := res.Hops[i]
			d.OffsetMs = msDur(time.Duration(h.OffsetNs))
			if h.OffsetUncNs >= 0 {
				u := msDur(time.Duration(h.OffsetUncNs))
				d.OffsetUnc, unc = &u, u
			}
		}
		data = append(data, d)
		t.Rows = append(t.Rows, []any{d.Hop, d.Host, d.Addr, d.User, d.Tool, d.SSHRTTms, d.OffsetMs, unc})
	}
	rep.SetData("remote_hops", data)
	if len(data) > 0 {
		rep.AddTable(t)
	}
}
