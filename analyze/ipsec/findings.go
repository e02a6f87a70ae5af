package ipsec

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/vpndiag/vpndiag/analyze/seqwin"
	"github.com/vpndiag/vpndiag/report"
)

// Remedies, per platform.
const (
	remedyNegotiation = "Check that UDP 500 and 4500 (and ESP, IP protocol 50, when NAT-T is not used) pass both ways between the peers and that the responder listens on that address. " +
		"Then read why the responder refused: strongSwan `swanctl --log` / journalctl -u strongswan (NO_PROPOSAL_CHOSEN, AUTHENTICATION_FAILED, TS_UNACCEPTABLE), Libreswan `ipsec whack --status` and the pluto log; " +
		"Cisco `debug crypto ikev2` and `show crypto ikev2 sa`; Juniper `show security ike security-associations` with traceoptions under [edit security ike]. " +
		"Compare proposals, identities and PSKs/certificates on both ends. When IKE_SA_INIT is answered but IKE_AUTH is not, the large (often fragmented) IKE_AUTH message is being dropped: " +
		"enable IKE fragmentation (strongSwan fragmentation=yes, Libreswan fragmentation=yes, Cisco `crypto ikev2 fragmentation mtu 1300`, Juniper `set security ike gateway GW fragmentation enable`) or fix the path MTU."
	remedyRetransmit = "IKE messages were re-sent byte for byte: one side did not receive (or did not accept) the other's message. Check loss of UDP 500/4500 in both directions " +
		"(fragments of large IKE messages are the usual victims: enable IKE fragmentation), and the responder's load and half-open limits (strongSwan charon.init_limit_half_open, Cisco `crypto ikev2 limit max-in-negotiation-sa`)."
	remedyChurn = "SAs are re-created far more often than lifetimes explain: lifetimes too short or mismatched, both ends initiating (duplicate SAs), DPD/liveness timeouts tearing the tunnel down, or a route flap. " +
		"Compare lifetimes on both ends (strongSwan rekey_time/life_time and reauth_time in swanctl.conf, Libreswan ikelifetime/salifetime, Cisco `lifetime` in the IKEv2 profile and " +
		"`crypto ipsec security-association lifetime seconds`, Juniper `lifetime-seconds` in the IKE and IPsec proposals), let only one side initiate or set strongSwan unique=replace, and check DPD settings and the logs for delete reasons."
	remedyGaps = "ESP sequence numbers are missing between the sender and this capture point: packets were lost on the path before it (or by the capturing host). " +
		"Capture at both tunnel ends and run `vpndiag trace` to find the segment; check underlay drops (ip -s link, ethtool -S), MTU (fragmented ESP is often dropped: lower the tunnel MTU or clamp TCP MSS), and policers. " +
		"If the receiver also reports anti-replay drops for reordered packets (strongSwan/Linux `ip -s xfrm state`, Cisco `show crypto ipsec sa | include replay`, Juniper `show security ipsec statistics`), " +
		"widen the replay window (strongSwan replay_window = 1024, Cisco `crypto ipsec security-association replay window-size 1024`, Juniper `set security ipsec vpn VPN anti-replay-window-size 1024`)."
	remedyReplay = "The same SPI and sequence number appeared twice; the receiver drops the copy as a replay. Make sure the capture does not see packets twice (a bond and its member, -i any on a bridge); " +
		"otherwise look for a duplicating device or an L2 loop on the path, or a replay attack if the copies come from elsewhere."
	remedyNATT = "Informational: a NAT sits between the peers, so IKE and ESP run in UDP 4500. Keep UDP 4500 open and the NAT mapping alive with keepalives shorter than the NAT's UDP timeout " +
		"(strongSwan charon.keep_alive = 20s, Libreswan keep-alive=20, Cisco `crypto isakmp nat keepalive 20`, Juniper `set security ike gateway GW nat-keepalive 20`), and allow ESP-in-UDP through firewalls."
)

// negotiation reports IKE SAs that never completed and unanswered requests.
func (f *finisher) negotiation(p *peer) {
	if p.incomplete == 0 && p.unanswered == 0 {
		return
	}
	sev := report.SeverityWarning
	if p.completed == 0 && p.incomplete > 0 {
		sev = report.SeverityError
	}
	var parts, unans []string
	if p.incomplete > 0 {
		parts = append(parts, fmt.Sprintf("%d of %d IKE negotiations never completed", p.incomplete, p.incomplete+p.completed))
	}
	byEx := map[string]uint64{}
	for k, c := range p.ex {
		if c.unanswered > 0 {
			byEx[exNames[k]] = c.unanswered
			unans = append(unans, fmt.Sprintf("%s %d", exNames[k], c.unanswered))
		}
	}
	if p.unanswered > 0 {
		parts = append(parts, fmt.Sprintf("%d requests got no response (%s)", p.unanswered, strings.Join(unans, ", ")))
	}
	if p.retrans > 0 {
		parts = append(parts, fmt.Sprintf("%d messages were retransmitted", p.retrans))
	}
	hint := ""
	if p.ex[exAuth].unanswered > 0 && p.ex[exSAInit].answered > 0 {
		hint = " IKE_SA_INIT was answered but IKE_AUTH was not: the classic sign of dropped IKE fragments."
	}
	f.r.Add(report.Finding{ID: "ipsec.negotiation-incomplete", Severity: sev,
		Title:   "IKE negotiations that never complete",
		Summary: fmt.Sprintf("%s: %s.%s", pairText(p.key), strings.Join(parts, "; "), hint),
		Where:   f.where(p),
		Evidence: map[string]any{"setups": p.nSetups, "completed": p.completed, "incomplete": p.incomplete,
			"unanswered": p.unanswered, "unanswered_by_exchange": byEx, "retransmissions": p.retrans},
		Frames: f.refs(p.incFrames, p.unaFrames),
		Remedy: remedyNegotiation})
}

// retransmissions reports repeated IKE messages on exchanges that did
// complete (otherwise they are part of negotiation-incomplete).
func (f *finisher) retransmissions(p *peer) {
	if p.retrans < uint64(f.a.cfg.RetransmitWarn) || p.incomplete > 0 || p.unanswered > 0 {
		return
	}
	byEx := map[string]uint64{}
	var parts []string
	for k, c := range p.ex {
		if c.retrans > 0 {
			byEx[exNames[k]] = c.retrans
			parts = append(parts, fmt.Sprintf("%s %d", exNames[k], c.retrans))
		}
	}
	f.r.Add(report.Finding{ID: "ipsec.ike-retransmissions", Severity: report.SeverityWarning,
		Title:    "IKE messages retransmitted",
		Summary:  fmt.Sprintf("%s: %d IKE messages were sent again byte for byte (%s) although the exchanges completed.", pairText(p.key), p.retrans, strings.Join(parts, ", ")),
		Where:    f.where(p),
		Evidence: map[string]any{"retransmissions": p.retrans, "by_exchange": byEx, "ike_messages": p.ikeMsgs},
		Frames:   f.refs(p.retFrames),
		Remedy:   remedyRetransmit})
}

// medianInterval returns the median gap between sorted event times.
func medianInterval(ts []int64) time.Duration {
	if len(ts) < 2 {
		return 0
	}
	s := append([]int64(nil), ts...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	gaps := make([]int64, len(s)-1)
	for i := 1; i < len(s); i++ {
		gaps[i-1] = s[i] - s[i-1]
	}
	sort.Slice(gaps, func(i, j int) bool { return gaps[i] < gaps[j] })
	return time.Duration(gaps[len(gaps)/2])
}

// churn reports IKE SAs, child SAs or ESP SPIs re-created too often.
func (f *finisher) churn(p *peer) {
	type kind struct {
		name  string
		n     uint64
		times []int64
		fs    []fref
	}
	kinds := []kind{{"ike_sa_setups", p.nSetups, p.setups, p.incFrames}, {"child_rekey_events", p.nChild, p.childTimes, nil}}
	for _, dk := range []dirKey{{p.key.a, p.key.b}, {p.key.b, p.key.a}} {
		if d := f.a.dirs[dk]; d != nil && d.spis > 1 {
			kinds = append(kinds, kind{"new_spis_" + dk.src.String() + "_to_" + dk.dst.String(), uint64(len(d.times)), d.times, d.frames})
		}
	}
	ev := map[string]any{}
	var parts []string
	var frames []fref
	for _, k := range kinds {
		if k.n < uint64(f.a.cfg.ChurnMinEvents) {
			continue
		}
		m := medianInterval(k.times)
		if m <= 0 || m >= f.a.cfg.ChurnMaxInterval {
			continue
		}
		ev[k.name] = k.n
		ev[k.name+"_median_interval_seconds"] = m.Seconds()
		parts = append(parts, fmt.Sprintf("%d %s, median interval %s", k.n, strings.ReplaceAll(k.name, "_", " "), m.Round(time.Second)))
		frames = append(frames, k.fs...)
	}
	if len(parts) == 0 {
		return
	}
	ev["count"] = p.nSetups + p.nChild
	f.r.Add(report.Finding{ID: "ipsec.sa-churn", Severity: report.SeverityWarning,
		Title:    "IPsec SAs flapping (re-created too often)",
		Summary:  fmt.Sprintf("%s: %s (threshold: %d events with a median interval under %s).", pairText(p.key), strings.Join(parts, "; "), f.a.cfg.ChurnMinEvents, f.a.cfg.ChurnMaxInterval),
		Where:    f.where(p),
		Evidence: ev,
		Frames:   f.refs(frames),
		Remedy:   remedyChurn})
}

// natt reports NAT traversal and which side is behind the NAT.
func (f *finisher) natt(p *peer) {
	if !p.ikeNATT && !p.espUDP {
		return
	}
	addrs := [2]string{p.key.a.String(), p.key.b.String()}
	var behind, why []string
	for s := 0; s < 2; s++ {
		var r []string
		if p.keepalives[s] > 0 {
			r = append(r, fmt.Sprintf("sends NAT keepalives (%d)", p.keepalives[s]))
		}
		if p.odd[s] != 0 {
			r = append(r, fmt.Sprintf("uses source port %d instead of 500/4500", p.odd[s]))
		}
		if len(r) > 0 {
			behind = append(behind, addrs[s])
			why = append(why, addrs[s]+" "+strings.Join(r, " and "))
		}
	}
	var how []string
	if p.ikeNATT {
		how = append(how, "IKE on UDP 4500")
	}
	if p.espUDP {
		how = append(how, "ESP in UDP")
	}
	s := fmt.Sprintf("%s use NAT traversal (%s)", pairText(p.key), strings.Join(how, ", "))
	if len(behind) > 0 {
		s += "; behind the NAT: " + strings.Join(why, "; ")
	} else {
		s += "; which side is behind the NAT is not visible here (no keepalives, ports preserved)"
	}
	f.r.Add(report.Finding{ID: "ipsec.nat-t", Severity: report.SeverityInfo,
		Title:    "NAT traversal in use",
		Summary:  s + ".",
		Where:    f.where(p),
		Evidence: map[string]any{"ike_on_4500": p.ikeNATT, "esp_in_udp": p.espUDP, "natted_peers": behind, "keepalives": p.keepalives[0] + p.keepalives[1]},
		Frames:   f.refs(p.nattFrames),
		Remedy:   remedyNATT})
}

func lossPercent(w *seqwin.Window) float64 {
	e := w.Expected()
	if e == 0 {
		return 0
	}
	return float64(int(float64(w.Lost())*10000/float64(e)+0.5)) / 100
}

// maxSAFindings bounds the per-SA findings; the table lists every SA.
const maxSAFindings = 20

func (f *finisher) espFindings(sas []*espSA) {
	var gaps, dups []*espSA
	for _, s := range sas {
		if s.win.Lost() > 0 {
			gaps = append(gaps, s)
		}
		if s.win.Duplicates > 0 {
			dups = append(dups, s)
		}
	}
	sort.SliceStable(gaps, func(i, j int) bool { return gaps[i].win.Lost() > gaps[j].win.Lost() })
	for i, s := range gaps {
		if i == maxSAFindings {
			break
		}
		loss := lossPercent(&s.win)
		sev := report.SeverityWarning
		if loss >= f.a.cfg.GapErrorPercent {
			sev = report.SeverityError
		}
		f.r.Add(report.Finding{ID: "ipsec.esp-gaps", Severity: sev,
			Title: "ESP sequence gaps (packets lost before this capture point)",
			Summary: fmt.Sprintf("ESP SA %s -> %s SPI 0x%08x: %d of %d sequence numbers missing (%.2f%% loss), %d reordered within the %d-packet window.",
				s.key.src, s.key.dst, s.key.spi, s.win.Lost(), s.win.Expected(), loss, s.win.Reordered, seqwin.Size),
			Where: f.espWhere(s),
			Evidence: map[string]any{"missing": s.win.Lost(), "expected": s.win.Expected(), "received": s.win.Received, "loss_percent": loss,
				"reordered": s.win.Reordered, "too_old": s.win.TooOld, "first_seq": s.win.First(), "last_seq": s.win.Top(), "key": fmt.Sprintf("0x%08x", s.key.spi)},
			Frames: f.refs(s.gapFrames),
			Remedy: remedyGaps})
	}
	for i, s := range dups {
		if i == maxSAFindings {
			break
		}
		f.r.Add(report.Finding{ID: "ipsec.esp-replay", Severity: report.SeverityWarning,
			Title:    "ESP packets replayed (same SPI and sequence number twice)",
			Summary:  fmt.Sprintf("ESP SA %s -> %s SPI 0x%08x: %d packets repeated a sequence number already seen.", s.key.src, s.key.dst, s.key.spi, s.win.Duplicates),
			Where:    f.espWhere(s),
			Evidence: map[string]any{"replays": s.win.Duplicates, "packets": s.packets, "key": fmt.Sprintf("0x%08x", s.key.spi)},
			Frames:   f.refs(s.dupFrames),
			Remedy:   remedyReplay})
	}
}

func (f *finisher) espWhere(s *espSA) *report.Where {
	return &report.Where{Hop: f.name(s.input), Flow: fmt.Sprintf("esp %s -> %s spi 0x%08x", s.key.src, s.key.dst, s.key.spi)}
}
