package iperf

import (
	"testing"
	"time"
)

// TestUDPReceiverAccounting feeds counters in a known order and checks
// loss, out-of-order and the highest counter as iperf3 computes them.
func TestUDPReceiverAccounting(t *testing.T) {
	cases := []struct {
		name               string
		seq                []uint64
		highest, lost, ooo int64
	}{
		{"in order", []uint64{1, 2, 3, 4}, 4, 0, 0},
		{"gap", []uint64{1, 2, 5, 6}, 6, 2, 0},
		{"reorder", []uint64{1, 3, 2, 4}, 4, 0, 1},
		{"late after loss", []uint64{1, 4, 2, 5}, 5, 1, 1},
		{"first lost", []uint64{3, 4}, 4, 2, 0},
	}
	for _, tc := range cases {
		for _, c64 := range []bool{false, true} {
			var rx udpRx
			b := make([]byte, 100)
			base := time.Unix(1_700_000_000, 0)
			for i, s := range tc.seq {
				putUDPHeader(b, base.Add(time.Duration(i)*time.Millisecond), s, c64)
				if !rx.packet(b, base.Add(time.Duration(i)*time.Millisecond+500*time.Microsecond), c64) {
					t.Fatal("packet rejected")
				}
			}
			h, lost, ooo, jitter := rx.snapshot()
			if h != tc.highest || lost != tc.lost || ooo != tc.ooo {
				t.Errorf("%s (64bit=%v): highest %d lost %d ooo %d, want %d %d %d", tc.name, c64, h, lost, ooo, tc.highest, tc.lost, tc.ooo)
			}
			if jitter > 1e-6 {
				t.Errorf("%s: jitter %g s with constant transit", tc.name, jitter)
			}
		}
	}
	var rx udpRx
	if rx.packet(make([]byte, 11), time.Now(), false) || rx.packet(make([]byte, 15), time.Now(), true) {
		t.Error("short datagram accepted")
	}
}

// TestUDPJitter: transit alternating by 1 ms converges to 1 ms jitter.
func TestUDPJitter(t *testing.T) {
	var rx udpRx
	b := make([]byte, 64)
	base := time.Unix(1_700_000_000, 0)
	for i := 0; i < 200; i++ {
		sent := base.Add(time.Duration(i) * 10 * time.Millisecond)
		extra := time.Duration(i%2) * time.Millisecond
		putUDPHeader(b, sent, uint64(i+1), false)
		rx.packet(b, sent.Add(extra), false)
	}
	_, _, _, j := rx.snapshot()
	if j < 0.00095 || j > 0.00105 {
		t.Errorf("jitter = %.6f s, want ~0.001", j)
	}
}

// TestUDPHotPathNoAllocs: per-datagram code does not allocate.
func TestUDPHotPathNoAllocs(t *testing.T) {
	var rx udpRx
	b := make([]byte, 1460)
	now := time.Now()
	var n uint64
	allocs := testing.AllocsPerRun(1000, func() {
		n++
		putUDPHeader(b, now, n, false)
		rx.packet(b, now, false)
	})
	if allocs != 0 {
		t.Errorf("allocs per datagram = %v", allocs)
	}
}
