package ipsec

import (
	"hash/maphash"

	"github.com/vpndiag/vpndiag/analyze/decode"
)

// Exchange kinds, for fixed-size counters per peer.
const (
	exSAInit = iota // IKEv2 IKE_SA_INIT
	exAuth          // IKEv2 IKE_AUTH
	exChild         // IKEv2 CREATE_CHILD_SA
	exInfo2         // IKEv2 INFORMATIONAL
	exMain          // IKEv1 main mode
	exAggr          // IKEv1 aggressive mode
	exInfo1         // IKEv1 informational
	exQuick         // IKEv1 quick mode
	exOther
	numEx
)

var exNames = [numEx]string{"IKE_SA_INIT", "IKE_AUTH", "CREATE_CHILD_SA", "INFORMATIONAL (v2)",
	"Main Mode", "Aggressive Mode", "Informational (v1)", "Quick Mode", "other"}

func exKind(version, exchange uint8) int {
	if version == 2 {
		if exchange >= 34 && exchange <= 37 {
			return int(exchange - 34)
		}
		return exOther
	}
	switch exchange {
	case 2:
		return exMain
	case 4:
		return exAggr
	case 5:
		return exInfo1
	case 32:
		return exQuick
	}
	return exOther
}

// exCount counts one exchange type between a peer pair.
type exCount struct {
	requests, answered, retrans uint64
	unanswered, pending         uint64 // filled by Finish
}

// peer is everything known about one pair of IPsec peers.
type peer struct {
	key        pairKey
	input      int
	firstFrame uint64
	first      int64
	last       int64
	versions   uint8 // bit 1<<v for IKE versions seen
	ikeMsgs    uint64
	ex         [numEx]exCount
	setups     []int64 // IKE SA set-up times (bounded)
	nSetups    uint64
	childTimes []int64 // re-key events (bursts of child exchanges), bounded
	nChild     uint64
	lastChild  int64
	retrans    uint64
	retFrames  []fref
	// NAT traversal
	ikeNATT    bool
	espUDP     bool
	keepalives [2]uint64 // by side
	odd        [2]uint16 // a source port other than 500/4500 used by the side
	nattFrames []fref
	// Filled by Finish.
	completed, incomplete uint64
	incFrames, unaFrames  []fref
	unanswered            uint64
	untracked             uint64
}

// maxTimes bounds the event times kept per peer for interval medians.
const maxTimes = 256

func addTime(ts []int64, t int64) []int64 {
	if len(ts) < maxTimes {
		ts = append(ts, t)
	}
	return ts
}

// saKey identifies an IKE SA by its initiator SPI and peer pair.
type saKey struct {
	pair pairKey
	ispi uint64
}

// ikeSA is the negotiation state of one IKE SA (phase 1).
type ikeSA struct {
	version   uint8
	initiator int // side of the initiator
	setup     bool
	setupAt   int64
	frame     fref
	msgs      [2]uint8 // IKEv1 phase 1 messages (not retransmissions) by side
	aggr      bool
	completed bool
}

// xKey identifies one exchange: IKEv2 by SPI, message ID and which original
// party sent the request; IKEv1 by SPI and message ID.
type xKey struct {
	pair  pairKey
	ispi  uint64
	msgID uint32
	dir   uint8
	ver   uint8
}

// exchange is one request/response pair (IKEv2) or one IKEv1 exchange.
type exchange struct {
	kind     uint8
	reqSide  uint8
	oneWay   bool
	answered bool
	input    int
	reqs     uint32
	lastReq  int64
	reqFrame uint64
	hash     [2]uint64 // last message hash per side (request side, response side)
	length   [2]uint32
}

// ikeLevel returns the level carrying the IKE message: the innermost UDP
// level on port 500 or 4500.
func ikeLevel(rec *decode.Record) *decode.Level {
	for i := int(rec.NumLevels) - 1; i >= 0; i-- {
		l := &rec.Levels[i]
		if l.L4.Proto == 17 && (l.L4.DstPort == 500 || l.L4.SrcPort == 500 || l.L4.DstPort == 4500 || l.L4.SrcPort == 4500) {
			return l
		}
	}
	return rec.Inner()
}

func (a *Analyzer) ike(rec *decode.Record) {
	l := ikeLevel(rec)
	k := &rec.IKE
	pk := pairOf(l.IP.Src, l.IP.Dst)
	p := a.peer(pk, rec)
	if p == nil {
		return
	}
	side := pk.side(l.IP.Src)
	p.ikeMsgs++
	p.versions |= 1 << k.Version
	if k.NATT {
		p.ikeNATT = true
		if p.nattFrames == nil {
			p.nattFrames = addFrame(p.nattFrames, fref{rec.Input, rec.Frame})
		}
	}
	if sp := l.L4.SrcPort; sp != 500 && sp != 4500 {
		p.odd[side] = sp
	}
	kind := exKind(k.Version, k.Exchange)
	h := maphash.Bytes(a.seed, l.L4.Payload)
	n := uint32(len(l.L4.Payload))
	if k.Version == 2 {
		a.ikev2(rec, p, pk, side, kind, h, n)
	} else {
		a.ikev1(rec, p, pk, side, kind, h, n)
	}
}

// sa returns the IKE SA state, creating it; nil when the table is full.
func (a *Analyzer) sa(k saKey) *ikeSA {
	s := a.sas[k]
	if s == nil {
		if len(a.sas) >= a.cfg.MaxIKESAs {
			for key, v := range a.sas { // forget finished negotiations first
				if v.completed || !v.setup {
					delete(a.sas, key)
				}
			}
			if len(a.sas) >= a.cfg.MaxIKESAs {
				a.dropped.sas++
				return nil
			}
		}
		s = &ikeSA{}
		a.sas[k] = s
	}
	return s
}

// exchangeFor returns the exchange state, creating it; nil when full.
func (a *Analyzer) exchangeFor(k xKey, p *peer) (*exchange, bool) {
	x := a.xs[k]
	if x != nil {
		return x, false
	}
	if len(a.xs) >= a.cfg.MaxExchanges {
		for key, v := range a.xs { // answered exchanges are already counted
			if v.answered || v.oneWay {
				delete(a.xs, key)
			}
		}
		if len(a.xs) >= a.cfg.MaxExchanges {
			a.dropped.xs++
			p.untracked++
			return nil, false
		}
	}
	x = &exchange{}
	a.xs[k] = x
	return x, true
}

func (a *Analyzer) retransmitted(rec *decode.Record, p *peer, kind int) {
	p.retrans++
	p.ex[kind].retrans++
	p.retFrames = addFrame(p.retFrames, fref{rec.Input, rec.Frame})
}

// setupEvent records the start of a new IKE SA negotiation.
func (a *Analyzer) setupEvent(rec *decode.Record, p *peer, s *ikeSA, side int) {
	s.setup = true
	s.setupAt = rec.Time
	s.initiator = side
	s.frame = fref{rec.Input, rec.Frame}
	p.nSetups++
	p.setups = addTime(p.setups, rec.Time)
}

// childEvent records a child SA exchange; exchanges within RekeyBurst of
// the previous one belong to the same re-key event.
func (a *Analyzer) childEvent(rec *decode.Record, p *peer) {
	if p.nChild == 0 || rec.Time-p.lastChild > int64(a.cfg.RekeyBurst) {
		p.nChild++
		p.childTimes = addTime(p.childTimes, rec.Time)
	}
	p.lastChild = rec.Time
}

func (a *Analyzer) ikev2(rec *decode.Record, p *peer, pk pairKey, side, kind int, h uint64, n uint32) {
	k := &rec.IKE
	resp := k.Flags&0x20 != 0
	fromInit := k.Flags&0x08 != 0
	var dir uint8
	if fromInit != resp {
		dir = 1
	}
	sk := saKey{pk, k.InitiatorSPI}
	if kind == exSAInit && !resp && k.ResponderSPI == 0 {
		if s := a.sa(sk); s != nil && !s.setup {
			s.version = 2
			a.setupEvent(rec, p, s, side)
		}
	}
	if kind == exAuth && resp {
		if s := a.sas[sk]; s != nil {
			s.completed = true
		}
	}
	x, _ := a.exchangeFor(xKey{pk, k.InitiatorSPI, k.MessageID, dir, 2}, p)
	if x == nil {
		return
	}
	x.kind = uint8(kind)
	if !resp {
		if x.reqs > 0 && x.hash[0] == h && x.length[0] == n {
			a.retransmitted(rec, p, kind)
			return
		}
		x.reqs++
		x.answered = false
		x.hash[0], x.length[0] = h, n
		x.lastReq, x.reqFrame, x.input = rec.Time, rec.Frame, rec.Input
		x.reqSide = uint8(side)
		p.ex[kind].requests++
		if kind == exChild {
			a.childEvent(rec, p)
		}
		return
	}
	if x.reqs == 0 {
		return // response to a request before the capture
	}
	if x.answered && x.hash[1] == h && x.length[1] == n {
		a.retransmitted(rec, p, kind)
		return
	}
	x.hash[1], x.length[1] = h, n
	if !x.answered {
		x.answered = true
		p.ex[kind].answered++
	}
}

func (a *Analyzer) ikev1(rec *decode.Record, p *peer, pk pairKey, side, kind int, h uint64, n uint32) {
	k := &rec.IKE
	sk := saKey{pk, k.InitiatorSPI}
	phase1 := kind == exMain || kind == exAggr
	var s *ikeSA
	if phase1 {
		s = a.sa(sk)
		if s != nil && !s.setup && k.ResponderSPI == 0 {
			s.version = 1
			s.aggr = kind == exAggr
			a.setupEvent(rec, p, s, side)
		}
	}
	x, isNew := a.exchangeFor(xKey{pk, k.InitiatorSPI, k.MessageID, 0, 1}, p)
	if x == nil {
		return
	}
	if isNew {
		x.kind = uint8(kind)
		x.reqSide = uint8(side)
		x.oneWay = kind == exInfo1
		x.input = rec.Input
		x.lastReq, x.reqFrame = rec.Time, rec.Frame
		x.reqs = 1
		x.hash[0], x.length[0] = h, n
		p.ex[kind].requests++
		if kind == exQuick {
			a.childEvent(rec, p)
		}
		if s != nil && s.setup {
			s.msgs[side]++
		}
		return
	}
	r := 0
	if uint8(side) != x.reqSide {
		r = 1
	}
	if x.hash[r] == h && x.length[r] == n {
		a.retransmitted(rec, p, int(x.kind))
		return
	}
	x.hash[r], x.length[r] = h, n
	if r == 0 {
		x.lastReq = rec.Time
	}
	if r == 1 && !x.answered && !x.oneWay {
		x.answered = true
		p.ex[x.kind].answered++
		if kind == exQuick {
			if ps := a.sas[sk]; ps != nil {
				ps.completed = true // phase 2 runs only on a finished phase 1
			}
		}
	}
	if s != nil && s.setup {
		s.msgs[side]++
		resp := s.msgs[1-s.initiator]
		if (!s.aggr && resp >= 3) || (s.aggr && resp >= 1 && s.msgs[s.initiator] >= 2) {
			s.completed = true
		}
	}
}
