package correlate

import (
	"math"
)

// maxSight is how many sightings of one packet the engine keeps (hops
// beyond it are counted as seen but not timed).
const maxSight = 8

// MaxHops is the largest number of hops trace correlates (a path is
// encoded in 4 bits per hop).
const MaxHops = 15

// sightRec is one sighting of an in-flight packet.
type sightRec struct {
	t      int64
	frame  uint64
	tupH   uint64
	hop    uint8
	tunnel uint8
	ttl    uint8
}

// entry is one packet in flight: every hop that saw it within the window.
type entry struct {
	key         uint64
	first, last int64
	class       uint32
	n           uint8
	seen        uint16 // bitmask of hops
	s           [maxSight]sightRec
	lastTup     tuple
	tcpData     bool   // a TCP segment carrying data (or SYN/FIN)
	tcpEnd      uint32 // its end: what an ACK covering it acknowledges
	// Pairing through encrypted tunnels (pair.go).
	plainLen uint16 // IP length of a plain packet, 0 if not pairable as one
	encLen   uint16 // encrypted payload length
	encKind  uint8  // tunnel kind of an encrypted packet, 0 if not encrypted
	key2     uint64 // key of the encrypted packet merged into this one
	paired   bool   // carries a merged encrypted packet (or was merged: dead)
	dead     bool   // merged into another entry: not accounted on its own
}

// patKey identifies a path pattern of a class: the hops that saw a packet,
// in time order (4 bits per hop, hop index + 1), and the hops that could not
// have seen it because their capture had not started or had ended (cens).
type patKey struct {
	class uint32
	seq   uint64
	cens  uint16
	// paired patterns (a plain packet and its encrypted carrier) take the
	// class's path through the tunnel; the others the plain path.
	paired bool
	// acked are hops that did not see this TCP data segment but saw the
	// receiver acknowledge it: their capture missed it.
	acked uint16
}

type patStat struct {
	count    uint64
	examples []uint64    // frames at the last hop that saw packets of this pattern
	series   *lossSeries // packets per interval of time; nil beyond maxSeriesPatterns
}

// segKey is a pair of consecutive sightings (class, from hop, to hop).
type segKey struct {
	class uint32
	a, b  uint8
}

type segStat struct {
	hist      histogram
	prevA     int64
	prevB     int64
	reordered uint64
}

// hopStats are the engine's per-hop counters.
type hopStats struct {
	packets, unmatchable, dups, matched, missed uint64
}

// maxAckFlows bounds the TCP flow directions whose highest ACK the engine
// follows (per engine, all hops together).
const maxAckFlows = 1 << 16

// ackKey is one TCP flow direction at one hop: acks[ackKey] is the highest
// number that hop saw acknowledged for the data of that direction.
type ackKey struct {
	flow uint64 // tuple hash of the data direction
	hop  uint8
}

// engine matches packets across hops in one time-ordered pass. Memory is
// bounded by the packets in flight (seen within the window) plus per-class
// aggregates, never by the capture size.
type engine struct {
	nh     int
	window int64
	start  []int64 // corrected time of each hop's first frame
	end    []int64 // corrected time of each hop's last frame; MaxInt64 until it ends
	now    int64

	ring       []entry
	mask       uint64
	head, tail uint64
	idx        map[uint64]uint64

	classes  classTable
	patterns map[patKey]*patStat
	segs     map[segKey]*segStat
	nat      natTable
	hops     []hopStats
	tunnels  tunnelTable
	acks     map[ackKey]uint32
	entries  uint64
	// Pairing (pair.go): the next entry to decide, encrypted entries in
	// the ring, the pair window, pairs made.
	pcur    uint64
	encLive int
	pairWin int64
	pairs   uint64
	// late are packets last seen within the window before some hop's
	// capture ended; whether that hop should have seen them is decided at
	// the end, from the delays observed on the segment (see settleLate).
	late []lateEntry
	// loss is the interval grid of the patterns' time series (lossseries.go).
	loss lossClock
}

type lateEntry struct {
	pk      patKey
	first   int64
	last    int64
	lastHop uint8
	frame   uint64
	ends    uint16 // hops whose capture ended within the window after last
}

func newEngine(nh int, window int64) *engine {
	e := &engine{
		nh: nh, window: window,
		start: make([]int64, nh), end: make([]int64, nh),
		ring: make([]entry, 1024), mask: 1023,
		idx:      make(map[uint64]uint64, 4096),
		patterns: map[patKey]*patStat{},
		segs:     map[segKey]*segStat{},
		hops:     make([]hopStats, nh),
		acks:     map[ackKey]uint32{},
		now:      math.MinInt64,
		pairWin:  int64(DefaultPairWindow),
	}
	e.classes.init()
	e.nat.init()
	e.tunnels.init()
	for i := range e.end {
		e.start[i] = math.MaxInt64
		e.end[i] = math.MaxInt64
	}
	return e
}

// add is one frame of hop h, in (corrected) time order across all hops.
func (e *engine) add(h int, s *sighting) {
	hs := &e.hops[h]
	hs.packets++
	t := s.t
	if t > e.now {
		e.now = t
		if e.pairWin > 0 {
			e.pair(false)
		}
		e.expire(false)
	}
	if s.encKind != 0 {
		e.tunnels.add(h, s)
	}
	if s.hasAck {
		e.noteAck(h, s)
	}
	if s.key == 0 {
		hs.unmatchable++
		return
	}
	if seq, ok := e.idx[s.key]; ok && seq >= e.head {
		en := &e.ring[seq&e.mask]
		if (en.key == s.key || en.key2 == s.key) && t-en.last <= e.window {
			bit := uint16(1) << uint(h)
			if en.seen&bit != 0 {
				hs.dups++
				return
			}
			en.seen |= bit
			if t > en.last {
				en.last = t
			}
			prev := &en.s[0]
			if en.n > 0 {
				prev = &en.s[en.n-1]
			}
			if prev.tupH != s.tupH && !en.paired {
				e.nat.record(prev.hop, &en.lastTup, uint8(h), &s.tup)
			}
			en.lastTup = s.tup
			if int(en.n) < maxSight {
				en.s[en.n] = sightRec{t: t, frame: s.frame, tupH: s.tupH, hop: uint8(h), tunnel: s.tunnel, ttl: s.ttl}
				en.n++
			}
			return
		}
	}
	if e.tail-e.head == uint64(len(e.ring)) {
		e.grow()
	}
	seq := e.tail
	e.tail++
	en := &e.ring[seq&e.mask]
	*en = entry{key: s.key, first: t, last: t, n: 1, seen: uint16(1) << uint(h), lastTup: s.tup,
		class: e.classes.lookup(s), tcpData: s.tcpData, tcpEnd: s.tcpEnd,
		plainLen: s.plainLen, encLen: s.encLen, encKind: s.encKind}
	if s.encKind != 0 {
		e.encLive++
	}
	en.s[0] = sightRec{t: t, frame: s.frame, tupH: s.tupH, hop: uint8(h), tunnel: s.tunnel, ttl: s.ttl}
	e.idx[s.key] = seq
	e.entries++
}

// noteAck records the highest acknowledgment hop h saw for the flow
// direction s acknowledges (serial number arithmetic: sequence numbers wrap).
func (e *engine) noteAck(h int, s *sighting) {
	k := ackKey{flow: s.ackFlow, hop: uint8(h)}
	if a, ok := e.acks[k]; ok {
		if int32(s.ack-a) > 0 {
			e.acks[k] = s.ack
		}
		return
	}
	if len(e.acks) < maxAckFlows {
		e.acks[k] = s.ack
	}
}

// ackedAt returns the hops that did not see the TCP data segment en but saw
// its receiver acknowledge it (an ACK at or beyond its end, for the flow as
// the last hop that saw the segment saw it: NAT between that hop and the
// acknowledging one hides the ACK).
func (e *engine) ackedAt(en *entry) uint16 {
	var m uint16
	flow := en.s[en.n-1].tupH
	for h := 0; h < e.nh; h++ {
		if en.seen&(1<<uint(h)) != 0 {
			continue
		}
		if a, ok := e.acks[ackKey{flow: flow, hop: uint8(h)}]; ok && int32(a-en.tcpEnd) >= 0 {
			m |= 1 << uint(h)
		}
	}
	return m
}

func (e *engine) grow() {
	n := make([]entry, 2*len(e.ring))
	mask := uint64(len(n) - 1)
	for s := e.head; s < e.tail; s++ {
		n[s&mask] = e.ring[s&e.mask]
	}
	e.ring, e.mask = n, mask
}

// expire finalizes the packets whose last sighting is older than the
// window (all of them when flush is set).
func (e *engine) expire(flush bool) {
	if flush && e.pairWin > 0 {
		e.pair(true)
	}
	for e.head < e.tail {
		en := &e.ring[e.head&e.mask]
		if !flush && e.now-en.last <= e.window {
			return
		}
		if !en.dead {
			e.finalize(en)
		}
		if en.encKind != 0 {
			e.encLive--
		}
		if s, ok := e.idx[en.key]; ok && s == e.head {
			delete(e.idx, en.key)
		}
		if en.key2 != 0 {
			if s, ok := e.idx[en.key2]; ok && s == e.head {
				delete(e.idx, en.key2)
			}
		}
		e.head++
	}
}

// finalize accounts one packet whose window has closed: its path pattern,
// the delays between consecutive sightings, and whether NAT or a tunnel
// touched it.
func (e *engine) finalize(en *entry) {
	if !e.loss.set {
		e.loss.start(e.firstStart())
	}
	// Path order: the TTL only decreases along a path, so a higher TTL was
	// seen earlier whatever the clocks say; equal TTLs go by time. A
	// paired packet's TTLs are of two different IP headers: time only.
	for i := 1; i < int(en.n) && !en.paired; i++ {
		for j := i; j > 0 && en.s[j].ttl > en.s[j-1].ttl; j-- {
			en.s[j], en.s[j-1] = en.s[j-1], en.s[j]
		}
	}
	var seq uint64
	for i := 0; i < int(en.n); i++ {
		seq |= uint64(en.s[i].hop+1) << (4 * uint(i))
	}
	var cens, ends uint16
	for h := 0; h < e.nh; h++ {
		switch {
		case en.last < e.start[h] || en.last > e.end[h]:
			cens |= 1 << uint(h)
		case e.end[h] != math.MaxInt64 && en.last+e.window > e.end[h]:
			ends |= 1 << uint(h)
		}
	}
	pk := patKey{class: en.class, seq: seq, cens: cens, paired: en.paired}
	if en.tcpData {
		pk.acked = e.ackedAt(en)
	}
	if ends != 0 {
		e.late = append(e.late, lateEntry{pk: pk, first: en.first, last: en.last, lastHop: en.s[en.n-1].hop, frame: en.s[en.n-1].frame, ends: ends})
	} else {
		e.count(pk, en.s[en.n-1].frame, en.first)
	}
	c := &e.classes.list[en.class]
	c.packets++
	if en.n < 2 {
		return
	}
	c.matched++
	nat := false
	for i := 0; i < int(en.n); i++ {
		sr := &en.s[i]
		e.hops[sr.hop].matched++
		if sr.tunnel != 0 {
			c.tunnels |= 1 << sr.tunnel
		}
		if i == 0 {
			continue
		}
		pr := &en.s[i-1]
		if pr.tupH != sr.tupH && !en.paired {
			nat = true
		}
		sk := segKey{class: en.class, a: pr.hop, b: sr.hop}
		st := e.segs[sk]
		if st == nil {
			st = &segStat{prevA: math.MinInt64}
			e.segs[sk] = st
		}
		st.hist.add(sr.t - pr.t)
		// Reordering: this packet left a after the previous one of the
		// class on this segment but reached b before it.
		if st.prevA != math.MinInt64 && pr.t > st.prevA && sr.t < st.prevB {
			st.reordered++
		}
		st.prevA, st.prevB = pr.t, sr.t
	}
	switch {
	case en.n > c.maxN:
		c.maxN, c.atMax, c.natAtMax = en.n, 1, 0
		if nat {
			c.natAtMax = 1
		}
	case en.n == c.maxN:
		c.atMax++
		if nat {
			c.natAtMax++
		}
	}
	if nat {
		c.nat++
	}
}

// firstStart is the earliest corrected time any hop's capture started at.
func (e *engine) firstStart() int64 {
	t := int64(math.MaxInt64)
	for _, s := range e.start {
		t = min(t, s)
	}
	if t == math.MaxInt64 {
		t = e.now
	}
	return t
}

// count adds one packet, first seen at first, to its path pattern.
func (e *engine) count(pk patKey, frame uint64, first int64) {
	p := e.patterns[pk]
	if p == nil {
		p = &patStat{series: e.loss.newSeries()}
		e.patterns[pk] = p
	}
	p.count++
	if p.series != nil {
		e.loss.add(p.series, first)
	}
	if len(p.examples) < 5 {
		p.examples = append(p.examples, frame)
	}
}

// settleLate decides, for packets seen shortly before a hop's capture ended,
// whether that hop should have seen them: yes when the capture went on for
// longer than twice the largest delay observed towards it from the packet's
// last hop (plus 10 ms), never more than the window.
func (e *engine) settleLate() {
	allow := make([]int64, e.nh*e.nh)
	for i := range allow {
		allow[i] = -1
	}
	for k, st := range e.segs {
		i := int(k.a)*e.nh + int(k.b)
		if st.hist.max > allow[i] {
			allow[i] = st.hist.max
		}
	}
	// A hop that packets reach before the last hop did (upstream of it)
	// was passed before the last sighting: no allowance needed.
	for a := 0; a < e.nh; a++ {
		for h := 0; h < e.nh; h++ {
			if allow[a*e.nh+h] < 0 && allow[h*e.nh+a] >= 0 {
				allow[a*e.nh+h] = -2
			}
		}
	}
	for _, l := range e.late {
		cens := l.pk.cens
		for h := 0; h < e.nh; h++ {
			if l.ends&(1<<uint(h)) == 0 {
				continue
			}
			a := e.window
			switch m := allow[int(l.lastHop)*e.nh+h]; {
			case m == -2:
				a = 0
			case m >= 0:
				a = min(a, 2*m+10e6)
			}
			if l.last+a > e.end[h] {
				cens |= 1 << uint(h)
			}
		}
		pk := l.pk
		pk.cens = cens
		e.count(pk, l.frame, l.first)
	}
	e.late = nil
}
