// Package nat finds NAT port-pool exhaustion in captures of any NAT device.
//
// From a capture of the NAT's outside alone it reports the NAT addresses (the
// sources that start many flows), the source-port range each uses per
// protocol (min, max, distinct), the concurrent mappings over time per
// destination, port reuse, and the ceiling signature: a pool whose distinct
// ports fill a contiguous block exactly and are all mapped at once. With a
// capture of the inside too, it matches every inside flow to its translated
// outside flow (by destination, IP ID and payload or TCP sequence number) and
// proves exhaustion: the new flows that entered the NAT and never left it,
// against the number of live mappings at that moment.
//
// The analysis streams: a flow is tracked while its mapping is live (until
// its last packet plus the protocol's idle timeout, in capture time) and is
// then folded into its pool's counters, so memory follows the number of live
// flows, not the size of the capture. Only the inside/outside proof keeps
// every flow, since the inside capture is read after the outside one.
//
// The analyzer is registered as "nat" and then treats every input as an
// outside view; Run and New with Roles analyse an outside/inside pair.
package nat

import (
	"net/netip"
	"time"

	"github.com/vpndiag/vpndiag/analyze"
	"github.com/vpndiag/vpndiag/analyze/decode"
)

func init() { analyze.Register("nat", func() analyze.Analyzer { return New(Options{}) }) }

// Role says which side of the NAT an input was captured on.
type Role uint8

// Roles.
const (
	RoleOutside Role = iota // translated side (public addresses)
	RoleInside              // client side, before translation
)

// Default limits (see Options).
const (
	DefaultMaxFlows = 100_000
	DefaultMaxPools = 100_000
)

// Options configure an analysis.
type Options struct {
	// Roles maps input index to its side. Inputs not listed are outside
	// views analysed on their own.
	Roles map[int]Role
	// UDPTimeout is how long a UDP mapping stays live after its last packet
	// (default 30 s, Linux's nf_conntrack_udp_timeout).
	UDPTimeout time.Duration
	// TCPTimeout is how long a TCP mapping that is opening (SYN sent, not
	// answered) or closing (FIN seen) stays live after its last packet
	// (default 120 s, Linux's SYN_SENT and TIME_WAIT timeouts).
	TCPTimeout time.Duration
	// TCPEstablishedTimeout is how long an answered TCP mapping stays live
	// when idle (default 5 days, Linux's nf_conntrack_tcp_timeout_established;
	// cloud NATs use minutes).
	TCPEstablishedTimeout time.Duration
	// TCPCloseTimeout is how long a TCP mapping stays live after a reset
	// (default 10 s, Linux's CLOSE timeout).
	TCPCloseTimeout time.Duration
	// MinFlows is how many flows a source must start to count as a NAT
	// address (default 32).
	MinFlows int
	// MaxFlows bounds the flows tracked at once per input (default 100,000,
	// about 35 MB of heap measured; with an inside capture, every flow of
	// the pair is kept and MaxFlows bounds them all). New flows beyond it
	// are counted as untracked and reported (nat.flow-limit).
	MaxFlows int
	// MaxPools bounds the pools (source, protocol, destination) counted
	// per input (default 100,000); flows of further pools are untracked.
	MaxPools int
}

func (o *Options) defaults() {
	if o.UDPTimeout <= 0 {
		o.UDPTimeout = 30 * time.Second
	}
	if o.TCPTimeout <= 0 {
		o.TCPTimeout = 120 * time.Second
	}
	if o.TCPEstablishedTimeout <= 0 {
		o.TCPEstablishedTimeout = 5 * 24 * time.Hour
	}
	if o.TCPCloseTimeout <= 0 {
		o.TCPCloseTimeout = 10 * time.Second
	}
	if o.MinFlows <= 0 {
		o.MinFlows = 32
	}
	if o.MaxFlows <= 0 {
		o.MaxFlows = DefaultMaxFlows
	}
	if o.MaxPools <= 0 {
		o.MaxPools = DefaultMaxPools
	}
}

// dirKey is a flow in the direction its first packet travelled. Its fields
// leave no padding, so the index map hashes it as one block of memory.
type dirKey struct {
	src, dst     netip.Addr
	sport, dport uint16
	proto        uint8
	_pad         [3]uint8 // always zero
}

// matchKey identifies one packet across the NAT: the destination is not
// translated, nor are the IPv4 ID, the TCP sequence number and the payload.
type matchKey struct {
	proto uint8
	dst   netip.Addr
	dport uint16
	id    uint32
	h     uint64
}

// maxMatch is how many of a flow's first forward packets are indexed for
// matching (the first packet and retries).
const maxMatch = 4

// Analyzer is the NAT analyzer. Create it with New.
type Analyzer struct {
	opt      Options
	sides    map[int]*side
	last     *side // the previous packet's side (lastIn)
	lastIn   int
	paired   bool     // an inside role was given: keep every flow for matching
	timeouts [4]int64 // per timeout class (see class)
	noSwap   bool     // tests: touch moves a flow by unlink and pushBack only
}

// New returns an analyzer with the given options.
func New(opt Options) *Analyzer {
	opt.defaults()
	a := &Analyzer{opt: opt, sides: map[int]*side{}}
	for _, r := range opt.Roles {
		if r == RoleInside {
			a.paired = true
		}
	}
	a.timeouts = [4]int64{
		classUDP:      int64(opt.UDPTimeout),
		classTCPOpen:  int64(opt.TCPTimeout),
		classTCPEst:   int64(opt.TCPEstablishedTimeout),
		classTCPReset: int64(opt.TCPCloseTimeout),
	}
	return a
}

// Name implements analyze.Analyzer.
func (a *Analyzer) Name() string { return "nat" }

// Packet implements analyze.Analyzer. It allocates only when a new flow or
// pool grows a table.
func (a *Analyzer) Packet(rec *decode.Record) {
	l := rec.Outer()
	if l == nil || l.IP.Fragment && l.IP.FragOffset > 0 {
		return
	}
	p := l.L4.Proto
	if p != 6 && p != 17 {
		return
	}
	s := a.last
	if s == nil || a.lastIn != rec.Input {
		s = a.sides[rec.Input]
		if s == nil {
			s = newSide(a.opt.Roles[rec.Input], a.paired, rec.Time, a.timeouts)
			a.sides[rec.Input] = s
		}
		a.last, a.lastIn = s, rec.Input
	}
	if rec.Time < s.first {
		s.first = rec.Time
	}
	if rec.Time > s.last {
		s.last = rec.Time
	}
	a.expire(s, s.last)
	for j, i := range s.memo {
		if i < 0 {
			break
		}
		// A recent packet's flow: its key is in the index, so this is what
		// the index would answer (a flow's reverse is never indexed as a
		// flow of its own).
		// Ports first: they tell a tunnel's two outer flows apart.
		mk := &s.flows[i].key
		fwd := mk.sport == l.L4.SrcPort && mk.dport == l.L4.DstPort && mk.proto == p && mk.src == l.IP.Src && mk.dst == l.IP.Dst
		if fwd || mk.sport == l.L4.DstPort && mk.dport == l.L4.SrcPort && mk.proto == p && mk.src == l.IP.Dst && mk.dst == l.IP.Src {
			if j > 0 {
				s.remember(i)
			}
			a.touch(s, i, fwd, rec, l)
			return
		}
	}
	k := dirKey{proto: p, src: l.IP.Src, dst: l.IP.Dst, sport: l.L4.SrcPort, dport: l.L4.DstPort}
	if i, ok := s.index[k]; ok {
		s.remember(i)
		a.touch(s, i, true, rec, l)
		return
	}
	r := dirKey{proto: p, src: l.IP.Dst, dst: l.IP.Src, sport: l.L4.DstPort, dport: l.L4.SrcPort}
	if i, ok := s.index[r]; ok {
		s.remember(i)
		a.touch(s, i, false, rec, l)
		return
	}
	// A TCP segment without SYN starts no flow we can attribute (mid-stream).
	if p == 6 && l.L4.Flags&decode.TCPSyn == 0 {
		return
	}
	// A SYN-ACK answers a SYN we did not see: the initiator is the other side.
	if p == 6 && l.L4.Flags&decode.TCPAck != 0 {
		return
	}
	a.start(s, k, rec, l)
}

func keyOf(rec *decode.Record, l *decode.Level) matchKey {
	k := matchKey{proto: l.L4.Proto, dst: l.IP.Dst, dport: l.L4.DstPort}
	if l.L4.Proto == 6 {
		k.h = uint64(l.L4.Seq)
		return k
	}
	k.id = l.IP.ID
	k.h = rec.PayloadHash()
	return k
}
