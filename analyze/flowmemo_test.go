package analyze

import (
	"github.com/vpndiag/vpndiag/analyze/decode"
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

// TestFlowMemo: the memo answers for the remembered flow in both directions
// with KeyOf's direction, and for nothing else: not another input, port or
// protocol, not ICMP or later fragments (whose keys depend on more than
// addresses and ports), not after Forget.
func TestFlowMemo(t *testing.T) {
	a, b := netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("198.18.0.1")
	lvl := func(proto uint8, src, dst netip.Addr, sp, dp uint16) *decode.Level {
		l := &decode.Level{}
		l.IP.Version, l.IP.Proto, l.IP.Src, l.IP.Dst = 4, proto, src, dst
		l.L4.Proto, l.L4.SrcPort, l.L4.DstPort = proto, sp, dp
		return l
	}
	frag := lvl(17, a, b, 0, 0)
	frag.IP.Fragment, frag.IP.FragOffset = true, 1480
	cases := []struct {
		name  string
		set   *decode.Level
		input int
		get   *decode.Level
		hit   bool
	}{
		{"same", lvl(6, a, b, 40000, 80), 0, lvl(6, a, b, 40000, 80), true},
		{"reverse", lvl(6, a, b, 40000, 80), 0, lvl(6, b, a, 80, 40000), true},
		{"udp reverse", lvl(17, b, a, 53, 53), 0, lvl(17, a, b, 53, 53), true},
		{"self", lvl(17, a, a, 7, 7), 0, lvl(17, a, a, 7, 7), true},
		{"other input", lvl(6, a, b, 40000, 80), 1, lvl(6, a, b, 40000, 80), false},
		{"other port", lvl(6, a, b, 40000, 80), 0, lvl(6, a, b, 40001, 80), false},
		{"other proto", lvl(6, a, b, 40000, 80), 0, lvl(17, a, b, 40000, 80), false},
		{"half reversed", lvl(6, a, b, 40000, 80), 0, lvl(6, b, a, 40000, 80), false},
		{"icmp", lvl(1, a, b, 0, 0), 0, lvl(1, a, b, 0, 0), false},
		{"later fragment", frag, 0, frag, false},
	}
	for _, c := range cases {
		var m FlowMemo[int]
		_, ab := KeyOf(c.set)
		m.Set(0, c.set, ab, 7)
		v, gotAB, ok := m.Get(c.input, c.get)
		if ok != c.hit {
			t.Errorf("%s: hit %v, want %v", c.name, ok, c.hit)
			continue
		}
		if !ok {
			continue
		}
		wantKey, wantAB := KeyOf(c.get)
		if setKey, _ := KeyOf(c.set); setKey != wantKey || gotAB != wantAB || v != 7 {
			t.Errorf("%s: got %d, ab %v; KeyOf says ab %v, same key %v", c.name, v, gotAB, wantAB, setKey == wantKey)
		}
		m.Forget()
		if _, _, ok := m.Get(c.input, c.get); ok {
			t.Errorf("%s: hit after Forget", c.name)
		}
	}
	var m FlowMemo[int]
	l := lvl(6, a, b, 40000, 80)
	if n := testing.AllocsPerRun(100, func() { m.Set(0, l, true, 1); m.Get(0, l) }); n != 0 {
		t.Fatalf("memo allocates %.1f times", n)
	}
}
