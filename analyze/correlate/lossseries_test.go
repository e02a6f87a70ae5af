package correlate

import (
	"testing"
	"time"
)

// TestLossOverTime: 300 NAT'd queries at 100/s; the second second's 100 are
// all lost inside the gateway. The segment's series has three one-second
// intervals: 100 sent and 0 lost, 100 and 100, 100 and 0, summing to the
// segment's totals; the answers' segment loses nothing in any interval.
func TestLossOverTime(t *testing.T) {
	in, out := natPair(300, func(i int) bool { return i >= 100 && i < 200 })
	r := correlate(t, []string{"gw-in", "gw-out"}, hopsOf(in, out), Options{})
	s := seg(t, r, "gw-in", "gw-out", "UDP to 198.18.2.53:53")
	if s.Sent != 300 || s.Lost != 100 {
		t.Fatalf("segment %+v, want 300 sent, 100 lost", s)
	}
	if w := r.LossIntervalWidth(); w != time.Second {
		t.Errorf("interval %v, want 1s", w)
	}
	b, complete := r.LossOverTime(s)
	if !complete || len(b) != 3 {
		t.Fatalf("%d intervals (complete %v), want 3: %+v", len(b), complete, b)
	}
	want := [][2]int{{100, 0}, {100, 100}, {100, 0}}
	for i, x := range b {
		if x.Sent != want[i][0] || x.Lost != want[i][1] {
			t.Errorf("interval %d: sent %d lost %d, want %v", i, x.Sent, x.Lost, want[i])
		}
		if st := time.Unix(0, t0).Add(time.Duration(i) * time.Second).UTC(); !x.Start.Equal(st) {
			t.Errorf("interval %d starts %v, want %v", i, x.Start, st)
		}
	}
	ans := seg(t, r, "gw-out", "gw-in", "UDP from 198.18.2.53:53")
	b, _ = r.LossOverTime(ans)
	sent := 0
	for _, x := range b {
		sent += x.Sent
		if x.Lost != 0 {
			t.Errorf("answers lost %d at %v", x.Lost, x.Start)
		}
	}
	if uint64(sent) != ans.Sent || sent != 200 {
		t.Errorf("answers: %d sent in the intervals, segment says %d, want 200", sent, ans.Sent)
	}
}

// TestLossOverTimeTotals: on the generated 4-hop trace (1% lost on the last
// segment) every segment's intervals add up to its totals.
func TestLossOverTimeTotals(t *testing.T) {
	r := runGen(t, 4, 300_000) // 3 s at 100k packets/s
	for i := range r.Segments {
		s := &r.Segments[i]
		b, complete := r.LossOverTime(s)
		var sent, lost uint64
		for _, x := range b {
			sent += uint64(x.Sent)
			lost += uint64(x.Lost)
		}
		if !complete || sent != s.Sent || lost != s.Lost {
			t.Errorf("%s->%s %s: intervals hold %d sent %d lost (complete %v), segment %d/%d",
				s.From, s.To, s.Class, sent, lost, complete, s.Sent, s.Lost)
		}
		if len(b) < 3 || len(b) > 4 {
			t.Errorf("%s->%s %s: %d intervals over 3 s", s.From, s.To, s.Class, len(b))
		}
	}
}

// TestLossClockBounded: one packet per second for just over two hours in one series,
// and a series starting at an odd interval: the grid doubles twice (4 s
// intervals), no series exceeds maxLossBuckets, nothing is lost in the
// merges, every full interval holds 4 packets. A packet before a series'
// first interval extends it backwards.
func TestLossClockBounded(t *testing.T) {
	var c lossClock
	start := int64(1_700_000_000)*1e9 + 300e6
	c.start(start)
	a, b := c.newSeries(), c.newSeries()
	const n = 7300
	for i := 0; i < n; i++ {
		ts := start + int64(i)*1e9
		c.add(a, ts)
		if i >= 3 {
			c.add(b, ts)
		}
	}
	if c.width != 4e9 {
		t.Fatalf("width %v, want 4s", time.Duration(c.width))
	}
	if c.origin != int64(1_700_000_000)*1e9 {
		t.Errorf("origin %d not on a whole second", c.origin)
	}
	for name, s := range map[string]*lossSeries{"a": a, "b": b} {
		var sum uint64
		for _, v := range s.n {
			sum += uint64(v)
		}
		want := uint64(n)
		if name == "b" {
			want = n - 3
		}
		if sum != want || len(s.n) > maxLossBuckets {
			t.Errorf("series %s: %d packets in %d intervals, want %d in at most %d", name, sum, len(s.n), want, maxLossBuckets)
		}
		for k := 1; k < len(s.n)-1; k++ {
			if s.n[k] != 4 {
				t.Errorf("series %s interval %d (base %d): %d packets, want 4", name, k, s.base, s.n[k])
				break
			}
		}
	}
	if a.base != 0 || b.base != 0 || a.n[0] != 4 || b.n[0] != 1 {
		t.Errorf("bases %d %d, first intervals %d %d; want 0 0, 4 1", a.base, b.base, a.n[0], b.n[0])
	}
	late := c.newSeries()
	c.add(late, start+5000e9)
	c.add(late, start+100e9)
	if late.base != 25 || len(late.n) != 1250-25+1 || late.n[0] != 1 || late.n[len(late.n)-1] != 1 {
		t.Errorf("extended series base %d len %d", late.base, len(late.n))
	}
}

// TestSeriesPatternsBounded: beyond maxSeriesPatterns patterns get no
// series and the segments they touch say so.
func TestSeriesPatternsBounded(t *testing.T) {
	var c lossClock
	c.start(t0)
	for i := 0; i < maxSeriesPatterns; i++ {
		if c.newSeries() == nil {
			t.Fatalf("pattern %d has no series", i)
		}
	}
	if c.newSeries() != nil {
		t.Errorf("pattern %d has a series, want none", maxSeriesPatterns+1)
	}
	var s Segment
	s.addSeries(&patStat{count: 3}, true)
	var r Result
	if _, complete := r.LossOverTime(&s); complete {
		t.Error("segment with a pattern without series says complete")
	}
}

// TestDelayBins: 200 packets 50 µs apart: every delay is in the one bin
// [50, 51) µs, for the segment and for the hop pair.
func TestDelayBins(t *testing.T) {
	var a, b []pk
	for i := 0; i < 200; i++ {
		p := pk{t: t0 + int64(i)*ms1, src: "198.18.1.2", dst: "198.18.3.2", sport: 40000, dport: 5000, id: uint16(i + 1), ttl: 64, payload: payloadN(i)}
		a = append(a, p)
		p.t += 50_000
		p.ttl = 63
		b = append(b, p)
	}
	r := correlate(t, []string{"a", "b"}, hopsOf(a, b), Options{})
	s := seg(t, r, "a", "b", "UDP to 198.18.3.2:5000")
	bins := s.DelayBins()
	if len(bins) != 1 || bins[0].Packets != 200 || bins[0].LoMs != 0.05 || bins[0].HiMs != 0.051 {
		t.Errorf("bins %+v, want one [0.05, 0.051) ms with 200", bins)
	}
	hd := r.HopDelays()
	if len(hd) != 1 || hd[0].From != "a" || hd[0].To != "b" || hd[0].Packets != 200 || hd[0].Classes != 1 || len(hd[0].Bins) != 1 {
		t.Errorf("hop delays %+v", hd)
	}
}

// TestHistBounds: every bucket's interval maps back to the bucket.
func TestHistBounds(t *testing.T) {
	prevHi := 0.0
	for i := 0; i < histBuckets-1; i++ {
		lo, hi := histBounds(i)
		if lo != prevHi || histIndex(uint64(lo)) != i || histIndex(uint64(hi)-1) != i {
			t.Fatalf("bucket %d [%v, %v): index(lo) %d, index(hi-1) %d, previous hi %v", i, lo, hi,
				histIndex(uint64(lo)), histIndex(uint64(hi)-1), prevHi)
		}
		if v := histValue(i); v < lo || v >= hi {
			t.Fatalf("bucket %d value %v outside [%v, %v)", i, v, lo, hi)
		}
		prevHi = hi
	}
}
