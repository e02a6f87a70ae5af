// Package tcp reports TCP health per flow and per peer: retransmissions,
// duplicate ACKs, zero windows and resets, at each capture point.
//
// A segment counts as a retransmission when it carries data (or SYN/FIN)
// whose sequence range starts before the highest sequence number already
// seen in its direction (keep-alives and zero-window probes excepted). This
// is Wireshark's "retransmission" and "out-of-order" together: Wireshark
// tells them apart by timing, vpndiag does not. Duplicate ACKs follow
// Wireshark's definition (no data, same window, sequence and
// acknowledgment numbers as the previous segment of that direction).
//
// The analyzer is registered as "tcp".
package tcp

import (
	"slices"

	"github.com/vpndiag/vpndiag/analyze"
	"github.com/vpndiag/vpndiag/analyze/decode"
)

func init() { analyze.Register("tcp", func() analyze.Analyzer { return New() }) }

// DefaultFlowLimit bounds the connections tracked; when it is reached the
// half with the fewest packets is evicted (and reported).
const DefaultFlowLimit = 65536

type flowKey struct {
	input int
	k     analyze.FlowKey
}

// Analyzer is the TCP health analyzer.
type Analyzer struct {
	// Limit is the most flows held at once (DefaultFlowLimit when 0).
	Limit int

	flows   map[flowKey]*flow
	free    []*flow
	scratch []uint64
	ends    []int64 // last packet time per input

	evicted    uint64          // flows evicted
	evictedMax uint64          // largest packet count of an evicted flow
	lostBy     map[int]*totals // counters of evicted flows, by input
	memo       analyze.FlowMemo[*flow]
}

// New returns an empty TCP analyzer.
func New() *Analyzer {
	return &Analyzer{flows: make(map[flowKey]*flow, 1024), lostBy: map[int]*totals{}}
}

// Name implements analyze.Analyzer.
func (a *Analyzer) Name() string { return "tcp" }

// Packet implements analyze.Analyzer.
func (a *Analyzer) Packet(rec *decode.Record) {
	if rec.Input >= len(a.ends) {
		a.ends = append(a.ends, make([]int64, rec.Input+1-len(a.ends))...)
	}
	if rec.Time > a.ends[rec.Input] {
		a.ends[rec.Input] = rec.Time
	}
	l := rec.Inner()
	if l == nil || l.L4.Proto != 6 || l.IP.FragOffset != 0 {
		return
	}
	f, ab, ok := a.memo.Get(rec.Input, l)
	if !ok {
		var k analyze.FlowKey
		k, ab = analyze.KeyOf(l)
		fk := flowKey{rec.Input, k}
		f = a.flows[fk]
		if f == nil {
			f = a.newFlow(fk, rec)
		}
		a.memo.Set(rec.Input, l, ab, f)
	}
	i := 0
	if !ab {
		i = 1
	}
	f.segment(rec, l, i)
}

func (a *Analyzer) newFlow(fk flowKey, rec *decode.Record) *flow {
	if len(a.flows) >= a.limit() {
		a.evict()
	}
	var f *flow
	if n := len(a.free); n > 0 {
		f = a.free[n-1]
		a.free = a.free[:n-1]
	} else {
		f = new(flow)
	}
	*f = flow{key: fk.k, input: fk.input, first: rec.Time, last: rec.Time, firstFrame: rec.Frame}
	a.flows[fk] = f
	return f
}

// evict drops the flows at or below the median packet count, keeping their
// counters in the per-input totals.
func (a *Analyzer) evict() {
	a.memo.Forget()
	a.scratch = a.scratch[:0]
	for _, f := range a.flows {
		a.scratch = append(a.scratch, f.packets)
	}
	slices.Sort(a.scratch)
	median := a.scratch[len(a.scratch)/2]
	for k, f := range a.flows {
		if f.packets > median {
			continue
		}
		t := a.lostBy[f.input]
		if t == nil {
			t = &totals{}
			a.lostBy[f.input] = t
		}
		t.addFlow(f)
		a.evictedMax = max(a.evictedMax, f.packets)
		a.evicted++
		delete(a.flows, k)
		a.free = append(a.free, f)
	}
}
