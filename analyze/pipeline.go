package analyze

import (
	"runtime"

	"github.com/vpndiag/vpndiag/analyze/decode"
)

// dispatcher shows records to a set of analyzers, each only the records it
// wants (Selective). Records come in runs of the same properties, so the
// analyzers to call are chosen again only when the properties change.
type dispatcher struct {
	analyzers []Analyzer
	wants     []Interest // wants[i] is what analyzers[i] wants to see
	calls     []Analyzer // the analyzers that want records of properties callsFor
	callsFor  Interest
}

func newDispatcher(as []Analyzer) *dispatcher {
	d := &dispatcher{analyzers: as, wants: make([]Interest, len(as)), calls: make([]Analyzer, 0, len(as))}
	for i, a := range as {
		d.wants[i] = WantAll
		if s, ok := a.(Selective); ok {
			d.wants[i] = s.Wants()
		}
	}
	d.choose(WantAll)
	return d
}

// selective reports whether some analyzer does not want every record.
func (d *dispatcher) selective() bool {
	for _, w := range d.wants {
		if w != WantAll {
			return true
		}
	}
	return false
}

func (d *dispatcher) choose(in Interest) {
	d.calls = d.calls[:0]
	for j, a := range d.analyzers {
		if d.wants[j]&in != 0 {
			d.calls = append(d.calls, a)
		}
	}
	d.callsFor = in
}

// packet shows rec, whose properties are in, to the analyzers that want it.
func (d *dispatcher) packet(rec *decode.Record, in Interest) {
	if in != d.callsFor {
		d.choose(in)
	}
	for _, a := range d.calls {
		a.Packet(rec)
	}
}

// Batches between the reading goroutine and the analyzing one: a few in
// flight, each large enough that handing it over costs little next to the
// work on its records. A batch is sent when its records or its byte arena
// are full. Batches and arenas are made as needed, so a small capture costs
// one small batch.
const (
	batchRecords    = 1024
	batchArenaBytes = 2 << 20
	firstArenaBytes = 64 << 10
	batchesInFlight = 4
)

// batch is a run of decoded records with the frame bytes their payload
// slices point into.
type batch struct {
	recs  []decode.Record
	ins   []Interest
	n     int
	arena []byte
}

// pipeline runs a dispatcher on its own goroutine, fed in order with
// batches of records decoded on the reading goroutine. Every analyzer still
// sees every record it wants, in order, on one goroutine; a record and its
// payload stay valid until its batch comes back to be refilled.
type pipeline struct {
	free, full chan *batch
	done       chan struct{}
	cur        *batch
	made       int // batches made so far, at most batchesInFlight
	closed     bool
}

func startPipeline(d *dispatcher) *pipeline {
	pl := &pipeline{
		free: make(chan *batch, batchesInFlight),
		full: make(chan *batch, batchesInFlight),
		done: make(chan struct{}),
	}
	go func() {
		defer close(pl.done)
		for {
			b, ok := recvSpin(pl.full)
			if !ok {
				return
			}
			for i := 0; i < b.n; i++ {
				d.packet(&b.recs[i], b.ins[i])
			}
			b.n, b.arena = 0, b.arena[:0]
			pl.free <- b
		}
	}()
	return pl
}

// next returns an empty batch: a returned one, a new one while fewer than
// batchesInFlight exist, else the next one returned.
func (pl *pipeline) next() *batch {
	select {
	case b := <-pl.free:
		return b
	default:
	}
	if pl.made < batchesInFlight {
		pl.made++
		return &batch{recs: make([]decode.Record, batchRecords), ins: make([]Interest, batchRecords),
			arena: make([]byte, 0, firstArenaBytes)}
	}
	b, _ := recvSpin(pl.free)
	return b
}

// spinTries bounds how often recvSpin yields before it blocks. The two
// goroutines wait for each other for microseconds per batch; parked, a
// woken goroutine is queued on the waker's CPU and the two can end up
// taking turns on one CPU. Yielding keeps both runnable, each on its own.
const spinTries = 2000

// recvSpin receives from ch, yielding the processor while ch is empty, for
// at most spinTries yields, then blocking.
func recvSpin(ch chan *batch) (*batch, bool) {
	for i := 0; i < spinTries; i++ {
		select {
		case b, ok := <-ch:
			return b, ok
		default:
			runtime.Gosched()
		}
	}
	b, ok := <-ch
	return b, ok
}

// slot returns the record to decode the next frame into and a copy of
// data, in the current batch's arena, for it to point into.
func (pl *pipeline) slot(data []byte) (*decode.Record, []byte) {
	if pl.cur == nil {
		pl.cur = pl.next()
	}
	b := pl.cur
	if len(data) > cap(b.arena)-len(b.arena) {
		if cap(b.arena) >= batchArenaBytes && b.n > 0 {
			pl.send()
			b = pl.next()
			pl.cur = b
		}
		if len(data) > cap(b.arena)-len(b.arena) {
			// A fresh, larger arena; the records already in the batch
			// keep the old one.
			b.arena = make([]byte, 0, max(min(2*cap(b.arena), batchArenaBytes), len(data)))
		}
	}
	off := len(b.arena)
	b.arena = append(b.arena, data...)
	return &b.recs[b.n], b.arena[off:len(b.arena):len(b.arena)]
}

// commit queues the record slot returned, with its properties.
func (pl *pipeline) commit(in Interest) {
	b := pl.cur
	b.ins[b.n] = in
	b.n++
	if b.n == len(b.recs) {
		pl.send()
	}
}

func (pl *pipeline) send() {
	pl.full <- pl.cur
	pl.cur = nil
}

// wait sends what is left and returns when the analyzing goroutine has
// seen every record. It may be called more than once.
func (pl *pipeline) wait() {
	if pl.closed {
		return
	}
	pl.closed = true
	if pl.cur != nil && pl.cur.n > 0 {
		pl.send()
	}
	close(pl.full)
	<-pl.done
}
