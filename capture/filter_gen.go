package capture

import (
	"errors"
	"fmt"
	"net/netip"

	"golang.org/x/net/bpf"
)

// This file turns a parsed filter into classic BPF the way libpcap does for
// the supported primitives (same tests, same offsets), so that a program
// from the native compiler accepts exactly the frames tcpdump's accepts.

// bnode is a boolean test over a frame.
type bnode struct {
	kind bkind
	l, r *bnode
	c    bcmp
}

type bkind int

const (
	bFalse bkind = iota
	bTrue
	bCmp
	bAnd
	bOr
	bNot
)

// bcmp loads size bytes at off (from the start of the frame, or, when ind,
// from the IPv4 header's end: X = 4*(frame[nh]&0xf)), masks them, and tests.
type bcmp struct {
	ind  bool
	nh   uint32 // network header offset, for ind
	size int
	off  uint32
	mask uint32 // 0: none
	set  bool   // test (A & val) != 0 instead of A == val
	val  uint32
}

var (
	bfalse = &bnode{kind: bFalse}
	btrue  = &bnode{kind: bTrue}
)

func cmpEq(size int, off, val uint32) *bnode {
	return &bnode{kind: bCmp, c: bcmp{size: size, off: off, val: val}}
}

func cmpMasked(size int, off, mask, val uint32) *bnode {
	if mask == 0xffffffff {
		mask = 0
	}
	return &bnode{kind: bCmp, c: bcmp{size: size, off: off, mask: mask, val: val}}
}

// band and bor fold constants. Dropping a test next to a constant never
// changes a verdict: a load past the end of the frame rejects, like false.
func band(l, r *bnode) *bnode {
	switch {
	case l.kind == bFalse || r.kind == bFalse:
		return bfalse
	case l.kind == bTrue:
		return r
	case r.kind == bTrue:
		return l
	}
	return &bnode{kind: bAnd, l: l, r: r}
}

func bor(l, r *bnode) *bnode {
	switch {
	case l.kind == bTrue:
		return btrue
	case l.kind == bFalse:
		return r
	case r.kind == bFalse:
		return l
	}
	return &bnode{kind: bOr, l: l, r: r}
}

func bnot(x *bnode) *bnode {
	switch x.kind {
	case bTrue:
		return bfalse
	case bFalse:
		return btrue
	}
	return &bnode{kind: bNot, l: x}
}

func bors(xs ...*bnode) *bnode {
	out := bfalse
	for _, x := range xs {
		out = bor(out, x)
	}
	return out
}

func bands(xs ...*bnode) *bnode {
	out := btrue
	for _, x := range xs {
		out = band(out, x)
	}
	return out
}

// Link types the native compiler (and the live source) handle.
const (
	LinkTypeEthernet  = 1   // LINKTYPE_ETHERNET
	LinkTypeRaw       = 101 // LINKTYPE_RAW: IPv4 or IPv6, no link header
	LinkTypeLinuxSLL  = 113 // LINKTYPE_LINUX_SLL
	LinkTypeLinuxSLL2 = 276 // LINKTYPE_LINUX_SLL2
)

// layout says where a link type keeps its EtherType and network header.
type layout struct {
	tcpdump string // name for tcpdump -y
	etOff   uint32 // offset of the 16-bit EtherType (not for raw)
	nh      uint32 // network header offset
	raw     bool
}

func layoutFor(linkType uint16) (layout, error) {
	switch linkType {
	case LinkTypeEthernet:
		return layout{tcpdump: "EN10MB", etOff: 12, nh: 14}, nil
	case LinkTypeRaw, 12, 14: // LINKTYPE_RAW and the DLT_RAW values of some systems
		return layout{tcpdump: "RAW", nh: 0, raw: true}, nil
	case LinkTypeLinuxSLL:
		return layout{tcpdump: "LINUX_SLL", etOff: 14, nh: 16}, nil
	case LinkTypeLinuxSLL2:
		return layout{tcpdump: "LINUX_SLL2", etOff: 0, nh: 20}, nil
	}
	return layout{}, fmt.Errorf("link type %d is not supported by the filter compiler (supported: Ethernet 1, raw IP 101, Linux cooked 113 and 276)", linkType)
}

const (
	etIPv4 = 0x0800
	etIPv6 = 0x86dd
	etARP  = 0x0806
	etRARP = 0x8035
)

// ethertype tests the frame's network protocol.
func (ly layout) ethertype(t uint16) *bnode {
	if ly.raw {
		switch t {
		case etIPv4:
			return cmpMasked(1, 0, 0xf0, 0x40)
		case etIPv6:
			return cmpMasked(1, 0, 0xf0, 0x60)
		}
		return bfalse
	}
	return cmpEq(2, ly.etOff, uint32(t))
}

func dirTest(d fdir, src, dst *bnode) *bnode {
	switch d {
	case dirSrc:
		return src
	case dirDst:
		return dst
	case dirBoth:
		return band(src, dst)
	}
	return bor(src, dst)
}

// addrTest compares the address at off with the prefix (a host address when
// bits is the full length).
func addrTest(off uint32, p netip.Prefix) *bnode {
	a := p.Addr().AsSlice()
	bits := p.Bits()
	out := btrue
	for w := 0; w*32 < bits; w++ {
		val := uint32(a[4*w])<<24 | uint32(a[4*w+1])<<16 | uint32(a[4*w+2])<<8 | uint32(a[4*w+3])
		n := bits - 32*w
		mask := uint32(0xffffffff)
		if n < 32 {
			mask = ^uint32(0) << (32 - n)
		}
		out = band(out, cmpMasked(4, off+uint32(4*w), mask, val&mask))
	}
	return out
}

// ipProto tests the IPv4 protocol field.
func (ly layout) ipProto(p uint8) *bnode {
	return band(ly.ethertype(etIPv4), cmpEq(1, ly.nh+9, uint32(p)))
}

// ip6Proto tests the IPv6 next header, looking behind a fragment header as
// libpcap does.
func (ly layout) ip6Proto(p uint8) *bnode {
	return band(ly.ethertype(etIPv6), bor(cmpEq(1, ly.nh+6, uint32(p)),
		band(cmpEq(1, ly.nh+6, 44), cmpEq(1, ly.nh+40, uint32(p)))))
}

func (ly layout) anyProto(p uint8) *bnode { return bor(ly.ipProto(p), ly.ip6Proto(p)) }

// port tests a TCP/UDP/SCTP port of IPv6 (next header directly) or
// unfragmented IPv4 (or the first fragment) packets.
func (ly layout) port(protos []uint8, d fdir, port uint16) *bnode {
	var p6, p4 *bnode = bfalse, bfalse
	for _, p := range protos {
		p6 = bor(p6, cmpEq(1, ly.nh+6, uint32(p)))
		p4 = bor(p4, cmpEq(1, ly.nh+9, uint32(p)))
	}
	v6 := bands(ly.ethertype(etIPv6), p6,
		dirTest(d, cmpEq(2, ly.nh+40, uint32(port)), cmpEq(2, ly.nh+42, uint32(port))))
	ind := func(off uint32) *bnode {
		return &bnode{kind: bCmp, c: bcmp{ind: true, nh: ly.nh, size: 2, off: ly.nh + off, val: uint32(port)}}
	}
	notFrag := bnot(&bnode{kind: bCmp, c: bcmp{size: 2, off: ly.nh + 6, set: true, val: 0x1fff}})
	v4 := bands(ly.ethertype(etIPv4), p4, notFrag, dirTest(d, ind(0), ind(2)))
	return bor(v6, v4)
}

// lower turns the parsed expression into tests for one link type.
func (ly layout) lower(expr string, n *fnode) (*bnode, error) {
	switch n.op {
	case fopAnd, fopOr:
		l, err := ly.lower(expr, n.l)
		if err != nil {
			return nil, err
		}
		r, err := ly.lower(expr, n.r)
		if err != nil {
			return nil, err
		}
		if n.op == fopAnd {
			return band(l, r), nil
		}
		return bor(l, r), nil
	case fopNot:
		x, err := ly.lower(expr, n.l)
		if err != nil {
			return nil, err
		}
		return bnot(x), nil
	}
	return ly.prim(expr, n.prim)
}

func (ly layout) prim(expr string, pr fprim) (*bnode, error) {
	fail := func(format string, args ...any) (*bnode, error) {
		return nil, &FilterError{Expr: expr, Pos: pr.pos, Msg: fmt.Sprintf(format, args...)}
	}
	if pr.value == "" {
		switch pr.proto {
		case "ip":
			return ly.ethertype(etIPv4), nil
		case "ip6":
			return ly.ethertype(etIPv6), nil
		case "arp":
			return ly.ethertype(etARP), nil
		case "rarp":
			return ly.ethertype(etRARP), nil
		case "icmp", "igmp":
			return ly.ipProto(protoNumbers[pr.proto]), nil
		case "icmp6":
			return ly.ip6Proto(58), nil
		}
		return ly.anyProto(protoNumbers[pr.proto]), nil
	}
	switch pr.typ {
	case "proto":
		n, ok := protoNumbers[pr.value]
		if !ok {
			v, err := parseUint8(pr.value)
			if err != nil {
				return fail("unknown protocol %q", pr.value)
			}
			n = v
		}
		if pr.dir != dirAny {
			return fail("'proto' takes no src/dst qualifier")
		}
		switch pr.proto {
		case "":
			return ly.anyProto(n), nil
		case "ip":
			return ly.ipProto(n), nil
		case "ip6":
			return ly.ip6Proto(n), nil
		}
		return fail("'%s proto' is not supported by the native compiler", pr.proto)
	case "port":
		port, ok := parsePort(pr.value)
		if !ok {
			return fail("%q is not a port number or a known service name", pr.value)
		}
		switch pr.proto {
		case "":
			return ly.port([]uint8{132, 6, 17}, pr.dir, port), nil
		case "tcp", "udp", "sctp":
			return ly.port([]uint8{protoNumbers[pr.proto]}, pr.dir, port), nil
		}
		return fail("'%s port' is not supported (use port, tcp port, udp port or sctp port)", pr.proto)
	case "host", "net":
		var p netip.Prefix
		if pr.typ == "host" {
			a, err := netip.ParseAddr(pr.value)
			if err != nil {
				return fail("%q is not an IP address (host names are not resolved)", pr.value)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		} else {
			var ok bool
			if p, ok = parseNet(pr.value); !ok {
				return fail("%q is not a network (ADDR/LEN)", pr.value)
			}
			if p.Masked() != p {
				return fail("non-network bits set in %q", pr.value)
			}
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		if p.Addr().Is6() {
			if pr.proto != "" && pr.proto != "ip6" {
				return fail("'%s' modifier applied to an IPv6 %s", pr.proto, pr.typ)
			}
			return band(ly.ethertype(etIPv6),
				dirTest(pr.dir, addrTest(ly.nh+8, p), addrTest(ly.nh+24, p))), nil
		}
		ip := band(ly.ethertype(etIPv4), dirTest(pr.dir, addrTest(ly.nh+12, p), addrTest(ly.nh+16, p)))
		arp := func(t uint16) *bnode {
			return band(ly.ethertype(t), dirTest(pr.dir, addrTest(ly.nh+14, p), addrTest(ly.nh+24, p)))
		}
		switch pr.proto {
		case "":
			return bors(ip, arp(etARP), arp(etRARP)), nil
		case "ip":
			return ip, nil
		case "arp":
			return arp(etARP), nil
		case "rarp":
			return arp(etRARP), nil
		}
		return fail("'%s' modifier applied to %s", pr.proto, pr.typ)
	}
	return fail("unsupported primitive")
}

func parseUint8(s string) (uint8, error) {
	var n uint64
	_, err := fmt.Sscanf(s, "%d", &n)
	if err != nil || n > 255 || fmt.Sprint(n) != s {
		return 0, errors.New("not a number 0..255")
	}
	return uint8(n), nil
}

// codegen emits a program for b: accepted frames return snap, others 0.
type codegen struct {
	ins    []bpf.Instruction
	jumps  []jumpFix // conditional/unconditional jumps to resolve
	labels []int     // label -> instruction index (-1: not placed)
}

type jumpFix struct {
	at     int // instruction index
	t, f   int // labels (f -1 for an unconditional jump)
	uncond bool
}

func (g *codegen) label() int { g.labels = append(g.labels, -1); return len(g.labels) - 1 }

func (g *codegen) place(l int) { g.labels[l] = len(g.ins) }

func (g *codegen) gen(b *bnode, t, f int) {
	switch b.kind {
	case bTrue, bFalse:
		target := t
		if b.kind == bFalse {
			target = f
		}
		g.jumps = append(g.jumps, jumpFix{at: len(g.ins), t: target, uncond: true})
		g.ins = append(g.ins, bpf.Jump{})
	case bAnd:
		m := g.label()
		g.gen(b.l, m, f)
		g.place(m)
		g.gen(b.r, t, f)
	case bOr:
		m := g.label()
		g.gen(b.l, t, m)
		g.place(m)
		g.gen(b.r, t, f)
	case bNot:
		g.gen(b.l, f, t)
	case bCmp:
		c := b.c
		if c.ind {
			g.ins = append(g.ins, bpf.LoadMemShift{Off: c.nh}, bpf.LoadIndirect{Off: c.off, Size: c.size})
		} else {
			g.ins = append(g.ins, bpf.LoadAbsolute{Off: c.off, Size: c.size})
		}
		if c.mask != 0 {
			g.ins = append(g.ins, bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: c.mask})
		}
		cond := bpf.JumpEqual
		if c.set {
			cond = bpf.JumpBitsSet
		}
		g.jumps = append(g.jumps, jumpFix{at: len(g.ins), t: t, f: f})
		g.ins = append(g.ins, bpf.JumpIf{Cond: cond, Val: c.val})
	}
}

// program assembles b into a classic BPF program.
func program(b *bnode, snap uint32) ([]bpf.RawInstruction, error) {
	g := &codegen{}
	accept, reject := g.label(), g.label()
	g.gen(b, accept, reject)
	g.place(accept)
	g.ins = append(g.ins, bpf.RetConstant{Val: snap})
	g.place(reject)
	g.ins = append(g.ins, bpf.RetConstant{Val: 0})
	for _, j := range g.jumps {
		skip := func(l int) (int, error) {
			d := g.labels[l] - (j.at + 1)
			if d < 0 || !j.uncond && d > 255 {
				return 0, fmt.Errorf("filter too long for the native compiler (a jump of %d instructions); install tcpdump (apt-get install tcpdump) to compile it", d)
			}
			return d, nil
		}
		st, err := skip(j.t)
		if err != nil {
			return nil, err
		}
		if j.uncond {
			g.ins[j.at] = bpf.Jump{Skip: uint32(st)}
			continue
		}
		sf, err := skip(j.f)
		if err != nil {
			return nil, err
		}
		ji := g.ins[j.at].(bpf.JumpIf)
		ji.SkipTrue, ji.SkipFalse = uint8(st), uint8(sf)
		g.ins[j.at] = ji
	}
	return bpf.Assemble(g.ins)
}
