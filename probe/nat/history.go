package nat

import (
	"fmt"
	"sort"
	"time"
)

// History is a bounded record of a watch, for charts: per pool, the ports
// in use and the range size at every sample; the conntrack entries against
// the table's maximum; and the samples in which the kernel failed to insert
// or dropped new connections. It follows the maxHistoryPools busiest pools
// (a busier pool replaces the least busy one followed) and keeps at most
// maxHistoryPoints samples: beyond them neighbours merge in pairs, keeping
// the most in use and the drops of both.
type History struct {
	Times []time.Time // sample times (the first of merged samples)
	// Conntrack entries and maximum per sample (the most of merged samples).
	Entries, Max []uint64
	// Drops are the connections the kernel failed to insert or dropped
	// since the previous sample (insert_failed + drop increase, summed
	// over merged samples).
	Drops []uint64
	Pools []*PoolHistory
}

// PoolHistory is one pool's ports in use at every sample of History.Times
// (0 before the pool was followed or when it had no mapping).
type PoolHistory struct {
	Key                PoolKey
	RangeMin, RangeMax uint16 // the range at the latest sample that had the pool
	RangeFrom          string
	InUse              []int
	Peak               float64 // highest utilization seen
}

// Name is "udp 198.18.66.1 > 198.18.66.53:53".
func (p *PoolHistory) Name() string {
	return fmt.Sprintf("%s %s > %s", ProtoName(p.Key.Proto), p.Key.NAT, p.Key.Dst)
}

// RangeSize is the number of ports in the pool's range.
func (p *PoolHistory) RangeSize() int { return int(p.RangeMax) - int(p.RangeMin) + 1 }

const (
	maxHistoryPools  = 8
	maxHistoryPoints = 600
)

// Add records one watch sample.
func (h *History) Add(s Sample) {
	if s.Snapshot == nil || s.Analysis == nil {
		return
	}
	if len(h.Times) == maxHistoryPoints {
		h.halve()
	}
	n := len(h.Times)
	h.Times = append(h.Times, s.Snapshot.Time)
	h.Entries = append(h.Entries, s.Snapshot.Conntrack.Entries)
	h.Max = append(h.Max, s.Snapshot.Conntrack.Max)
	var drops uint64
	if s.Delta != nil {
		drops = s.Delta.Stats.InsertFailed + s.Delta.Stats.Drop
	}
	h.Drops = append(h.Drops, drops)
	for _, p := range h.Pools {
		p.InUse = append(p.InUse, 0)
	}
	for _, pool := range s.Analysis.Pools {
		ph := h.follow(pool, n)
		if ph == nil {
			continue
		}
		ph.InUse[n] = pool.InUse
		ph.RangeMin, ph.RangeMax, ph.RangeFrom = pool.RangeMin, pool.RangeMax, pool.RangeFrom
		ph.Peak = max(ph.Peak, pool.Utilization())
	}
}

// follow returns the history of pool (n samples recorded before this one),
// starting one when there is room or the pool is busier than the least busy
// one followed; nil otherwise.
func (h *History) follow(pool Pool, n int) *PoolHistory {
	k := pool.Key()
	for _, p := range h.Pools {
		if p.Key == k {
			return p
		}
	}
	if pool.InUse == 0 {
		return nil
	}
	ph := &PoolHistory{Key: k, InUse: make([]int, n+1)}
	if len(h.Pools) < maxHistoryPools {
		h.Pools = append(h.Pools, ph)
		return ph
	}
	least := 0
	for i, p := range h.Pools {
		if p.Peak < h.Pools[least].Peak {
			least = i
		}
	}
	if pool.Utilization() <= h.Pools[least].Peak {
		return nil
	}
	h.Pools[least] = ph
	return ph
}

// halve merges neighbouring samples in pairs.
func (h *History) halve() {
	m := (len(h.Times) + 1) / 2
	for i := 0; i < m; i++ {
		j := 2 * i
		h.Times[i] = h.Times[j]
		h.Entries[i], h.Max[i], h.Drops[i] = h.Entries[j], h.Max[j], h.Drops[j]
		if j+1 < len(h.Times) {
			h.Entries[i] = max(h.Entries[i], h.Entries[j+1])
			h.Max[i] = max(h.Max[i], h.Max[j+1])
			h.Drops[i] += h.Drops[j+1]
		}
	}
	h.Times, h.Entries, h.Max, h.Drops = h.Times[:m], h.Entries[:m], h.Max[:m], h.Drops[:m]
	for _, p := range h.Pools {
		for i := 0; i < m; i++ {
			v := p.InUse[2*i]
			if 2*i+1 < len(p.InUse) {
				v = max(v, p.InUse[2*i+1])
			}
			p.InUse[i] = v
		}
		p.InUse = p.InUse[:m]
	}
}

// Busiest returns up to n followed pools, highest peak utilization first.
func (h *History) Busiest(n int) []*PoolHistory {
	out := append([]*PoolHistory(nil), h.Pools...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Peak > out[j].Peak })
	if len(out) > n {
		out = out[:n]
	}
	return out
}
