package ipsec

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/vpndiag/vpndiag/analyze"
	"github.com/vpndiag/vpndiag/report"
)

// Finish implements analyze.Analyzer.
func (a *Analyzer) Finish(r *report.Report, inputs []analyze.InputInfo) {
	a.settle()
	peers := make([]*peer, 0, len(a.peers))
	for _, p := range a.peers {
		peers = append(peers, p)
	}
	sort.Slice(peers, func(i, j int) bool {
		if peers[i].key.a != peers[j].key.a {
			return peers[i].key.a.Less(peers[j].key.a)
		}
		return peers[i].key.b.Less(peers[j].key.b)
	})
	sas := make([]*espSA, 0, len(a.esp))
	for _, s := range a.esp {
		sas = append(sas, s)
	}
	sort.Slice(sas, func(i, j int) bool {
		x, y := sas[i], sas[j]
		if x.input != y.input {
			return x.input < y.input
		}
		return x.firstFrame < y.firstFrame
	})
	f := &finisher{a: a, r: r, inputs: inputs}
	if len(peers) > 0 {
		f.peerTable(peers)
		f.exchangeTable(peers)
	}
	if len(sas) > 0 {
		f.espTable(sas)
	}
	for _, p := range peers {
		f.negotiation(p)
		f.retransmissions(p)
		f.churn(p)
		f.natt(p)
	}
	f.espFindings(sas)
}

// settle classifies what is still open at the end of the captures.
func (a *Analyzer) settle() {
	for k, s := range a.sas {
		if !s.setup {
			continue
		}
		p := a.peers[k.pair]
		if p == nil {
			continue
		}
		switch {
		case s.completed:
			p.completed++
		case s.setupAt < a.end(s.frame.input)-int64(a.cfg.Grace):
			p.incomplete++
			p.incFrames = append(p.incFrames, s.frame)
		}
	}
	for k, x := range a.xs {
		if x.reqs == 0 || x.answered || x.oneWay {
			continue
		}
		p := a.peers[k.pair]
		if p == nil {
			continue
		}
		if x.lastReq < a.end(x.input)-int64(a.cfg.Grace) {
			p.ex[x.kind].unanswered++
			p.unanswered++
			p.unaFrames = append(p.unaFrames, fref{x.input, x.reqFrame})
		} else {
			p.ex[x.kind].pending++
		}
	}
	for _, p := range a.peers {
		sortFrames(p.incFrames)
		sortFrames(p.unaFrames)
		sortFrames(p.nattFrames)
		sortFrames(p.retFrames)
		if len(p.incFrames) > maxFrames {
			p.incFrames = p.incFrames[:maxFrames]
		}
		if len(p.unaFrames) > maxFrames {
			p.unaFrames = p.unaFrames[:maxFrames]
		}
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

func (f *finisher) refs(fs ...[]fref) []report.FrameRef {
	var out []report.FrameRef
	for _, l := range fs {
		for _, x := range l {
			out = append(out, report.FrameRef{File: f.name(x.input), Frame: x.frame})
		}
	}
	return out
}

func pairText(k pairKey) string { return k.a.String() + " <-> " + k.b.String() }

func (f *finisher) where(p *peer) *report.Where {
	return &report.Where{Hop: f.name(p.input), Flow: "ipsec " + pairText(p.key)}
}

func versionsText(v uint8) string {
	var s []string
	for i := 1; i <= 2; i++ {
		if v&(1<<i) != 0 {
			s = append(s, fmt.Sprintf("IKEv%d", i))
		}
	}
	if len(s) == 0 {
		return "ESP only"
	}
	return strings.Join(s, "+")
}

// perHour returns events per hour over the peer's observed span, or "" when
// the span is under a minute.
func perHour(n uint64, first, last int64) any {
	d := time.Duration(last - first)
	if d < time.Minute || n == 0 {
		return ""
	}
	return float64(int(float64(n)/d.Hours()*10+0.5)) / 10
}

func (f *finisher) peerTable(peers []*peer) {
	t := report.Table{Name: "ipsec-peers", Title: "IPsec peers (IKE negotiations, re-keys, NAT traversal)",
		Columns: []string{"peers", "ike", "ike messages", "ike SA set-ups", "completed", "incomplete", "re-key events", "re-keys/h", "retransmissions", "nat-t", "capture"}}
	for _, p := range peers {
		natt := ""
		if p.ikeNATT || p.espUDP {
			natt = "yes"
		}
		t.Rows = append(t.Rows, []any{pairText(p.key), versionsText(p.versions), p.ikeMsgs, p.nSetups, p.completed, p.incomplete,
			p.nChild, perHour(p.nChild, p.first, p.last), p.retrans, natt, f.name(p.input)})
	}
	if d := f.a.dropped; d.peers+d.sas+d.xs > 0 {
		t.Note = fmt.Sprintf("State limits reached: %d peer pairs, %d IKE SAs and %d exchanges were not tracked (limits %d, %d, %d).",
			d.peers, d.sas, d.xs, f.a.cfg.MaxPeers, f.a.cfg.MaxIKESAs, f.a.cfg.MaxExchanges)
	}
	f.r.AddTable(t)
}

func (f *finisher) exchangeTable(peers []*peer) {
	t := report.Table{Name: "ipsec-exchanges", Title: "IKE exchanges per peer pair (requests and responses paired)",
		Columns: []string{"peers", "exchange", "requests", "answered", "unanswered", "pending at end", "retransmitted"},
		Note:    fmt.Sprintf("Pending: requested less than %s before the capture ended. IKEv1 informational messages are one-way.", f.a.cfg.Grace)}
	for _, p := range peers {
		for k := range p.ex {
			c := p.ex[k]
			if c.requests+c.retrans == 0 {
				continue
			}
			t.Rows = append(t.Rows, []any{pairText(p.key), exNames[k], c.requests, c.answered, c.unanswered, c.pending, c.retrans})
		}
	}
	if len(t.Rows) > 0 {
		f.r.AddTable(t)
	}
}

func (f *finisher) espTable(sas []*espSA) {
	t := report.Table{Name: "esp-sas", Title: "ESP SAs (per SPI and direction)",
		Columns: []string{"from", "to", "spi", "encapsulation", "packets", "bytes", "sequence", "missing", "loss %", "reordered", "duplicates", "first frame"}}
	for _, s := range sas {
		enc := "esp"
		if s.udp {
			enc = "esp-in-udp"
		}
		t.Rows = append(t.Rows, []any{s.key.src.String(), s.key.dst.String(), fmt.Sprintf("0x%08x", s.key.spi), enc, s.packets, s.bytes,
			fmt.Sprintf("%d-%d", s.win.First(), s.win.Top()), s.win.Lost(), lossPercent(&s.win), s.win.Reordered, s.win.Duplicates,
			fmt.Sprintf("%s#%d", f.name(s.input), s.firstFrame)})
	}
	if f.a.dropped.esp > 0 {
		t.Note = fmt.Sprintf("%d ESP packets of SAs beyond the limit of %d SAs were not tracked.", f.a.dropped.esp, f.a.cfg.MaxESPSAs)
	}
	f.r.AddTable(t)
}
