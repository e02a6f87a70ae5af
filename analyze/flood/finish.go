package flood

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/vpndiag/vpndiag/analyze"
	"github.com/vpndiag/vpndiag/report"
)

// Remedies per kind of VPN port.
var remedies = [numKinds]string{
	"Rate-limit new IKE negotiations per source in front of the daemon and turn on its own DoS protection. " +
		"nftables: `nft add rule inet filter input udp dport 500 ct state new meter ike-init { ip saddr limit rate over 5/second burst 10 packets } drop` (limit only port 500 and new flows: UDP 4500 also carries ESP). " +
		"strongSwan (strongswan.conf): charon { dos_protection = yes; cookie_threshold = 10; block_threshold = 5; init_limit_half_open = 1000 } (cookies make spoofed sources drop out, half-open limits protect memory). " +
		"Libreswan: ipsec whack --ddos-busy (or ddos-mode=busy in ipsec.conf) to require cookies. " +
		"Cisco IOS/IOS-XE: `crypto ikev2 cookie-challenge 10` and `crypto ikev2 limit max-in-negotiation-sa 100` (and `crypto call admission limit ike in-negotiation-sa`); " +
		"Juniper SRX: a screen with `set security screen ids-option untrust-screen udp flood threshold 1000` bound to the untrust zone, and IKE from known peers only.",
	"Rate-limit handshake initiations per source: WireGuard answers a flood with cookie replies (it is cheap for it), but the host still spends CPU on every initiation. " +
		"nftables, matching the message type byte 1 (handshake initiation) only, not data: " +
		"`nft add rule inet filter input udp dport 51820 @th,64,8 1 meter wg-init { ip saddr limit rate over 5/second burst 10 packets } drop`. " +
		"Drop sources that can never be peers (a firewall allow-list of peer addresses when the peers have fixed addresses).",
	"Rate-limit new connections per source to the SSL-VPN port and keep SYN cookies on: " +
		"`nft add rule inet filter input tcp dport 443 ct state new meter sslvpn { ip saddr limit rate over 20/second burst 40 packets } drop`, sysctl net.ipv4.tcp_syncookies=1. " +
		"On the VPN appliance use its DoS/flood policy (Cisco ASA `threat-detection basic-threat` and `set connection embryonic-conn-max` in a policy map; FortiGate a DoS policy with tcp_syn_flood; Juniper screen `tcp syn-flood`), " +
		"and put the portal behind an allow-list or pre-authentication where possible. Note that port 443 also carries ordinary HTTPS: check the sources before blocking.",
}

// TopSources is how many sources the report lists per flooded target.
const TopSources = 10

// maxRateRows bounds the rows of the rate-over-time table per target.
const maxRateRows = 120

type srcCount struct {
	addr string
	n    uint32
}

// Finish implements analyze.Analyzer.
func (a *Analyzer) Finish(r *report.Report, inputs []analyze.InputInfo) {
	if len(a.list) == 0 {
		return
	}
	name := func(i int) string {
		if i >= 0 && i < len(inputs) {
			return inputs[i].Name
		}
		return fmt.Sprintf("input%d", i)
	}
	tops := make([][]srcCount, len(a.list))
	for k, n := range a.sources {
		tops[k.target] = append(tops[k.target], srcCount{k.addr.String(), n})
	}
	for i := range tops {
		sort.Slice(tops[i], func(x, y int) bool {
			if tops[i][x].n != tops[i][y].n {
				return tops[i][x].n > tops[i][y].n
			}
			return tops[i][x].addr < tops[i][y].addr
		})
		if len(tops[i]) > TopSources {
			tops[i] = tops[i][:TopSources]
		}
	}
	tt := report.Table{Name: "flood-targets", Title: "Connection attempts against VPN ports",
		Columns: []string{"target", "kind", "attempts", "distinct sources", "answered", "peak per second", "peak sustained per second", "seconds above threshold", "duration s", "capture"},
		Note: fmt.Sprintf("Sustained: averaged over %s. Thresholds per second: IKE %g, WireGuard %g, SSL-VPN %g (TCP ports %s).",
			a.cfg.Sustain, a.cfg.WarnRate[KindIKE], a.cfg.WarnRate[KindWireGuard], a.cfg.WarnRate[KindSSLVPN], ports(a.cfg.SSLPorts))}
	st := report.Table{Name: "flood-sources", Title: fmt.Sprintf("Top %d sources per flooded VPN port", TopSources),
		Columns: []string{"target", "kind", "source", "attempts", "% of attempts"}}
	rt := report.Table{Name: "flood-rate", Title: "Attempt rate over time on flooded VPN ports",
		Columns: []string{"target", "kind", "from", "seconds", "attempts", "per second"}}
	for _, t := range a.list {
		a.close(t, t.cur)
		dur := float64(time.Duration(t.last-t.first).Milliseconds()) / 1000
		target := targetText(t.key)
		tt.Rows = append(tt.Rows, []any{target, t.key.kind.String(), t.attempts, t.sources, t.answered, t.peak1,
			round(t.peakSus), t.above, dur, name(t.input)})
		warn := a.cfg.WarnRate[t.key.kind]
		if t.attempts < a.cfg.MinAttempts || t.peakSus < warn {
			continue
		}
		sev := report.SeverityWarning
		if t.peakSus >= 10*warn {
			sev = report.SeverityError
		}
		var topList []map[string]any
		var topText []string
		for _, s := range tops[t.idx] {
			st.Rows = append(st.Rows, []any{target, t.key.kind.String(), s.addr, s.n, pct(uint64(s.n), t.attempts)})
			topList = append(topList, map[string]any{"source": s.addr, "attempts": s.n})
			if len(topText) < 3 {
				topText = append(topText, fmt.Sprintf("%s (%d)", s.addr, s.n))
			}
		}
		a.rateRows(&rt, t, target)
		sources := fmt.Sprintf("%d sources", t.sources)
		if t.untracked > 0 {
			sources = fmt.Sprintf("at least %d sources (source table full)", t.sources)
		}
		var frames []report.FrameRef
		for _, f := range t.frames {
			frames = append(frames, report.FrameRef{File: name(f.input), Frame: f.frame})
		}
		r.Add(report.Finding{ID: "flood.vpn-port", Severity: sev,
			Title: "VPN port flooded with connection attempts",
			Summary: fmt.Sprintf("%s (%s): %d %s from %s in %.1f s, peak %d/s, %.1f/s sustained over %s (threshold %g/s); %.1f%% answered; top sources %s.",
				target, t.key.kind, t.attempts, attemptNames[t.key.kind], sources, dur, t.peak1, t.peakSus, a.cfg.Sustain, warn,
				pct(t.answered, t.attempts), strings.Join(topText, ", ")),
			Where: &report.Where{Hop: name(t.input), Class: t.key.kind.String(), Flow: target},
			Evidence: map[string]any{"attempts": t.attempts, "distinct_sources": t.sources, "untracked_attempts": t.untracked,
				"answered": t.answered, "peak_rate": t.peak1, "sustained_rate": round(t.peakSus), "threshold": warn,
				"seconds_above_threshold": t.above, "duration_seconds": dur, "top_sources": topList},
			Frames: frames,
			Remedy: remedies[t.key.kind]})
	}
	if d := a.dropped; d.targets+d.sources > 0 {
		tt.Note += fmt.Sprintf(" Limits reached: %d attempts on targets beyond %d, %d attempts from sources beyond %d not attributed.",
			d.targets, a.cfg.MaxTargets, d.sources, a.cfg.MaxSources)
	}
	r.AddTable(tt)
	if len(st.Rows) > 0 {
		r.AddTable(st)
		r.AddTable(rt)
	}
}

// rateRows adds the rate history of t, in at most maxRateRows rows.
func (a *Analyzer) rateRows(rt *report.Table, t *target, target string) {
	w := int64(len(t.ring))
	from := t.first / int64(time.Second)
	if t.cur-from >= w {
		from = t.cur - w + 1
		rt.Note = fmt.Sprintf("Rate history is kept for the last %d seconds per target.", w)
	}
	n := t.cur - from + 1
	step := (n + maxRateRows - 1) / maxRateRows
	for s := from; s <= t.cur; s += step {
		var sum uint64
		k := int64(0)
		for ; k < step && s+k <= t.cur; k++ {
			sum += uint64(t.ring[mod(s+k, w)])
		}
		rt.Rows = append(rt.Rows, []any{target, t.key.kind.String(), time.Unix(s, 0).UTC().Format("15:04:05"), k, sum, round(float64(sum) / float64(k))})
	}
}

func targetText(k targetKey) string {
	return fmt.Sprintf("%s/%d", k.addr, k.port)
}

func ports(ps []uint16) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = fmt.Sprint(p)
	}
	return strings.Join(s, ", ")
}

func round(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }

func pct(n, total uint64) float64 {
	if total == 0 {
		return 0
	}
	return round(float64(n) * 100 / float64(total))
}
