package correlate

import "github.com/vpndiag/vpndiag/analyze/decode"

// Pairing plain packets with the encrypted packets that carry them.
//
// Through an encrypted tunnel (ESP, WireGuard) the packet at the LAN hop
// and the packet at the underlay hop share nothing readable, so they are
// two packets to the key-based matching. They are paired by size and
// timing, and only when that is unambiguous:
//   - size: the encrypted payload must be what the tunnel makes of the
//     plain packet's length (WireGuard: exactly 32 bytes more, after padding
//     to 16; ESP: 22 to 60 bytes more, for its IV, padding, trailer and ICV);
//   - timing: the two packets were first seen (after clock correction)
//     within PairWindow of each other, at different hops;
//   - uniqueness: the encrypted packet is the closest size-compatible one to
//     the plain packet and the plain packet the closest to it, each with no
//     other candidate nearly as close (the runner-up at least 4 times
//     farther, and 50 µs farther) and no more than maxPairScan candidates
//     in the window.
// A paired encrypted packet's sightings join the plain packet's, so the
// plain packet's class gets the full path (LAN -> tunnel end -> underlay ->
// tunnel end -> LAN) and underlay loss is placed on the underlay segment
// for that class. What cannot be paired stays as it was: the plain class's
// path from LAN hop to LAN hop, the encrypted class on the underlay.

// maxPairScan bounds the entries looked at on each side of a packet; more
// in the window means the traffic is too dense to pair by timing.
const maxPairScan = 64

// pairMargin is the least distance between the best and the runner-up
// candidate, on top of the ratio.
const pairMargin = 50_000 // ns

// pairable reports whether an encrypted payload of m bytes (tunnel kind)
// can carry a plain IP packet of l bytes.
func pairable(l, m uint16, kind uint8) bool {
	switch decode.TunnelKind(kind) {
	case decode.TunnelWireGuard:
		return m >= l+32 && m <= (l+15)&^15+32
	case decode.TunnelESP, decode.TunnelESPinUDP:
		return m >= l+22 && m <= l+60
	}
	return false
}

// pair decides the pairing of every entry first seen more than two pair
// windows ago (all of them when flush is set): by then every candidate of
// the entry, and every candidate of its candidates, has been seen.
func (e *engine) pair(flush bool) {
	if e.pcur < e.head {
		e.pcur = e.head
	}
	for ; e.pcur < e.tail; e.pcur++ {
		en := &e.ring[e.pcur&e.mask]
		if !flush && e.now-en.first <= 2*e.pairWin {
			return
		}
		if e.encLive > 0 && en.plainLen != 0 && !en.paired {
			e.tryPair(e.pcur)
		}
	}
}

// nearest finds, around the entry at seq x, the closest entry accepted by
// ok within the pair window, and whether it is unambiguous.
func (e *engine) nearest(x uint64, ok func(c *entry) bool) (best uint64, found bool) {
	en := &e.ring[x&e.mask]
	var d1, d2 int64 = -1, -1
	n := 0
	consider := func(y uint64) bool { // false: stop scanning this way
		c := &e.ring[y&e.mask]
		d := c.first - en.first
		if d < 0 {
			d = -d
		}
		if d > e.pairWin {
			return false
		}
		if c.dead || !ok(c) {
			return true
		}
		n++
		switch {
		case d1 < 0 || d < d1:
			d2, d1, best = d1, d, y
		case d2 < 0 || d < d2:
			d2 = d
		}
		return true
	}
	dense := false
	for y, k := x, 0; y > e.head; k++ {
		if k == maxPairScan {
			dense = true
			break
		}
		y--
		if !consider(y) {
			break
		}
	}
	for y, k := x+1, 0; y < e.tail; y, k = y+1, k+1 {
		if k == maxPairScan {
			dense = true
			break
		}
		if !consider(y) {
			break
		}
	}
	if d1 < 0 || dense || n > maxPairScan {
		return 0, false
	}
	if d2 >= 0 && (d2 < 4*d1 || d2-d1 < pairMargin) {
		return 0, false
	}
	return best, true
}

// tryPair pairs the plain entry at seq x with an encrypted entry if that is
// unambiguous in both directions.
func (e *engine) tryPair(x uint64) {
	p := &e.ring[x&e.mask]
	y, ok := e.nearest(x, func(c *entry) bool {
		return c.encKind != 0 && !c.paired && c.seen&p.seen == 0 && pairable(p.plainLen, c.encLen, c.encKind)
	})
	if !ok {
		return
	}
	q := &e.ring[y&e.mask]
	back, ok := e.nearest(y, func(c *entry) bool {
		return c.plainLen != 0 && !c.paired && c.seen&q.seen == 0 && pairable(c.plainLen, q.encLen, q.encKind)
	})
	if !ok || back != x {
		return
	}
	e.merge(p, q, x)
}

// merge moves the sightings of the encrypted entry q into the plain entry p
// (at seq x): later sightings of either packet join p.
func (e *engine) merge(p, q *entry, x uint64) {
	for i := 0; i < int(q.n) && int(p.n) < maxSight; i++ {
		s := q.s[i]
		j := int(p.n)
		for ; j > 0 && p.s[j-1].t > s.t; j-- {
			p.s[j] = p.s[j-1]
		}
		p.s[j] = s
		p.n++
	}
	p.seen |= q.seen
	p.last = max(p.last, q.last)
	p.key2 = q.key
	p.paired = true
	q.dead = true
	q.paired = true
	e.idx[q.key] = x
	e.pairs++
}
