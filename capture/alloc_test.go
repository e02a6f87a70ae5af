package capture

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// manyMulti is a little-endian pcapng with n frames alternating between an
// SLL2 interface (link type 276, which pcapgo would box per packet) and an
// Ethernet one, every EPB carrying a comment and flags (which pcapgo would
// allocate for), with an ISB every 1000 frames.
func manyMulti(n int) []byte {
	b := &ngBuilder{bo: binary.LittleEndian}
	b.shb()
	b.idb(276, 262144, ngOpt{2, []byte("any")}, ngOpt{9, []byte{9}})
	b.idb(1, 262144, ngOpt{2, []byte("eth0")})
	for i := range n {
		tm := testTime(i).UnixNano()
		if i%2 == 0 {
			b.epb(0, uint64(tm), testFrame(i, 80), 80, ngOpt{1, []byte("comment")}, ngOpt{2, b.u32(1)})
		} else {
			b.epb(1, uint64(tm/1000), testFrame(i, 1400), 1500)
		}
		if i%1000 == 999 {
			b.isb(0, uint64(tm), ngOpt{4, b.u64(uint64(i))}, ngOpt{5, b.u64(1)})
		}
	}
	return b.buf
}

// TestNextDoesNotAllocate proves that Next allocates nothing per frame, for
// each format, once the reader's buffers exist. It counts allocations over
// batches of 1000 frames, so a rare allocation is not rounded away. The
// gzip cases are the exception: compress/flate allocates Huffman tables
// for each dynamic deflate block (every few tens of KiB), which is a few
// allocations per 1000 frames, not per frame; they are bounded instead.
func TestNextDoesNotAllocate(t *testing.T) {
	const frames = 30000
	for _, tc := range []struct {
		name       string
		data       []byte
		maxPer1000 float64
	}{
		{"pcap", makePcap(t, frames, 200, false), 0},
		{"pcap-nano-big-endian", swapPcap(makePcap(t, frames, 200, true)), 0},
		{"pcapng", makePcapng(t, frames, 200), 0},
		{"pcapng-mixed-linktypes-options-isb", manyMulti(frames), 0},
		{"pcap.gz", gz(t, makePcap(t, frames, 200, false)), 100},
		{"pcapng.gz", gz(t, manyMulti(frames)), 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, err := NewReader(tc.name, bytes.NewReader(tc.data), int64(len(tc.data)))
			if err != nil {
				t.Fatal(err)
			}
			var f Frame
			for range 100 { // warm up: first-packet buffers
				if err := src.Next(&f); err != nil {
					t.Fatal(err)
				}
			}
			var readErr error
			allocs := testing.AllocsPerRun(25, func() {
				for range 1000 {
					if err := src.Next(&f); err != nil && readErr == nil {
						readErr = err
					}
				}
			})
			if readErr != nil {
				t.Fatal(readErr)
			}
			t.Logf("%.0f allocations per 1000 frames", allocs)
			if allocs > tc.maxPer1000 {
				t.Errorf("Next allocates %.0f times per 1000 frames, want at most %.0f", allocs, tc.maxPer1000)
			}
		})
	}
}
