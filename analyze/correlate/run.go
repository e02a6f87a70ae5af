// Package correlate matches the same packets across captures taken at
// several hops — through NAT and tunnels — and localizes loss and delay per
// path segment and traffic class. It is the engine behind `vpndiag trace`.
//
// Run reads each hop twice. The first pass reads a bounded sample (the first
// Options.SampleSize frames of every hop) and estimates each hop's clock
// offset from the packets the hops have in common. The second pass merges
// all hops by corrected time (a k-way merge), decodes every frame once,
// computes a match key from what NAT and tunnels leave alone, and keeps each
// packet in flight until no hop has seen it for Options.Window; then the
// packet's path pattern (which hops saw it, in order) is counted for its
// traffic class. At the end the class's path is inferred from those
// patterns and every segment's sent/received/lost counts, delays and
// reordering are computed. Memory is bounded by the packets within one
// window plus per-class aggregates, never by the capture size.
package correlate

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/vpndiag/vpndiag/analyze/decode"
)

// Defaults of Options.
const (
	DefaultWindow       = 2 * time.Second
	DefaultSampleSize   = 100000
	DefaultMinLost      = 3
	DefaultMinLossRatio = 0.01
	DefaultPairWindow   = time.Millisecond
	// minOffsetMatches is how many packets two hops must share in the
	// sample for their clock offset to be estimated.
	minOffsetMatches = 3
)

// Options tune Run. The zero value uses the defaults.
type Options struct {
	// Window is how long a packet may take to reach the next hop; one not
	// seen there within it counts as lost. Packets within Window of the end
	// (or before the start) of the next hop's capture are not counted.
	Window time.Duration
	// SampleSize is how many frames per hop the clock offset pass reads.
	SampleSize int
	// MinLost and MinLossRatio are the thresholds of a trace.loss finding.
	MinLost      int
	MinLossRatio float64
	// PairWindow is how far apart (after clock correction) a plain packet
	// and the encrypted tunnel packet carrying it may be first seen to be
	// paired (see pair.go); negative disables pairing.
	PairWindow time.Duration
	// Reference is the index of the hop whose clock the others are
	// corrected to (default 0, the first hop).
	Reference int
	// Progress, if set, is told the bytes read so far of the second pass
	// and their total.
	Progress func(read, total int64)
}

func (o *Options) defaults() {
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	if o.SampleSize <= 0 {
		o.SampleSize = DefaultSampleSize
	}
	if o.MinLost <= 0 {
		o.MinLost = DefaultMinLost
	}
	if o.MinLossRatio <= 0 {
		o.MinLossRatio = DefaultMinLossRatio
	}
	if o.PairWindow == 0 {
		o.PairWindow = DefaultPairWindow
	}
}

// checkEvery is how many frames pass between cancellation and progress checks.
const checkEvery = 8192

// Run correlates the hops' captures. A hop that cannot be opened or is not
// a capture is a *HopError. Damage found inside a capture stops reading
// that hop; it is kept in HopResult.Err and the rest is still correlated.
func Run(ctx context.Context, hops []Hop, opt Options) (*Result, error) {
	if len(hops) < 2 {
		return nil, errors.New("trace needs at least two hops")
	}
	if len(hops) > MaxHops {
		return nil, fmt.Errorf("trace takes at most %d hops, got %d", MaxHops, len(hops))
	}
	names := make([]string, len(hops))
	for i, h := range hops {
		names[i] = h.Name
	}
	files := make([]*fileRecords, len(hops))
	open := func(i int) (recordSource, error) {
		f, err := openFile(hops[i], i)
		if err != nil {
			return nil, err
		}
		files[i] = f
		return f, nil
	}
	res, err := run(ctx, names, open, opt)
	if res != nil {
		for i := range res.Hops {
			res.Hops[i].Source = hops[i].Source
			res.Hops[i].File = hops[i].File
			if res.Hops[i].File == "" {
				res.Hops[i].File = hops[i].Source
			}
			if files[i] != nil {
				files[i].fillInput(&res.Hops[i])
			}
		}
	}
	return res, err
}

// runRecords correlates records built in memory (tests and benchmarks).
func runRecords(ctx context.Context, names []string, recs [][]decode.Record, opt Options) (*Result, error) {
	open := func(i int) (recordSource, error) { return &sliceRecords{recs: recs[i]}, nil }
	res, err := run(ctx, names, open, opt)
	if res != nil {
		for i := range res.Hops {
			res.Hops[i].Packets = uint64(len(recs[i]))
		}
	}
	return res, err
}

func run(ctx context.Context, names []string, open func(int) (recordSource, error), opt Options) (*Result, error) {
	opt.defaults()
	nh := len(names)
	if opt.Reference < 0 || opt.Reference >= nh {
		opt.Reference = 0
	}
	// Pass 1: clock offsets from a bounded sample.
	offsets, pairs, err := estimateOffsets(ctx, nh, open, opt)
	if err != nil {
		return nil, err
	}
	res := &Result{Hops: make([]HopResult, nh), WindowNs: int64(opt.Window), Reference: opt.Reference}
	for i := range res.Hops {
		h := &res.Hops[i]
		h.Name = names[i]
		o := offsets[i]
		h.OffsetNs, h.OffsetUncNs, h.OffsetMethod = o.offset, o.unc, o.method
		if o.via >= 0 {
			h.OffsetFrom = names[o.via]
			for _, p := range pairs {
				if (p.a == i && p.b == o.via) || (p.b == i && p.a == o.via) {
					h.OffsetMatches = p.matches
				}
			}
		}
	}
	// Pass 2: the k-way merge by corrected time.
	srcs := make([]recordSource, nh)
	defer func() {
		for _, s := range srcs {
			if s != nil {
				s.close()
			}
		}
	}()
	for i := range srcs {
		if srcs[i], err = open(i); err != nil {
			return nil, err
		}
	}
	e := newEngine(nh, int64(opt.Window))
	e.pairWin = int64(opt.PairWindow)
	recs := make([]decode.Record, nh)
	heads := make([]sighting, nh)
	live := make([]bool, nh)
	last := make([]int64, nh)
	advance := func(i int) {
		err := srcs[i].next(&recs[i])
		if err != nil {
			live[i] = false
			e.end[i] = last[i]
			if !isEOF(err) {
				res.Hops[i].Err = err
			}
			return
		}
		heads[i].fill(&recs[i])
		heads[i].t -= offsets[i].offset
		if heads[i].t > last[i] || !live[i] {
			last[i] = heads[i].t
		}
		live[i] = true
	}
	for i := 0; i < nh; i++ {
		last[i] = math.MinInt64
		advance(i)
		if live[i] {
			e.start[i] = heads[i].t
		}
	}
	for n := 0; ; n++ {
		if n%checkEvery == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if opt.Progress != nil {
				var r, t int64
				for _, s := range srcs {
					a, b := s.progress()
					r, t = r+a, t+b
				}
				opt.Progress(r, t)
			}
		}
		best := -1
		for i := 0; i < nh; i++ {
			if live[i] && (best < 0 || heads[i].t < heads[best].t) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		e.add(best, &heads[best])
		advance(best)
	}
	e.expire(true)
	res.fill(e, names)
	return res, nil
}

// estimateOffsets reads up to opt.SampleSize frames of every hop and
// estimates the hops' clock offsets relative to the reference hop.
func estimateOffsets(ctx context.Context, nh int, open func(int) (recordSource, error), opt Options) ([]hopOffset, []pairEstimate, error) {
	samples := make([]map[uint64]sample, nh)
	var rec decode.Record
	var s sighting
	for i := 0; i < nh; i++ {
		src, err := open(i)
		if err != nil {
			return nil, nil, err
		}
		m := make(map[uint64]sample, 1024)
		for n := 0; n < opt.SampleSize; n++ {
			if n%checkEvery == 0 && ctx.Err() != nil {
				src.close()
				return nil, nil, ctx.Err()
			}
			if err := src.next(&rec); err != nil {
				break // damage is reported by the second pass
			}
			s.fill(&rec)
			if s.key == 0 {
				continue
			}
			if x, ok := m[s.key]; ok {
				x.dup = true
				m[s.key] = x
				continue
			}
			m[s.key] = sample{t: s.t, cp: s.cp, fwd: s.fwd, ttl: s.ttl}
		}
		src.close()
		samples[i] = m
	}
	var pairs []pairEstimate
	for a := 0; a < nh; a++ {
		for b := a + 1; b < nh; b++ {
			if p, ok := estimatePair(a, b, samples[a], samples[b]); ok {
				pairs = append(pairs, p)
			}
		}
	}
	return combineOffsets(nh, opt.Reference, pairs, minOffsetMatches), pairs, nil
}

// fill copies the engine's results into r.
func (r *Result) fill(e *engine, names []string) {
	segs, missed, ackMissed := e.paths(names)
	r.Segments = segs
	r.Classes = len(e.classes.list)
	r.TunnelPairs = e.pairs
	r.lossOrigin, r.lossWidth = e.loss.origin, e.loss.width
	for i := range r.Hops {
		h := &r.Hops[i]
		hs := &e.hops[i]
		h.Matched, h.Duplicates, h.Unmatchable, h.Missed = hs.matched, hs.dups, hs.unmatchable, missed[i]
		h.AckedNotSeen = ackMissed[i]
		r.Packets += hs.packets
	}
	// NAT mappings, first seen first.
	type kv struct {
		k natKey
		m *natMap
	}
	var list []kv
	for k, m := range e.nat.m {
		list = append(list, kv{k, m})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].m.order < list[j].m.order })
	r.NATMappingsTotal = len(list) + int(e.nat.overflow)
	for _, x := range list {
		r.NAT = append(r.NAT, NATMapping{From: names[x.k.a], To: names[x.k.b], Proto: protoName(x.k.after.proto, x.k.after.v4),
			Before: x.k.before.String(), After: x.k.after.String(), Packets: x.m.packets, Replies: x.m.replies})
	}
	for k, p := range e.nat.pools {
		r.NATPools = append(r.NATPools, NATPool{From: names[k.a], To: names[k.b], Proto: protoName(k.proto, k.v4),
			Outside: addrOf(k.addr, k.v4).String(), InsideHosts: len(p.inside), DistinctPorts: p.distinct,
			PortMin: p.minPort, PortMax: p.maxPort})
	}
	sort.Slice(r.NATPools, func(i, j int) bool {
		a, b := r.NATPools[i], r.NATPools[j]
		if a.DistinctPorts != b.DistinctPorts {
			return a.DistinctPorts > b.DistinctPorts
		}
		return a.Outside+a.From+a.To+a.Proto < b.Outside+b.From+b.To+b.Proto
	})
	r.Tunnels = e.tunnels.results(names)
}
