package nat

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/vpndiag/vpndiag/analyze/decode"
)

// TestUsageSeries: an outside capture of 300 one-packet UDP flows, 10 ms
// apart, with a 2 s timeout, then one packet elsewhere at 6 s. Mappings
// live [first, first+2s): the pool's most live mappings per second are 100
// (filling), 200, 200 (one starts as one expires), 200 (at the start of
// second 3), 100 (at 4 s), then 0 to the end of the capture.
func TestUsageSeries(t *testing.T) {
	a := New(Options{UDPTimeout: 2 * time.Second})
	var rec decode.Record
	payload := make([]byte, 8)
	for i := 0; i < 300; i++ {
		binary.BigEndian.PutUint64(payload, uint64(i))
		udp(&rec, 0, uint64(i+1), t0+int64(i)*10e6, natAddr, uint16(20000+i), server, 53, payload)
		a.Packet(&rec)
	}
	udp(&rec, 0, 301, t0+6e9, natAddr, 40000, netip.MustParseAddr("198.18.66.54"), 53, payload)
	a.Packet(&rec)
	res := a.Result()
	p := res.Pools[0]
	if p.Dst.Port() != 53 || p.Dst.Addr() != server || p.PeakMappings != 200 {
		t.Fatalf("busiest pool %+v", p)
	}
	u := p.Usage
	if u == nil {
		t.Fatal("no usage series")
	}
	if want := []int{100, 200, 200, 200, 100, 0, 0}; u.Start != t0 || u.Width != 1e9 || !slices.Equal(u.Peak, want) {
		t.Errorf("series from %d every %d ns: %v, want from %d every 1 s: %v", u.Start, u.Width, u.Peak, t0, want)
	}
	if res.Pools[1].Usage != nil {
		t.Errorf("a one-flow pool has a series: %+v", res.Pools[1].Usage)
	}
	d := Data(res, names)
	if us, ok := d["usage"].([]map[string]any); !ok || len(us) != 1 || us[0]["destination"] != "198.18.66.53:53" || us[0]["series"] != u {
		t.Errorf("data usage %v", d["usage"])
	}
}

// TestUsageBounded: two hours of changes in one series: the intervals
// double to 4 s, the series never passes maxUsageBuckets, and every
// interval keeps the most live in it.
func TestUsageBounded(t *testing.T) {
	u := &usage{start: t0, width: 1e9}
	for i := 0; i < 7300; i++ {
		u.note(t0+int64(i)*1e9, int32(i%100))
		if len(u.peak) > maxUsageBuckets {
			t.Fatalf("%d intervals at %d s", len(u.peak), i)
		}
	}
	if u.width != 4e9 || len(u.peak) != 1825 {
		t.Fatalf("width %v, %d intervals; want 4s, 1825", time.Duration(u.width), len(u.peak))
	}
	for i, v := range u.peak {
		// Interval i holds seconds 4i..4i+3 with values (4i..4i+3) mod
		// 100, and the value carried in from second 4i-1.
		want := int32((4*i + 3) % 100)
		if i > 0 {
			want = max(want, int32((4*i-1)%100))
		}
		if v != want {
			t.Fatalf("interval %d: %d, want %d", i, v, want)
		}
	}
}

// TestUsagePoolsBounded: of 70 pools with 8 live mappings each, the first
// 64 get a series.
func TestUsagePoolsBounded(t *testing.T) {
	a := New(Options{})
	var rec decode.Record
	payload := make([]byte, 8)
	frame := uint64(0)
	for d := 0; d < 70; d++ {
		dst := netip.AddrFrom4([4]byte{198, 18, 67, byte(d)})
		for i := 0; i < usageMin; i++ {
			frame++
			binary.BigEndian.PutUint64(payload, frame)
			udp(&rec, 0, frame, t0+int64(frame)*1e6, natAddr, uint16(20000+i), dst, 53, payload)
			a.Packet(&rec)
		}
	}
	n := 0
	for _, p := range a.Result().Pools {
		if p.Usage != nil {
			n++
		}
	}
	if n != maxUsagePools {
		t.Errorf("%d pools with a series, want %d", n, maxUsagePools)
	}
}
