package mtu

import (
	"net/netip"

	"github.com/vpndiag/vpndiag/analyze"
	"github.com/vpndiag/vpndiag/analyze/decode"
)

// tooBigKey groups fragmentation-needed / packet-too-big messages by
// capture point, sender and advertised MTU.
type tooBigKey struct {
	input  int
	sender netip.Addr
	mtu    uint32
}

type tooBig struct {
	key       tooBigKey
	count     uint64
	first     int64
	ex        analyze.Examples
	dsts      [4]netip.Addr // destinations of the quoted packets
	nd        int
	srcs      [4]netip.Addr // senders of the quoted packets
	ns        int
	quotedMax uint16
	ignored   uint64 // too-big packets on the quoted paths afterwards
	ignoredEx analyze.Examples
}

// watch is a path an ICMP said is too small for some packet: later packets
// larger than mtu on it mean the sender ignored (or never got) the message.
type watch struct {
	mtu   uint32
	since int64
	tb    *tooBig
}

type icmpState struct {
	msgs    map[tooBigKey]*tooBig
	order   []tooBigKey
	watches map[pathKey]*watch
	pathMTU map[pathKey]uint32 // smallest advertised MTU toward dst (src unset)
	dropped uint64
}

func (s *icmpState) init() {
	s.msgs = map[tooBigKey]*tooBig{}
	s.watches = map[pathKey]*watch{}
	s.pathMTU = map[pathKey]uint32{}
}

func (s *icmpState) watching() bool { return len(s.watches) > 0 }

func addAddr(set []netip.Addr, n *int, a netip.Addr) {
	for _, x := range set[:*n] {
		if x == a {
			return
		}
	}
	if *n < len(set) {
		set[*n] = a
		*n++
	}
}

// tooBig records one ICMP fragmentation-needed or ICMPv6 packet-too-big.
func (s *icmpState) tooBig(rec *decode.Record, l *decode.Level) {
	k := tooBigKey{input: rec.Input, sender: l.IP.Src, mtu: l.L4.MTU}
	tb := s.msgs[k]
	if tb == nil {
		if len(s.msgs) >= maxICMP {
			s.dropped++
			return
		}
		tb = &tooBig{key: k, first: rec.Time}
		s.msgs[k] = tb
		s.order = append(s.order, k)
	}
	tb.count++
	tb.ex.Add(rec.Input, rec.Frame)
	q := &l.L4.Quoted
	if !q.Valid {
		return
	}
	addAddr(tb.dsts[:], &tb.nd, q.Dst)
	addAddr(tb.srcs[:], &tb.ns, q.Src)
	tb.quotedMax = max(tb.quotedMax, q.TotalLen)
	if k.mtu == 0 {
		return
	}
	pk := pathKey{input: rec.Input, dst: q.Dst}
	if m, ok := s.pathMTU[pk]; (!ok || k.mtu < m) && len(s.pathMTU) < maxICMP {
		s.pathMTU[pk] = k.mtu
	}
	wk := pathKey{input: rec.Input, src: q.Src, dst: q.Dst}
	if w := s.watches[wk]; w == nil {
		if len(s.watches) < maxICMP {
			s.watches[wk] = &watch{mtu: k.mtu, since: rec.Time, tb: tb}
		}
	} else if k.mtu < w.mtu {
		w.mtu, w.since, w.tb = k.mtu, rec.Time, tb
	}
}

// check counts a packet too big for a path an ICMP already reported.
func (s *icmpState) check(rec *decode.Record, l *decode.Level) {
	w := s.watches[pathKey{input: rec.Input, src: l.IP.Src, dst: l.IP.Dst}]
	if w == nil || uint32(l.IP.TotalLen) <= w.mtu || rec.Time-w.since < int64(IgnoredAfter) {
		return
	}
	if l.IP.Version == 4 && !l.IP.DontFrag {
		return // the router may fragment it
	}
	w.tb.ignored++
	w.tb.ignoredEx.Add(rec.Input, rec.Frame)
}

// mtuToward returns the smallest MTU advertised for packets to dst at input.
func (s *icmpState) mtuToward(input int, dst netip.Addr) (uint32, bool) {
	m, ok := s.pathMTU[pathKey{input: input, dst: dst}]
	return m, ok
}
