package wireguard

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/vpndiag/vpndiag/analyze"
	"github.com/vpndiag/vpndiag/analyze/seqwin"
	"github.com/vpndiag/vpndiag/report"
)

const (
	remedyUnanswered = "The responder never answered these handshake initiations (WireGuard retries every 5 s with a new sender index, up to 90 s, then gives up until traffic asks again). " +
		"Check that the peer is up and listening (`wg show` on it: listening port, latest handshake), that UDP to its endpoint address and port passes every firewall and security group in both directions " +
		"(nftables: `udp dport 51820 accept` on the responder), and that the keys match: a responder silently drops initiations whose mac1 does not match its own public key, so a wrong or rotated public key in the initiator's [Peer] section looks exactly like this. " +
		"Cookie replies mean the responder is under load and asks the initiator to retry."
	remedyGaps = "Transport counters are missing between the sender and this capture point: packets were lost on the underlay path before it. " +
		"Capture at both ends (or at the next hop) and run `vpndiag trace` to find the segment; check interface drops (ip -s link, ethtool -S), UDP buffer overruns on the receiver (netstat -su: receive buffer errors; raise net.core.rmem_max), " +
		"and fragmentation of the outer UDP packets (lower the WireGuard MTU: 1420 for IPv4 underlays, 1280 through PPPoE/IPv6 tunnels). WireGuard's 8192-packet replay window tolerates reordering, so these are real losses."
	remedyRoaming = "The same WireGuard session arrived from a new outer address or port: the peer roamed (mobile clients) or a NAT on its path re-mapped it after its UDP timeout. " +
		"If the peer is not mobile, keep the NAT mapping alive with PersistentKeepalive = 25 on the peer behind the NAT (`wg set wg0 peer KEY persistent-keepalive 25`) or raise the NAT's UDP timeout " +
		"(Linux conntrack: net.netfilter.nf_conntrack_udp_timeout_stream); repeated flips between two endpoints point at two paths (ECMP, dual uplinks) SNATing differently."
)

// Finish implements analyze.Analyzer.
func (a *Analyzer) Finish(r *report.Report, inputs []analyze.InputInfo) {
	f := &finisher{a: a, r: r, inputs: inputs}
	for _, pd := range a.pend {
		if pd.answered {
			continue
		}
		if pd.at < a.end(pd.input)-int64(a.cfg.Grace) {
			pd.peer.unanswered++
			pd.peer.unaFrames = append(pd.peer.unaFrames, fref{pd.input, pd.frame})
		} else {
			pd.peer.pending++
		}
	}
	peers := make([]*peer, 0, len(a.peers))
	for _, p := range a.peers {
		sortFrames(p.unaFrames)
		if len(p.unaFrames) > maxFrames {
			p.unaFrames = p.unaFrames[:maxFrames]
		}
		peers = append(peers, p)
	}
	sort.Slice(peers, func(i, j int) bool {
		if peers[i].input != peers[j].input {
			return peers[i].input < peers[j].input
		}
		return peers[i].firstFrame < peers[j].firstFrame
	})
	sessions := make([]*session, 0, len(a.sessions))
	for _, s := range a.sessions {
		sessions = append(sessions, s)
	}
	sort.Slice(sessions, func(i, j int) bool {
		if sessions[i].input != sessions[j].input {
			return sessions[i].input < sessions[j].input
		}
		return sessions[i].firstFrame < sessions[j].firstFrame
	})
	if len(peers) > 0 {
		f.peerTable(peers)
	}
	if len(sessions) > 0 {
		f.sessionTable(sessions)
	}
	for _, p := range peers {
		f.unanswered(p)
	}
	for _, s := range sessions {
		f.gaps(s)
		f.roaming(s)
	}
}

func (a *Analyzer) end(input int) int64 {
	if input < len(a.ends) {
		return a.ends[input]
	}
	return 0
}

func sortFrames(fs []fref) {
	sort.Slice(fs, func(i, j int) bool {
		if fs[i].input != fs[j].input {
			return fs[i].input < fs[j].input
		}
		return fs[i].frame < fs[j].frame
	})
}

type finisher struct {
	a      *Analyzer
	r      *report.Report
	inputs []analyze.InputInfo
}

func (f *finisher) name(input int) string {
	if input >= 0 && input < len(f.inputs) {
		return f.inputs[input].Name
	}
	return fmt.Sprintf("input%d", input)
}

func (f *finisher) refs(fs []fref) []report.FrameRef {
	var out []report.FrameRef
	for _, x := range fs {
		out = append(out, report.FrameRef{File: f.name(x.input), Frame: x.frame})
	}
	return out
}

func pairText(k pairKey) string { return k.a.String() + " <-> " + k.b.String() }

// median returns the median of durations in ns, 0 for none.
func median(v []int64) time.Duration {
	if len(v) == 0 {
		return 0
	}
	s := append([]int64(nil), v...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return time.Duration(s[len(s)/2])
}

func intervals(ts []int64) []int64 {
	var out []int64
	for i := 1; i < len(ts); i++ {
		out = append(out, ts[i]-ts[i-1])
	}
	return out
}

func seconds(d time.Duration) float64 { return float64(d.Milliseconds()) / 1000 }

func (f *finisher) peerTable(peers []*peer) {
	t := report.Table{Name: "wireguard-peers", Title: "WireGuard peers (endpoint pairs) and handshakes",
		Columns: []string{"endpoints", "initiations", "responses", "handshakes", "unanswered", "pending at end", "cookie replies", "mean handshake ms", "transport", "keepalives", "capture"}}
	for _, p := range peers {
		rtt := any("")
		if p.handshakes > 0 {
			rtt = float64(time.Duration(p.rttSum/int64(p.handshakes)).Microseconds()) / 1000
		}
		t.Rows = append(t.Rows, []any{pairText(p.key), p.inits[0] + p.inits[1], p.responses, p.handshakes, p.unanswered, p.pending, p.cookies, rtt,
			p.transport, p.keepalives, f.name(p.input)})
	}
	t.Note = fmt.Sprintf("Pending: initiated less than %s before the capture ended. The handshake time column is the mean initiation-to-response time.", f.a.cfg.Grace)
	if d := f.a.dropped; d.peers+d.pending > 0 {
		t.Note += fmt.Sprintf(" State limits reached: %d messages of untracked peers, %d initiations not tracked.", d.peers, d.pending)
	}
	f.r.AddTable(t)
}

func (f *finisher) sessionTable(sessions []*session) {
	t := report.Table{Name: "wireguard-sessions", Title: "WireGuard sessions (per receiver index)",
		Columns: []string{"receiver", "from", "to", "packets", "counter", "missing", "loss %", "reordered", "duplicates", "keepalives", "keepalive interval s", "roams", "first frame"}}
	for _, s := range sessions {
		ka := any("")
		if len(s.kaGaps) > 0 {
			ka = seconds(median(s.kaGaps))
		}
		t.Rows = append(t.Rows, []any{fmt.Sprintf("0x%08x", s.idx), s.src.String(), s.dst.String(), s.packets,
			fmt.Sprintf("%d-%d", s.win.First(), s.win.Top()), s.win.Lost(), lossPercent(&s.win), s.win.Reordered, s.win.Duplicates,
			s.keepalives, ka, s.roams, fmt.Sprintf("%s#%d", f.name(s.input), s.firstFrame)})
	}
	t.Note = "Keepalives are 32-byte transport messages (an empty packet); the interval is the median between consecutive keepalives of the session."
	if f.a.dropped.sessions > 0 {
		t.Note += fmt.Sprintf(" %d transport messages of sessions beyond the limit of %d were not tracked.", f.a.dropped.sessions, f.a.cfg.MaxSessions)
	}
	f.r.AddTable(t)
}

func (f *finisher) unanswered(p *peer) {
	if p.unanswered == 0 {
		return
	}
	sev := report.SeverityWarning
	if p.handshakes == 0 && p.unanswered >= uint64(f.a.cfg.DeadPeer) {
		sev = report.SeverityError
	}
	retry := median(intervals(p.initTimes))
	s := fmt.Sprintf("%s: %d of %d handshake initiations got no response", pairText(p.key), p.unanswered, p.inits[0]+p.inits[1])
	if retry > 0 {
		s += fmt.Sprintf(" (retried every %.1f s)", seconds(retry))
	}
	if p.handshakes == 0 {
		s += "; no handshake completed in the capture"
	} else {
		s += fmt.Sprintf("; %d handshakes did complete", p.handshakes)
	}
	f.r.Add(report.Finding{ID: "wireguard.handshake-unanswered", Severity: sev,
		Title:   "WireGuard handshake initiations without response",
		Summary: s + ".",
		Where:   &report.Where{Hop: f.name(p.input), Flow: "wireguard " + pairText(p.key)},
		Evidence: map[string]any{"unanswered": p.unanswered, "initiations": p.inits[0] + p.inits[1], "handshakes": p.handshakes,
			"retry_interval_seconds": seconds(retry), "cookie_replies": p.cookies, "transport": p.transport},
		Frames: f.refs(p.unaFrames),
		Remedy: remedyUnanswered})
}

func lossPercent(w *seqwin.Window) float64 {
	e := w.Expected()
	if e == 0 {
		return 0
	}
	return float64(int(float64(w.Lost())*10000/float64(e)+0.5)) / 100
}

func (f *finisher) where(s *session) *report.Where {
	return &report.Where{Hop: f.name(s.input), Flow: fmt.Sprintf("wireguard receiver 0x%08x", s.idx)}
}

func (f *finisher) gaps(s *session) {
	lost := s.win.Lost()
	if lost == 0 {
		return
	}
	loss := lossPercent(&s.win)
	sev := report.SeverityWarning
	if loss >= f.a.cfg.GapErrorPercent {
		sev = report.SeverityError
	}
	f.r.Add(report.Finding{ID: "wireguard.counter-gaps", Severity: sev,
		Title: "WireGuard counter gaps (packets lost before this capture point)",
		Summary: fmt.Sprintf("WireGuard session 0x%08x (%s -> %s): %d of %d counters missing (%.2f%% loss), %d reordered within the %d-packet window, %d duplicated.",
			s.idx, s.src, s.dst, lost, s.win.Expected(), loss, s.win.Reordered, seqwin.Size, s.win.Duplicates),
		Where: f.where(s),
		Evidence: map[string]any{"missing": lost, "expected": s.win.Expected(), "received": s.win.Received, "loss_percent": loss,
			"reordered": s.win.Reordered, "duplicates": s.win.Duplicates, "first_counter": s.win.First(), "last_counter": s.win.Top()},
		Frames: f.refs(s.gapFrames),
		Remedy: remedyGaps})
}

func (f *finisher) roaming(s *session) {
	if s.roams == 0 {
		return
	}
	sev := report.SeverityInfo
	if s.roams >= uint64(f.a.cfg.RoamWarn) {
		sev = report.SeverityWarning
	}
	eps := make([]string, len(s.endpoints))
	for i, e := range s.endpoints {
		eps[i] = e.String()
	}
	f.r.Add(report.Finding{ID: "wireguard.roaming", Severity: sev,
		Title: "WireGuard peer endpoint changed (roaming)",
		Summary: fmt.Sprintf("WireGuard session 0x%08x to %s changed its source endpoint %d times (%s).",
			s.idx, s.dst, s.roams, strings.Join(eps, " -> ")),
		Where:    f.where(s),
		Evidence: map[string]any{"roams": s.roams, "endpoints": eps, "packets": s.packets},
		Frames:   f.refs(s.roamFrames),
		Remedy:   remedyRoaming})
}
