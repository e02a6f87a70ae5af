package compare

import (
	"sync"
	"time"

	"github.com/vpndiag/vpndiag/probe/ping"
)

// RTT over time. Each path's echoes are grouped by when they were scheduled
// (the path's start plus sequence × interval, so the two interleaved paths
// share one time axis) into at most maxSeriesPoints intervals of a whole
// number of echoes each: the replies' mean round trip and the echoes that
// got no reply.

// maxSeriesPoints bounds the intervals of an RTT series.
const maxSeriesPoints = 600

// RTTSeries is one path's echoes over time.
type RTTSeries struct {
	Start   time.Time     // when the first echo was scheduled
	Width   time.Duration // of every interval
	Buckets []RTTBucket
}

// RTTBucket is one interval of echoes.
type RTTBucket struct {
	Sum     time.Duration // of the replies' round trips
	Replies int
	Lost    int // echoes sent in the interval that got no reply
}

// Mean is the replies' mean round trip (0 without replies).
func (b RTTBucket) Mean() time.Duration {
	if b.Replies == 0 {
		return 0
	}
	return b.Sum / time.Duration(b.Replies)
}

// seriesRecorder builds an RTTSeries from ping replies (OnReply may be
// called from another goroutine).
type seriesRecorder struct {
	mu      sync.Mutex
	per     int // echoes per interval
	s       RTTSeries
	replied []bool // by echo number (the ICMP sequence number unwrapped)
	last    int    // the highest echo number replied to
}

func newSeriesRecorder(start time.Time, count int, interval time.Duration) *seriesRecorder {
	per := max((count+maxSeriesPoints-1)/maxSeriesPoints, 1)
	return &seriesRecorder{per: per, replied: make([]bool, count),
		s: RTTSeries{Start: start, Width: time.Duration(per) * interval, Buckets: make([]RTTBucket, (count+per-1)/per)}}
}

// reply records one reply; duplicates and echo numbers outside the series
// are ignored. ICMP sequence numbers wrap after 65535: the echo number is
// the one nearest the highest seen so far with that sequence number.
func (r *seriesRecorder) reply(p ping.Reply) {
	if p.Duplicate || p.Seq < 0 || p.Seq > 65535 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	n := p.Seq + (r.last-p.Seq+32768)/65536*65536
	if n < 0 || n >= len(r.replied) || r.replied[n] {
		return
	}
	r.last = max(r.last, n)
	r.replied[n] = true
	b := &r.s.Buckets[n/r.per]
	b.Sum += p.RTT
	b.Replies++
}

// finish counts the echoes of the first sent that got no reply and returns
// the series up to the last interval with an echo sent.
func (r *seriesRecorder) finish(sent int) *RTTSeries {
	r.mu.Lock()
	defer r.mu.Unlock()
	sent = min(sent, len(r.replied))
	for seq := 0; seq < sent; seq++ {
		if !r.replied[seq] {
			r.s.Buckets[seq/r.per].Lost++
		}
	}
	s := r.s
	s.Buckets = s.Buckets[:(sent+r.per-1)/r.per]
	return &s
}
