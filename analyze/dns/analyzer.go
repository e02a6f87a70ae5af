// Package dns matches DNS queries with their responses (UDP and TCP port 53,
// at the innermost decoded level, so also inside VXLAN/GENEVE/GRE) and
// reports, per capture point and server: latency percentiles, unanswered
// and retransmitted queries, SERVFAIL/REFUSED rates, truncation and TCP
// fallback, and AAAA answers that would pull a tunnelled IPv4-only client's
// traffic off the tunnel.
//
// A query is identified by capture point, client, server, transport, DNS ID
// and question (case-insensitive name and type). The same question sent
// again by the client to the same server before an answer (same ID, or a new
// ID within RetryWindow) is a retransmission. Only the header and the first
// question are needed, so responses whose IP datagram was fragmented are
// matched from their first fragment. DNS over TCP is parsed when a segment
// holds whole length-prefixed messages; messages spanning segments are
// counted as a gap, not parsed.
//
// The analyzer is registered as "dns".
package dns

import (
	"math/bits"
	"net/netip"
	"time"

	"github.com/vpndiag/vpndiag/analyze"
	"github.com/vpndiag/vpndiag/analyze/decode"
)

func init() { analyze.Register("dns", func() analyze.Analyzer { return New() }) }

const (
	// DefaultQueryLimit bounds the queries held; older ones are settled
	// (answered, or counted unanswered) when it is reached.
	DefaultQueryLimit = 262144
	// RetryWindow is how soon a new query for the same question counts as
	// a retransmission of an unanswered one.
	RetryWindow = 10 * time.Second
	// EndGrace: queries sent this close to the end of their capture are not
	// counted as unanswered (the answer may simply not have been captured).
	EndGrace = 2 * time.Second
	// maxSamples bounds the latency samples kept per server (reservoir).
	maxSamples = 8192
	// maxEvents bounds AAAA answer events kept for the escape check.
	maxEvents = 1024
	// maxTracked bounds the addresses tracked as tunnelled clients.
	maxTracked  = 65536
	maxExamples = 5
)

// qkey identifies one query. The keys' fields leave no padding, so maps
// hash them as one block of memory.
type qkey struct {
	input          int
	qhash          uint64
	client, server netip.Addr
	id             uint16
	qtype          uint16
	tcp            bool
	_pad           [3]uint8 // always zero
}

// okey identifies a question asked by a client of a server, regardless of ID.
type okey struct {
	input          int
	qhash          uint64
	client, server netip.Addr
	qtype          uint16
	tcp            bool
	_pad           [5]uint8 // always zero
}

type query struct {
	first, last   int64
	firstFrame    uint64
	resent        uint16 // how many times the question was sent again
	answered      bool
	settled       bool // counted as unanswered (or evicted) already
	tc            bool // answered with the TC bit (UDP)
	fallbackTried bool // a TCP query for the same question followed
	fallbackOK    bool // and was answered
	respFrame     uint64
	fallbackFor   *query // the truncated UDP query this TCP query retries
	server        *server
	qhash         uint64
	qtype         uint16
	tcp           bool
	client        netip.Addr
	input         int
}

type skey struct {
	input  int
	server netip.Addr
}

// server is one DNS server's record at one capture point.
type server struct {
	key                                    skey
	queries, tcpQueries, answered          uint64
	unanswered, retransmitted, resends     uint64
	servfail, refused, nxdomain, truncated uint64
	orphans, duplicates                    uint64
	samples                                []int64 // latencies, ns
	seen                                   uint64  // latencies observed (for the reservoir)
	rng                                    uint64
	unansweredEx, retransEx                analyze.Examples
	servfailEx, refusedEx, truncEx         analyze.Examples
	noFallback                             uint64
	noFallbackEx                           analyze.Examples
	unansweredNames                        [maxExamples]uint64
}

type akey struct {
	input int
	addr  netip.Addr
}

// aaaaEvent is a AAAA answer with a global IPv6 address to an IPv4 client.
type aaaaEvent struct {
	input    int
	client   netip.Addr
	server   netip.Addr
	qhash    uint64
	addr     netip.Addr
	frame    uint64
	escapes  uint64 // packets to or from addr outside any tunnel afterwards
	escapeEx analyze.Examples
}

// Analyzer is the DNS analyzer.
type Analyzer struct {
	// Limit is the most queries held at once (DefaultQueryLimit when 0).
	Limit int

	queries map[qkey]*query
	open    map[okey]*query
	servers map[skey]*server
	names   map[uint64]string
	nameBuf []byte
	ends    []int64

	tunnelled  map[akey]uint32 // inner IPv4 packets per address, in tunnelled frames
	tunRun     tunRun          // the current run of such packets between two addresses, not yet in tunnelled
	v6InTunnel map[int]bool    // inputs whose tunnels carry IPv6
	events     []aaaaEvent
	eventAddrs map[akey][]int // answered IPv6 address -> events
	aaaaBuf    [8]netip.Addr

	messages     uint64
	tcpGaps      uint64 // TCP segments on port 53 not holding whole messages
	tcpGapEx     analyze.Examples
	evicted      uint64 // pending queries dropped unsettled under memory pressure
	droppedEvent uint64
}

// New returns an empty DNS analyzer.
func New() *Analyzer {
	return &Analyzer{queries: make(map[qkey]*query, 256), open: make(map[okey]*query, 256),
		servers: map[skey]*server{}, names: map[uint64]string{}, tunnelled: map[akey]uint32{},
		v6InTunnel: map[int]bool{}, eventAddrs: map[akey][]int{}}
}

// Name implements analyze.Analyzer.
func (a *Analyzer) Name() string { return "dns" }

func (a *Analyzer) limit() int {
	if a.Limit <= 0 {
		return DefaultQueryLimit
	}
	return a.Limit
}

// Wants implements analyze.Selective: DNS (innermost TCP or UDP port 53),
// tunnelled packets (who talks through tunnels) and IPv6 (traffic escaping
// them).
func (a *Analyzer) Wants() analyze.Interest {
	return analyze.WantInnerPort53 | analyze.WantTunnel | analyze.WantInnerIPv6
}

// InputEnd implements analyze.Selective.
func (a *Analyzer) InputEnd(input int, last int64) {
	if input >= len(a.ends) {
		a.ends = append(a.ends, make([]int64, input+1-len(a.ends))...)
	}
	a.ends[input] = max(a.ends[input], last)
}

// Packet implements analyze.Analyzer.
func (a *Analyzer) Packet(rec *decode.Record) {
	if rec.Input >= len(a.ends) {
		a.ends = append(a.ends, make([]int64, rec.Input+1-len(a.ends))...)
	}
	if rec.Time > a.ends[rec.Input] {
		a.ends[rec.Input] = rec.Time
	}
	l := rec.Inner()
	if l == nil {
		return
	}
	if rec.NumTunnel > 0 && rec.NumLevels > 1 {
		a.tunnelPacket(rec, l)
	} else if len(a.eventAddrs) > 0 && rec.NumTunnel == 0 && l.IP.Version == 6 {
		a.escapeCheck(rec, l)
	}
	t := &l.L4
	if (t.Proto != 17 && t.Proto != 6) || (t.SrcPort != 53 && t.DstPort != 53) || l.IP.FragOffset != 0 || len(t.Payload) == 0 {
		return
	}
	var m message
	if t.Proto == 17 {
		if parse(t.Payload, &m) {
			a.message(rec, l, &m, t.Payload, false)
		}
		return
	}
	b := t.Payload
	for len(b) > 0 {
		if len(b) < 2 {
			a.tcpGap(rec)
			return
		}
		n := int(b[0])<<8 | int(b[1])
		if n > len(b)-2 {
			a.tcpGap(rec)
			return
		}
		if parse(b[2:2+n], &m) {
			a.message(rec, l, &m, b[2:2+n], true)
		}
		b = b[2+n:]
	}
}

func (a *Analyzer) tcpGap(rec *decode.Record) {
	a.tcpGaps++
	a.tcpGapEx.Add(rec.Input, rec.Frame)
}

// tunRun counts a run of consecutive tunnelled IPv4 packets between the same
// two addresses (either direction) at one capture point. Counting a run and
// adding it to the per-address counts when it ends gives the same counts as
// adding every packet at once (each packet counts once for each of its
// addresses, new addresses are admitted in the same order), with two map
// updates per run instead of four map operations per packet.
type tunRun struct {
	input int
	a, b  netip.Addr // source and destination of the run's first packet
	n     uint64
}

// tunnelPacket remembers which IPv4 addresses talk through a tunnel and
// whether a capture point's tunnels carry IPv6.
func (a *Analyzer) tunnelPacket(rec *decode.Record, l *decode.Level) {
	if l.IP.Version == 6 {
		if !a.v6InTunnel[rec.Input] {
			a.v6InTunnel[rec.Input] = true
		}
		return
	}
	r := &a.tunRun
	if r.n > 0 && r.input == rec.Input &&
		(r.a == l.IP.Src && r.b == l.IP.Dst || r.a == l.IP.Dst && r.b == l.IP.Src) {
		r.n++
		return
	}
	a.flushTunRun()
	*r = tunRun{input: rec.Input, a: l.IP.Src, b: l.IP.Dst, n: 1}
}

// flushTunRun adds the current run to the per-address counts.
func (a *Analyzer) flushTunRun() {
	r := &a.tunRun
	if r.n == 0 {
		return
	}
	for _, addr := range [2]netip.Addr{r.a, r.b} {
		k := akey{r.input, addr}
		if n, ok := a.tunnelled[k]; ok {
			a.tunnelled[k] = uint32(min(uint64(n)+r.n, uint64(^uint32(0))))
		} else if len(a.tunnelled) < maxTracked {
			a.tunnelled[k] = uint32(min(r.n, uint64(^uint32(0))))
		}
	}
	r.n = 0
}

// escapeCheck counts untunnelled IPv6 packets to or from an address that a
// AAAA answer gave a tunnelled IPv4 client.
func (a *Analyzer) escapeCheck(rec *decode.Record, l *decode.Level) {
	for _, addr := range [2]netip.Addr{l.IP.Dst, l.IP.Src} {
		for _, i := range a.eventAddrs[akey{rec.Input, addr}] {
			e := &a.events[i]
			e.escapes++
			e.escapeEx.Add(rec.Input, rec.Frame)
		}
	}
}

func (a *Analyzer) serverOf(input int, addr netip.Addr) *server {
	k := skey{input, addr}
	s := a.servers[k]
	if s == nil {
		s = &server{key: k, rng: uint64(len(a.servers))*0x9e3779b97f4a7c15 + 1}
		a.servers[k] = s
	}
	return s
}

// message handles one parsed DNS message.
func (a *Analyzer) message(rec *decode.Record, l *decode.Level, m *message, b []byte, tcp bool) {
	a.messages++
	if !m.response() {
		a.query(rec, l, m, b, tcp)
		return
	}
	k := qkey{input: rec.Input, client: l.IP.Dst, server: l.IP.Src, id: m.id, qtype: m.qtype, tcp: tcp, qhash: m.qhash}
	q := a.queries[k]
	if q == nil {
		a.serverOf(rec.Input, l.IP.Src).orphans++
		return
	}
	s := q.server
	if q.answered {
		s.duplicates++
		return
	}
	q.answered, q.respFrame = true, rec.Frame
	if q.settled { // counted unanswered under memory pressure; the answer came late
		return
	}
	s.answered++
	s.latency(rec.Time - q.first)
	switch m.rcode() {
	case rcodeFail:
		s.servfail++
		s.servfailEx.Add(rec.Input, rec.Frame)
	case rcodeRefuse:
		s.refused++
		s.refusedEx.Add(rec.Input, rec.Frame)
	case rcodeNX:
		s.nxdomain++
	}
	if m.truncated() && !tcp {
		q.tc = true
		s.truncated++
		s.truncEx.Add(rec.Input, rec.Frame)
	}
	if q.fallbackFor != nil {
		q.fallbackFor.fallbackOK = true
	}
	if m.qtype == typeAAAA && m.rcode() == 0 && m.ancount > 0 && l.IP.Dst.Is4() {
		n := aaaaAnswers(b, m, a.aaaaBuf[:])
		for _, addr := range a.aaaaBuf[:n] {
			if globalV6(addr) {
				a.aaaaEvent(rec, q, addr)
			}
		}
	}
}

func (a *Analyzer) aaaaEvent(rec *decode.Record, q *query, addr netip.Addr) {
	if len(a.events) >= maxEvents {
		a.droppedEvent++
		return
	}
	a.events = append(a.events, aaaaEvent{input: rec.Input, client: q.client, server: q.server.key.server,
		qhash: q.qhash, addr: addr, frame: rec.Frame})
	k := akey{rec.Input, addr}
	a.eventAddrs[k] = append(a.eventAddrs[k], len(a.events)-1)
}

func (a *Analyzer) query(rec *decode.Record, l *decode.Level, m *message, b []byte, tcp bool) {
	k := qkey{input: rec.Input, client: l.IP.Src, server: l.IP.Dst, id: m.id, qtype: m.qtype, tcp: tcp, qhash: m.qhash}
	if q := a.queries[k]; q != nil {
		if !q.answered {
			a.resent(q, rec)
		}
		q.last = rec.Time
		return
	}
	if len(a.queries) >= a.limit() {
		a.evict(rec.Time)
	}
	if _, ok := a.names[m.qhash]; !ok {
		a.nameBuf = nameText(a.nameBuf[:0], b, m.nameOff)
		a.names[m.qhash] = string(a.nameBuf)
	}
	s := a.serverOf(rec.Input, l.IP.Dst)
	q := &query{first: rec.Time, last: rec.Time, firstFrame: rec.Frame, server: s, qhash: m.qhash, qtype: m.qtype,
		tcp: tcp, client: l.IP.Src, input: rec.Input}
	a.queries[k] = q
	s.queries++
	if tcp {
		s.tcpQueries++
	}
	ok := okey{input: rec.Input, client: l.IP.Src, server: l.IP.Dst, qtype: m.qtype, tcp: tcp, qhash: m.qhash}
	if prev := a.open[ok]; prev != nil && !prev.answered && !prev.settled && rec.Time-prev.last <= int64(RetryWindow) {
		a.resent(prev, rec)
		prev.last = rec.Time
	}
	a.open[ok] = q
	if tcp {
		ok.tcp = false
		if udp := a.open[ok]; udp != nil && udp.tc {
			udp.fallbackTried = true
			q.fallbackFor = udp
		}
	}
}

// resent counts the question of q being sent again.
func (a *Analyzer) resent(q *query, rec *decode.Record) {
	s := q.server
	q.resent++
	s.resends++
	if q.resent == 1 {
		s.retransmitted++
		s.retransEx.Add(rec.Input, rec.Frame)
	}
}

// latency records one response time in the server's reservoir.
func (s *server) latency(d int64) {
	s.seen++
	if len(s.samples) < maxSamples {
		s.samples = append(s.samples, d)
		return
	}
	s.rng ^= s.rng << 13
	s.rng ^= s.rng >> 7
	s.rng ^= s.rng << 17
	if hi, _ := bits.Mul64(s.rng, s.seen); hi < maxSamples {
		s.samples[hi] = d
	}
}

// settle counts q as unanswered when it is old enough relative to end.
func (a *Analyzer) settle(q *query, end int64) bool {
	if q.answered || q.settled || q.last > end-int64(EndGrace) {
		return false
	}
	q.settled = true
	s := q.server
	s.unanswered++
	if s.unansweredEx.Len() < maxExamples {
		s.unansweredNames[s.unansweredEx.Len()] = q.qhash
	}
	s.unansweredEx.Add(q.input, q.firstFrame)
	return true
}

// evict drops settled queries older than RetryWindow, settling unanswered
// ones first; if that frees too little, it drops half of the rest.
func (a *Analyzer) evict(now int64) {
	old := now - int64(RetryWindow)
	for k, q := range a.queries {
		if q.last < old {
			if !q.answered {
				a.settle(q, now)
			}
			delete(a.queries, k)
		}
	}
	if len(a.queries) >= a.limit()*3/4 {
		n := 0
		for k, q := range a.queries {
			if n%2 == 0 {
				if !q.answered && !q.settled {
					a.evicted++
					q.settled = true
				}
				delete(a.queries, k)
			}
			n++
		}
	}
	for k, q := range a.open {
		if q.last < old || q.settled {
			delete(a.open, k)
		}
	}
}
