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

// Options configure an analysis.
type Options struct {
	// Roles maps input index to its side. Inputs not listed are outside
	// views analysed on their own.
	Roles map[int]Role
	// UDPTimeout and TCPTimeout are how long a mapping stays live after its
	// last packet (defaults 30 s, Linux's nf_conntrack_udp_timeout, and 120 s).
	UDPTimeout, TCPTimeout time.Duration
	// MinFlows is how many flows a source must start to count as a NAT
	// address (default 32).
	MinFlows int
	// MaxFlows bounds the flows kept per input (default 2,000,000); later
	// new flows are counted but not tracked.
	MaxFlows int
}

func (o *Options) defaults() {
	if o.UDPTimeout <= 0 {
		o.UDPTimeout = 30 * time.Second
	}
	if o.TCPTimeout <= 0 {
		o.TCPTimeout = 120 * time.Second
	}
	if o.MinFlows <= 0 {
		o.MinFlows = 32
	}
	if o.MaxFlows <= 0 {
		o.MaxFlows = 2_000_000
	}
}

// dirKey is a flow in the direction its first packet travelled.
type dirKey struct {
	proto        uint8
	src, dst     netip.Addr
	sport, dport uint16
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

// flow is one tracked flow, in the direction its first packet took.
type flow struct {
	key         dirKey
	first, last int64
	firstFrame  uint64
	fwd, rev    uint32
	match       [maxMatch]matchKey
	nmatch      uint8
}

// side is what one input showed.
type side struct {
	role        Role
	flows       []flow
	index       map[dirKey]int32
	untracked   uint64 // new flows beyond MaxFlows
	first, last int64
}

// Analyzer is the NAT analyzer. Create it with New.
type Analyzer struct {
	opt   Options
	sides map[int]*side
}

// New returns an analyzer with the given options.
func New(opt Options) *Analyzer {
	opt.defaults()
	return &Analyzer{opt: opt, sides: map[int]*side{}}
}

// Name implements analyze.Analyzer.
func (a *Analyzer) Name() string { return "nat" }

// Packet implements analyze.Analyzer. It allocates only when a new flow
// grows the flow table.
func (a *Analyzer) Packet(rec *decode.Record) {
	l := rec.Outer()
	if l == nil || l.IP.Fragment && l.IP.FragOffset > 0 {
		return
	}
	p := l.L4.Proto
	if p != 6 && p != 17 {
		return
	}
	s := a.sides[rec.Input]
	if s == nil {
		s = &side{role: a.opt.Roles[rec.Input], index: map[dirKey]int32{}, first: rec.Time}
		a.sides[rec.Input] = s
	}
	if rec.Time < s.first {
		s.first = rec.Time
	}
	if rec.Time > s.last {
		s.last = rec.Time
	}
	k := dirKey{proto: p, src: l.IP.Src, dst: l.IP.Dst, sport: l.L4.SrcPort, dport: l.L4.DstPort}
	if i, ok := s.index[k]; ok {
		f := &s.flows[i]
		f.fwd++
		f.last = max(f.last, rec.Time)
		if f.nmatch < maxMatch {
			f.match[f.nmatch] = keyOf(rec, l)
			f.nmatch++
		}
		return
	}
	r := dirKey{proto: p, src: l.IP.Dst, dst: l.IP.Src, sport: l.L4.DstPort, dport: l.L4.SrcPort}
	if i, ok := s.index[r]; ok {
		f := &s.flows[i]
		f.rev++
		f.last = max(f.last, rec.Time)
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
	if len(s.flows) >= a.opt.MaxFlows {
		s.untracked++
		return
	}
	f := flow{key: k, first: rec.Time, last: rec.Time, firstFrame: rec.Frame, fwd: 1, nmatch: 1}
	f.match[0] = keyOf(rec, l)
	s.index[k] = int32(len(s.flows))
	s.flows = append(s.flows, f)
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
