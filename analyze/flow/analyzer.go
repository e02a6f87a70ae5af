// Package flow finds asymmetric flows: traffic seen in one direction only at
// a capture point, which breaks stateful firewalls, NAT and strict reverse
// path filtering (rp_filter) on redundant paths.
//
// Per capture point it reports
//   - TCP connections seen one way only whose ACK numbers advance (the other
//     direction's data exists but takes another path), or whose handshake
//     completed without the SYN-ACK passing here ("answered elsewhere");
//   - TCP connection attempts retried at least MinPackets times with nothing
//     coming back, and request/response UDP services (DNS, IKE, IKE NAT-T,
//     WireGuard handshakes) that got at least MinPackets requests from a
//     client and no reply ("no reply seen": lost, filtered, or routed back
//     another way).
//
// Broadcast and multicast destinations and flows with fewer than MinPackets
// packets are ignored. The analyzer is registered as "flow".
package flow

import (
	"net/netip"
	"slices"
	"time"

	"github.com/vpndiag/vpndiag/analyze"
	"github.com/vpndiag/vpndiag/analyze/decode"
)

func init() { analyze.Register("flow", func() analyze.Analyzer { return New() }) }

const (
	// MinPackets is the least packets one way before a flow is judged.
	MinPackets = 4
	// maxFlows bounds the TCP connections tracked; idle ones are judged and
	// dropped first when it is reached.
	maxFlows = 65536
	// maxServices bounds the UDP client/server pairs tracked.
	maxServices = 65536
	// idleAfter: flows idle this long are dropped first under pressure.
	idleAfter   = 60 * time.Second
	maxExamples = 3
)

type tkey struct {
	input int
	k     analyze.FlowKey
}

// tflow is one TCP connection at one capture point.
type tflow struct {
	key       tkey
	pk        [2]uint64 // packets A to B, B to A
	last      int64
	syn       [2]bool // SYN without ACK sent in this direction
	synAck    bool
	ackedLate [2]bool   // an ACK-flagged segment followed a SYN from this direction
	firstAck  [2]uint32 // first ACK number sent in this direction
	haveAck   [2]bool
	ackAdv    [2]uint32 // how far ACK numbers advanced in this direction
	ex        analyze.Examples
}

// skey is a client asking a UDP service.
type skey struct {
	input          int
	client, server netip.Addr
	port           uint16
	wg             bool // WireGuard handshake (any port)
}

type service struct {
	key        skey
	fwd, back  uint64
	firstFrame uint64
	ex, backEx analyze.Examples
}

// Verdict kinds.
const (
	kindElsewhere = "answered-elsewhere"
	kindNoReply   = "no-reply"
)

// oneWay is a flow judged asymmetric.
type oneWay struct {
	input    int
	kind     string
	proto    string
	src, dst netip.AddrPort
	packets  uint64
	ackAdv   uint32
	why      string
	ex       analyze.Examples
}

// Analyzer is the asymmetric-flow analyzer.
type Analyzer struct {
	flows    map[tkey]*tflow
	free     []*tflow
	services map[skey]*service
	sorder   []skey
	found    []oneWay
	tcpSeen  []uint64 // TCP connections per input (for the summary)
	evicted  uint64
	dropped  uint64 // UDP service pairs not tracked (limit)
	memo     analyze.FlowMemo[*tflow]
}

// New returns an empty analyzer.
func New() *Analyzer {
	return &Analyzer{flows: make(map[tkey]*tflow, 1024), services: map[skey]*service{}}
}

// Name implements analyze.Analyzer.
func (a *Analyzer) Name() string { return "flow" }

// ignored reports destinations that never answer by design.
func ignored(dst netip.Addr) bool {
	if dst.IsMulticast() || dst.IsUnspecified() || dst.IsLinkLocalMulticast() {
		return true
	}
	if dst.Is4() {
		b := dst.As4()
		return b[3] == 255 || dst == netip.AddrFrom4([4]byte{255, 255, 255, 255})
	}
	return false
}

// Packet implements analyze.Analyzer.
func (a *Analyzer) Packet(rec *decode.Record) {
	l := rec.Inner()
	if l == nil || l.IP.FragOffset != 0 {
		return
	}
	switch l.L4.Proto {
	case 6:
		a.tcp(rec, l)
	case 17:
		a.udp(rec, l)
	}
}

func (a *Analyzer) tcp(rec *decode.Record, l *decode.Level) {
	f, ab, ok := a.memo.Get(rec.Input, l)
	if !ok {
		var k analyze.FlowKey
		k, ab = analyze.KeyOf(l)
		if f = a.lookup(rec, l, &k); f == nil {
			return
		}
		a.memo.Set(rec.Input, l, ab, f)
	}
	i := 0
	if !ab {
		i = 1
	}
	t := &l.L4
	f.pk[i]++
	f.last = rec.Time
	f.ex.Add(rec.Input, rec.Frame)
	switch {
	case t.Flags&decode.TCPSyn != 0 && t.Flags&decode.TCPAck == 0:
		f.syn[i] = true
	case t.Flags&decode.TCPSyn != 0:
		f.synAck = true
	case t.Flags&decode.TCPAck != 0:
		if f.syn[i] {
			f.ackedLate[i] = true
		}
		if !f.haveAck[i] {
			f.firstAck[i], f.haveAck[i] = t.Ack, true
		} else if d := t.Ack - f.firstAck[i]; int32(d) > 0 && d > f.ackAdv[i] {
			f.ackAdv[i] = d
		}
	}
}

// lookup returns the connection of k, starting it when it is new, or nil
// for a new one towards a destination that never answers by design.
func (a *Analyzer) lookup(rec *decode.Record, l *decode.Level, k *analyze.FlowKey) *tflow {
	fk := tkey{rec.Input, *k}
	f := a.flows[fk]
	if f != nil {
		return f
	}
	if ignored(l.IP.Dst) {
		return nil
	}
	if len(a.flows) >= maxFlows {
		a.evict(rec.Time)
	}
	if n := len(a.free); n > 0 {
		f = a.free[n-1]
		a.free = a.free[:n-1]
	} else {
		f = new(tflow)
	}
	*f = tflow{key: fk}
	a.flows[fk] = f
	for rec.Input >= len(a.tcpSeen) {
		a.tcpSeen = append(a.tcpSeen, 0)
	}
	a.tcpSeen[rec.Input]++
	return f
}

func (a *Analyzer) udp(rec *decode.Record, l *decode.Level) {
	t := &l.L4
	var k skey
	fwd := false
	switch {
	case rec.WireGuard.Type == decode.WGHandshakeInit:
		k, fwd = skey{rec.Input, l.IP.Src, l.IP.Dst, t.DstPort, true}, true
	case rec.WireGuard.Type == decode.WGHandshakeResponse:
		k = skey{rec.Input, l.IP.Dst, l.IP.Src, t.SrcPort, true}
	case t.SrcPort == t.DstPort && servicePort(t.DstPort):
		// Peers on the same port (IKE 500/4500): the lower address is "client".
		if l.IP.Src.Less(l.IP.Dst) {
			k, fwd = skey{rec.Input, l.IP.Src, l.IP.Dst, t.DstPort, false}, true
		} else {
			k = skey{rec.Input, l.IP.Dst, l.IP.Src, t.DstPort, false}
		}
	case servicePort(t.DstPort):
		k, fwd = skey{rec.Input, l.IP.Src, l.IP.Dst, t.DstPort, false}, true
	case servicePort(t.SrcPort):
		k = skey{rec.Input, l.IP.Dst, l.IP.Src, t.SrcPort, false}
	default:
		return
	}
	if ignored(k.server) || ignored(k.client) {
		return
	}
	s := a.services[k]
	if s == nil {
		if len(a.services) >= maxServices {
			a.dropped++
			return
		}
		s = &service{key: k, firstFrame: rec.Frame}
		a.services[k] = s
		a.sorder = append(a.sorder, k)
	}
	if fwd {
		s.fwd++
		s.ex.Add(rec.Input, rec.Frame)
	} else {
		s.back++
		s.backEx.Add(rec.Input, rec.Frame)
	}
}

// servicePort reports the UDP ports of request/response protocols: DNS,
// IKE and IKE NAT-T.
func servicePort(p uint16) bool { return p == 53 || p == 500 || p == 4500 }

// judge decides whether f is one-way.
func (a *Analyzer) judge(f *tflow) {
	for i := 0; i < 2; i++ {
		if f.pk[i] < MinPackets || f.pk[1-i] != 0 {
			continue
		}
		src := netip.AddrPortFrom(f.key.k.A, f.key.k.PA)
		dst := netip.AddrPortFrom(f.key.k.B, f.key.k.PB)
		if i == 1 {
			src, dst = dst, src
		}
		w := oneWay{input: f.key.input, proto: "tcp", src: src, dst: dst, packets: f.pk[i], ackAdv: f.ackAdv[i], ex: f.ex}
		switch {
		case f.ackAdv[i] > 1:
			w.kind, w.why = kindElsewhere, "ACK numbers advanced for data never seen here"
		case f.ackedLate[i]:
			w.kind, w.why = kindElsewhere, "the handshake completed without the SYN-ACK passing here"
		case f.syn[i] && !f.synAck:
			w.kind, w.why = kindNoReply, "connection attempts got no answer here"
		default:
			continue
		}
		a.found = append(a.found, w)
	}
}

// evict judges and drops idle flows, or, if none are idle, the half with
// the fewest packets.
func (a *Analyzer) evict(now int64) {
	a.memo.Forget()
	n := len(a.flows)
	for k, f := range a.flows {
		if now-f.last > int64(idleAfter) {
			a.judge(f)
			delete(a.flows, k)
			a.free = append(a.free, f)
		}
	}
	if len(a.flows) > n*3/4 {
		counts := make([]uint64, 0, len(a.flows))
		for _, f := range a.flows {
			counts = append(counts, f.pk[0]+f.pk[1])
		}
		slices.Sort(counts)
		median := counts[len(counts)/2]
		for k, f := range a.flows {
			if f.pk[0]+f.pk[1] <= median {
				a.judge(f)
				delete(a.flows, k)
				a.free = append(a.free, f)
			}
		}
	}
	a.evicted += uint64(n - len(a.flows))
}
