package correlate

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"runtime"
	"testing"

	"github.com/vpndiag/vpndiag/analyze/decode"
)

// genRecords synthesizes one hop's packets without holding them in memory:
// packet i leaves at t0 + i*gap and reaches hop h after h*100 µs; the last
// hop misses every 100th packet (1% loss on the last segment).
type genRecords struct {
	hop, nhops, n, i int
	gap              int64
	buf              [64]byte
	src, dst         netip.Addr
}

func newGen(hop, nhops, n int) *genRecords {
	return &genRecords{hop: hop, nhops: nhops, n: n, gap: 10_000,
		src: netip.MustParseAddr("198.18.1.2"), dst: netip.MustParseAddr("198.18.3.2")}
}

func (g *genRecords) next(rec *decode.Record) error {
	for {
		if g.i >= g.n {
			return io.EOF
		}
		i := g.i
		g.i++
		if g.hop == g.nhops-1 && i%100 == 50 {
			continue
		}
		binary.BigEndian.PutUint64(g.buf[:], uint64(i))
		rec.Frame = uint64(g.i)
		rec.Time = t0 + int64(i)*g.gap + int64(g.hop)*100_000
		rec.WireLen = 106
		rec.NumLevels = 1
		l := &rec.Levels[0]
		l.IP = decode.IP{Version: 4, Proto: 17, TTL: uint8(64 - g.hop), ID: uint32(i & 0xffff), Src: g.src, Dst: g.dst}
		l.L4 = decode.Transport{Proto: 17, SrcPort: uint16(20000 + i%1000), DstPort: uint16(5000 + i%4), PayloadLen: len(g.buf), Payload: g.buf[:]}
		return nil
	}
}

func (g *genRecords) progress() (int64, int64) { return int64(g.i), int64(g.n) }
func (g *genRecords) close()                   {}

func runGen(tb testing.TB, nhops, n int) *Result {
	names := make([]string, nhops)
	for i := range names {
		names[i] = fmt.Sprintf("h%d", i)
	}
	open := func(i int) (recordSource, error) { return newGen(i, nhops, n), nil }
	r, err := run(context.Background(), names, open, Options{})
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// BenchmarkCorrelate correlates 4 hops of N packets each (100k packets/s,
// 2 s window), both passes, and reports the time per packet per hop. The
// in-flight state is bounded by the window (200k packets here), whatever N.
func BenchmarkCorrelate(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("4hops-%dk", n/1000), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				runGen(b, 4, n)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(4*n), "ns/packet-hop")
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			b.ReportMetric(float64(ms.HeapSys)/(1<<20), "MiB-heap-sys")
		})
	}
}

// TestGenerated checks the benchmark's own result: 1% lost on the last
// segment only, found by the engine.
func TestGenerated(t *testing.T) {
	r := runGen(t, 4, 20_000)
	var lost, sent uint64
	for _, s := range r.Segments {
		if s.To == "h3" {
			lost += s.Lost
			sent += s.Sent
		} else if s.Lost != 0 {
			t.Errorf("segment %s->%s %s lost %d, want 0", s.From, s.To, s.Class, s.Lost)
		}
	}
	// The 10 lost packets within 10 ms of the end of h3's capture (twice
	// the largest delay seen + 10 ms) are not judged.
	if lost != 190 || sent != 19_990 {
		t.Errorf("last segment lost %d of %d, want 190 of 19990", lost, sent)
	}
}

// TestAddDoesNotAllocate: in steady state (window full, packets expiring as
// new ones arrive) adding a frame does not allocate.
func TestAddDoesNotAllocate(t *testing.T) {
	const nh = 3
	e := newEngine(nh, int64(DefaultWindow))
	gens := make([]*genRecords, nh)
	for i := range gens {
		gens[i] = newGen(i, nh, 1<<30)
		e.start[i] = t0
	}
	var rec decode.Record
	var s sighting
	step := func() {
		for h := 0; h < nh; h++ {
			if err := gens[h].next(&rec); err != nil {
				t.Fatal(err)
			}
			s.fill(&rec)
			e.add(h, &s)
		}
	}
	for i := 0; i < 600_000; i++ { // 6 s of traffic: three windows
		step()
	}
	if n := testing.AllocsPerRun(20_000, step); n > 0.001 {
		t.Errorf("%.4f allocations per packet, want 0", n)
	}
}
