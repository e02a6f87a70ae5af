package tcp

import (
	"github.com/vpndiag/vpndiag/analyze"
	"github.com/vpndiag/vpndiag/analyze/decode"
)

// maxExamples is how many example frames a flow keeps per kind of event.
const maxExamples = 3

// ref is one frame of one input.
type ref struct {
	input int
	frame uint64
}

// frames is a small fixed list of example frames.
type frames struct {
	n   uint8
	ref [maxExamples]ref
}

func (f *frames) add(input int, frame uint64) {
	if int(f.n) < maxExamples {
		f.ref[f.n] = ref{input, frame}
		f.n++
	}
}

// dir is the state of one direction of a flow (from the sender's side).
type dir struct {
	nextSeq  uint32 // highest sequence number + segment length seen
	lastAck  uint32
	win      uint16 // last advertised window (unscaled)
	haveSeq  bool
	haveAck  bool
	zeroOpen bool  // the last window advertised was zero
	zeroAt   int64 // when the current zero window started

	packets      uint64
	dataSegments uint64 // segments carrying payload or SYN/FIN
	bytes        uint64 // payload bytes
	retrans      uint64
	dupAcks      uint64
	zeroWindows  uint64 // segments advertising a zero window
	zeroLongest  int64  // longest zero-window period, ns
	resets       uint64
}

// flow is one TCP connection seen at one capture point.
type flow struct {
	key     analyze.FlowKey
	input   int
	d       [2]dir // 0: A to B, 1: B to A (FlowKey order)
	first   int64
	last    int64
	packets uint64
	synSeen bool // a SYN without ACK opened it in the capture
	refused bool // reset in answer to a SYN (no data ever sent)

	firstFrame uint64
	retransEx  frames
	zeroEx     frames
	resetEx    frames
}

// seqLT reports a < b in 32-bit sequence space.
func seqLT(a, b uint32) bool { return int32(a-b) < 0 }

// segment updates f with one TCP segment travelling in direction i.
func (f *flow) segment(rec *decode.Record, l *decode.Level, i int) {
	s, r := &f.d[i], &f.d[1-i]
	t := &l.L4
	f.packets++
	s.packets++
	if rec.Time > f.last {
		f.last = rec.Time
	}
	flags := t.Flags
	plen := uint32(max(t.PayloadLen, 0))
	seglen := plen
	if flags&decode.TCPSyn != 0 {
		seglen++
		if flags&decode.TCPAck == 0 {
			f.synSeen = true
		}
	}
	if flags&decode.TCPFin != 0 {
		seglen++
	}
	s.bytes += uint64(plen)
	if flags&decode.TCPRst != 0 {
		s.resets++
		if s.resets == 1 {
			f.resetEx.add(rec.Input, rec.Frame)
		}
		if f.synSeen && f.d[0].bytes == 0 && f.d[1].bytes == 0 {
			f.refused = true
		}
		return
	}

	// Duplicate ACK, as Wireshark defines it: nothing new, same window,
	// same sequence and acknowledgment numbers as before.
	if seglen == 0 && t.Window != 0 && s.haveAck && flags&(decode.TCPSyn|decode.TCPFin) == 0 &&
		t.Window == s.win && t.Seq == s.nextSeq && t.Ack == s.lastAck && s.haveSeq {
		s.dupAcks++
	}
	if seglen > 0 {
		s.dataSegments++
		keepAlive := seglen <= 1 && flags&(decode.TCPSyn|decode.TCPFin) == 0 && s.haveSeq && t.Seq == s.nextSeq-1
		zeroProbe := seglen == 1 && r.zeroOpen
		if s.haveSeq && seqLT(t.Seq, s.nextSeq) && !keepAlive && !zeroProbe {
			s.retrans++
			f.retransEx.add(rec.Input, rec.Frame)
		}
		if end := t.Seq + seglen; !s.haveSeq || seqLT(s.nextSeq, end) {
			s.nextSeq = end
		}
		s.haveSeq = true
	} else if !s.haveSeq {
		s.nextSeq, s.haveSeq = t.Seq, true
	}
	if flags&decode.TCPAck != 0 {
		s.lastAck, s.haveAck = t.Ack, true
	}
	s.win = t.Window
	if t.Window == 0 && flags&(decode.TCPSyn|decode.TCPFin) == 0 {
		s.zeroWindows++
		if !s.zeroOpen {
			s.zeroOpen, s.zeroAt = true, rec.Time
			f.zeroEx.add(rec.Input, rec.Frame)
		}
	} else if t.Window != 0 && s.zeroOpen {
		s.zeroOpen = false
		s.zeroLongest = max(s.zeroLongest, rec.Time-s.zeroAt)
	}
}

// closeZero ends open zero-window periods at the end of the capture.
func (f *flow) closeZero(end int64) {
	for i := range f.d {
		if s := &f.d[i]; s.zeroOpen {
			s.zeroLongest = max(s.zeroLongest, end-s.zeroAt)
		}
	}
}
