package capture

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// This file parses the subset of tcpdump's filter language (pcap-filter(7))
// that the native compiler supports:
//
//	[ip|ip6|arp|rarp] [src|dst|src or dst|src and dst] host ADDR
//	[ip|ip6|arp|rarp] [src|dst|...] net ADDR/LEN | net A[.B[.C]]
//	[tcp|udp|sctp] [src|dst|...] port N|NAME
//	ip|ip6|arp|rarp|tcp|udp|sctp|icmp|icmp6|igmp|esp|ah
//	[ip|ip6] proto N|NAME
//	and/&&, or/||, not/!, parentheses; a bare value repeats the previous
//	primitive's qualifiers ("host a or b" is "host a or host b").

// fnode is a node of a parsed filter expression.
type fnode struct {
	op   fop
	l, r *fnode // and, or; l for not
	prim fprim  // leaf
}

type fop int

const (
	fopPrim fop = iota
	fopAnd
	fopOr
	fopNot
)

// fprim is one primitive: qualifiers and an optional value.
type fprim struct {
	proto string // "", ip, ip6, arp, rarp, tcp, udp, sctp, icmp, icmp6, igmp, esp, ah
	dir   fdir
	typ   string // "", host, net, port, proto
	value string // "" for a bare protocol primitive
	pos   int    // byte offset of the primitive in the expression, for messages
}

type fdir int

const (
	dirAny fdir = iota // src or dst (the default)
	dirSrc
	dirDst
	dirBoth // src and dst
)

// ftoken is one lexical token of a filter expression.
type ftoken struct {
	s   string
	pos int
}

// FilterError is a filter expression the native compiler cannot compile.
type FilterError struct {
	Expr string
	Pos  int // byte offset in Expr, -1 when not about one place
	Msg  string
}

func (e *FilterError) Error() string {
	if e.Pos >= 0 {
		return fmt.Sprintf("filter %q: at offset %d: %s", e.Expr, e.Pos, e.Msg)
	}
	return fmt.Sprintf("filter %q: %s", e.Expr, e.Msg)
}

func lexFilter(expr string) ([]ftoken, error) {
	var toks []ftoken
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(' || c == ')':
			toks = append(toks, ftoken{expr[i : i+1], i})
			i++
		case c == '!':
			toks = append(toks, ftoken{"not", i})
			i++
		case strings.HasPrefix(expr[i:], "&&"):
			toks = append(toks, ftoken{"and", i})
			i += 2
		case strings.HasPrefix(expr[i:], "||"):
			toks = append(toks, ftoken{"or", i})
			i += 2
		case isWordByte(c):
			j := i
			for j < len(expr) && isWordByte(expr[j]) {
				j++
			}
			toks = append(toks, ftoken{strings.ToLower(expr[i:j]), i})
			i = j
		default:
			return nil, &FilterError{Expr: expr, Pos: i, Msg: fmt.Sprintf("unexpected character %q", c)}
		}
	}
	return toks, nil
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '.' || c == ':' || c == '/' || c == '-' || c == '_'
}

// protoWords are the protocol qualifiers and bare protocol primitives.
var protoWords = map[string]bool{
	"ip": true, "ip6": true, "arp": true, "rarp": true, "tcp": true, "udp": true, "sctp": true,
	"icmp": true, "icmp6": true, "igmp": true, "esp": true, "ah": true,
}

// reserved are words that cannot be values.
var reserved = map[string]bool{
	"and": true, "or": true, "not": true, "src": true, "dst": true,
	"host": true, "net": true, "port": true, "proto": true, "(": true, ")": true,
}

type fparser struct {
	expr string
	toks []ftoken
	i    int
	last *fprim // qualifiers of the previous primitive with a value
}

// parseFilter parses expr; an empty expression returns nil.
func parseFilter(expr string) (*fnode, error) {
	toks, err := lexFilter(expr)
	if err != nil {
		return nil, err
	}
	if len(toks) == 0 {
		return nil, nil
	}
	p := &fparser{expr: expr, toks: toks}
	n, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.i < len(p.toks) {
		return nil, p.errAt(p.toks[p.i].pos, fmt.Sprintf("unexpected %q", p.toks[p.i].s))
	}
	return n, nil
}

func (p *fparser) errAt(pos int, msg string) error {
	return &FilterError{Expr: p.expr, Pos: pos, Msg: msg}
}

func (p *fparser) peek(k int) string {
	if p.i+k < len(p.toks) {
		return p.toks[p.i+k].s
	}
	return ""
}

func (p *fparser) pos() int {
	if p.i < len(p.toks) {
		return p.toks[p.i].pos
	}
	return len(p.expr)
}

// or parses a sequence of primitives joined by "and" and "or", which in
// tcpdump's language have equal precedence and associate left to right.
func (p *fparser) or() (*fnode, error) {
	l, err := p.unary()
	if err != nil {
		return nil, err
	}
	for {
		op := fopAnd
		switch p.peek(0) {
		case "and":
		case "or":
			op = fopOr
		default:
			return l, nil
		}
		p.i++
		r, err := p.unary()
		if err != nil {
			return nil, err
		}
		l = &fnode{op: op, l: l, r: r}
	}
}

func (p *fparser) unary() (*fnode, error) {
	switch p.peek(0) {
	case "not":
		p.i++
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		return &fnode{op: fopNot, l: x}, nil
	case "(":
		open := p.pos()
		p.i++
		x, err := p.or()
		if err != nil {
			return nil, err
		}
		if p.peek(0) != ")" {
			return nil, p.errAt(open, "unbalanced parenthesis: missing )")
		}
		p.i++
		return x, nil
	case "":
		return nil, p.errAt(p.pos(), "expression ends early: expected a primitive")
	}
	return p.primitive()
}

func (p *fparser) primitive() (*fnode, error) {
	start := p.pos()
	pr := fprim{pos: start}
	qualified := false
	if w := p.peek(0); protoWords[w] {
		pr.proto = w
		p.i++
		qualified = true
	}
	switch p.peek(0) {
	case "src", "dst":
		pr.dir = dirSrc
		if p.peek(0) == "dst" {
			pr.dir = dirDst
		}
		p.i++
		if c := p.peek(0); (c == "or" || c == "and") && p.peek(1) == "dst" && pr.dir == dirSrc ||
			(c == "or" || c == "and") && p.peek(1) == "src" && pr.dir == dirDst {
			pr.dir = dirAny
			if c == "and" {
				pr.dir = dirBoth
			}
			p.i += 2
		}
		qualified = true
	}
	switch w := p.peek(0); w {
	case "host", "net", "port", "proto":
		pr.typ = w
		p.i++
		qualified = true
	}
	if pr.proto != "" && pr.dir == dirAny && pr.typ == "" {
		// A bare protocol, unless a value follows (which is an error).
		if v := p.peek(0); v != "" && !reserved[v] && !protoWords[v] {
			return nil, p.errAt(p.pos(), fmt.Sprintf("unexpected %q after %q (expected host, net, port or proto)", v, pr.proto))
		}
		if pr.proto != "" && pr.dir == dirAny {
			return &fnode{op: fopPrim, prim: pr}, nil
		}
	}
	v := p.peek(0)
	if v == "" || reserved[v] || protoWords[v] {
		if v == "" {
			return nil, p.errAt(p.pos(), "expression ends early: expected a value")
		}
		return nil, p.errAt(p.pos(), fmt.Sprintf("expected a value, found %q", v))
	}
	p.i++
	if !qualified {
		if p.last != nil {
			// "host a or b": a bare value repeats the last qualifiers.
			pr.proto, pr.dir, pr.typ = p.last.proto, p.last.dir, p.last.typ
		} else {
			pr.typ = "host"
		}
	}
	if pr.typ == "" {
		pr.typ = "host"
	}
	pr.value = v
	last := pr
	p.last = &last
	return &fnode{op: fopPrim, prim: pr}, nil
}

// portNames are the service names the native compiler knows.
var portNames = map[string]uint16{
	"domain": 53, "http": 80, "https": 443, "ssh": 22, "telnet": 23, "ftp": 21, "ftp-data": 20,
	"smtp": 25, "ntp": 123, "bgp": 179, "isakmp": 500, "ipsec-nat-t": 4500, "snmp": 161,
	"syslog": 514, "bootps": 67, "bootpc": 68, "openvpn": 1194, "l2tp": 1701, "radius": 1812,
}

// protoNumbers are the IP protocol names the native compiler knows.
var protoNumbers = map[string]uint8{
	"icmp": 1, "igmp": 2, "tcp": 6, "udp": 17, "gre": 47, "esp": 50, "ah": 51,
	"icmp6": 58, "sctp": 132, "vrrp": 112, "pim": 103, "ipip": 4,
}

func parsePort(s string) (uint16, bool) {
	if n, ok := portNames[s]; ok {
		return n, true
	}
	n, err := strconv.ParseUint(s, 10, 16)
	return uint16(n), err == nil
}

// parseNet parses ADDR/LEN, a full address (a host-length prefix) or a
// partial dotted IPv4 network ("198.18" is 198.18.0.0/16).
func parseNet(s string) (netip.Prefix, bool) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, false
		}
		return p, true
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	parts := strings.Split(s, ".")
	if len(parts) > 3 {
		return netip.Prefix{}, false
	}
	var b [4]byte
	for i, part := range parts {
		n, err := strconv.ParseUint(part, 10, 8)
		if err != nil {
			return netip.Prefix{}, false
		}
		b[i] = byte(n)
	}
	return netip.PrefixFrom(netip.AddrFrom4(b), 8*len(parts)), true
}
