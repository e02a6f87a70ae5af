package analyze

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/vpndiag/vpndiag/analyze/decode"
	"github.com/vpndiag/vpndiag/capture"
	"github.com/vpndiag/vpndiag/report"
)

// payloadChecker checks, on the analyzing goroutine, that every record
// comes in order and that its payload still holds the bytes its frame had.
type payloadChecker struct {
	t    *testing.T
	next uint64
	bad  int
}

func (c *payloadChecker) Name() string                       { return "check" }
func (c *payloadChecker) Finish(*report.Report, []InputInfo) {}
func (c *payloadChecker) Packet(rec *decode.Record) {
	if rec.Frame != c.next || !bytes.Equal(rec.Levels[0].L4.Payload, frameBytes(rec.Frame)) {
		c.bad++
		if c.bad < 5 {
			c.t.Errorf("record %d (want %d): payload %d bytes, want %d", rec.Frame, c.next, len(rec.Levels[0].L4.Payload), len(frameBytes(rec.Frame)))
		}
	}
	c.next = rec.Frame + 1
}

// frameBytes is frame i's content: sizes from 0 to above the arena, so
// batches end both by record count and by arena space.
func frameBytes(i uint64) []byte {
	n := int(i*7919) % 3000
	if i%500 == 499 {
		n = batchArenaBytes + 1000 // larger than a whole arena
	}
	return bytes.Repeat([]byte{byte(i)}, n)
}

// TestPipelineKeepsPayloads feeds 5000 records through a pipeline the way
// readAll does, reusing one frame buffer: the analyzing goroutine must see
// them all, in order, each with its own bytes (not those of a later frame
// decoded into the same arena or buffer).
func TestPipelineKeepsPayloads(t *testing.T) {
	c := &payloadChecker{t: t}
	pl := startPipeline(newDispatcher([]Analyzer{c}))
	var frame []byte
	const n = 5000
	for i := uint64(0); i < n; i++ {
		frame = append(frame[:0], frameBytes(i)...)
		rec, data := pl.slot(frame)
		rec.Frame = i
		rec.Levels[0].L4.Payload = data
		pl.commit(WantAll)
		clear(frame) // the reader reuses its buffer
	}
	pl.wait()
	pl.wait() // a second wait (deferred in Run) is harmless
	if c.next != n || c.bad != 0 {
		t.Errorf("saw up to record %d of %d, %d bad", c.next, n, c.bad)
	}
}

// countingAnalyzer counts the records it sees.
type countingAnalyzer struct {
	name string
	n    int
}

func (c *countingAnalyzer) Name() string                       { return c.name }
func (c *countingAnalyzer) Packet(*decode.Record)              { c.n++ }
func (c *countingAnalyzer) Finish(*report.Report, []InputInfo) {}

// TestPassCancelConcurrent: a Pass whose context ends while the second
// goroutine has batches returns the context's error and leaves no goroutine
// behind; uncancelled, both goroutines' analyzers see every frame.
func TestPassCancelConcurrent(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Fatalf("GOMAXPROCS %d: no second goroutine to test", runtime.GOMAXPROCS(0))
	}
	file := udpCapture(t, 5*progressEvery)
	inputs := []InputInfo{{Name: "udp.pcapng", Source: file}}
	first, second := &countingAnalyzer{name: "first"}, &countingAnalyzer{name: "second"}
	rep := report.New("analyze", "test", time.Unix(0, 0))
	if err := (&Pass{Analyzers: []Analyzer{first, second}}).Run(context.Background(), inputs, rep); err != nil {
		t.Fatal(err)
	}
	if n := int(rep.Inputs[0].Packets); first.n != n || second.n != n || n != 5*progressEvery {
		t.Fatalf("%d frames; the analyzers saw %d and %d", n, first.n, second.n)
	}

	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	p := &Pass{Analyzers: []Analyzer{&countingAnalyzer{name: "first"}, &countingAnalyzer{name: "second"}},
		// Cancel once the reader has gone past a cancellation check.
		Progress: func(read, _ int64) {
			if read > 0 {
				cancel()
			}
		}}
	err := p.Run(ctx, inputs, report.New("analyze", "test", time.Unix(0, 0)))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > before {
		t.Errorf("%d goroutines after the cancelled pass, %d before", g, before)
	}
}

// udpCapture writes, with the project's pcapng writer, n Ethernet/IPv4/UDP
// frames between 198.18.0.1 and 198.18.0.2 with ports and payload sizes
// that vary.
func udpCapture(t *testing.T, n int) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "udp.pcapng")
	w, err := capture.CreatePcapng(file, []capture.Interface{{Name: "lab", LinkType: 1, SnapLen: 65535}}, capture.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		payload := 10 + i%700
		f := make([]byte, 14+20+8+payload)
		binary.BigEndian.PutUint16(f[12:], 0x0800)
		ip := f[14:]
		ip[0], ip[8], ip[9] = 0x45, 64, 17
		binary.BigEndian.PutUint16(ip[2:], uint16(20+8+payload))
		copy(ip[12:], []byte{198, 18, 0, 1, 198, 18, 0, 2})
		binary.BigEndian.PutUint16(ip[20:], uint16(10000+i%50))
		binary.BigEndian.PutUint16(ip[22:], 9)
		binary.BigEndian.PutUint16(ip[24:], uint16(8+payload))
		frame := capture.Frame{Data: f, WireLen: len(f), Time: int64(1_700_000_000+i/1000)*1e9 + int64(i%1000)*1e6, LinkType: 1}
		if err := w.WriteFrame(&frame); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Finish(nil); err != nil {
		t.Fatal(err)
	}
	return file
}
