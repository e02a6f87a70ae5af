package analyze

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/vpndiag/vpndiag/analyze/decode"
	"github.com/vpndiag/vpndiag/report"
)

func init() { Register("summary", func() Analyzer { return NewSummary() }) }

// TopFlows is how many flows the summary lists.
const TopFlows = 10

// maxTunnelIDs bounds the distinct tunnel IDs (VNI, SPI, key) kept per kind.
const maxTunnelIDs = 4096

// Summary counts packets, bytes, protocols (outer and inner), tunnels and the
// top flows of all inputs.
type Summary struct {
	packets, bytes uint64
	first, last    int64
	nonIP          [3]counter // arp, other ethertype, undecodable link
	outer, inner   [256]counter
	outerV, innerV [2]counter // IPv4, IPv6
	tunnels        [decode.NumTunnelKinds]counter
	tunnelIDs      [decode.NumTunnelKinds]map[uint32]*tunnelID
	ike            map[ikeKey]*counter
	innerARP       counter
	wg             [5]counter
	flows          *FlowTable
	// The previous packet's tunnel ID entry (entries are never deleted).
	lastKind decode.TunnelKind
	lastID   uint32
	lastE    *tunnelID
}

type counter struct{ packets, bytes uint64 }

func (c *counter) add(n int) { c.packets++; c.bytes += uint64(n) }

type tunnelID struct {
	packets, bytes uint64
	minSeq, maxSeq uint64
}

type ikeKey struct{ version, exchange uint8 }

// NewSummary returns an empty summary analyzer.
func NewSummary() *Summary {
	s := &Summary{flows: NewFlowTable(DefaultFlowLimit), ike: map[ikeKey]*counter{}}
	for i := range s.tunnelIDs {
		s.tunnelIDs[i] = map[uint32]*tunnelID{}
	}
	return s
}

// Name implements Analyzer.
func (s *Summary) Name() string { return "summary" }

// Packet implements Analyzer.
func (s *Summary) Packet(rec *decode.Record) {
	n := rec.WireLen
	if s.packets == 0 || rec.Time < s.first {
		s.first = rec.Time
	}
	if rec.Time > s.last {
		s.last = rec.Time
	}
	s.packets++
	s.bytes += uint64(n)
	if rec.ARP.Valid && rec.NumTunnel > 0 {
		s.innerARP.add(n)
	}
	if rec.NumLevels == 0 {
		switch {
		case rec.ARP.Valid:
			s.nonIP[0].add(n)
		case rec.Reason == decode.ReasonUnknownLinkType || rec.Reason == decode.ReasonTruncatedLink:
			s.nonIP[2].add(n)
		default:
			s.nonIP[1].add(n)
		}
		return
	}
	o := &rec.Levels[0]
	s.outerV[versionIndex(o.IP.Version)].add(n)
	s.outer[o.IP.Proto].add(n)
	if rec.NumLevels > 1 {
		in := rec.Inner()
		s.innerV[versionIndex(in.IP.Version)].add(n)
		s.inner[in.IP.Proto].add(n)
	}
	for i := 0; i < int(rec.NumTunnel); i++ {
		t := &rec.Tunnels[i]
		s.tunnels[t.Kind].add(n)
		s.addTunnelID(t, n)
	}
	if rec.IKE.Valid {
		k := ikeKey{rec.IKE.Version, rec.IKE.Exchange}
		c := s.ike[k]
		if c == nil {
			c = &counter{}
			s.ike[k] = c
		}
		c.add(n)
	}
	if wt := rec.WireGuard.Type; wt > 0 && int(wt) < len(s.wg) {
		s.wg[wt].add(n)
	}
	s.flows.Add(rec)
}

func versionIndex(v uint8) int {
	if v == 6 {
		return 1
	}
	return 0
}

func (s *Summary) addTunnelID(t *decode.Tunnel, n int) {
	e := s.lastE
	if e == nil || s.lastKind != t.Kind || s.lastID != t.ID {
		ids := s.tunnelIDs[t.Kind]
		e = ids[t.ID]
		if e == nil {
			if len(ids) >= maxTunnelIDs {
				return
			}
			e = &tunnelID{minSeq: ^uint64(0)}
			ids[t.ID] = e
		}
		s.lastKind, s.lastID, s.lastE = t.Kind, t.ID, e
	}
	e.packets++
	e.bytes += uint64(n)
	seq := uint64(t.Seq)
	if t.Kind == decode.TunnelWireGuard {
		seq = t.Counter
	}
	if t.HasSeq || t.Kind == decode.TunnelESP || t.Kind == decode.TunnelESPinUDP || t.Kind == decode.TunnelWireGuard {
		e.minSeq = min(e.minSeq, seq)
		e.maxSeq = max(e.maxSeq, seq)
	}
}

// SummaryData is the "summary" entry of the report's data.
type SummaryData struct {
	Packets   uint64         `json:"packets"`
	Bytes     uint64         `json:"bytes"`
	First     *time.Time     `json:"first,omitempty"`
	Last      *time.Time     `json:"last,omitempty"`
	Duration  float64        `json:"duration_seconds"`
	Protocols []ProtoCount   `json:"protocols"`
	Tunnels   []TunnelCount  `json:"tunnels"`
	TopFlows  []FlowSummary  `json:"top_flows"`
	FlowTable FlowTableStats `json:"flow_table"`
}

// ProtoCount is packets and bytes of one protocol at one layer ("outer",
// "inner" for what tunnels carry, "link" for non-IP, "vpn" for IKE/WireGuard).
type ProtoCount struct {
	Layer    string `json:"layer"`
	Protocol string `json:"protocol"`
	Packets  uint64 `json:"packets"`
	Bytes    uint64 `json:"bytes"`
}

// TunnelCount is the traffic of one tunnel kind and one tunnel ID.
type TunnelCount struct {
	Kind    string  `json:"kind"`
	ID      *uint32 `json:"id,omitempty"` // VNI, GRE key, SPI, session ID, receiver index
	Packets uint64  `json:"packets"`
	Bytes   uint64  `json:"bytes"`
	SeqMin  *uint64 `json:"seq_min,omitempty"` // ESP/GRE sequence or WireGuard counter range
	SeqMax  *uint64 `json:"seq_max,omitempty"`
}

// FlowSummary is one of the top flows.
type FlowSummary struct {
	CommunityID string `json:"community_id"`
	Protocol    string `json:"protocol"`
	Src         string `json:"src"` // the initiator (first packet's sender), addr:port
	Dst         string `json:"dst"`
	Packets     uint64 `json:"packets"`
	Bytes       uint64 `json:"bytes"`
	Forward     uint64 `json:"packets_forward"` // initiator to responder
	Reverse     uint64 `json:"packets_reverse"`
	Tunnel      string `json:"tunnel,omitempty"`
	FirstFrame  uint64 `json:"first_frame"`
	Input       string `json:"input"`
}

// FlowTableStats tells whether the bounded flow table had to evict.
type FlowTableStats struct {
	Flows      int    `json:"flows"`
	Limit      int    `json:"limit"`
	Evicted    uint64 `json:"evicted"`
	MaxEvicted uint64 `json:"max_evicted_packets"`
}

// Data returns the summary's structured result.
func (s *Summary) Data(inputs []InputInfo) SummaryData {
	d := SummaryData{Packets: s.packets, Bytes: s.bytes, Protocols: []ProtoCount{}, Tunnels: []TunnelCount{}, TopFlows: []FlowSummary{}}
	if s.packets > 0 {
		f, l := time.Unix(0, s.first).UTC(), time.Unix(0, s.last).UTC()
		d.First, d.Last = &f, &l
		d.Duration = l.Sub(f).Seconds()
	}
	add := func(layer, proto string, c counter) {
		if c.packets > 0 {
			d.Protocols = append(d.Protocols, ProtoCount{layer, proto, c.packets, c.bytes})
		}
	}
	add("link", "arp", s.nonIP[0])
	add("link", "other", s.nonIP[1])
	add("link", "undecodable", s.nonIP[2])
	add("outer", "ipv4", s.outerV[0])
	add("outer", "ipv6", s.outerV[1])
	for p := range s.outer {
		add("outer", ProtoName(uint8(p)), s.outer[p])
	}
	add("inner", "ipv4", s.innerV[0])
	add("inner", "ipv6", s.innerV[1])
	for p := range s.inner {
		add("inner", ProtoName(uint8(p)), s.inner[p])
	}
	add("inner", "arp", s.innerARP)
	keys := make([]ikeKey, 0, len(s.ike))
	for k := range s.ike {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].version != keys[j].version {
			return keys[i].version < keys[j].version
		}
		return keys[i].exchange < keys[j].exchange
	})
	for _, k := range keys {
		add("vpn", fmt.Sprintf("ikev%d %s", k.version, IKEExchangeName(k.version, k.exchange)), *s.ike[k])
	}
	for t, name := range []string{"", "wireguard handshake-initiation", "wireguard handshake-response", "wireguard cookie-reply", "wireguard transport-data"} {
		add("vpn", name, s.wg[t])
	}
	for k := 1; k < decode.NumTunnelKinds; k++ {
		c := s.tunnels[k]
		if c.packets == 0 {
			continue
		}
		d.Tunnels = append(d.Tunnels, TunnelCount{Kind: decode.TunnelKind(k).String(), Packets: c.packets, Bytes: c.bytes})
		ids := make([]uint32, 0, len(s.tunnelIDs[k]))
		for id := range s.tunnelIDs[k] {
			ids = append(ids, id)
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		for _, id := range ids {
			e := s.tunnelIDs[k][id]
			tc := TunnelCount{Kind: decode.TunnelKind(k).String(), ID: &id, Packets: e.packets, Bytes: e.bytes}
			if e.minSeq <= e.maxSeq {
				lo, hi := e.minSeq, e.maxSeq
				tc.SeqMin, tc.SeqMax = &lo, &hi
			}
			d.Tunnels = append(d.Tunnels, tc)
		}
	}
	for _, f := range s.flows.Top(TopFlows) {
		src, dst := endpoint(f.Key.A, f.Key.PA, f.Key.Proto), endpoint(f.Key.B, f.Key.PB, f.Key.Proto)
		fwd, rev := f.PacketsAB, f.PacketsBA
		if !f.InitiatorA {
			src, dst, fwd, rev = dst, src, rev, fwd
		}
		fs := FlowSummary{CommunityID: f.CommunityID(), Protocol: ProtoName(f.Key.Proto), Src: src, Dst: dst,
			Packets: f.Packets, Bytes: f.Bytes, Forward: fwd, Reverse: rev, FirstFrame: f.FirstFrame}
		if f.Tunnel != decode.TunnelNone {
			fs.Tunnel = f.Tunnel.String()
		}
		if f.Input < len(inputs) {
			fs.Input = inputs[f.Input].Name
		}
		d.TopFlows = append(d.TopFlows, fs)
	}
	d.FlowTable = FlowTableStats{Flows: s.flows.Len(), Limit: s.flows.Limit, Evicted: s.flows.Evicted, MaxEvicted: s.flows.MaxEvicted}
	return d
}

// Finish implements Analyzer.
func (s *Summary) Finish(r *report.Report, inputs []InputInfo) {
	d := s.Data(inputs)
	r.SetData("summary", d)
	if r.Title == "" {
		r.Title = fmt.Sprintf("%s packets, %s bytes in %d input(s) over %s", report.FormatCell(d.Packets),
			report.FormatCell(d.Bytes), len(inputs), time.Duration(d.Duration*float64(time.Second)).Round(time.Millisecond))
	}
	pt := report.Table{Name: "protocols", Title: "Protocols (inner: carried by a tunnel)",
		Columns: []string{"layer", "protocol", "packets", "bytes", "% of packets"}}
	for _, p := range d.Protocols {
		pt.Rows = append(pt.Rows, []any{p.Layer, p.Protocol, p.Packets, p.Bytes, percent(p.Packets, d.Packets)})
	}
	r.AddTable(pt)
	tt := report.Table{Name: "tunnels", Title: "Tunnels", Columns: []string{"tunnel", "id", "packets", "bytes", "sequence range"}}
	for _, t := range d.Tunnels {
		id, seq := "(all)", ""
		if t.ID != nil {
			id = tunnelIDText(t.Kind, *t.ID)
		}
		if t.SeqMin != nil {
			seq = fmt.Sprintf("%d-%d", *t.SeqMin, *t.SeqMax)
		}
		tt.Rows = append(tt.Rows, []any{t.Kind, id, t.Packets, t.Bytes, seq})
	}
	r.AddTable(tt)
	ft := report.Table{Name: "flows", Title: fmt.Sprintf("Top %d flows (innermost headers)", TopFlows),
		Columns: []string{"community id", "proto", "from", "to", "packets", "bytes", "fwd/rev", "tunnel", "first frame"}}
	for _, f := range d.TopFlows {
		ft.Rows = append(ft.Rows, []any{f.CommunityID, f.Protocol, f.Src, f.Dst, f.Packets, f.Bytes,
			fmt.Sprintf("%d/%d", f.Forward, f.Reverse), f.Tunnel, fmt.Sprintf("%s#%d", f.Input, f.FirstFrame)})
	}
	if d.FlowTable.Evicted > 0 {
		ft.Note = fmt.Sprintf("The flow table held at most %d flows and evicted %d small flows; a listed flow's counts may be low by up to %d packets.",
			d.FlowTable.Limit, d.FlowTable.Evicted, d.FlowTable.MaxEvicted)
	}
	r.AddTable(ft)
	s.inputFindings(r)
}

// inputFindings reports capture loss and undecodable frames.
func (s *Summary) inputFindings(r *report.Report) {
	for _, in := range r.Inputs {
		if in.Drops != nil && *in.Drops > 0 {
			r.Add(report.Finding{ID: "capture.drops", Severity: report.SeverityWarning,
				Title:    "The capture itself dropped packets",
				Summary:  fmt.Sprintf("%s: the capture point dropped %d packets; they are missing from the analysis, not lost on the network.", in.Name, *in.Drops),
				Where:    &report.Where{Hop: in.Name},
				Evidence: map[string]any{"capture_drops": *in.Drops, "packets": in.Packets},
				Remedy:   "Capture with a filter, a larger buffer (tcpdump -B / vpndiag capture --buffer), or on a less loaded host."})
		}
		var total int64
		var reasons []string
		for _, k := range sortedReasonKeys(in.Undecoded) {
			total += in.Undecoded[k]
			reasons = append(reasons, fmt.Sprintf("%s %d", k, in.Undecoded[k]))
		}
		if total > 0 {
			r.Add(report.Finding{ID: "capture.undecoded", Severity: report.SeverityInfo,
				Title:    "Frames not fully decoded",
				Summary:  fmt.Sprintf("%s: %d of %d frames were not fully decoded (%s); they are counted but not analysed beyond the damage.", in.Name, total, in.Packets, strings.Join(reasons, ", ")),
				Where:    &report.Where{Hop: in.Name},
				Evidence: map[string]any{"undecoded": in.Undecoded}})
		}
	}
}

func sortedReasonKeys(m map[string]int64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func percent(n, total uint64) float64 {
	if total == 0 {
		return 0
	}
	return float64(int(float64(n)*10000/float64(total)+0.5)) / 100
}
