package mtu

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/vpndiag/vpndiag/analyze"
	"github.com/vpndiag/vpndiag/analyze/decode"
)

// maxSpans bounds the disjoint byte ranges kept per fragment train.
const maxSpans = 8

type span struct{ lo, hi uint32 }

// fragKey identifies the fragments of one IP packet.
type fragKey struct {
	input    int
	level    uint8
	proto    uint8
	src, dst netip.Addr
	id       uint32
}

// train is the fragments of one IP packet seen so far.
type train struct {
	key         fragKey
	first, last int64
	spans       [maxSpans]span
	ns          int
	overflow    bool
	total       int64 // payload length from the last fragment, -1 until seen
	fragments   uint16
	maxSize     uint16
	sport       uint16
	dport       uint16
	tunnel      bool
	ex          analyze.Examples
}

// add merges [lo, hi) into the covered ranges.
func (t *train) add(lo, hi uint32) {
	if hi <= lo {
		return
	}
	i := 0
	for i < t.ns && t.spans[i].hi < lo {
		i++
	}
	j := i
	for j < t.ns && t.spans[j].lo <= hi {
		lo, hi = min(lo, t.spans[j].lo), max(hi, t.spans[j].hi)
		j++
	}
	if j == i { // no overlap: insert at i
		if t.ns == maxSpans {
			t.overflow = true
			return
		}
		copy(t.spans[i+1:t.ns+1], t.spans[i:t.ns])
		t.spans[i] = span{lo, hi}
		t.ns++
		return
	}
	t.spans[i] = span{lo, hi}
	n := copy(t.spans[i+1:], t.spans[j:t.ns])
	t.ns = i + 1 + n
}

func (t *train) complete() bool {
	return !t.overflow && t.total >= 0 && t.ns >= 1 && t.spans[0].lo == 0 && int64(t.spans[0].hi) >= t.total
}

// missing describes the byte ranges of the payload never captured.
func (t *train) missing() string {
	var parts []string
	at := uint32(0)
	for _, s := range t.spans[:t.ns] {
		if s.lo > at {
			parts = append(parts, fmt.Sprintf("%d-%d", at, s.lo-1))
		}
		at = max(at, s.hi)
	}
	switch {
	case t.total < 0:
		parts = append(parts, fmt.Sprintf("%d-end (last fragment never seen)", at))
	case int64(at) < t.total:
		parts = append(parts, fmt.Sprintf("%d-%d", at, t.total-1))
	}
	return strings.Join(parts, ", ")
}

// flowKey groups fragmented packets by one-way flow.
type fragFlowKey struct {
	input    int
	level    uint8
	proto    uint8
	src, dst netip.Addr
}

type fragFlow struct {
	key       fragFlowKey
	packets   uint64 // fragmented packets reassembled
	fragments uint64
	failed    uint64
	pending   uint64
	maxSize   uint16
	sport     uint16
	dport     uint16
	tunnel    bool
	ex        analyze.Examples
}

// failure is a train that never completed.
type failure struct {
	key       fragKey
	fragments uint16
	missing   string
	ex        analyze.Examples
}

type fragState struct {
	trains    map[fragKey]*train
	free      []*train
	flows     map[fragFlowKey]*fragFlow
	order     []fragFlowKey
	failures  []failure
	failed    uint64
	untracked uint64 // fragments of trains not tracked (limits)
}

func (s *fragState) init() {
	s.trains = map[fragKey]*train{}
	s.flows = map[fragFlowKey]*fragFlow{}
}

// tunnelProto reports whether an IP payload is a tunnel.
func tunnelProto(l *decode.Level) bool {
	switch l.IP.Proto {
	case 4, 41, 47, 50, 115:
		return true
	case 17:
		for _, p := range [2]uint16{l.L4.SrcPort, l.L4.DstPort} {
			switch p {
			case 500, 4500, 4789, 8472, 6081, 1701, 51820:
				return true
			}
		}
	}
	return false
}

// fragment handles one IP fragment at level i.
func (s *fragState) fragment(rec *decode.Record, i int, l *decode.Level) {
	k := fragKey{input: rec.Input, level: uint8(i), proto: l.IP.Proto, src: l.IP.Src, dst: l.IP.Dst, id: l.IP.ID}
	t := s.trains[k]
	if t == nil {
		if len(s.trains) >= maxTrains {
			s.expire(rec.Time-int64(ReassemblyTimeout), nil)
		}
		if len(s.trains) >= maxTrains {
			s.untracked++
			return
		}
		if n := len(s.free); n > 0 {
			t = s.free[n-1]
			s.free = s.free[:n-1]
		} else {
			t = new(train)
		}
		*t = train{key: k, first: rec.Time, total: -1}
		s.trains[k] = t
	}
	t.last = rec.Time
	t.fragments++
	t.ex.Add(rec.Input, rec.Frame)
	off := uint32(l.IP.FragOffset)
	n := uint32(0)
	if l.IP.TotalLen > l.IP.HeaderLen {
		n = uint32(l.IP.TotalLen - l.IP.HeaderLen)
	}
	t.add(off, off+n)
	if !l.IP.MoreFrags {
		t.total = int64(off + n)
	}
	t.maxSize = max(t.maxSize, l.IP.TotalLen)
	if off == 0 {
		t.sport, t.dport = l.L4.SrcPort, l.L4.DstPort
		t.tunnel = tunnelProto(l)
		for j := 0; j < int(rec.NumTunnel); j++ {
			t.tunnel = t.tunnel || int(rec.Tunnels[j].Level) == i
		}
	}
	if t.complete() {
		f := s.flow(t)
		if f != nil {
			f.packets++
		}
		s.release(t)
	}
}

// flow returns the per-flow counters for t's packet, folding in t.
func (s *fragState) flow(t *train) *fragFlow {
	k := fragFlowKey{input: t.key.input, level: t.key.level, proto: t.key.proto, src: t.key.src, dst: t.key.dst}
	f := s.flows[k]
	if f == nil {
		if len(s.flows) >= maxFragFlows {
			s.untracked += uint64(t.fragments)
			return nil
		}
		f = &fragFlow{key: k}
		s.flows[k] = f
		s.order = append(s.order, k)
	}
	f.fragments += uint64(t.fragments)
	f.maxSize = max(f.maxSize, t.maxSize)
	if t.sport != 0 || t.dport != 0 {
		f.sport, f.dport = t.sport, t.dport
	}
	f.tunnel = f.tunnel || t.tunnel
	for _, r := range t.ex.IDs() {
		f.ex.Add(r.Input, r.Frame)
	}
	return f
}

func (s *fragState) release(t *train) {
	delete(s.trains, t.key)
	s.free = append(s.free, t)
}

// expire fails the trains whose last fragment came before cutoff. When ends
// is given, each train is judged against its own input's end instead: those
// within EndGrace of it are pending.
func (s *fragState) expire(cutoff int64, ends []int64) {
	for _, t := range s.trains {
		c := cutoff
		if ends != nil {
			c = ends[t.key.input] - int64(EndGrace)
		}
		failed := t.last < c
		if !failed && ends == nil {
			continue
		}
		f := s.flow(t)
		if failed {
			s.failed++
			if f != nil {
				f.failed++
			}
			if len(s.failures) < maxICMP {
				s.failures = append(s.failures, failure{key: t.key, fragments: t.fragments, missing: t.missing(), ex: t.ex})
			}
		} else if f != nil {
			f.pending++
		}
		s.release(t)
	}
}
