package correlate

import (
	"math"
	"time"

	"github.com/vpndiag/vpndiag/report"
)

// Loss over time.
//
// Every path pattern also counts its packets per interval of time (by when
// the packet was first seen on its path), so the same inference that turns
// patterns into per-segment counts (paths) turns them into per-segment
// series: a segment's sent and lost packets per interval are the sums of
// the series of the patterns that made its totals.
//
// Intervals are LossInterval (1 s) wide. When a capture spans more than
// maxLossBuckets intervals, every series merges neighbouring intervals in
// pairs (the width doubles), so no series holds more than maxLossBuckets
// counters. Only the first maxSeriesPatterns patterns get a series (at most
// 14 KiB each); later patterns are counted in the totals only, and the
// segments they touch say their series are incomplete.

// LossInterval is the width of the loss-over-time intervals of a capture
// that spans at most an hour (longer ones have wider intervals).
const LossInterval = time.Second

const (
	// maxLossBuckets bounds the intervals of one series.
	maxLossBuckets = 3600
	// maxSeriesPatterns bounds the path patterns with a series.
	maxSeriesPatterns = 1024
	// lossSeriesCap is the capacity a series starts with (a minute of
	// one-second intervals) so that steady traffic rarely grows it.
	lossSeriesCap = 64
)

// lossClock is the engine's common interval grid: interval i covers
// [origin + i*width, origin + (i+1)*width) in corrected time.
type lossClock struct {
	origin int64
	width  int64
	set    bool
	all    []*lossSeries
}

// lossSeries counts one pattern's packets per interval, from interval base.
type lossSeries struct {
	base int
	n    []uint32
}

// start fixes the grid's origin at t (the earliest corrected time of any
// frame), rounded down to a whole interval of Unix time.
func (c *lossClock) start(t int64) {
	if c.set {
		return
	}
	c.width = int64(LossInterval)
	c.origin = t - ((t%c.width)+c.width)%c.width
	c.set = true
}

// newSeries returns a series for a new pattern, or nil once
// maxSeriesPatterns have one.
func (c *lossClock) newSeries() *lossSeries {
	if len(c.all) >= maxSeriesPatterns {
		return nil
	}
	s := &lossSeries{n: make([]uint32, 0, lossSeriesCap)}
	c.all = append(c.all, s)
	return s
}

// add counts one packet first seen at t in series s. It allocates only when
// the series grows past its capacity or t is before the series' first
// interval.
func (c *lossClock) add(s *lossSeries, t int64) {
	d := t - c.origin
	if d < 0 {
		d = 0
	}
	for d/c.width >= maxLossBuckets {
		c.double()
	}
	i := int(d / c.width)
	if len(s.n) == 0 {
		s.base = i
	}
	k := i - s.base
	if k < 0 {
		n := make([]uint32, len(s.n)-k, max(cap(s.n), len(s.n)-k))
		copy(n[-k:], s.n)
		s.n, s.base, k = n, i, 0
	}
	for len(s.n) <= k {
		s.n = append(s.n, 0)
	}
	if s.n[k] != math.MaxUint32 {
		s.n[k]++
	}
}

// double makes the intervals twice as wide, merging neighbours in every
// series in place.
func (c *lossClock) double() {
	c.width *= 2
	for _, s := range c.all {
		if len(s.n) == 0 {
			s.base /= 2
			continue
		}
		nb := s.base / 2
		last := (s.base+len(s.n)-1)/2 - nb
		for k := range s.n {
			v := s.n[k]
			s.n[k] = 0
			s.n[(s.base+k)/2-nb] += v
		}
		s.n = s.n[:last+1]
		s.base = nb
	}
}

// seriesRef is one pattern's contribution to a segment: its packets were
// sent into the segment, and lost on it when lost is set.
type seriesRef struct {
	s    *lossSeries
	lost bool
}

// addSeries records that pattern p's packets count towards the segment
// (and as lost on it when lost is set).
func (s *Segment) addSeries(p *patStat, lost bool) {
	if p.series == nil {
		s.partial = true
		return
	}
	s.series = append(s.series, seriesRef{s: p.series, lost: lost})
}

// LossOverTime returns what the segment carried per interval: the packets
// sent into it and, of those, lost on it, by when each packet was first
// seen on its path (corrected to the reference hop's clock). Intervals are
// LossInterval wide, or wider for captures longer than an hour (at most
// 3600 intervals); they run from the segment's first packet to its last,
// including empty ones. complete is false when some of the segment's
// packets are not in the intervals (the trace had more path patterns than
// the engine keeps series for); the totals in Segment are always complete.
func (r *Result) LossOverTime(s *Segment) (buckets []report.LossBucket, complete bool) {
	if len(s.series) == 0 || r.lossWidth <= 0 {
		return nil, !s.partial
	}
	lo, hi := math.MaxInt, math.MinInt
	for _, ref := range s.series {
		if len(ref.s.n) == 0 {
			continue
		}
		lo = min(lo, ref.s.base)
		hi = max(hi, ref.s.base+len(ref.s.n)-1)
	}
	if hi < lo {
		return nil, !s.partial
	}
	buckets = make([]report.LossBucket, hi-lo+1)
	for i := range buckets {
		buckets[i].Start = time.Unix(0, r.lossOrigin+int64(lo+i)*r.lossWidth).UTC()
	}
	for _, ref := range s.series {
		for k, v := range ref.s.n {
			b := &buckets[ref.s.base+k-lo]
			b.Sent += int(v)
			if ref.lost {
				b.Lost += int(v)
			}
		}
	}
	return buckets, !s.partial
}

// LossIntervalWidth is the width of the intervals LossOverTime returns.
func (r *Result) LossIntervalWidth() time.Duration { return time.Duration(r.lossWidth) }
