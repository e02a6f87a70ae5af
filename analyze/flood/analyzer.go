// Package flood is the "flood" analyzer: connection attempts against VPN
// ports — IKE_SA_INIT requests and IKEv1 main/aggressive mode first
// messages, WireGuard handshake initiations, and TCP SYNs to SSL-VPN ports —
// per target and per source, with the per-second rate over time (a bounded
// ring of one-second buckets), distinct and top sources, and how many
// attempts the target answered.
//
// Finding id: flood.vpn-port, a warning when the attempt rate averaged over
// Config.Sustain reaches the kind's WarnRate (with at least MinAttempts
// attempts), an error at ten times that rate. Defaults: IKE 20/s,
// WireGuard 20/s, SSL-VPN 200/s (SSL-VPN ports also carry ordinary HTTPS),
// over 5 s, at least 100 attempts.
package flood

import (
	"net/netip"
	"time"

	"github.com/vpndiag/vpndiag/analyze"
	"github.com/vpndiag/vpndiag/analyze/decode"
)

func init() { analyze.Register("flood", func() analyze.Analyzer { return New() }) }

// Kind is what a VPN port speaks.
type Kind uint8

// Kinds of VPN connection attempts.
const (
	KindIKE Kind = iota
	KindWireGuard
	KindSSLVPN
	numKinds
)

var kindNames = [numKinds]string{"ike", "wireguard", "ssl-vpn"}
var attemptNames = [numKinds]string{"IKE_SA_INIT/main mode", "WireGuard handshake initiations", "TCP SYNs"}

// String returns "ike", "wireguard" or "ssl-vpn".
func (k Kind) String() string { return kindNames[k] }

// Config holds the analyzer's thresholds and bounds.
type Config struct {
	// SSLPorts are the TCP ports treated as SSL-VPN (default 443, 10443,
	// 4433, 8443).
	SSLPorts []uint16
	// WarnRate is the attempts per second, per kind, averaged over
	// Sustain, at which a target is flooded (warning); ten times it is an
	// error.
	WarnRate [numKinds]float64
	// Sustain is the averaging window of the rate (whole seconds).
	Sustain time.Duration
	// MinAttempts: fewer attempts on a target are never a flood.
	MinAttempts uint64
	// Window is how many one-second buckets of rate history each target
	// keeps for the rate-over-time table (older seconds still count in
	// totals and peaks).
	Window int
	// Bounds on state; what does not fit is counted and reported.
	MaxTargets, MaxSources int
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{SSLPorts: []uint16{443, 10443, 4433, 8443}, WarnRate: [numKinds]float64{20, 20, 200},
		Sustain: 5 * time.Second, MinAttempts: 100, Window: 3600, MaxTargets: 256, MaxSources: 65536}
}

// targetKey is a VPN service: kind, address and port.
type targetKey struct {
	kind Kind
	addr netip.Addr
	port uint16
}

// srcKey is one source of attempts against one target.
type srcKey struct {
	target uint16
	addr   netip.Addr
}

type fref struct {
	input int
	frame uint64
}

// target is the state of one VPN service.
type target struct {
	key        targetKey
	idx        uint16
	input      int
	attempts   uint64
	answered   uint64
	sources    uint64 // distinct sources tracked
	untracked  uint64 // attempts from sources beyond MaxSources
	first      int64
	last       int64
	frames     []fref
	ring       []uint32 // attempts per second, indexed by second % Window
	cur        int64    // the latest second (Unix) with attempts
	started    bool
	peak1      uint32  // highest one-second count
	peakSec    int64   // when
	peakSus    float64 // highest average over Sustain
	above      uint64  // seconds at or above WarnRate
	outOfOrder uint64  // attempts older than the ring
}

// Analyzer counts VPN connection attempts. Create it with New or NewConfig.
type Analyzer struct {
	cfg     Config
	ssl     [65536 / 64]uint64 // bitmap of SSL-VPN ports
	targets map[targetKey]*target
	list    []*target
	sources map[srcKey]uint32
	dropped struct{ targets, sources uint64 }
}

// New returns an analyzer with DefaultConfig.
func New() *Analyzer { return NewConfig(DefaultConfig()) }

// NewConfig returns an analyzer with the given thresholds.
func NewConfig(c Config) *Analyzer {
	if c.Window <= 0 {
		c.Window = 3600
	}
	if c.Sustain < time.Second {
		c.Sustain = time.Second
	}
	a := &Analyzer{cfg: c, targets: map[targetKey]*target{}, sources: map[srcKey]uint32{}}
	for _, p := range c.SSLPorts {
		a.ssl[p/64] |= 1 << (p % 64)
	}
	return a
}

// Name implements analyze.Analyzer.
func (a *Analyzer) Name() string { return "flood" }

func (a *Analyzer) isSSL(p uint16) bool { return a.ssl[p/64]&(1<<(p%64)) != 0 }

// Packet implements analyze.Analyzer.
// Wants implements analyze.Selective: IKE, WireGuard, and TCP SYNs (of SSL
// VPN attempts and their answers).
func (a *Analyzer) Wants() analyze.Interest {
	return analyze.WantIKE | analyze.WantWireGuard | analyze.WantInnerTCPSyn
}

// InputEnd implements analyze.Selective (the analyzer needs no end times).
func (a *Analyzer) InputEnd(int, int64) {}

func (a *Analyzer) Packet(rec *decode.Record) {
	if rec.NumLevels == 0 {
		return
	}
	switch {
	case rec.IKE.Valid:
		l := udpLevel(rec)
		if l == nil {
			return
		}
		k := &rec.IKE
		first := k.ResponderSPI == 0 && k.MessageID == 0 &&
			((k.Version == 2 && k.Exchange == 34 && !k.Response()) || (k.Version == 1 && (k.Exchange == 2 || k.Exchange == 4)))
		if first {
			a.attempt(rec, KindIKE, l.IP.Src, l.IP.Dst, l.L4.DstPort)
		} else if k.MessageID == 0 && k.ResponderSPI != 0 && ((k.Version == 2 && k.Exchange == 34 && k.Response()) || k.Version == 1) {
			a.answer(KindIKE, l.IP.Src, l.L4.SrcPort, k.Version == 1)
		}
	case rec.WireGuard.Type == decode.WGHandshakeInit:
		if l := udpLevel(rec); l != nil {
			a.attempt(rec, KindWireGuard, l.IP.Src, l.IP.Dst, l.L4.DstPort)
		}
	case rec.WireGuard.Type == decode.WGHandshakeResponse:
		if l := udpLevel(rec); l != nil {
			a.answer(KindWireGuard, l.IP.Src, l.L4.SrcPort, false)
		}
	default:
		l := rec.Inner()
		if l.L4.Proto != 6 {
			return
		}
		switch l.L4.Flags & (decode.TCPSyn | decode.TCPAck) {
		case decode.TCPSyn:
			if a.isSSL(l.L4.DstPort) {
				a.attempt(rec, KindSSLVPN, l.IP.Src, l.IP.Dst, l.L4.DstPort)
			}
		case decode.TCPSyn | decode.TCPAck:
			if a.isSSL(l.L4.SrcPort) {
				a.answer(KindSSLVPN, l.IP.Src, l.L4.SrcPort, false)
			}
		}
	}
}

func udpLevel(rec *decode.Record) *decode.Level {
	for i := int(rec.NumLevels) - 1; i >= 0; i-- {
		if rec.Levels[i].L4.Proto == 17 {
			return &rec.Levels[i]
		}
	}
	return nil
}

// answer counts a response from a target. IKEv1 phase 1 has no response
// flag: only its second message (the responder's first) counts, which the
// caller cannot tell from the third; IKEv1 answers are counted once per
// message from the target, an upper bound.
func (a *Analyzer) answer(kind Kind, addr netip.Addr, port uint16, _ bool) {
	if t := a.targets[targetKey{kind, addr, port}]; t != nil {
		t.answered++
	}
}

func (a *Analyzer) attempt(rec *decode.Record, kind Kind, src, dst netip.Addr, port uint16) {
	k := targetKey{kind, dst, port}
	t := a.targets[k]
	if t == nil {
		if len(a.targets) >= a.cfg.MaxTargets {
			a.dropped.targets++
			return
		}
		t = &target{key: k, idx: uint16(len(a.list)), input: rec.Input, first: rec.Time, ring: make([]uint32, a.cfg.Window)}
		a.targets[k] = t
		a.list = append(a.list, t)
	}
	t.attempts++
	if len(t.frames) < 5 {
		t.frames = append(t.frames, fref{rec.Input, rec.Frame})
	}
	if rec.Time > t.last {
		t.last = rec.Time
	}
	if rec.Time < t.first {
		t.first = rec.Time
	}
	sk := srcKey{t.idx, src}
	if n, ok := a.sources[sk]; ok {
		a.sources[sk] = n + 1
	} else if len(a.sources) < a.cfg.MaxSources {
		a.sources[sk] = 1
		t.sources++
	} else {
		t.untracked++
		a.dropped.sources++
	}
	a.count(t, rec.Time/int64(time.Second))
}

// count adds one attempt in second sec, closing the seconds in between.
func (a *Analyzer) count(t *target, sec int64) {
	w := int64(len(t.ring))
	if !t.started {
		t.started, t.cur = true, sec
	}
	if sec > t.cur {
		steps := sec - t.cur
		if steps > w {
			steps = w
			a.close(t, t.cur) // the seconds skipped beyond the ring were empty
			t.cur = sec - w
			for i := range t.ring {
				t.ring[i] = 0
			}
		}
		for s := sec - steps + 1; s <= sec; s++ {
			a.close(t, s-1)
			t.ring[mod(s, w)] = 0
		}
		t.cur = sec
	}
	if t.cur-sec >= w {
		t.outOfOrder++
		return
	}
	t.ring[mod(sec, w)]++
}

func mod(s, w int64) int64 { return ((s % w) + w) % w }

// close evaluates second s once it is complete: peak, sustained rate, and
// seconds above the threshold.
func (a *Analyzer) close(t *target, s int64) {
	w := int64(len(t.ring))
	c := t.ring[mod(s, w)]
	if c > t.peak1 {
		t.peak1, t.peakSec = c, s
	}
	if float64(c) >= a.cfg.WarnRate[t.key.kind] {
		t.above++
	}
	n := int64(a.cfg.Sustain / time.Second)
	if n > w {
		n = w
	}
	var sum uint64
	for i := int64(0); i < n; i++ {
		sum += uint64(t.ring[mod(s-i, w)])
	}
	if r := float64(sum) / float64(n); r > t.peakSus {
		t.peakSus = r
	}
}
