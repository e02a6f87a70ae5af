package compare

import (
	"testing"
	"time"

	"github.com/vpndiag/vpndiag/probe/ping"
)

// TestSeriesRecorder: 1500 echoes 10 ms apart go into 500 intervals of 3
// echoes (30 ms); every tenth echo unanswered; duplicates ignored; only the
// echoes sent count as lost.
func TestSeriesRecorder(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	r := newSeriesRecorder(start, 1500, 10*time.Millisecond)
	for seq := 0; seq < 1400; seq++ {
		if seq%10 == 0 {
			continue
		}
		r.reply(ping.Reply{Seq: seq, RTT: time.Duration(seq%3+1) * time.Millisecond})
		r.reply(ping.Reply{Seq: seq, RTT: time.Hour, Duplicate: true})
	}
	s := r.finish(1400)
	if s.Width != 30*time.Millisecond || len(s.Buckets) != 467 || !s.Start.Equal(start) {
		t.Fatalf("width %v, %d intervals", s.Width, len(s.Buckets))
	}
	replies, lost := 0, 0
	for _, b := range s.Buckets {
		replies += b.Replies
		lost += b.Lost
	}
	if replies != 1260 || lost != 140 {
		t.Errorf("%d replies, %d lost; want 1260, 140", replies, lost)
	}
	// Interval 0: echoes 0 (lost), 1 (2 ms), 2 (3 ms).
	if b := s.Buckets[0]; b.Replies != 2 || b.Lost != 1 || b.Mean() != 2500*time.Microsecond {
		t.Errorf("first interval %+v mean %v", b, b.Mean())
	}
}

// TestSeriesRecorderWraps: ICMP sequence numbers wrap after 65535; 70000
// echoes are all counted once, in order.
func TestSeriesRecorderWraps(t *testing.T) {
	r := newSeriesRecorder(time.Unix(0, 0), 70000, time.Millisecond)
	for n := 0; n < 70000; n++ {
		r.reply(ping.Reply{Seq: n % 65536, RTT: time.Millisecond})
	}
	s := r.finish(70000)
	replies, lost := 0, 0
	for _, b := range s.Buckets {
		replies += b.Replies
		lost += b.Lost
	}
	if replies != 70000 || lost != 0 || len(s.Buckets) > maxSeriesPoints {
		t.Errorf("%d replies, %d lost in %d intervals", replies, lost, len(s.Buckets))
	}
}
