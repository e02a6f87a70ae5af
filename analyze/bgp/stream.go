package bgp

import (
	"bytes"
	"encoding/binary"
)

// RawMessage is one BGP message cut out of a TCP byte stream. Data and Frames
// are reused for the next message of the same Stream: copy what you keep.
type RawMessage struct {
	Data    []byte   // the whole message, header included
	Frames  []uint64 // frames that carried its bytes, in stream order, without repeats
	Time    int64    // capture time of the frame that completed it
	Skipped int      // bytes discarded just before it to find a BGP marker again
}

// Stream reassembles one direction of a TCP connection into BGP messages. It
// orders segments by sequence number, drops retransmitted bytes (also partial
// overlaps), holds segments that arrive early until the hole is filled, and
// when a hole never fills (a capture gap) skips it and finds the next message
// by its 16-byte all-ones marker. The zero value is ready; Emit must be set.
//
// Stream keeps at most MaxPending bytes of early segments and the bytes of one
// incomplete message; memory does not grow with the length of the stream.
type Stream struct {
	// Emit receives every complete message in order.
	Emit func(m *RawMessage)

	// Counters.
	Bytes         uint64 // payload bytes accepted in order
	Retransmitted uint64 // segments (or parts of segments) seen before
	Gaps          uint64 // holes skipped because the missing bytes never came
	GapBytes      uint64 // bytes missing in those holes
	Resyncs       uint64 // times the marker had to be searched
	SkippedBytes  uint64 // bytes thrown away while searching the marker

	started bool
	next    uint32 // sequence number of the next in-order byte
	synced  bool   // buf[off:] starts at a message boundary
	buf     []byte
	off     int
	spans   []span // which frame delivered which bytes of buf[off:]
	pending []pendingSeg
	pendLen int
	msg     RawMessage
	skipped int
}

// MaxPending bounds the bytes of early (out-of-order) segments a Stream holds
// before it declares the hole in front of them a capture gap.
const MaxPending = 1 << 20

// maxPendingSegs bounds the number of early segments.
const maxPendingSegs = 256

type span struct {
	end   int // offset in buf (absolute) just after this frame's bytes
	frame uint64
	time  int64
}

type pendingSeg struct {
	seq   uint32
	data  []byte
	frame uint64
	time  int64
}

// SYN tells the stream the initial sequence number (from a SYN segment): data
// starts at seq+1 and at a message boundary.
func (s *Stream) SYN(seq uint32) {
	s.reset()
	s.started = true
	s.synced = true
	s.next = seq + 1
}

func (s *Stream) reset() {
	s.buf = s.buf[:0]
	s.off = 0
	s.spans = s.spans[:0]
	s.pending = s.pending[:0]
	s.pendLen = 0
	s.skipped = 0
}

// Add feeds one segment's payload. Complete messages are passed to Emit
// before Add returns.
func (s *Stream) Add(seq uint32, payload []byte, frame uint64, t int64) {
	if len(payload) == 0 {
		return
	}
	if !s.started {
		// The capture starts mid-connection: the first byte may be anywhere
		// inside a message.
		s.started = true
		s.next = seq
		s.synced = false
	}
	d := int32(seq - s.next)
	if d < 0 {
		if int(-d) >= len(payload) {
			s.Retransmitted++
			return
		}
		s.Retransmitted++
		payload = payload[-d:]
		d = 0
	}
	if d > 0 {
		s.hold(seq, payload, frame, t)
		return
	}
	s.appendData(payload, frame, t)
	s.drainPending()
	s.cut()
}

// Flush is called at the end of the capture: holes that were never filled
// are skipped so the segments behind them still yield their messages.
func (s *Stream) Flush() {
	for len(s.pending) > 0 {
		s.skipGap()
		s.drainPending()
		s.cut()
	}
}

// Incomplete returns the bytes of a message that had started but not ended.
func (s *Stream) Incomplete() int { return len(s.buf) - s.off }

func (s *Stream) hold(seq uint32, payload []byte, frame uint64, t int64) {
	for _, p := range s.pending {
		if p.seq == seq && len(p.data) >= len(payload) {
			s.Retransmitted++
			return
		}
	}
	s.pending = append(s.pending, pendingSeg{seq: seq, data: append([]byte(nil), payload...), frame: frame, time: t})
	s.pendLen += len(payload)
	for s.pendLen > MaxPending || len(s.pending) > maxPendingSegs {
		s.skipGap()
		s.drainPending()
		s.cut()
	}
}

// skipGap jumps over the hole in front of the earliest pending segment.
func (s *Stream) skipGap() {
	if len(s.pending) == 0 {
		return
	}
	best := 0
	for i := range s.pending {
		if int32(s.pending[i].seq-s.pending[best].seq) < 0 {
			best = i
		}
	}
	missing := s.pending[best].seq - s.next
	s.Gaps++
	s.GapBytes += uint64(missing)
	// The incomplete message in front of the hole can never be completed.
	s.SkippedBytes += uint64(len(s.buf) - s.off)
	s.skipped += len(s.buf) - s.off
	s.buf = s.buf[:0]
	s.off = 0
	s.spans = s.spans[:0]
	s.synced = false
	s.next = s.pending[best].seq
}

func (s *Stream) drainPending() {
	for progress := true; progress && len(s.pending) > 0; {
		progress = false
		for i := 0; i < len(s.pending); i++ {
			p := s.pending[i]
			d := int32(p.seq - s.next)
			if d > 0 {
				continue
			}
			s.pending[i] = s.pending[len(s.pending)-1]
			s.pending = s.pending[:len(s.pending)-1]
			s.pendLen -= len(p.data)
			i--
			if int(-d) >= len(p.data) {
				s.Retransmitted++
				continue
			}
			s.appendData(p.data[-d:], p.frame, p.time)
			progress = true
		}
	}
}

func (s *Stream) appendData(b []byte, frame uint64, t int64) {
	s.buf = append(s.buf, b...)
	s.next += uint32(len(b))
	s.Bytes += uint64(len(b))
	if n := len(s.spans); n > 0 && s.spans[n-1].frame == frame {
		s.spans[n-1].end = len(s.buf)
		return
	}
	s.spans = append(s.spans, span{end: len(s.buf), frame: frame, time: t})
}

// cut emits every complete message at the front of the buffer.
func (s *Stream) cut() {
	for {
		data := s.buf[s.off:]
		if !s.synced {
			i := findMarker(data)
			if i < 0 {
				// Keep the last 18 bytes: a marker may straddle segments.
				drop := max(0, len(data)-(HeaderLen-1))
				s.consume(drop, true)
				return
			}
			if i > 0 {
				s.consume(i, true)
			}
			s.Resyncs++
			s.synced = true
			continue
		}
		if len(data) < HeaderLen {
			break
		}
		length, _, err := Header(data)
		if err != nil {
			// Not a message boundary after all: search the next marker.
			s.synced = false
			s.consume(1, true)
			continue
		}
		if len(data) < length {
			break
		}
		s.msg.Data = data[:length]
		s.msg.Frames = s.msg.Frames[:0]
		start := s.off
		for _, sp := range s.spans {
			if sp.end <= start {
				continue
			}
			s.msg.Frames = append(s.msg.Frames, sp.frame)
			s.msg.Time = sp.time
			if sp.end >= start+length {
				break
			}
		}
		s.msg.Skipped = s.skipped
		s.skipped = 0
		if s.Emit != nil {
			s.Emit(&s.msg)
		}
		s.consume(length, false)
	}
	s.compact()
}

func (s *Stream) consume(n int, skip bool) {
	if n <= 0 {
		return
	}
	s.off += n
	if skip {
		s.SkippedBytes += uint64(n)
		s.skipped += n
	}
	i := 0
	for i < len(s.spans) && s.spans[i].end <= s.off {
		i++
	}
	if i > 0 {
		s.spans = append(s.spans[:0], s.spans[i:]...)
	}
}

func (s *Stream) compact() {
	if s.off == 0 {
		return
	}
	if s.off == len(s.buf) {
		s.buf = s.buf[:0]
		s.off = 0
		s.spans = s.spans[:0]
		return
	}
	if s.off < len(s.buf)/2 && s.off < 4096 {
		return
	}
	n := copy(s.buf, s.buf[s.off:])
	s.buf = s.buf[:n]
	for i := range s.spans {
		s.spans[i].end -= s.off
	}
	s.off = 0
}

var marker = bytes.Repeat([]byte{0xff}, 16)

// findMarker returns the offset of the first plausible BGP header (marker,
// length 19..65535, known type) in b, -1 when there is none, or the offset of
// a marker whose header is not complete yet.
func findMarker(b []byte) int {
	from := 0
	for {
		i := bytes.Index(b[from:], marker)
		if i < 0 {
			return -1
		}
		i += from
		if len(b)-i < HeaderLen {
			return i
		}
		l := int(binary.BigEndian.Uint16(b[i+16:]))
		t := b[i+18]
		if l >= HeaderLen && t >= MsgOpen && t <= MsgRouteRefresh {
			return i
		}
		from = i + 1
	}
}
