package dns

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/vpndiag/vpndiag/analyze"
	"github.com/vpndiag/vpndiag/report"
)

// Finding ids.
const (
	IDUnanswered    = "dns.unanswered"
	IDRetransmitted = "dns.retransmitted"
	IDServfail      = "dns.servfail"
	IDRefused       = "dns.refused"
	IDTruncated     = "dns.truncated"
	IDAAAAEscape    = "dns.aaaa-escape"
)

// Thresholds, per server and capture point. Below them a finding is info.
const (
	// UnansweredWarnMin/Ratio: unanswered queries (and their share of the
	// queries) for a warning; UnansweredErrorMin/Ratio for an error (the
	// server is effectively down or unreachable).
	UnansweredWarnMin    = 2
	UnansweredWarnRatio  = 0.01
	UnansweredErrorMin   = 10
	UnansweredErrorRatio = 0.5
	RetransmitWarnMin    = 3
	RetransmitWarnRatio  = 0.02
	RcodeWarnMin         = 3    // SERVFAIL or REFUSED answers
	RcodeWarnRatio       = 0.05 // of the answers
	FallbackWindow       = 5 * time.Second
)

// ServerResult is one server's numbers at one capture point.
type ServerResult struct {
	Input         string  `json:"input"`
	Server        string  `json:"server"`
	Queries       uint64  `json:"queries"`
	TCPQueries    uint64  `json:"tcp_queries"`
	Answered      uint64  `json:"answered"`
	Unanswered    uint64  `json:"unanswered"`
	Pending       uint64  `json:"pending_at_end"` // sent within EndGrace of the end, no answer yet
	Retransmitted uint64  `json:"retransmitted"`  // queries whose question was sent more than once
	Resends       uint64  `json:"resends"`
	Servfail      uint64  `json:"servfail"`
	Refused       uint64  `json:"refused"`
	NXDomain      uint64  `json:"nxdomain"`
	Truncated     uint64  `json:"truncated"`
	NoFallback    uint64  `json:"truncated_without_tcp_answer"`
	Orphans       uint64  `json:"responses_without_query"`
	Duplicates    uint64  `json:"duplicate_responses"`
	P50ms         float64 `json:"latency_p50_ms"`
	P99ms         float64 `json:"latency_p99_ms"`
	MaxMs         float64 `json:"latency_max_ms"`
}

// Result is the "dns" entry of the report's data.
type Result struct {
	Servers        []ServerResult `json:"servers"`
	Messages       uint64         `json:"messages"`
	TCPGaps        uint64         `json:"tcp_segments_not_parsed"`
	Evicted        uint64         `json:"queries_evicted_unsettled"`
	AAAAEventsLost uint64         `json:"aaaa_events_not_tracked"`
}

// percentile returns the nearest-rank p-th percentile of sorted samples.
func percentile(sorted []int64, p float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(ns int64) float64 { return float64(ns/1000) / 1000 }

// Finish implements analyze.Analyzer.
func (a *Analyzer) Finish(r *report.Report, inputs []analyze.InputInfo) {
	a.flushTunRun()
	pending := map[*server]uint64{}
	qs := make([]*query, 0, len(a.queries))
	for _, q := range a.queries {
		qs = append(qs, q)
	}
	slices.SortFunc(qs, func(x, y *query) int {
		if c := cmp.Compare(x.input, y.input); c != 0 {
			return c
		}
		return cmp.Compare(x.firstFrame, y.firstFrame)
	})
	for _, q := range qs {
		if q.input < len(a.ends) && !a.settle(q, a.ends[q.input]) && !q.answered && !q.settled {
			pending[q.server]++
		}
		if q.tc && !q.fallbackOK && q.input < len(a.ends) && q.last <= a.ends[q.input]-int64(FallbackWindow) {
			q.server.noFallback++
			q.server.noFallbackEx.Add(q.input, q.respFrame)
		}
	}
	servers := make([]*server, 0, len(a.servers))
	for _, s := range a.servers {
		servers = append(servers, s)
	}
	slices.SortFunc(servers, func(x, y *server) int {
		if c := cmp.Compare(x.key.input, y.key.input); c != 0 {
			return c
		}
		if c := cmp.Compare(y.queries, x.queries); c != 0 {
			return c
		}
		return x.key.server.Compare(y.key.server)
	})
	res := Result{Servers: []ServerResult{}, Messages: a.messages, TCPGaps: a.tcpGaps, Evicted: a.evicted, AAAAEventsLost: a.droppedEvent}
	tbl := report.Table{Name: "dns_servers", Title: "DNS servers (per capture point)",
		Columns: []string{"input", "server", "queries", "answered", "unanswered", "retransmitted", "SERVFAIL", "REFUSED",
			"NXDOMAIN", "truncated", "TCP queries", "p50 ms", "p99 ms"}}
	for _, s := range servers {
		slices.Sort(s.samples)
		sr := ServerResult{Input: analyze.InputName(inputs, s.key.input), Server: s.key.server.String(), Queries: s.queries,
			TCPQueries: s.tcpQueries, Answered: s.answered, Unanswered: s.unanswered, Pending: pending[s],
			Retransmitted: s.retransmitted, Resends: s.resends, Servfail: s.servfail, Refused: s.refused,
			NXDomain: s.nxdomain, Truncated: s.truncated, NoFallback: s.noFallback, Orphans: s.orphans, Duplicates: s.duplicates}
		if len(s.samples) > 0 {
			sr.P50ms, sr.P99ms, sr.MaxMs = ms(percentile(s.samples, 0.5)), ms(percentile(s.samples, 0.99)), ms(s.samples[len(s.samples)-1])
		}
		res.Servers = append(res.Servers, sr)
		if s.queries > 0 {
			tbl.Rows = append(tbl.Rows, []any{sr.Input, sr.Server, sr.Queries, sr.Answered, sr.Unanswered, sr.Retransmitted,
				sr.Servfail, sr.Refused, sr.NXDomain, sr.Truncated, sr.TCPQueries, sr.P50ms, sr.P99ms})
		}
		a.serverFindings(r, inputs, s, &sr)
	}
	var notes []string
	if a.tcpGaps > 0 {
		notes = append(notes, fmt.Sprintf("%d TCP segments on port 53 did not hold whole DNS messages (messages spanning segments are not reassembled) and were not parsed.", a.tcpGaps))
	}
	if a.evicted > 0 {
		notes = append(notes, fmt.Sprintf("The query table held at most %d queries; %d pending queries were dropped unsettled.", a.limit(), a.evicted))
	}
	tbl.Note = strings.Join(notes, " ")
	r.SetData("dns", res)
	if len(tbl.Rows) > 0 {
		r.AddTable(tbl)
	}
	a.escapeFindings(r, inputs)
}

// pendingText mentions the queries too close to the end of the capture to judge.
func pendingText(n uint64) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(" (%d more, sent in the last %s of the capture, had no answer when it ended; they are not counted)", n, EndGrace)
}

func ratio(n, d uint64) float64 {
	if d == 0 {
		return 0
	}
	return float64(int64(float64(n)/float64(d)*10000+0.5)) / 10000
}

func (a *Analyzer) serverFindings(r *report.Report, inputs []analyze.InputInfo, s *server, sr *ServerResult) {
	where := &report.Where{Hop: sr.Input, Class: "dns server " + sr.Server}
	if s.unanswered > 0 {
		rt := ratio(s.unanswered, s.queries)
		sev := report.SeverityInfo
		switch {
		case s.unanswered >= UnansweredErrorMin && rt >= UnansweredErrorRatio:
			sev = report.SeverityError
		case s.unanswered >= UnansweredWarnMin && rt >= UnansweredWarnRatio:
			sev = report.SeverityWarning
		}
		var names []string
		for _, h := range s.unansweredNames[:s.unansweredEx.Len()] {
			names = append(names, a.names[h])
		}
		r.Add(report.Finding{ID: IDUnanswered, Severity: sev, Title: "DNS queries without an answer",
			Summary: fmt.Sprintf("%s: %d of %d queries to %s (%.1f%%) got no answer%s.",
				sr.Input, s.unanswered, s.queries, sr.Server, 100*rt, pendingText(sr.Pending)),
			Where: where, Evidence: map[string]any{"server": sr.Server, "queries": s.queries, "unanswered": s.unanswered,
				"ratio": rt, "answered": s.answered, "pending_at_end": sr.Pending, "example_names": names},
			Frames: s.unansweredEx.FrameRefs(inputs, maxExamples),
			Remedy: "Find where the queries are lost: capture next to the server too (vpndiag trace client=... server=...). " +
				"Check that the server is up and listening on the address (ss -ulpn sport = :53), firewall rules and rate limits " +
				"on port 53 (nft list ruleset), the resolver's own upstream, and NAT port exhaustion in front of it (natcheck)."})
	}
	if s.retransmitted > 0 {
		rt := ratio(s.retransmitted, s.queries)
		sev := report.SeverityInfo
		if s.retransmitted >= RetransmitWarnMin && rt >= RetransmitWarnRatio {
			sev = report.SeverityWarning
		}
		r.Add(report.Finding{ID: IDRetransmitted, Severity: sev, Title: "DNS queries sent again",
			Summary: fmt.Sprintf("%s: clients re-sent %d of %d questions to %s (%.1f%%), %d extra queries in all.",
				sr.Input, s.retransmitted, s.queries, sr.Server, 100*rt, s.resends),
			Where: where, Evidence: map[string]any{"server": sr.Server, "queries": s.queries, "retransmitted": s.retransmitted,
				"resends": s.resends, "ratio": rt},
			Frames: s.retransEx.FrameRefs(inputs, maxExamples),
			Remedy: "Clients retry when an answer is slow or lost: compare with dns.unanswered and the latency in the dns_servers " +
				"table; if answers arrive but late, look at the server's upstream; if they are lost, trace the path."})
	}
	for _, rc := range []struct {
		id, name string
		n        uint64
		ex       analyze.Examples
		remedy   string
	}{
		{IDServfail, "SERVFAIL", s.servfail, s.servfailEx, "SERVFAIL means the resolver could not get an answer: check its upstream " +
			"reachability and DNSSEC validation failures (resolver logs; dig +cd to compare without validation)."},
		{IDRefused, "REFUSED", s.refused, s.refusedEx, "REFUSED means the server will not serve this client: check its access " +
			"lists (allow-query / allow-recursion, dnsmasq --local-service, interface binding) for the client's address as the " +
			"server sees it (after NAT or through the tunnel)."},
	} {
		if rc.n == 0 {
			continue
		}
		rt := ratio(rc.n, s.answered)
		sev := report.SeverityInfo
		if rc.n >= RcodeWarnMin && rt >= RcodeWarnRatio {
			sev = report.SeverityWarning
		}
		r.Add(report.Finding{ID: rc.id, Severity: sev, Title: "DNS " + rc.name + " answers",
			Summary: fmt.Sprintf("%s: %s answered %d of %d queries with %s (%.1f%%).", sr.Input, sr.Server, rc.n, s.answered, rc.name, 100*rt),
			Where:   where, Evidence: map[string]any{"server": sr.Server, "answered": s.answered, strings.ToLower(rc.name): rc.n, "ratio": rt},
			Frames: rc.ex.FrameRefs(inputs, maxExamples), Remedy: rc.remedy})
	}
	if s.truncated > 0 {
		sev := report.SeverityInfo
		if s.noFallback > 0 {
			sev = report.SeverityWarning
		}
		r.Add(report.Finding{ID: IDTruncated, Severity: sev, Title: "Truncated DNS answers (TC bit)",
			Summary: fmt.Sprintf("%s: %s sent %d truncated UDP answers; %d were not followed by an answered TCP query within %s.",
				sr.Input, sr.Server, s.truncated, s.noFallback, FallbackWindow),
			Where: where, Evidence: map[string]any{"server": sr.Server, "truncated": s.truncated, "without_tcp_answer": s.noFallback,
				"tcp_queries": s.tcpQueries},
			Frames: append(s.truncEx.FrameRefs(inputs, maxExamples), s.noFallbackEx.FrameRefs(inputs, maxExamples)...),
			Remedy: "Truncated answers must be retried over TCP port 53: allow TCP/53 to the server on every firewall and in the " +
				"tunnel policy, and keep EDNS buffer sizes at 1232 so answers fit without fragmentation."})
	}
}

// escapeFindings reports AAAA answers to IPv4 clients whose traffic is
// tunnelled through IPv4-only tunnels at that capture point.
func (a *Analyzer) escapeFindings(r *report.Report, inputs []analyze.InputInfo) {
	type ckey struct {
		input  int
		client netip.Addr
	}
	byClient := map[ckey][]*aaaaEvent{}
	var order []ckey
	for i := range a.events {
		e := &a.events[i]
		if a.v6InTunnel[e.input] || a.tunnelled[akey{e.input, e.client}] == 0 {
			continue
		}
		k := ckey{e.input, e.client}
		if byClient[k] == nil {
			order = append(order, k)
		}
		byClient[k] = append(byClient[k], e)
	}
	for _, k := range order {
		evs := byClient[k]
		var escapes uint64
		var frames []report.FrameRef
		addrs := map[netip.Addr]bool{}
		var names []string
		seenName := map[uint64]bool{}
		for _, e := range evs {
			escapes += e.escapes
			addrs[e.addr] = true
			if !seenName[e.qhash] {
				seenName[e.qhash] = true
				names = append(names, a.names[e.qhash])
			}
			if len(frames) < maxExamples {
				frames = append(frames, report.FrameRef{File: analyze.InputName(inputs, e.input), Frame: e.frame})
			}
		}
		for _, e := range evs {
			frames = append(frames, e.escapeEx.FrameRefs(inputs, maxExamples)...)
		}
		var addrList []string
		for ad := range addrs {
			addrList = append(addrList, ad.String())
		}
		slices.Sort(addrList)
		sev := report.SeverityInfo
		sum := fmt.Sprintf("%s: %s, whose traffic here goes through an IPv4-only tunnel (%d tunnelled packets), got %d AAAA answers with global IPv6 addresses (%s); if it has IPv6 of its own, it will reach them outside the tunnel.",
			analyze.InputName(inputs, k.input), k.client, a.tunnelled[akey{k.input, k.client}], len(evs), strings.Join(names, ", "))
		if escapes > 0 {
			sev = report.SeverityWarning
			sum = fmt.Sprintf("%s: %s, whose traffic here goes through an IPv4-only tunnel, got %d AAAA answers with global IPv6 addresses (%s), and %d IPv6 packets to or from those addresses went outside the tunnel.",
				analyze.InputName(inputs, k.input), k.client, len(evs), strings.Join(names, ", "), escapes)
		}
		r.Add(report.Finding{ID: IDAAAAEscape, Severity: sev, Title: "AAAA answers can pull traffic off an IPv4-only tunnel",
			Summary: sum, Where: &report.Where{Hop: analyze.InputName(inputs, k.input), Class: "dns client " + k.client.String()},
			Evidence: map[string]any{"client": k.client.String(), "aaaa_answers": len(evs), "ipv6_addresses": addrList,
				"names": names, "tunnelled_packets": a.tunnelled[akey{k.input, k.client}], "untunnelled_ipv6_packets": escapes},
			Frames: frames,
			Remedy: "Either carry IPv6 through the tunnel (add ::/0 or the IPv6 prefixes to the tunnel's routes/AllowedIPs/traffic " +
				"selectors), or stop AAAA answers for tunnelled clients (dnsmasq --filter-AAAA, unbound 'private-address' / " +
				"'do-ip6: no', BIND 'filter-aaaa-on-v4 yes'), or disable IPv6 on the client's other interfaces while the VPN is up."})
	}
}
