package bgp

import (
	"bytes"
	"math/rand"
	"net/netip"
	"testing"

	"github.com/vpndiag/vpndiag/analyze/analyzetest"
)

// realMessages returns the BGP messages of a real capture (all speakers), in
// order, as the reference byte stream for reassembly tests.
func realMessages(t testing.TB) [][]byte {
	t.Helper()
	segs, _ := readTCP(t, analyzetest.Corpus(t, "the-tcpdump-group_tcpdump/bgp-4byte-asn.pcap"))
	tr := NewTracker()
	var out [][]byte
	tr.OnMessage = func(p *Pair, f netip.Addr, raw *RawMessage, m *Message, err error) {
		out = append(out, append([]byte(nil), raw.Data...))
	}
	for i := range segs {
		tr.Segment(&segs[i])
	}
	if len(out) != 35 {
		t.Fatalf("%d messages, want 35 (tshark: 33 frames, two with 2 messages)", len(out))
	}
	return out
}

type seg struct {
	seq   uint32
	data  []byte
	frame uint64
}

// split cuts the stream at the given sizes (cycled).
func split(stream []byte, isn uint32, sizes ...int) []seg {
	var out []seg
	for off, i := 0, 0; off < len(stream); i++ {
		n := min(sizes[i%len(sizes)], len(stream)-off)
		out = append(out, seg{seq: isn + 1 + uint32(off), data: stream[off : off+n], frame: uint64(len(out) + 1)})
		off += n
	}
	return out
}

func run(segs []seg, isn uint32, syn bool) (msgs [][]byte, frames [][]uint64, s *Stream) {
	s = &Stream{Emit: func(m *RawMessage) {
		msgs = append(msgs, append([]byte(nil), m.Data...))
		frames = append(frames, append([]uint64(nil), m.Frames...))
	}}
	if syn {
		s.SYN(isn)
	}
	for _, g := range segs {
		s.Add(g.seq, g.data, g.frame, int64(g.frame))
	}
	s.Flush()
	return msgs, frames, s
}

func TestStreamReassembly(t *testing.T) {
	ref := realMessages(t)
	stream := bytes.Join(ref, nil)
	rng := rand.New(rand.NewSource(1))
	randomSizes := make([]int, 50)
	for i := range randomSizes {
		randomSizes[i] = 1 + rng.Intn(60)
	}
	const isn = 0xfffffff0 // sequence numbers wrap inside the stream
	cases := []struct {
		name   string
		segs   func() []seg
		syn    bool
		want   int // messages expected
		gaps   uint64
		retx   bool
		resync bool
	}{
		{"one message per segment", func() []seg {
			var out []seg
			off := 0
			for i, m := range ref {
				out = append(out, seg{isn + 1 + uint32(off), m, uint64(i + 1)})
				off += len(m)
			}
			return out
		}, true, len(ref), 0, false, false},
		{"all in one segment", func() []seg { return split(stream, isn, len(stream)) }, true, len(ref), 0, false, false},
		{"one byte per segment", func() []seg { return split(stream, isn, 1) }, true, len(ref), 0, false, false},
		{"random splits", func() []seg { return split(stream, isn, randomSizes...) }, true, len(ref), 0, false, false},
		{"every segment twice", func() []seg {
			var out []seg
			for _, g := range split(stream, isn, randomSizes...) {
				out = append(out, g, g)
			}
			return out
		}, true, len(ref), 0, true, false},
		{"overlapping retransmissions", func() []seg {
			var out []seg
			for i, g := range split(stream, isn, 7, 30, 11) {
				out = append(out, g)
				if i > 0 && len(g.data) > 3 {
					// Resend the last bytes of this and the start of the next.
					back := g.seq + uint32(len(g.data)) - 3
					off := int(back - (isn + 1))
					end := min(off+6, len(stream))
					out = append(out, seg{back, stream[off:end], g.frame})
				}
			}
			return out
		}, true, len(ref), 0, true, false},
		{"reordered neighbours", func() []seg {
			s := split(stream, isn, randomSizes...)
			for i := 0; i+1 < len(s); i += 2 {
				s[i], s[i+1] = s[i+1], s[i]
			}
			return s
		}, true, len(ref), 0, false, false},
		{"mid-stream start without SYN", func() []seg {
			s := split(stream, isn, 5)
			return s[1:] // the capture starts 5 bytes into the first message
		}, false, len(ref) - 1, 0, false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			msgs, _, s := run(c.segs(), isn, c.syn)
			if len(msgs) != c.want {
				t.Fatalf("%d messages, want %d", len(msgs), c.want)
			}
			off := len(ref) - c.want
			for i := range msgs {
				if !bytes.Equal(msgs[i], ref[off+i]) {
					t.Fatalf("message %d differs", i)
				}
			}
			if s.Gaps != c.gaps || (s.Retransmitted > 0) != c.retx || (s.Resyncs > 0) != c.resync {
				t.Errorf("gaps %d retransmitted %d resyncs %d", s.Gaps, s.Retransmitted, s.Resyncs)
			}
			if s.Incomplete() != 0 {
				t.Errorf("%d bytes left incomplete", s.Incomplete())
			}
		})
	}
}

// TestStreamGap drops one segment: the message it belonged to is lost, the
// marker search finds the next one, everything after is intact.
func TestStreamGap(t *testing.T) {
	ref := realMessages(t)
	stream := bytes.Join(ref, nil)
	segs := split(stream, 1000, 10)
	// Drop the segment holding bytes 30..39: inside ref[1] when ref[0] is short.
	drop := 3
	lostFrom := 30
	var kept []seg
	for i, g := range segs {
		if i != drop {
			kept = append(kept, g)
		}
	}
	msgs, frames, s := run(kept, 1000, true)
	// Messages fully before the gap, plus those starting after it.
	var want [][]byte
	off := 0
	for _, m := range ref {
		if off+len(m) <= lostFrom || off >= lostFrom+10 {
			want = append(want, m)
		}
		off += len(m)
	}
	if len(msgs) != len(want) {
		t.Fatalf("%d messages, want %d", len(msgs), len(want))
	}
	for i := range want {
		if !bytes.Equal(msgs[i], want[i]) {
			t.Fatalf("message %d differs", i)
		}
	}
	if s.Gaps != 1 || s.GapBytes != 10 || s.Resyncs != 1 {
		t.Errorf("gaps %d (%d bytes) resyncs %d; want 1 (10 bytes), 1", s.Gaps, s.GapBytes, s.Resyncs)
	}
	// Every message's frames are consecutive 10-byte segments covering it.
	for i, f := range frames {
		if len(f) == 0 || len(f) > len(msgs[i])/10+2 {
			t.Errorf("message %d (%d bytes) frames %v", i, len(msgs[i]), f)
		}
	}
}

// TestStreamFrames checks the frame numbers of a message split over segments
// and of several messages in one segment.
func TestStreamFrames(t *testing.T) {
	ka := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 19, 4}
	two := append(append([]byte(nil), ka...), ka...)
	msgs, frames, _ := run([]seg{{1, ka[:10], 7}, {11, ka[10:], 8}, {20, two, 9}}, 0, true)
	if len(msgs) != 3 || len(frames[0]) != 2 || frames[0][0] != 7 || frames[0][1] != 8 || frames[1][0] != 9 || frames[2][0] != 9 {
		t.Errorf("messages %d frames %v", len(msgs), frames)
	}
}

// FuzzStream drives the reassembler and parser with arbitrary segments cut
// from arbitrary bytes (seeded with a real BGP stream): no panic, no message
// that does not start with a marker, bounded memory.
func FuzzStream(f *testing.F) {
	ref := realMessages(f)
	f.Add(bytes.Join(ref, nil), []byte{10, 3, 200, 0, 7})
	f.Add(ref[len(ref)-1], []byte{1})
	f.Fuzz(func(t *testing.T, data []byte, cuts []byte) {
		if len(cuts) == 0 {
			cuts = []byte{64}
		}
		s := &Stream{Emit: func(m *RawMessage) {
			if len(m.Data) < HeaderLen || !bytes.Equal(m.Data[:16], marker) {
				t.Fatalf("emitted a message without marker")
			}
			_, _ = Parse(m.Data, Options{Guess: true})
			_, _ = Parse(m.Data, Options{AS2: true})
		}}
		s.SYN(0)
		seq := uint32(1)
		for i, off := 0, 0; off < len(data); i++ {
			c := cuts[i%len(cuts)]
			n := min(int(c&0x3f)+1, len(data)-off)
			switch c >> 6 {
			case 1: // retransmit an earlier part
				s.Add(seq-uint32(min(off, 5)), data[off-min(off, 5):off+n], uint64(i), 0)
			case 2: // skip ahead (a hole that fills later)
				if off+n < len(data) {
					m := min(n, len(data)-off-n)
					s.Add(seq+uint32(n), data[off+n:off+n+m], uint64(i), 0)
				}
				s.Add(seq, data[off:off+n], uint64(i), 0)
			default:
				s.Add(seq, data[off:off+n], uint64(i), 0)
			}
			off += n
			seq += uint32(n)
		}
		s.Flush()
		if s.pendLen > MaxPending {
			t.Fatalf("pending %d", s.pendLen)
		}
	})
}
