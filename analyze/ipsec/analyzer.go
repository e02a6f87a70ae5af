// Package ipsec is the "ipsec" analyzer: IKE exchanges per peer pair (IKEv2
// IKE_SA_INIT, IKE_AUTH, CREATE_CHILD_SA, INFORMATIONAL; IKEv1 main,
// aggressive, quick and informational) with request/response pairing,
// negotiations that never complete, retransmissions, re-keys and SA churn,
// ESP sequence gaps and replays per SA (extended sequence numbers handled),
// SPI changes per direction, and NAT traversal.
//
// Finding ids: ipsec.negotiation-incomplete, ipsec.ike-retransmissions,
// ipsec.sa-churn, ipsec.esp-gaps, ipsec.esp-replay, ipsec.nat-t. The
// thresholds are the fields of Config, with the defaults of DefaultConfig.
package ipsec

import (
	"hash/maphash"
	"net/netip"
	"time"

	"github.com/vpndiag/vpndiag/analyze"
	"github.com/vpndiag/vpndiag/analyze/decode"
)

func init() { analyze.Register("ipsec", func() analyze.Analyzer { return New() }) }

// Config holds the analyzer's thresholds and bounds.
type Config struct {
	// Grace: a request sent less than this before the end of its capture is
	// "pending", not unanswered (IKE retransmits after about 4 s, then backs
	// off; 10 s covers the first retransmission).
	Grace time.Duration
	// RetransmitWarn: this many repeated (byte-identical) IKE messages
	// between a peer pair make an ipsec.ike-retransmissions warning.
	RetransmitWarn int
	// ChurnMinEvents and ChurnMaxInterval: a peer pair with at least
	// ChurnMinEvents IKE SA set-ups, child SA re-key events or new ESP SPIs
	// in one direction, whose median interval is below ChurnMaxInterval, is
	// flapping (ipsec.sa-churn). Defaults 3 and 10 minutes; common lifetimes
	// are hours (strongSwan: IKE 4 h, child 1 h).
	ChurnMinEvents   int
	ChurnMaxInterval time.Duration
	// RekeyBurst: CREATE_CHILD_SA / quick mode exchanges (and new SPIs)
	// closer than this count as one re-key event (a set-up of several child
	// SAs at once is not churn).
	RekeyBurst time.Duration
	// GapErrorPercent: ESP loss at or above this share makes
	// ipsec.esp-gaps an error instead of a warning.
	GapErrorPercent float64
	// Bounds on state; what does not fit is counted and reported.
	MaxPeers, MaxIKESAs, MaxExchanges, MaxESPSAs int
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{Grace: 10 * time.Second, RetransmitWarn: 3, ChurnMinEvents: 3, ChurnMaxInterval: 10 * time.Minute,
		RekeyBurst: 10 * time.Second, GapErrorPercent: 5,
		MaxPeers: 4096, MaxIKESAs: 16384, MaxExchanges: 65536, MaxESPSAs: 16384}
}

// Analyzer tracks IKE and ESP. Create it with New or NewConfig.
type Analyzer struct {
	cfg     Config
	peers   map[pairKey]*peer
	sas     map[saKey]*ikeSA
	xs      map[xKey]*exchange
	esp     map[espKey]*espSA
	dirs    map[dirKey]*espDir
	ends    []int64 // last capture time per input
	seed    maphash.Seed
	dropped struct{ peers, sas, xs, esp uint64 }
}

// New returns an analyzer with DefaultConfig.
func New() *Analyzer { return NewConfig(DefaultConfig()) }

// NewConfig returns an analyzer with the given thresholds.
func NewConfig(c Config) *Analyzer {
	return &Analyzer{cfg: c, peers: map[pairKey]*peer{}, sas: map[saKey]*ikeSA{}, xs: map[xKey]*exchange{},
		esp: map[espKey]*espSA{}, dirs: map[dirKey]*espDir{}, seed: maphash.MakeSeed()}
}

// Name implements analyze.Analyzer.
func (a *Analyzer) Name() string { return "ipsec" }

// fref is a frame of an input, kept compactly until Finish.
type fref struct {
	input int
	frame uint64
}

// maxFrames bounds the example frames kept per finding.
const maxFrames = 5

func addFrame(fs []fref, f fref) []fref {
	if len(fs) < maxFrames {
		fs = append(fs, f)
	}
	return fs
}

// pairKey is an unordered pair of peer addresses (a < b).
type pairKey struct{ a, b netip.Addr }

func pairOf(x, y netip.Addr) pairKey {
	if y.Less(x) {
		x, y = y, x
	}
	return pairKey{x, y}
}

// side is 0 when addr is the pair's a, else 1.
func (k pairKey) side(addr netip.Addr) int {
	if addr == k.a {
		return 0
	}
	return 1
}

// Packet implements analyze.Analyzer.
// Wants implements analyze.Selective: IKE, ESP and NAT-T keepalives
// (innermost UDP on port 4500).
func (a *Analyzer) Wants() analyze.Interest {
	return analyze.WantIKE | analyze.WantESP | analyze.WantInnerPort4500
}

// InputEnd implements analyze.Selective.
func (a *Analyzer) InputEnd(input int, last int64) {
	for len(a.ends) <= input {
		a.ends = append(a.ends, 0)
	}
	a.ends[input] = max(a.ends[input], last)
}

func (a *Analyzer) Packet(rec *decode.Record) {
	if rec.Input >= len(a.ends) {
		for len(a.ends) <= rec.Input {
			a.ends = append(a.ends, 0)
		}
	}
	if rec.Time > a.ends[rec.Input] {
		a.ends[rec.Input] = rec.Time
	}
	if rec.NumLevels == 0 {
		return
	}
	if rec.IKE.Valid {
		a.ike(rec)
	}
	for i := 0; i < int(rec.NumTunnel); i++ {
		t := &rec.Tunnels[i]
		if t.Kind == decode.TunnelESP || t.Kind == decode.TunnelESPinUDP {
			a.espPacket(rec, t)
		}
	}
	if l := rec.Inner(); l.L4.Proto == 17 && len(l.L4.Payload) == 1 && l.L4.Payload[0] == 0xff &&
		(l.L4.DstPort == 4500 || l.L4.SrcPort == 4500) {
		// RFC 3948 NAT keepalive: sent by a peer behind a NAT.
		if p := a.peer(pairOf(l.IP.Src, l.IP.Dst), rec); p != nil {
			s := p.key.side(l.IP.Src)
			p.keepalives[s]++
			p.nattFrames = addFrame(p.nattFrames, fref{rec.Input, rec.Frame})
		}
	}
}

// peer returns the state of a peer pair, or nil when the table is full.
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
