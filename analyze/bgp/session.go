package bgp

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"
)

// TCP flag bits used by the tracker (same values as decode.TCP*).
const (
	flagFin = 0x01
	flagSyn = 0x02
	flagRst = 0x04
	flagAck = 0x10
)

// Segment is one TCP segment of a BGP connection (port 179 on one side).
type Segment struct {
	Src, Dst netip.AddrPort
	Seq      uint32
	Flags    uint8 // TCP flags as in the header
	Payload  []byte
	Input    int    // input index (file) the frame came from
	Frame    uint64 // 1-based frame number within that input
	Time     int64  // Unix nanoseconds
	Tunnel   int    // index of the tunnel carrying the segment, -1 when not tunnelled
}

// FrameID names one frame of one input.
type FrameID struct {
	Input int
	Frame uint64
}

// Event is one entry of a peer pair's session timeline.
type Event struct {
	Time   int64
	At     FrameID
	Kind   string // connect, open, established, notification, down, failed, hold-expired, malformed, gap
	Cause  string // for down and failed: notification, reset, close, hold-expired or replaced (a newer session was established)
	From   netip.Addr
	Detail string
}

// Route is what one speaker announced for one prefix, and when.
type Route struct {
	Prefix      netip.Prefix
	ASPath      string
	ASPathNums  []uint32
	NextHop     netip.Addr
	Communities []string
	First       FrameID // first UPDATE announcing it
	FirstTime   int64
	Last        FrameID // latest UPDATE announcing it
	LastTime    int64
	Announced   int  // number of UPDATEs announcing it
	Withdrawn   bool // withdrawn (or the session went down) after the last announcement
	WithdrawAt  FrameID
	Frames      []FrameID // frames of the first announcing UPDATE (a message may span segments)
}

// Speaker is one BGP speaker of a pair with the routes it sent.
type Speaker struct {
	Addr     netip.Addr
	AS       uint32 // from its OPEN; 0 when no OPEN was captured
	RouterID netip.Addr
	HoldTime uint16
	Open     *Open
	Routes   map[netip.Prefix]*Route
	Updates  uint64
	// Announcements and withdrawals counted per prefix (not per UPDATE).
	Announcements, Withdrawals uint64
}

// Malformed is a message that could not be decoded.
type Malformed struct {
	From   netip.Addr
	Frames []FrameID
	Err    string
}

// Pair is everything seen between two BGP speakers (all connections between
// the same two addresses), with its session timeline.
type Pair struct {
	A, B        netip.Addr // A < B
	Speakers    [2]*Speaker
	Events      []Event
	Dropped     int // events not kept (MaxEvents)
	Established int // times a session reached Established
	Downs       int // times an established session went down
	Failed      int // connections closed before reaching Established
	Messages    [MsgRouteRefresh + 1]uint64
	Malformed   []Malformed
	Tunnels     map[int]int // tunnel index -> segments carried in it
	Plain       int         // segments not inside a tunnel
	Connections int
	First, Last int64
	FirstFrame  FrameID
	// UpTimes and DownTimes are when sessions were established and went down.
	UpTimes, DownTimes []int64
}

// MaxEvents bounds the timeline kept per pair.
const MaxEvents = 2000

// MaxRoutes bounds the routes kept over all speakers.
const MaxRoutes = 1 << 20

// Speaker returns the speaker with address a.
func (p *Pair) Speaker(a netip.Addr) *Speaker {
	if a == p.A {
		return p.Speakers[0]
	}
	return p.Speakers[1]
}

// Other returns the address of the other speaker.
func (p *Pair) Other(a netip.Addr) netip.Addr {
	if a == p.A {
		return p.B
	}
	return p.A
}

func (p *Pair) event(e Event) {
	if len(p.Events) >= MaxEvents {
		p.Dropped++
		return
	}
	p.Events = append(p.Events, e)
}

type connKey struct{ a, b netip.AddrPort }

type connState uint8

const (
	stateNew         connState = iota // nothing but TCP seen
	stateOpening                      // an OPEN was seen
	stateEstablished                  // both OPENs and KEEPALIVEs, or traffic of a session older than the capture
	stateClosed
)

// conn is one TCP connection carrying BGP.
type conn struct {
	t       *Tracker
	key     connKey
	pair    *Pair
	streams [2]Stream
	opens   [2]*Open
	keep    [2]bool
	state   connState
	lastMsg [2]int64
	input   int
	seg     *Segment
}

// Tracker follows BGP connections from TCP segments: it reassembles both
// directions, decodes the messages and keeps every peer pair's timeline and
// routes.
type Tracker struct {
	conns  map[connKey]*conn
	pairs  map[[2]netip.Addr]*Pair
	order  []*Pair
	routes int
	// superseding is set while supersede flushes older connections.
	superseding bool

	// MaxConns bounds the connections followed at once (default 65536).
	MaxConns int
	// Counters.
	Segments, DroppedConns, DroppedRoutes uint64
	// End is the capture time of the last frame seen by the owner, for
	// inferring silent hold-timer expiry at the end.
	End int64
	// OnMessage, when set, sees every reassembled message (m is nil when
	// err is set). raw is reused after the call.
	OnMessage func(p *Pair, from netip.Addr, raw *RawMessage, m *Message, err error)
}

// NewTracker returns an empty tracker.
func NewTracker() *Tracker {
	return &Tracker{conns: map[connKey]*conn{}, pairs: map[[2]netip.Addr]*Pair{}, MaxConns: 1 << 16}
}

// Pairs returns the peer pairs in order of first appearance.
func (t *Tracker) Pairs() []*Pair { return t.order }

func canonical(src, dst netip.AddrPort) (connKey, int) {
	if src.Addr().Less(dst.Addr()) || (src.Addr() == dst.Addr() && src.Port() < dst.Port()) {
		return connKey{src, dst}, 0
	}
	return connKey{dst, src}, 1
}

func (t *Tracker) pair(a, b netip.Addr, s *Segment) *Pair {
	if b.Less(a) {
		a, b = b, a
	}
	k := [2]netip.Addr{a, b}
	p := t.pairs[k]
	if p == nil {
		p = &Pair{A: a, B: b, Tunnels: map[int]int{}, First: s.Time, FirstFrame: FrameID{s.Input, s.Frame}}
		p.Speakers[0] = &Speaker{Addr: a, Routes: map[netip.Prefix]*Route{}}
		p.Speakers[1] = &Speaker{Addr: b, Routes: map[netip.Prefix]*Route{}}
		t.pairs[k] = p
		t.order = append(t.order, p)
	}
	return p
}

// Segment feeds one TCP segment. It never fails: damage is recorded in the
// pair's timeline and Malformed list.
func (t *Tracker) Segment(s *Segment) {
	t.Segments++
	key, dir := canonical(s.Src, s.Dst)
	c := t.conns[key]
	syn := s.Flags&flagSyn != 0
	if c != nil && syn && c.state == stateClosed {
		delete(t.conns, key)
		c = nil
	}
	if c == nil {
		if len(t.conns) >= t.MaxConns {
			t.DroppedConns++
			return
		}
		c = &conn{t: t, key: key, input: s.Input}
		c.pair = t.pair(key.a.Addr(), key.b.Addr(), s)
		c.pair.Connections++
		for d := range 2 {
			d := d
			c.streams[d].Emit = func(m *RawMessage) { c.message(d, m) }
		}
		t.conns[key] = c
		if syn {
			c.pair.event(Event{Time: s.Time, At: FrameID{s.Input, s.Frame}, Kind: "connect", From: s.Src.Addr(),
				Detail: fmt.Sprintf("TCP %s -> %s", s.Src, s.Dst)})
		}
	}
	p := c.pair
	if s.Time > p.Last {
		p.Last = s.Time
	}
	if s.Tunnel >= 0 {
		p.Tunnels[s.Tunnel]++
	} else {
		p.Plain++
	}
	c.seg = s
	if syn {
		c.streams[dir].SYN(s.Seq)
		return
	}
	if len(s.Payload) > 0 && c.state != stateClosed {
		c.streams[dir].Add(s.Seq, s.Payload, s.Frame, s.Time)
	}
	if s.Flags&flagRst != 0 {
		c.flush()
		c.down(s, "reset", fmt.Sprintf("TCP reset by %s", s.Src.Addr()))
	} else if s.Flags&flagFin != 0 {
		c.flush()
		c.down(s, "close", fmt.Sprintf("TCP connection closed by %s (FIN)", s.Src.Addr()))
	}
}

// flush delivers the messages still held behind holes in either direction
// (bytes the capture missed: they will not come any more once the
// connection ends or is replaced), so they count before its end does.
func (c *conn) flush() {
	if c.state == stateClosed {
		return
	}
	for d := range 2 {
		c.streams[d].Flush()
	}
}

func (c *conn) addr(dir int) netip.Addr {
	if dir == 0 {
		return c.key.a.Addr()
	}
	return c.key.b.Addr()
}

func (c *conn) frames(m *RawMessage) []FrameID {
	out := make([]FrameID, len(m.Frames))
	for i, f := range m.Frames {
		out[i] = FrameID{c.input, f}
	}
	return out
}

func (c *conn) options(dir int) Options {
	if c.opens[0] != nil && c.opens[1] != nil {
		return Negotiate(c.opens[dir], c.opens[1-dir])
	}
	o := Options{Guess: true}
	if own := c.opens[dir]; own != nil && !own.AS4 {
		o.AS2 = true
	}
	return o
}

func (c *conn) message(dir int, raw *RawMessage) {
	p := c.pair
	from := c.addr(dir)
	last := FrameID{c.input, raw.Frames[len(raw.Frames)-1]}
	if raw.Skipped > 0 {
		p.event(Event{Time: raw.Time, At: last, Kind: "gap", From: from,
			Detail: fmt.Sprintf("%d bytes from %s skipped to find the next BGP marker (capture gap or garbage)", raw.Skipped, from)})
	}
	m, err := Parse(raw.Data, c.options(dir))
	if len(raw.Data) >= HeaderLen && raw.Data[18] <= MsgRouteRefresh {
		p.Messages[raw.Data[18]]++
	}
	c.lastMsg[dir] = raw.Time
	if c.t.OnMessage != nil {
		if err != nil {
			c.t.OnMessage(p, from, raw, nil, err)
		} else {
			c.t.OnMessage(p, from, raw, &m, nil)
		}
	}
	if err != nil {
		fr := c.frames(raw)
		p.Malformed = append(p.Malformed, Malformed{From: from, Frames: fr, Err: err.Error()})
		p.event(Event{Time: raw.Time, At: last, Kind: "malformed", From: from, Detail: err.Error()})
		return
	}
	sp := p.Speaker(from)
	switch m.Type {
	case MsgOpen:
		c.opens[dir] = m.Open
		sp.Open, sp.AS, sp.RouterID, sp.HoldTime = m.Open, m.Open.AS, m.Open.RouterID, m.Open.HoldTime
		if c.state == stateNew {
			c.state = stateOpening
		}
		p.event(Event{Time: raw.Time, At: last, Kind: "open", From: from, Detail: openText(m.Open)})
	case MsgKeepalive:
		if c.state == stateOpening && c.opens[dir] != nil {
			c.keep[dir] = true
			if c.opens[0] != nil && c.opens[1] != nil && c.keep[0] && c.keep[1] {
				c.established(raw, last, "OPEN and KEEPALIVE exchanged")
			}
		} else if c.state == stateNew {
			c.established(raw, last, "session already established when the capture started")
		}
	case MsgUpdate:
		if c.state == stateNew {
			c.established(raw, last, "session already established when the capture started")
		} else if c.state == stateOpening && c.opens[0] != nil && c.opens[1] != nil {
			// An UPDATE implies the sender reached Established.
			c.established(raw, last, "UPDATE after both OPENs")
		}
		c.update(sp, m.Update, raw, last)
	case MsgNotification:
		n := m.Notification
		p.event(Event{Time: raw.Time, At: last, Kind: "notification", From: from, Detail: "NOTIFICATION " + n.String()})
		kind := "notification"
		if n.HoldTimerExpired() {
			kind = "hold-expired"
		}
		c.down(c.seg, kind, fmt.Sprintf("NOTIFICATION from %s: %s", from, n))
	}
}

func openText(o *Open) string {
	var b strings.Builder
	fmt.Fprintf(&b, "OPEN AS %d, hold time %ds, router ID %s", o.AS, o.HoldTime, o.RouterID)
	if o.AS4 {
		b.WriteString(", 4-octet AS")
	}
	if len(o.Families) > 0 {
		b.WriteString(", families " + strings.Join(o.Families, ","))
	}
	if len(o.AddPath) > 0 {
		keys := make([]string, 0, len(o.AddPath))
		for k, v := range o.AddPath {
			keys = append(keys, k+" "+v)
		}
		sort.Strings(keys)
		b.WriteString(", add-path " + strings.Join(keys, ","))
	}
	return b.String()
}

func (c *conn) established(raw *RawMessage, at FrameID, why string) {
	c.supersede()
	c.state = stateEstablished
	p := c.pair
	p.Established++
	p.UpTimes = append(p.UpTimes, raw.Time)
	p.event(Event{Time: raw.Time, At: at, Kind: "established", Detail: why})
}

// supersede closes the pair's other connections that are still
// established: only one BGP session runs between two speakers, so an older
// one must have died without its end reaching the capture. That is how a
// session over a broken tunnel ends: both hold timers expire, and neither
// NOTIFICATION nor FIN gets through. down turns the cause into
// "hold-expired" when a side had been silent for longer than the hold time.
// Messages the older connections still hold behind capture holes are
// delivered first.
func (c *conn) supersede() {
	if c.t.superseding {
		return // a connection flushed below reached Established: the outer call closes it
	}
	c.t.superseding = true
	defer func() { c.t.superseding = false }()
	var old []*conn
	for _, o := range c.t.conns {
		if o != c && o.pair == c.pair && o.state != stateClosed {
			old = append(old, o)
		}
	}
	sort.Slice(old, func(i, j int) bool { return old[i].key.less(old[j].key) })
	for _, o := range old {
		o.flush()
		if o.state != stateEstablished {
			continue
		}
		o.down(c.seg, "replaced", fmt.Sprintf("a new session between %s and %s was established (frame %d) while this connection had not been closed on the wire",
			c.pair.A, c.pair.B, c.seg.Frame))
	}
}

func (k connKey) less(o connKey) bool {
	if k.a != o.a {
		return k.a.Addr().Less(o.a.Addr()) || (k.a.Addr() == o.a.Addr() && k.a.Port() < o.a.Port())
	}
	return k.b.Addr().Less(o.b.Addr()) || (k.b.Addr() == o.b.Addr() && k.b.Port() < o.b.Port())
}

func (c *conn) update(sp *Speaker, u *Update, raw *RawMessage, at FrameID) {
	sp.Updates++
	for _, w := range u.Withdrawn {
		sp.Withdrawals++
		if r := sp.Routes[w.Prefix]; r != nil && !r.Withdrawn {
			r.Withdrawn = true
			r.WithdrawAt = at
		}
	}
	for _, a := range u.Announced {
		sp.Announcements++
		r := sp.Routes[a.Prefix]
		if r == nil {
			if c.t.routes >= MaxRoutes && a.Prefix.Bits() != 0 {
				c.t.DroppedRoutes++
				continue
			}
			c.t.routes++
			r = &Route{Prefix: a.Prefix, First: at, FirstTime: raw.Time, Frames: c.frames(raw)}
			sp.Routes[a.Prefix] = r
		}
		r.ASPath, r.ASPathNums, r.NextHop, r.Communities = u.ASPathText, u.ASPath, u.NextHop, u.Communities
		r.Last, r.LastTime = at, raw.Time
		r.Announced++
		r.Withdrawn = false
	}
}

func (c *conn) down(s *Segment, kind, why string) {
	p := c.pair
	at := FrameID{s.Input, s.Frame}
	switch c.state {
	case stateClosed:
		return
	case stateEstablished:
		if hold := c.holdTime(); hold > 0 && kind != "hold-expired" {
			for d := range 2 {
				if c.lastMsg[d] != 0 && s.Time-c.lastMsg[d] > int64(hold)*int64(time.Second) {
					kind = "hold-expired"
					why += fmt.Sprintf("; nothing from %s for %.1fs, more than the %ds hold time", c.addr(d),
						float64(s.Time-c.lastMsg[d])/1e9, hold)
					break
				}
			}
		}
		p.Downs++
		p.DownTimes = append(p.DownTimes, s.Time)
		p.event(Event{Time: s.Time, At: at, Kind: "down", Cause: kind, From: s.Src.Addr(), Detail: "session down: " + why})
		// Routes learned over the session are gone with it.
		for _, sp := range p.Speakers {
			for _, r := range sp.Routes {
				if !r.Withdrawn {
					r.Withdrawn = true
					r.WithdrawAt = at
				}
			}
		}
	default:
		p.Failed++
		p.event(Event{Time: s.Time, At: at, Kind: "failed", Cause: kind, From: s.Src.Addr(), Detail: "connection ended before Established: " + why})
	}
	c.state = stateClosed
}

func (c *conn) holdTime() uint16 {
	if c.opens[0] == nil || c.opens[1] == nil {
		return 0
	}
	return min(c.opens[0].HoldTime, c.opens[1].HoldTime)
}

// Finish flushes every stream (skipping holes that never filled) and notes
// established sessions that went silent for longer than their hold time
// before the end of the capture.
func (t *Tracker) Finish() {
	keys := make([]connKey, 0, len(t.conns))
	for k := range t.conns {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].less(keys[j]) })
	for _, k := range keys {
		c := t.conns[k]
		for d := range 2 {
			c.streams[d].Flush()
		}
		if c.state != stateEstablished {
			continue
		}
		hold := c.holdTime()
		if hold == 0 || t.End == 0 {
			continue
		}
		for d := range 2 {
			if c.lastMsg[d] != 0 && t.End-c.lastMsg[d] > int64(hold)*int64(time.Second) {
				c.pair.event(Event{Time: t.End, Kind: "hold-expired", From: c.addr(d),
					Detail: fmt.Sprintf("nothing from %s for the last %.1fs of the capture, more than the %ds hold time",
						c.addr(d), float64(t.End-c.lastMsg[d])/1e9, hold)})
				break
			}
		}
	}
}
