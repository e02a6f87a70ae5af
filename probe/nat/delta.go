package nat

import (
	"time"
)

// Delta is what changed between two snapshots of the same gateway.
type Delta struct {
	Interval time.Duration
	// Stats holds the increase of each summed conntrack counter (a counter
	// that went down, after a reset or wrap, counts as 0).
	Stats CPUStats
	// Entries is the change in conntrack entries.
	Entries int64
	// Growth is the change of InUse per pool (pools only in cur count from 0).
	Growth map[PoolKey]int
}

// Diff compares two snapshots and their analyses.
func Diff(prev, cur *Snapshot, pa, ca *Analysis) *Delta {
	d := &Delta{Interval: cur.Time.Sub(prev.Time), Growth: map[PoolKey]int{}}
	inc := func(a, b uint64) uint64 {
		if b < a {
			return 0
		}
		return b - a
	}
	p, c := prev.Conntrack.Total, cur.Conntrack.Total
	d.Stats = CPUStats{CPU: -1,
		Found: inc(p.Found, c.Found), Invalid: inc(p.Invalid, c.Invalid), Insert: inc(p.Insert, c.Insert),
		InsertFailed: inc(p.InsertFailed, c.InsertFailed), Drop: inc(p.Drop, c.Drop),
		EarlyDrop: inc(p.EarlyDrop, c.EarlyDrop), Error: inc(p.Error, c.Error),
		SearchRestart: inc(p.SearchRestart, c.SearchRestart)}
	d.Entries = int64(cur.Conntrack.Entries) - int64(prev.Conntrack.Entries)
	before := map[PoolKey]int{}
	for _, pool := range pa.Pools {
		before[pool.Key()] = pool.InUse
	}
	for _, pool := range ca.Pools {
		d.Growth[pool.Key()] = pool.InUse - before[pool.Key()]
	}
	return d
}

// PerSecond converts an increase over the interval into a rate.
func (d *Delta) PerSecond(n float64) float64 {
	if d == nil || d.Interval <= 0 {
		return 0
	}
	return n / d.Interval.Seconds()
}

// TimeToExhaustion estimates when pool p runs out of ports at the growth rate
// seen over the interval: 0 when it already has, and false when it is not
// growing.
func (d *Delta) TimeToExhaustion(p Pool) (time.Duration, bool) {
	free := p.RangeSize() - p.InUse
	if free <= 0 {
		return 0, true
	}
	if d == nil {
		return 0, false
	}
	rate := d.PerSecond(float64(d.Growth[p.Key()]))
	if rate <= 0 {
		return 0, false
	}
	return time.Duration(float64(free) / rate * float64(time.Second)), true
}
