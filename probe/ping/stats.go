package ping

import (
	"math"
	"slices"
	"time"
)

// Stats summarizes a ping run. Durations are JSON nanoseconds.
type Stats struct {
	Target      string        `json:"target"`
	Addr        string        `json:"addr"`
	Size        int           `json:"size"`
	Privileged  bool          `json:"privileged"`
	Sent        int           `json:"sent"`
	Received    int           `json:"received"` // distinct replies
	Duplicates  int           `json:"duplicates"`
	Reordered   int           `json:"reordered"` // replies arriving after a later sequence number
	LossPercent float64       `json:"loss_percent"`
	Min         time.Duration `json:"min_ns"`
	Avg         time.Duration `json:"avg_ns"`
	P50         time.Duration `json:"p50_ns"`
	P90         time.Duration `json:"p90_ns"`
	P99         time.Duration `json:"p99_ns"`
	Max         time.Duration `json:"max_ns"`
	Mdev        time.Duration `json:"mdev_ns"` // iputils: sqrt(mean(rtt²) − mean(rtt)²)
	// KernelTimed counts replies timed by the kernel's receive timestamp
	// (raw sockets on Linux); the others were timed in user space.
	KernelTimed int             `json:"kernel_timed"`
	RTTs        []time.Duration `json:"-"`
}

// accumulator collects replies in arrival order.
type accumulator struct {
	rtts    []time.Duration
	maxSeq  int
	any     bool
	reorder int
}

func newAccumulator(n int) *accumulator {
	return &accumulator{rtts: make([]time.Duration, 0, min(n, 1<<16))}
}

// reply records a distinct reply and reports whether it was reordered.
func (a *accumulator) reply(seq int, rtt time.Duration) bool {
	a.rtts = append(a.rtts, rtt)
	reordered := a.any && seq < a.maxSeq
	if reordered {
		a.reorder++
	}
	if !a.any || seq > a.maxSeq {
		a.maxSeq, a.any = seq, true
	}
	return reordered
}

// stats computes the summary.
func (a *accumulator) stats(sent, dups int) *Stats {
	return summarize(a.rtts, sent, dups, a.reorder)
}

// summarize computes loss and RTT statistics from distinct-reply RTTs.
func summarize(rtts []time.Duration, sent, dups, reordered int) *Stats {
	st := &Stats{Sent: sent, Received: len(rtts), Duplicates: dups, Reordered: reordered, RTTs: rtts}
	if sent > 0 {
		st.LossPercent = 100 * float64(sent-min(len(rtts), sent)) / float64(sent)
	}
	if len(rtts) == 0 {
		return st
	}
	sorted := slices.Clone(rtts)
	slices.Sort(sorted)
	var sum, sum2 float64
	for _, r := range sorted {
		f := float64(r)
		sum += f
		sum2 += f * f
	}
	n := float64(len(sorted))
	mean := sum / n
	st.Min, st.Max = sorted[0], sorted[len(sorted)-1]
	st.Avg = time.Duration(mean)
	st.Mdev = time.Duration(math.Sqrt(math.Max(0, sum2/n-mean*mean)))
	st.P50 = Percentile(sorted, 50)
	st.P90 = Percentile(sorted, 90)
	st.P99 = Percentile(sorted, 99)
	return st
}

// Percentile returns the nearest-rank p-th percentile of sorted values.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}
