package mtu

import (
	"net/netip"
	"slices"

	"github.com/vpndiag/vpndiag/analyze"
	"github.com/vpndiag/vpndiag/analyze/decode"
)

// pendN is how many unacknowledged data segments are kept per direction.
const pendN = 8

// seg is one unacknowledged data segment.
type seg struct {
	seq, end    uint32
	size        uint16 // IP total length
	sends       uint8
	df          bool
	syn         bool
	first, last uint64 // frames of the first and the latest transmission
}

type tdir struct {
	pend     [pendN]seg
	n        int
	ackedMax uint16 // largest IP packet of this direction acknowledged
}

type tflowKey struct {
	input int
	k     analyze.FlowKey
}

type tflow struct {
	key     tflowKey
	d       [2]tdir
	packets uint64
}

type mssKey struct {
	input int
	addr  netip.Addr
}

// mssEntry is the largest MSS an address announced in its SYNs.
type mssEntry struct {
	mss   uint16
	peer  netip.Addr
	frame uint64
}

// hole is a PMTU black-hole candidate: a DF segment retransmitted and never
// acknowledged while smaller packets were.
type hole struct {
	input       int
	src, dst    netip.Addr
	sport       uint16
	dport       uint16
	size        uint16
	ackedMax    uint16
	sends       uint8
	pathMTU     uint32
	first, last uint64
}

type tcpState struct {
	flows   map[tflowKey]*tflow
	free    []*tflow
	scratch []uint64
	mss     map[mssKey]*mssEntry
	holes   []hole
	evicted uint64
	memo    analyze.FlowMemo[*tflow]
}

func (s *tcpState) init() {
	s.flows = map[tflowKey]*tflow{}
	s.mss = map[mssKey]*mssEntry{}
}

func seqLE(a, b uint32) bool { return int32(a-b) <= 0 }

// segment follows one TCP segment of the innermost level.
func (s *tcpState) segment(rec *decode.Record, l *decode.Level, icmp *icmpState) {
	t := &l.L4
	if t.Flags&decode.TCPSyn != 0 && t.MSS > 0 {
		mk := mssKey{rec.Input, l.IP.Src}
		if e := s.mss[mk]; e == nil {
			if len(s.mss) < maxMSS {
				s.mss[mk] = &mssEntry{mss: t.MSS, peer: l.IP.Dst, frame: rec.Frame}
			}
		} else if t.MSS > e.mss {
			e.mss, e.peer, e.frame = t.MSS, l.IP.Dst, rec.Frame
		}
	}
	f, ab, ok := s.memo.Get(rec.Input, l)
	if !ok {
		var k analyze.FlowKey
		k, ab = analyze.KeyOf(l)
		if f = s.lookup(rec, &k, t, icmp); f == nil {
			return
		}
		s.memo.Set(rec.Input, l, ab, f)
	}
	f.packets++
	i := 0
	if !ab {
		i = 1
	}
	if t.Flags&decode.TCPAck != 0 {
		f.d[1-i].ack(t.Ack)
	}
	if t.PayloadLen > 0 || t.Flags&decode.TCPSyn != 0 {
		// A SYN counts too: its answer proves small packets get through.
		f.d[i].data(rec, l)
	}
}

// lookup returns the flow of k, starting it with this segment when it is
// new, or nil for a pure ACK of an unknown flow (nothing to track yet).
func (s *tcpState) lookup(rec *decode.Record, k *analyze.FlowKey, t *decode.Transport, icmp *icmpState) *tflow {
	fk := tflowKey{rec.Input, *k}
	f := s.flows[fk]
	if f == nil {
		if t.PayloadLen == 0 && t.Flags&decode.TCPSyn == 0 {
			return nil
		}
		if len(s.flows) >= maxTCPFlows {
			s.evict(icmp)
		}
		if n := len(s.free); n > 0 {
			f = s.free[n-1]
			s.free = s.free[:n-1]
		} else {
			f = new(tflow)
		}
		*f = tflow{key: fk}
		s.flows[fk] = f
	}
	return f
}

// ack removes the segments acknowledged by ack.
func (d *tdir) ack(ack uint32) {
	for j := 0; j < d.n; {
		if p := &d.pend[j]; seqLE(p.end, ack) {
			d.ackedMax = max(d.ackedMax, p.size)
			d.n--
			d.pend[j] = d.pend[d.n]
			continue
		}
		j++
	}
}

// data records one data segment (or SYN) sent in this direction.
func (d *tdir) data(rec *decode.Record, l *decode.Level) {
	t := &l.L4
	for j := range d.pend[:d.n] {
		if p := &d.pend[j]; p.seq == t.Seq {
			if p.sends < 255 {
				p.sends++
			}
			p.last = rec.Frame
			p.size = max(p.size, l.IP.TotalLen)
			return
		}
	}
	if d.n == pendN {
		return // keep the earliest outstanding segments: those are the ones retransmitted first
	}
	j := d.n
	d.n++
	end := t.Seq + uint32(t.PayloadLen)
	if t.Flags&decode.TCPSyn != 0 {
		end++
	}
	d.pend[j] = seg{seq: t.Seq, end: end, size: l.IP.TotalLen, sends: 1,
		df: l.IP.Version == 6 || l.IP.DontFrag, syn: t.Flags&decode.TCPSyn != 0, first: rec.Frame, last: rec.Frame}
}

// judge records the black-hole candidates of f.
func (s *tcpState) judge(f *tflow, icmp *icmpState) {
	for i := range f.d {
		d := &f.d[i]
		src, dst, sp, dp := f.key.k.A, f.key.k.B, f.key.k.PA, f.key.k.PB
		if i == 1 {
			src, dst, sp, dp = dst, src, dp, sp
		}
		pm, known := icmp.mtuToward(f.key.input, dst)
		var best *seg
		for j := range d.pend[:d.n] {
			p := &d.pend[j]
			if p.sends < BlackholeSends || !p.df || p.syn {
				continue
			}
			tooBig := (d.ackedMax > 0 && p.size > d.ackedMax) || (known && uint32(p.size) > pm)
			if tooBig && (best == nil || p.size > best.size) {
				best = p
			}
		}
		if best != nil && len(s.holes) < maxICMP {
			h := hole{input: f.key.input, src: src, dst: dst, sport: sp, dport: dp, size: best.size, ackedMax: d.ackedMax,
				sends: best.sends, first: best.first, last: best.last}
			if known {
				h.pathMTU = pm
			}
			s.holes = append(s.holes, h)
		}
	}
}

// evict judges and drops the flows at or below the median packet count.
func (s *tcpState) evict(icmp *icmpState) {
	s.memo.Forget()
	s.scratch = s.scratch[:0]
	for _, f := range s.flows {
		s.scratch = append(s.scratch, f.packets)
	}
	slices.Sort(s.scratch)
	median := s.scratch[len(s.scratch)/2]
	for k, f := range s.flows {
		if f.packets <= median {
			s.judge(f, icmp)
			delete(s.flows, k)
			s.free = append(s.free, f)
			s.evicted++
		}
	}
}
