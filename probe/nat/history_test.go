package nat

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

func historySample(t time.Time, entries uint64, drops uint64, pools ...Pool) Sample {
	s := Sample{Snapshot: &Snapshot{Time: t, Conntrack: Conntrack{Entries: entries, Max: 65536}}, Analysis: &Analysis{Pools: pools}}
	if drops > 0 {
		s.Delta = &Delta{Stats: CPUStats{InsertFailed: drops}}
	}
	return s
}

func testPool(dst string, inUse int) Pool {
	return Pool{NAT: netip.MustParseAddr("198.18.66.1"), Proto: 17, Dst: netip.MustParseAddrPort(dst), InUse: inUse,
		RangeMin: 20000, RangeMax: 20199, RangeFrom: "nft ip nat postrouting"}
}

// TestHistory: a pool filling to its 200-port range over four samples, a
// second pool appearing at the third; zeros where a pool had no mapping;
// drops per sample from the delta.
func TestHistory(t *testing.T) {
	var h History
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	h.Add(historySample(t0, 10, 0))
	h.Add(historySample(t0.Add(time.Second), 60, 0, testPool("198.18.66.53:53", 50)))
	h.Add(historySample(t0.Add(2*time.Second), 260, 0, testPool("198.18.66.53:53", 150), testPool("198.18.66.54:53", 20)))
	h.Add(historySample(t0.Add(3*time.Second), 230, 98, testPool("198.18.66.53:53", 200)))
	if len(h.Times) != 4 || !slices.Equal(h.Entries, []uint64{10, 60, 260, 230}) || !slices.Equal(h.Drops, []uint64{0, 0, 0, 98}) {
		t.Fatalf("history %+v", h)
	}
	b := h.Busiest(4)
	if len(b) != 2 || b[0].Name() != "udp 198.18.66.1 > 198.18.66.53:53" || b[0].RangeSize() != 200 || b[0].Peak != 1 {
		t.Fatalf("busiest %+v", b)
	}
	if !slices.Equal(b[0].InUse, []int{0, 50, 150, 200}) || !slices.Equal(b[1].InUse, []int{0, 0, 20, 0}) {
		t.Errorf("in use %v and %v", b[0].InUse, b[1].InUse)
	}
}

// TestHistoryBounded: 1500 samples keep at most 600 points, the most in use
// and every drop; nine busy pools keep the eight busiest.
func TestHistoryBounded(t *testing.T) {
	var h History
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var drops uint64
	for i := 0; i < 1500; i++ {
		pools := []Pool{testPool("198.18.66.53:53", i%200)}
		if i == 700 {
			for d := 0; d < 8; d++ {
				pools = append(pools, testPool(netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 67, byte(d)}), 53).String(), 10+d))
			}
		}
		d := uint64(i % 3)
		drops += d
		h.Add(historySample(t0.Add(time.Duration(i)*time.Second), uint64(i), d, pools...))
		if len(h.Times) > maxHistoryPoints {
			t.Fatalf("%d points after %d samples", len(h.Times), i+1)
		}
	}
	var sum uint64
	for _, d := range h.Drops {
		sum += d
	}
	if sum != drops || h.Entries[len(h.Entries)-1] != 1499 || slices.Max(h.Pools[0].InUse) != 199 {
		t.Errorf("drops %d of %d, last entries %d, most in use %d", sum, drops, h.Entries[len(h.Entries)-1], slices.Max(h.Pools[0].InUse))
	}
	if len(h.Pools) != maxHistoryPools {
		t.Fatalf("%d pools followed", len(h.Pools))
	}
	for _, p := range h.Pools {
		if p.Key.Dst.Addr() == netip.MustParseAddr("198.18.67.0") {
			t.Errorf("the least busy pool (10 of 200) is followed: %v", p.Name())
		}
		if len(p.InUse) != len(h.Times) {
			t.Errorf("%s: %d points, %d times", p.Name(), len(p.InUse), len(h.Times))
		}
	}
}
