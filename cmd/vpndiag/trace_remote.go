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
}

func (o *sshOptions) opener() (*remote.Opener, error) {
	if o.timeout <= 0 {
		return nil, usageErr("--ssh-timeout %v: must be positive", o.timeout)
	}
	op, err := remote.NewOpener(remote.Options{ConfigFile: o.config, KnownHosts: o.knownHosts, AcceptNew: o.acceptNew,
		Identities: o.identities, NoAgent: o.noAgent, Sudo: o.sudo, Tool: remote.Tool(o.tool), ConnectTimeout: o.timeout})
	if err != nil {
		return nil, usageErr("%v", err)
	}
	return op, nil
}

// missingHop is a live hop that could not be captured.
type missingHop struct {
	Hop    string `json:"hop"`
	Source string `json:"source"`
	Error  string `json:"error"`
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
// their SSH round trip) and hops that could not be captured.
type liveResult struct {
	opener     *remote.Opener
	remoteHops []remote.HopInfo
	missing    []missingHop
}

func msDur(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

// fill adds the remote hops and the hops not captured to trace's report:
// data remote_hops and missing_hops, a table of the remote hops with their
// SSH round trip next to the clock offset estimated from the packets, and
// for each missing hop an input with its error and a trace.hop-missing
// finding.
func (lr *liveResult) fill(rep *report.Report, res *correlate.Result) {
	if lr == nil || (lr.opener == nil && len(lr.missing) == 0) {
		return
	}
	missing := lr.missing
	if missing == nil {
		missing = []missingHop{}
	}
	rep.SetData("missing_hops", missing)
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
	rep.Sort()
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
