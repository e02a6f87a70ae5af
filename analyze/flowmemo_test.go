package analyze

import (
	"net/netip"
	"testing"
	"unsafe"
)

// TestFlowKeyLayout: FlowKey and an analyzer key of an int and a FlowKey
// have no padding, so maps hash them as one block of memory.
func TestFlowKeyLayout(t *testing.T) {
	var k FlowKey
	fields := 2*unsafe.Sizeof(netip.Addr{}) + 2*unsafe.Sizeof(uint16(0)) + unsafe.Sizeof(uint8(0)) + unsafe.Sizeof(k._pad)
	if unsafe.Sizeof(k) != fields || unsafe.Sizeof(k) != 56 {
		t.Fatalf("FlowKey is %d bytes, its fields %d: padding", unsafe.Sizeof(k), fields)
	}
	type withInput struct {
		input int
		k     FlowKey
	}
	if got := unsafe.Sizeof(withInput{}); got != 64 {
		t.Fatalf("input+FlowKey is %d bytes, want 64", got)
	}
}

// TestFlowMemo: the memo answers only for the remembered input and key, and
// not after Forget.
func TestFlowMemo(t *testing.T) {
	a, b := netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2")
	k1 := FlowKey{A: a, B: b, PA: 1000, PB: 80, Proto: 6}
	k2 := FlowKey{A: a, B: b, PA: 1001, PB: 80, Proto: 6}
	var m FlowMemo[int]
	if _, ok := m.Get(0, &k1); ok {
		t.Fatal("empty memo answered")
	}
	m.Set(0, &k1, 7)
	cases := []struct {
		input int
		k     *FlowKey
		want  int
		ok    bool
	}{{0, &k1, 7, true}, {1, &k1, 0, false}, {0, &k2, 0, false}}
	for _, c := range cases {
		if v, ok := m.Get(c.input, c.k); v != c.want || ok != c.ok {
			t.Errorf("Get(%d, %v) = %d, %v; want %d, %v", c.input, *c.k, v, ok, c.want, c.ok)
		}
	}
	m.Forget()
	if _, ok := m.Get(0, &k1); ok {
		t.Fatal("memo answered after Forget")
	}
	if n := testing.AllocsPerRun(100, func() { m.Set(0, &k2, 1); m.Get(0, &k2) }); n != 0 {
		t.Fatalf("memo allocates %.1f times", n)
	}
}
