package analyze

import (
	"net/netip"
	"slices"

	"github.com/vpndiag/vpndiag/analyze/decode"
)

// FlowKey identifies a bidirectional flow: the two endpoints are stored in a
// canonical order (lower address/port first), so both directions share a key.
//
// The layout has no padding (the fields fill 56 bytes exactly, and so do
// analyzers' keys of an int and a FlowKey), so a map keyed by it hashes and
// compares the key as one block of memory instead of field by field.
type FlowKey struct {
	A, B   netip.Addr
	PA, PB uint16
	Proto  uint8
	_pad   [3]uint8 // always zero; a named field, as blank fields are skipped when hashing
}

// Flow counts one flow's packets in both directions.
type Flow struct {
	Key        FlowKey
	Packets    uint64
	Bytes      uint64
	PacketsAB  uint64 // packets from A to B
	PacketsBA  uint64
	First      int64 // Unix ns of the first packet
	Last       int64
	FirstFrame uint64
	Input      int
	Tunnel     decode.TunnelKind // innermost tunnel the flow was seen in, if any
	// InitiatorA is true when the first packet seen went from A to B.
	InitiatorA bool
	// FirstSport and FirstDport are the first packet's ports (ICMP: type and
	// code) as sent, for the Community ID.
	FirstSport, FirstDport uint16
}

// FlowTable counts flows with bounded memory. When it holds Limit flows, it
// evicts the smaller half (lossy counting): the counts of a flow that was
// evicted and came back may be low by at most MaxEvicted packets. Eviction is
// reported, never silent.
type FlowTable struct {
	Limit      int
	flows      map[FlowKey]*Flow
	free       []*Flow
	Evictions  uint64 // number of eviction rounds
	Evicted    uint64 // flows evicted
	MaxEvicted uint64 // largest packet count of an evicted flow
	scratch    []uint64
	memo       FlowMemo[*Flow] // the previous packet's flow (flows of all inputs share keys: input 0)
}

// DefaultFlowLimit bounds the flow table (about 20 MB of state).
const DefaultFlowLimit = 131072

// NewFlowTable returns a table holding at most limit flows.
func NewFlowTable(limit int) *FlowTable {
	if limit <= 0 {
		limit = DefaultFlowLimit
	}
	return &FlowTable{Limit: limit, flows: make(map[FlowKey]*Flow, 1024)}
}

// Len returns the number of flows held.
func (t *FlowTable) Len() int { return len(t.flows) }

// KeyOf returns the canonical flow key of a level's IP and transport headers,
// and whether the packet travels from A to B. ICMP flows use type/code as
// ports so that echo request and reply pair up (as in Community ID).
func KeyOf(l *decode.Level) (FlowKey, bool) {
	ip, l4 := &l.IP, &l.L4
	sp, dp := l4.SrcPort, l4.DstPort
	switch l4.Proto {
	case 1, 58:
		sp, dp = uint16(l4.ICMPType), uint16(l4.ICMPCode)
		if c, ok := icmpPair(l4.Proto, l4.ICMPType); ok {
			// Normalise a request/reply pair to the request's type.
			if c < l4.ICMPType {
				sp = uint16(c)
			}
			dp = 0
		}
	case 6, 17, 132:
	default:
		sp, dp = 0, 0
	}
	if ip.Fragment && ip.FragOffset > 0 {
		sp, dp = 0, 0
	}
	if flowOrdered(ip.Src, ip.Dst, sp, dp) {
		return FlowKey{Proto: ip.Proto, A: ip.Src, B: ip.Dst, PA: sp, PB: dp}, true
	}
	return FlowKey{Proto: ip.Proto, A: ip.Dst, B: ip.Src, PA: dp, PB: sp}, false
}

func icmpPair(proto, typ uint8) (uint8, bool) {
	if proto == 1 {
		c, ok := icmp4Pairs[typ]
		return c, ok
	}
	c, ok := icmp6Pairs[typ]
	return c, ok
}

// Add counts one packet of the record's innermost level.
func (t *FlowTable) Add(rec *decode.Record) {
	l := rec.Inner()
	if l == nil {
		return
	}
	f, ab, ok := t.memo.Get(0, l)
	if !ok {
		var key FlowKey
		key, ab = KeyOf(l)
		f = t.lookup(&key, rec, l, ab)
		t.memo.Set(0, l, ab, f)
	}
	f.Packets++
	f.Bytes += uint64(rec.WireLen)
	if ab {
		f.PacketsAB++
	} else {
		f.PacketsBA++
	}
	if rec.Time > f.Last {
		f.Last = rec.Time
	}
	if rec.NumTunnel > 0 {
		f.Tunnel = rec.Tunnels[rec.NumTunnel-1].Kind
	}
}

// lookup returns the flow of key, adding it (first seen in this packet) when
// it is new.
func (t *FlowTable) lookup(key *FlowKey, rec *decode.Record, l *decode.Level, ab bool) *Flow {
	f := t.flows[*key]
	if f == nil {
		if len(t.flows) >= t.Limit {
			t.evict()
		}
		f = t.alloc()
		*f = Flow{Key: *key, First: rec.Time, FirstFrame: rec.Frame, Input: rec.Input, InitiatorA: ab,
			FirstSport: l.L4.SrcPort, FirstDport: l.L4.DstPort}
		if l.L4.Proto == 1 || l.L4.Proto == 58 {
			f.FirstSport, f.FirstDport = uint16(l.L4.ICMPType), uint16(l.L4.ICMPCode)
		}
		t.flows[*key] = f
	}
	return f
}

func (t *FlowTable) alloc() *Flow {
	if n := len(t.free); n > 0 {
		f := t.free[n-1]
		t.free = t.free[:n-1]
		return f
	}
	return new(Flow)
}

// evict removes the flows at or below the median packet count.
func (t *FlowTable) evict() {
	t.memo.Forget()
	t.scratch = t.scratch[:0]
	for _, f := range t.flows {
		t.scratch = append(t.scratch, f.Packets)
	}
	slices.Sort(t.scratch)
	median := t.scratch[len(t.scratch)/2]
	for k, f := range t.flows {
		if f.Packets <= median {
			if f.Packets > t.MaxEvicted {
				t.MaxEvicted = f.Packets
			}
			delete(t.flows, k)
			t.free = append(t.free, f)
			t.Evicted++
		}
	}
	t.Evictions++
}

// Top returns the n flows with the most packets (bytes break ties).
func (t *FlowTable) Top(n int) []Flow {
	all := make([]Flow, 0, len(t.flows))
	for _, f := range t.flows {
		all = append(all, *f)
	}
	slices.SortFunc(all, func(a, b Flow) int {
		switch {
		case a.Packets != b.Packets:
			return cmpDesc(a.Packets, b.Packets)
		case a.Bytes != b.Bytes:
			return cmpDesc(a.Bytes, b.Bytes)
		}
		return int(a.FirstFrame) - int(b.FirstFrame)
	})
	if len(all) > n {
		all = all[:n]
	}
	return all
}

func cmpDesc(a, b uint64) int {
	if a > b {
		return -1
	}
	return 1
}

// CommunityID returns the flow's Community ID, computed from its first packet.
func (f *Flow) CommunityID() string {
	k := f.Key
	if f.InitiatorA {
		return CommunityID(k.Proto, k.A, k.B, f.FirstSport, f.FirstDport)
	}
	return CommunityID(k.Proto, k.B, k.A, f.FirstSport, f.FirstDport)
}
