package nat

import (
	"math"
	"net/netip"

	"github.com/vpndiag/vpndiag/analyze/decode"
)

// Timeout classes: every class has one idle timeout, and each keeps its live
// flows in a list ordered by last packet, so the flows whose mapping has
// expired are always at the heads of the lists.
const (
	classUDP      = iota
	classTCPOpen  // SYN not yet answered, or FIN seen (TCPTimeout)
	classTCPEst   // answered (TCPEstablishedTimeout)
	classTCPReset // RST seen (TCPCloseTimeout)
	numClasses
)

// flow is one tracked flow, in the direction its first packet took.
type flow struct {
	key         dirKey
	first, last int64
	firstFrame  uint64
	fwd, rev    uint32
	pool        int32 // index into side.pools
	prev, next  int32 // links in the class list (-1: none)
	class       uint8
	finFwd      bool
	finRev      bool
	evicted     bool // the mapping expired (its slot is free unless the side keeps flows)
}

// list is a doubly linked list of flow indices, oldest last packet first.
type list struct{ head, tail int32 }

// poolKey identifies a pool: source (NAT address), protocol, destination.
type poolKey struct {
	nat   netip.Addr
	proto uint8
	dst   netip.AddrPort
}

// poolAgg is what is known of a pool while streaming: its flows are counted
// when they start, their answers when their mapping ends.
type poolAgg struct {
	key         poolKey
	flows       int
	ports       map[uint16]struct{}
	min, max    uint16
	unanswered  int // of the flows whose mapping ended
	live, peak  int
	peakAt      int64
	firstFrame  uint64
	lastPort    uint16
	ascending   int // new flows whose port was above the previous flow's
	sec         int64
	secFlows    int
	maxPerSec   int // most new flows in one second
	maxPerSecAt int64
	use         *usage // live mappings over time (usage.go), nil until usageMin
}

// portUse is the first destination a NAT port was used towards, and whether
// it was used towards another one too.
type portUse struct {
	dst    netip.AddrPort
	shared bool
}

type addrKey struct {
	nat   netip.Addr
	proto uint8
}

// addrAgg sums one source address and protocol.
type addrAgg struct {
	starts int
	ports  map[uint16]portUse
}

// side is what one input showed.
type side struct {
	role    Role
	keep    bool // keep expired flows (for inside/outside matching)
	flows   []flow
	matches [][maxMatch]matchKey // parallel to flows when keep
	nmatch  []uint8
	free    []int32
	index   map[dirKey]int32
	// memo holds the flows of the latest packets, newest first (-1: none),
	// all in index: tunnels carry each direction in an outer flow of its
	// own, so packets alternate between two flows.
	memo  [2]int32
	lists [numClasses]list
	// timeouts are the idle timeouts of the classes (Analyzer.timeouts).
	timeouts [numClasses]int64
	// expBound is at most the expiry (last + timeout) of every list's head,
	// so expire has nothing to do before it: lowered whenever a flow
	// becomes a head, made exact again after every expiry round.
	expBound    int64
	live        int // flows tracked now
	pools       []poolAgg
	poolIndex   map[poolKey]int32
	addrs       map[addrKey]*addrAgg
	untracked   uint64 // new flows beyond MaxFlows or MaxPools
	evicted     uint64 // flows whose mapping expired during the pass
	peakLive    int    // most flows tracked at once
	usagePools  int    // pools with a usage series (usage.go)
	first, last int64
}

func newSide(role Role, keep bool, t int64, timeouts [numClasses]int64) *side {
	s := &side{role: role, keep: keep, index: map[dirKey]int32{}, poolIndex: map[poolKey]int32{},
		addrs: map[addrKey]*addrAgg{}, first: t, last: t, memo: [2]int32{-1, -1},
		timeouts: timeouts, expBound: math.MaxInt64}
	for c := range s.lists {
		s.lists[c] = list{-1, -1}
	}
	return s
}

// remember makes flow i the newest in memo.
func (s *side) remember(i int32) {
	if s.memo[0] != i {
		s.memo = [2]int32{i, s.memo[0]}
	}
}

func (s *side) unlink(i int32) {
	f := &s.flows[i]
	l := &s.lists[f.class]
	if f.prev >= 0 {
		s.flows[f.prev].next = f.next
	} else {
		l.head = f.next
		if f.next >= 0 {
			s.expBound = min(s.expBound, s.flows[f.next].last+s.timeouts[f.class])
		}
	}
	if f.next >= 0 {
		s.flows[f.next].prev = f.prev
	} else {
		l.tail = f.prev
	}
	f.prev, f.next = -1, -1
}

func (s *side) pushBack(i int32, class uint8) {
	f := &s.flows[i]
	f.class = class
	l := &s.lists[class]
	f.prev, f.next = l.tail, -1
	if l.tail >= 0 {
		s.flows[l.tail].next = i
	} else {
		l.head = i
		s.expBound = min(s.expBound, f.last+s.timeouts[class])
	}
	l.tail = i
}

// expire ends every mapping whose last packet plus its class's timeout is at
// or before now: Pool.Live counts a mapping as live on [first, last+timeout).
//
// Only a list's head can expire, and a flow's expiry never moves earlier
// while it stays the head (its last packet only grows): so while now is
// before expBound, no head has expired and there is nothing to do. The
// expiry rounds are the same as checking every head at every packet.
func (a *Analyzer) expire(s *side, now int64) {
	if now < s.expBound {
		return
	}
	for c := range s.lists {
		to := a.timeouts[c]
		for {
			i := s.lists[c].head
			if i < 0 || s.flows[i].last+to > now {
				break
			}
			s.unlink(i)
			a.evict(s, i)
		}
	}
	s.expBound = math.MaxInt64
	for c := range s.lists {
		if i := s.lists[c].head; i >= 0 {
			s.expBound = min(s.expBound, s.flows[i].last+a.timeouts[c])
		}
	}
}

// evict folds an expired flow into its pool and frees its slot.
func (a *Analyzer) evict(s *side, i int32) {
	f := &s.flows[i]
	p := &s.pools[f.pool]
	p.live--
	s.noteLive(p, f.last+a.timeoutOf(f))
	if f.rev == 0 {
		p.unanswered++
	}
	f.evicted = true
	delete(s.index, f.key)
	switch i {
	case s.memo[0]:
		s.memo = [2]int32{s.memo[1], -1}
	case s.memo[1]:
		s.memo[1] = -1
	}
	s.live--
	s.evicted++
	if !s.keep {
		s.free = append(s.free, i)
	}
}

// touch counts a packet of a tracked flow and moves the flow to the tail of
// its (possibly new) class list.
func (a *Analyzer) touch(s *side, i int32, fwd bool, rec *decode.Record, l *decode.Level) {
	f := &s.flows[i]
	if fwd {
		f.fwd++
		if s.keep && s.nmatch[i] < maxMatch {
			s.matches[i][s.nmatch[i]] = keyOf(rec, l)
			s.nmatch[i]++
		}
	} else {
		f.rev++
	}
	f.last = max(f.last, rec.Time)
	class := f.class
	if f.key.proto == 6 && class != classTCPReset {
		fl := l.L4.Flags
		switch {
		case fl&decode.TCPRst != 0:
			class = classTCPReset
		case fl&decode.TCPFin != 0:
			if fwd {
				f.finFwd = true
			} else {
				f.finRev = true
			}
			class = classTCPOpen
		case !fwd && class == classTCPOpen && !f.finFwd && !f.finRev:
			class = classTCPEst // the responder answered the SYN
		}
	}
	if class == f.class {
		l := &s.lists[class]
		if l.tail == i {
			return // already the newest of its list
		}
		if t := f.next; t == l.tail && !a.noSwap {
			// Next to the newest (a tunnel's two outer flows take turns):
			// swap the two, as unlink and pushBack would.
			tf := &s.flows[t]
			if p := f.prev; p >= 0 {
				s.flows[p].next = t
			} else {
				l.head = t
				s.expBound = min(s.expBound, tf.last+s.timeouts[class])
			}
			tf.prev, tf.next = f.prev, i
			f.prev, f.next = t, -1
			l.tail = i
			return
		}
	}
	s.unlink(i)
	s.pushBack(i, class)
}

// start tracks a new flow, counting it in its pool and address.
func (a *Analyzer) start(s *side, k dirKey, rec *decode.Record, l *decode.Level) {
	if s.live >= a.opt.MaxFlows || s.keep && len(s.flows) >= a.opt.MaxFlows {
		s.untracked++
		return
	}
	pk := poolKey{k.src, k.proto, netip.AddrPortFrom(k.dst, k.dport)}
	pi, ok := s.poolIndex[pk]
	if !ok {
		if len(s.pools) >= a.opt.MaxPools {
			s.untracked++
			return
		}
		pi = int32(len(s.pools))
		s.pools = append(s.pools, poolAgg{key: pk, ports: map[uint16]struct{}{}, min: k.sport, max: k.sport, firstFrame: rec.Frame, sec: -1})
		s.poolIndex[pk] = pi
	}
	p := &s.pools[pi]
	if p.flows > 0 && k.sport > p.lastPort {
		p.ascending++
	}
	p.flows++
	p.lastPort = k.sport
	p.ports[k.sport] = struct{}{}
	p.min, p.max = min(p.min, k.sport), max(p.max, k.sport)
	p.live++
	if p.live > p.peak {
		p.peak, p.peakAt = p.live, rec.Time
	}
	s.noteLive(p, rec.Time)
	if sec := rec.Time / 1e9; sec != p.sec {
		p.sec, p.secFlows = sec, 0
	}
	p.secFlows++
	if p.secFlows > p.maxPerSec {
		p.maxPerSec, p.maxPerSecAt = p.secFlows, p.sec*1e9
	}
	ak := addrKey{k.src, k.proto}
	u := s.addrs[ak]
	if u == nil {
		u = &addrAgg{ports: map[uint16]portUse{}}
		s.addrs[ak] = u
	}
	u.starts++
	if pu, ok := u.ports[k.sport]; !ok {
		u.ports[k.sport] = portUse{dst: pk.dst}
	} else if !pu.shared && pu.dst != pk.dst {
		u.ports[k.sport] = portUse{dst: pu.dst, shared: true}
	}

	class := uint8(classUDP)
	if k.proto == 6 {
		class = classTCPOpen
	}
	f := flow{key: k, first: rec.Time, last: rec.Time, firstFrame: rec.Frame, fwd: 1, pool: pi, prev: -1, next: -1}
	var i int32
	if n := len(s.free); n > 0 {
		i = s.free[n-1]
		s.free = s.free[:n-1]
		s.flows[i] = f
	} else {
		i = int32(len(s.flows))
		s.flows = append(s.flows, f)
		if s.keep {
			s.matches = append(s.matches, [maxMatch]matchKey{})
			s.nmatch = append(s.nmatch, 0)
		}
	}
	if s.keep {
		s.matches[i][0] = keyOf(rec, l)
		s.nmatch[i] = 1
	}
	s.index[k] = i
	s.remember(i)
	s.pushBack(i, class)
	s.live++
	s.peakLive = max(s.peakLive, s.live)
}

// timeoutOf is the idle timeout of a flow's current class.
func (a *Analyzer) timeoutOf(f *flow) int64 { return a.timeouts[f.class] }
