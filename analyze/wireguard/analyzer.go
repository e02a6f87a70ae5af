// Package wireguard is the "wireguard" analyzer: handshakes per peer
// (endpoint pair, sender and receiver index), initiations without a response
// (WireGuard retries every 5 s), transport counter gaps per receiver index
// (loss, tolerant of reordering within a window), keepalive cadence
// (32-byte transport messages) and roaming endpoints.
//
// Finding ids: wireguard.handshake-unanswered, wireguard.counter-gaps,
// wireguard.roaming. Thresholds are the fields of Config, with the
// defaults of DefaultConfig.
package wireguard

import (
	"net/netip"
	"time"

	"github.com/vpndiag/vpndiag/analyze"
	"github.com/vpndiag/vpndiag/analyze/decode"
	"github.com/vpndiag/vpndiag/analyze/seqwin"
)

func init() { analyze.Register("wireguard", func() analyze.Analyzer { return New() }) }

// Config holds the analyzer's thresholds and bounds.
type Config struct {
	// Grace: an initiation less than this before the end of its capture is
	// pending, not unanswered (WireGuard's REKEY_TIMEOUT is 5 s).
	Grace time.Duration
	// DeadPeer: this many unanswered initiations to a peer that completed no
	// handshake in the capture make the finding an error (peer down or
	// blocked) instead of a warning.
	DeadPeer int
	// GapErrorPercent: counter loss at or above this share makes
	// wireguard.counter-gaps an error.
	GapErrorPercent float64
	// RoamWarn: this many endpoint changes of one session make
	// wireguard.roaming a warning (NAT rebinding, flapping paths); fewer
	// are informational.
	RoamWarn int
	// Bounds on state; what does not fit is counted and reported.
	MaxPeers, MaxSessions, MaxPending int
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{Grace: 6 * time.Second, DeadPeer: 3, GapErrorPercent: 5, RoamWarn: 3,
		MaxPeers: 4096, MaxSessions: 16384, MaxPending: 16384}
}

// pairKey is an unordered pair of UDP endpoints (a < b).
type pairKey struct{ a, b netip.AddrPort }

func pairOf(x, y netip.AddrPort) pairKey {
	if y.Compare(x) < 0 {
		x, y = y, x
	}
	return pairKey{x, y}
}

func (k pairKey) side(e netip.AddrPort) int {
	if e == k.a {
		return 0
	}
	return 1
}

type fref struct {
	input int
	frame uint64
}

const maxFrames = 5

func addFrame(fs []fref, f fref) []fref {
	if len(fs) < maxFrames {
		fs = append(fs, f)
	}
	return fs
}

// peer is one endpoint pair.
type peer struct {
	key        pairKey
	input      int
	firstFrame uint64
	first      int64
	last       int64
	inits      [2]uint64 // initiations by the side that sent them
	responses  uint64
	cookies    uint64
	handshakes uint64 // initiations answered
	transport  uint64
	keepalives uint64
	rttSum     int64
	initTimes  []int64 // initiation times (bounded), for the retry interval
	// Filled by Finish.
	unanswered, pending uint64
	unaFrames           []fref
}

// pending is an initiation waiting for its response.
type pending struct {
	peer     *peer
	at       int64
	input    int
	frame    uint64
	answered bool
}

// session is one receiver index: the transport messages to one peer.
type session struct {
	idx        uint32
	src, dst   netip.AddrPort // the latest outer endpoints
	input      int
	firstFrame uint64
	packets    uint64
	win        seqwin.Window
	gapFrames  []fref
	dupFrames  []fref
	keepalives uint64
	lastKA     int64
	kaGaps     []int64 // intervals between keepalives (bounded)
	roams      uint64
	roamFrames []fref
	endpoints  []netip.AddrPort // distinct source endpoints (bounded)
}

const maxTimes = 256

// Analyzer tracks WireGuard. Create it with New or NewConfig.
type Analyzer struct {
	cfg      Config
	peers    map[pairKey]*peer
	pend     map[uint32]*pending
	sessions map[uint32]*session
	fresh    map[uint32]struct{} // indexes from handshakes seen: their sessions start at counter 0
	ends     []int64
	dropped  struct{ peers, sessions, pending uint64 }
}

// New returns an analyzer with DefaultConfig.
func New() *Analyzer { return NewConfig(DefaultConfig()) }

// NewConfig returns an analyzer with the given thresholds.
func NewConfig(c Config) *Analyzer {
	return &Analyzer{cfg: c, peers: map[pairKey]*peer{}, pend: map[uint32]*pending{}, sessions: map[uint32]*session{},
		fresh: map[uint32]struct{}{}}
}

// Name implements analyze.Analyzer.
func (a *Analyzer) Name() string { return "wireguard" }

// wgLevel returns the UDP level carrying the WireGuard message: the
// innermost UDP level (WireGuard is never decoded through).
func wgLevel(rec *decode.Record) *decode.Level {
	for i := int(rec.NumLevels) - 1; i >= 0; i-- {
		if rec.Levels[i].L4.Proto == 17 {
			return &rec.Levels[i]
		}
	}
	return nil
}

// Packet implements analyze.Analyzer.
// Wants implements analyze.Selective: WireGuard messages only.
func (a *Analyzer) Wants() analyze.Interest { return analyze.WantWireGuard }

// InputEnd implements analyze.Selective.
func (a *Analyzer) InputEnd(input int, last int64) {
	for len(a.ends) <= input {
		a.ends = append(a.ends, 0)
	}
	a.ends[input] = max(a.ends[input], last)
}

func (a *Analyzer) Packet(rec *decode.Record) {
	for len(a.ends) <= rec.Input {
		a.ends = append(a.ends, 0)
	}
	if rec.Time > a.ends[rec.Input] {
		a.ends[rec.Input] = rec.Time
	}
	w := &rec.WireGuard
	if w.Type == 0 {
		return
	}
	l := wgLevel(rec)
	if l == nil {
		return
	}
	src := netip.AddrPortFrom(l.IP.Src, l.L4.SrcPort)
	dst := netip.AddrPortFrom(l.IP.Dst, l.L4.DstPort)
	p := a.peer(pairOf(src, dst), rec)
	if p == nil {
		return
	}
	switch w.Type {
	case decode.WGHandshakeInit:
		a.handshakeIndex(w.Sender)
		s := p.key.side(src)
		p.inits[s]++
		p.initTimes = addTime(p.initTimes, rec.Time)
		if len(a.pend) >= a.cfg.MaxPending {
			a.evictPending()
		}
		if len(a.pend) < a.cfg.MaxPending {
			if pd := a.pend[w.Sender]; pd != nil {
				*pd = pending{peer: p, at: rec.Time, input: rec.Input, frame: rec.Frame}
			} else {
				a.pend[w.Sender] = &pending{peer: p, at: rec.Time, input: rec.Input, frame: rec.Frame}
			}
		} else {
			a.dropped.pending++
		}
	case decode.WGHandshakeResponse:
		a.handshakeIndex(w.Sender)
		p.responses++
		if pd := a.pend[w.Receiver]; pd != nil && !pd.answered && pd.peer == p {
			pd.answered = true
			p.handshakes++
			p.rttSum += rec.Time - pd.at
		}
	case decode.WGCookieReply:
		p.cookies++
	case decode.WGTransportData:
		p.transport++
		a.transport(rec, p, l, src, dst)
	}
}

// handshakeIndex remembers a session index announced in a handshake: the
// transport messages to it start at counter 0, so counters lost before the
// first one captured are counted too.
func (a *Analyzer) handshakeIndex(i uint32) {
	if _, ok := a.fresh[i]; !ok && len(a.fresh) < a.cfg.MaxPending {
		a.fresh[i] = struct{}{}
	}
}

func addTime(ts []int64, t int64) []int64 {
	if len(ts) < maxTimes {
		ts = append(ts, t)
	}
	return ts
}

// evictPending forgets answered initiations (already counted).
func (a *Analyzer) evictPending() {
	for k, pd := range a.pend {
		if pd.answered {
			delete(a.pend, k)
		}
	}
}

func (a *Analyzer) peer(k pairKey, rec *decode.Record) *peer {
	p := a.peers[k]
	if p == nil {
		if len(a.peers) >= a.cfg.MaxPeers {
			a.dropped.peers++
			return nil
		}
		p = &peer{key: k, input: rec.Input, firstFrame: rec.Frame, first: rec.Time}
		a.peers[k] = p
	}
	if rec.Time > p.last {
		p.last = rec.Time
	}
	return p
}

// keepaliveLen is the UDP payload of a transport message with an empty
// inner packet: 16-byte header and 16-byte authentication tag.
const keepaliveLen = 32

func (a *Analyzer) transport(rec *decode.Record, p *peer, l *decode.Level, src, dst netip.AddrPort) {
	w := &rec.WireGuard
	s := a.sessions[w.Receiver]
	if s == nil {
		if len(a.sessions) >= a.cfg.MaxSessions {
			a.dropped.sessions++
			return
		}
		s = &session{idx: w.Receiver, src: src, dst: dst, input: rec.Input, firstFrame: rec.Frame, lastKA: -1}
		s.endpoints = append(s.endpoints, src)
		a.sessions[w.Receiver] = s
		if _, ok := a.fresh[w.Receiver]; ok {
			delete(a.fresh, w.Receiver)
			s.win.StartAt(0)
		}
	}
	s.packets++
	if src != s.src {
		s.roams++
		s.roamFrames = addFrame(s.roamFrames, fref{rec.Input, rec.Frame})
		known := false
		for _, e := range s.endpoints {
			known = known || e == src
		}
		if !known && len(s.endpoints) < 8 {
			s.endpoints = append(s.endpoints, src)
		}
		s.src = src
	}
	s.dst = dst
	if l.L4.PayloadLen == keepaliveLen {
		p.keepalives++
		s.keepalives++
		if s.lastKA >= 0 && len(s.kaGaps) < maxTimes {
			s.kaGaps = append(s.kaGaps, rec.Time-s.lastKA)
		}
		s.lastKA = rec.Time
	}
	switch s.win.Add(w.Counter) {
	case seqwin.Gap:
		s.gapFrames = addFrame(s.gapFrames, fref{rec.Input, rec.Frame})
	case seqwin.Duplicate:
		s.dupFrames = addFrame(s.dupFrames, fref{rec.Input, rec.Frame})
	}
}
