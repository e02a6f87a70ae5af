// Package seqwin counts missing, duplicated and reordered sequence numbers of
// one packet stream (an ESP SA, a WireGuard session) with a fixed sliding
// window, the way an anti-replay window does, without allocating.
//
// A sequence number that arrives after a higher one but still inside the
// window is "reordered", not missing. A number is counted missing only when
// the window has moved past it (or at the end, when it was never seen). The
// stream starts at the first number seen: a capture that begins mid-session
// does not count the numbers before it.
package seqwin

import "math/bits"

// Size is the window length in sequence numbers.
const Size = 1024

const words = Size / 64

// Result classifies one sequence number.
type Result uint8

// Results of Add.
const (
	First     Result = iota // the first number of the stream
	InOrder                 // exactly one above the highest so far
	Gap                     // above the highest, skipping at least one number
	Reordered               // below the highest, inside the window, not seen before
	Duplicate               // seen before (inside the window): a replay or duplicate
	TooOld                  // below the window: cannot tell late from duplicate
)

// Window tracks one stream. The zero value is ready to use.
type Window struct {
	started bool
	virtual bool // top is the announced first number, not yet seen
	first   uint64
	top     uint64 // highest number seen
	bits    [words]uint64
	// Received counts numbers accepted as new (first, in order, gap, reordered).
	Received uint64
	// Missing counts numbers the window has moved past without seeing them.
	Missing uint64
	// Skipped counts the numbers jumped over by gaps when they happened
	// (some of them may arrive later, reordered).
	Skipped uint64
	// Reordered counts numbers that arrived late but inside the window.
	Reordered uint64
	// Duplicates counts numbers seen twice inside the window.
	Duplicates uint64
	// TooOld counts numbers below the window (late beyond it, or duplicates).
	TooOld uint64
}

// Started reports whether any number was added.
func (w *Window) Started() bool { return w.started }

// First returns the first number seen.
func (w *Window) First() uint64 { return w.first }

// Top returns the highest number seen.
func (w *Window) Top() uint64 { return w.top }

func (w *Window) has(s uint64) bool { return w.bits[(s%Size)/64]&(1<<(s%64)) != 0 }
func (w *Window) set(s uint64)      { w.bits[(s%Size)/64] |= 1 << (s % 64) }
func (w *Window) clear(s uint64)    { w.bits[(s%Size)/64] &^= 1 << (s % 64) }

func (w *Window) unseen() uint64 {
	n := 0
	for _, b := range w.bits {
		n += bits.OnesCount64(b)
	}
	return uint64(Size - n)
}

// StartAt begins the stream at first, known from elsewhere (a WireGuard
// session after its handshake starts at counter 0), so numbers missing
// before the first one received are counted too.
func (w *Window) StartAt(first uint64) {
	*w = Window{started: true, virtual: true, first: first, top: first}
	for i := range w.bits {
		w.bits[i] = ^uint64(0)
	}
	w.clear(first)
}

// Add records sequence number s and says what it was.
func (w *Window) Add(s uint64) Result {
	if w.virtual && s == w.top {
		w.virtual = false
		w.set(s)
		w.Received++
		return InOrder
	}
	w.virtual = w.virtual && s < w.top
	if !w.started {
		w.started, w.first, w.top = true, s, s
		// Positions before the first number count as seen.
		for i := range w.bits {
			w.bits[i] = ^uint64(0)
		}
		w.Received++
		return First
	}
	if s > w.top {
		d := s - w.top
		if d >= Size {
			w.Missing += w.unseen() + (d - Size)
			w.bits = [words]uint64{}
		} else {
			for x := w.top + 1; x < s; x++ {
				// x reuses the slot of x-Size, which leaves the window.
				if !w.has(x) {
					w.Missing++
				}
				w.clear(x)
			}
			if !w.has(s) {
				w.Missing++
			}
		}
		w.set(s)
		w.top = s
		w.Received++
		w.Skipped += d - 1
		if d == 1 {
			return InOrder
		}
		return Gap
	}
	if w.top-s >= Size || s < w.first {
		w.TooOld++
		return TooOld
	}
	if w.has(s) {
		w.Duplicates++
		return Duplicate
	}
	w.set(s)
	w.Received++
	w.Reordered++
	return Reordered
}

// Lost returns the numbers never seen between the first and the highest:
// those the window moved past plus those still unseen inside it.
func (w *Window) Lost() uint64 {
	if !w.started {
		return 0
	}
	return w.Missing + w.unseen()
}

// Expected returns how many numbers the stream should have delivered from
// the first to the highest seen.
func (w *Window) Expected() uint64 {
	if !w.started {
		return 0
	}
	return w.top - w.first + 1
}

// Unwrap32 extends a 32-bit sequence number (ESP without, or the low half
// of, extended sequence numbers) to 64 bits next to the highest number seen
// so far, so a wrap of the low 32 bits continues the count (RFC 4303
// appendix A): the result is the 64-bit value closest to top.
func Unwrap32(top uint64, started bool, low uint32) uint64 {
	if !started {
		return uint64(low)
	}
	hi := top >> 32
	c := hi<<32 | uint64(low)
	switch {
	case c+1<<31 < top: // far below: the low half wrapped
		c += 1 << 32
	case c > top+1<<31 && hi > 0: // far above: a late number from before a wrap
		c -= 1 << 32
	}
	return c
}
