package ipsec

import (
	"net/netip"

	"github.com/vpndiag/vpndiag/analyze/decode"
	"github.com/vpndiag/vpndiag/analyze/seqwin"
)

// espKey identifies an ESP SA as seen on the wire: the SPI is chosen by the
// receiver, so the same SPI may appear towards different destinations.
type espKey struct {
	src, dst netip.Addr
	spi      uint32
}

// espSA is one ESP SA (one direction).
type espSA struct {
	key        espKey
	udp        bool
	input      int
	firstFrame uint64
	first      int64
	last       int64
	packets    uint64
	bytes      uint64
	win        seqwin.Window
	gapFrames  []fref
	dupFrames  []fref
}

// dirKey is one direction between two peers.
type dirKey struct{ src, dst netip.Addr }

// espDir counts the SPIs used in one direction: a new SPI is a re-key.
type espDir struct {
	lastSPI uint32
	spis    uint64
	times   []int64 // times new SPIs appeared (re-key events, bursts merged)
	lastNew int64
	frames  []fref
}

func (a *Analyzer) espPacket(rec *decode.Record, t *decode.Tunnel) {
	l := &rec.Levels[t.Level]
	k := espKey{l.IP.Src, l.IP.Dst, t.ID}
	sa := a.esp[k]
	if sa == nil {
		if len(a.esp) >= a.cfg.MaxESPSAs {
			a.dropped.esp++
			return
		}
		sa = &espSA{key: k, input: rec.Input, firstFrame: rec.Frame, first: rec.Time}
		a.esp[k] = sa
		a.newSPI(rec, k)
		if t.Kind == decode.TunnelESPinUDP {
			sa.udp = true
			if p := a.peer(pairOf(k.src, k.dst), rec); p != nil {
				p.espUDP = true
				if sp := l.L4.SrcPort; sp != 4500 {
					p.odd[p.key.side(k.src)] = sp
				}
				p.nattFrames = addFrame(p.nattFrames, fref{rec.Input, rec.Frame})
			}
		}
	}
	sa.packets++
	sa.bytes += uint64(rec.WireLen)
	if rec.Time > sa.last {
		sa.last = rec.Time
	}
	seq := seqwin.Unwrap32(sa.win.Top(), sa.win.Started(), t.Seq)
	switch sa.win.Add(seq) {
	case seqwin.Gap:
		sa.gapFrames = addFrame(sa.gapFrames, fref{rec.Input, rec.Frame})
	case seqwin.Duplicate:
		sa.dupFrames = addFrame(sa.dupFrames, fref{rec.Input, rec.Frame})
	}
}

// newSPI notes the first packet of an SA in its direction.
func (a *Analyzer) newSPI(rec *decode.Record, k espKey) {
	dk := dirKey{k.src, k.dst}
	d := a.dirs[dk]
	if d == nil {
		if len(a.dirs) >= a.cfg.MaxESPSAs {
			return
		}
		d = &espDir{}
		a.dirs[dk] = d
	}
	d.spis++
	if d.spis > 1 {
		if len(d.times) == 0 || rec.Time-d.lastNew > int64(a.cfg.RekeyBurst) {
			d.times = addTime(d.times, rec.Time)
		}
		d.frames = addFrame(d.frames, fref{rec.Input, rec.Frame})
	}
	d.lastNew = rec.Time
	d.lastSPI = k.spi
}
