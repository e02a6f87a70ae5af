// Package arp watches ARP at each capture point and L2 domain (VLAN, or the
// tunnel that carries Ethernet): IP addresses claimed by more than one MAC at
// once (two gateways holding the same address), MAC changes and flapping for
// an address, gratuitous ARP storms, and requests nobody answers.
//
// A claim is an ARP packet whose sender binds an IP address to a MAC: every
// reply, gratuitous announcement and request (ARP probes with sender
// 0.0.0.0 claim nothing). An address is gateway-like when its last octet is
// 1 or 254 or at least GatewayRequesters hosts asked for it.
//
// The analyzer is registered as "arp".
package arp

import (
	"net/netip"
	"time"

	"github.com/vpndiag/vpndiag/analyze"
	"github.com/vpndiag/vpndiag/analyze/decode"
)

func init() { analyze.Register("arp", func() analyze.Analyzer { return New() }) }

const (
	// ConcurrentWindow: two MACs claiming one address within this time of
	// each other both hold it (a duplicate, not a move).
	ConcurrentWindow = time.Second
	// AnswerWindow is how long a request waits for its reply.
	AnswerWindow = time.Second
	// GatewayRequesters is how many distinct hosts asking for an address
	// make it gateway-like.
	GatewayRequesters = 3
	// StormCount gratuitous ARPs within StormWindow at one capture point
	// are a storm.
	StormCount  = 20
	StormWindow = time.Second
	// maxAddresses bounds the addresses tracked per run.
	maxAddresses = 65536
	maxMACs      = 4
	maxExamples  = 5
)

// domain is one L2 broadcast domain at one capture point.
type domain struct {
	input  int
	tunnel uint64 // tunnel kind<<32 | ID for ARP inside a tunnel; 0 on the link
	vlan   uint16
}

type ipKey struct {
	domain
	ip netip.Addr
}

type claim struct {
	mac        [6]byte
	count      uint32
	firstFrame uint64
	last       int64
}

// ipState is everything seen about one address in one domain.
type ipState struct {
	claims     [maxMACs]claim
	nMACs      int
	moreMACs   uint32 // claims by MACs beyond maxMACs
	last       [6]byte
	haveLast   bool
	changes    uint32
	changeEx   analyze.Examples
	concurrent uint32 // claims made while another MAC held the address
	dupEx      analyze.Examples

	requesters [GatewayRequesters]netip.Addr
	nReq       int
	requests   uint32
	replies    uint32
	gratuitous uint32
	gratEx     analyze.Examples

	pending      uint32 // requests since the last reply, not yet expired
	pendingLast  int64
	pendingFrame uint64
	unanswered   uint32
	unansEx      analyze.Examples
}

// inputState is per capture point.
type inputState struct {
	end       int64
	gratRing  [StormCount]int64
	gratN     uint64
	stormPeak int // most gratuitous ARPs within StormWindow
	stormEx   analyze.Examples
	arps      uint64
	replies   uint64
}

// Analyzer is the ARP analyzer.
type Analyzer struct {
	ips       map[ipKey]*ipState
	order     []ipKey // first-seen order, for stable reports
	inputs    []inputState
	untracked uint64
}

// New returns an empty ARP analyzer.
func New() *Analyzer { return &Analyzer{ips: map[ipKey]*ipState{}} }

// Name implements analyze.Analyzer.
func (a *Analyzer) Name() string { return "arp" }

func (a *Analyzer) state(k ipKey) *ipState {
	s := a.ips[k]
	if s == nil {
		if len(a.ips) >= maxAddresses {
			a.untracked++
			return nil
		}
		s = &ipState{}
		a.ips[k] = s
		a.order = append(a.order, k)
	}
	return s
}

// Packet implements analyze.Analyzer.
// Wants implements analyze.Selective: ARP records only.
func (a *Analyzer) Wants() analyze.Interest { return analyze.WantARP }

// InputEnd implements analyze.Selective.
func (a *Analyzer) InputEnd(input int, last int64) {
	for input >= len(a.inputs) {
		a.inputs = append(a.inputs, inputState{})
	}
	if in := &a.inputs[input]; last > in.end {
		in.end = last
	}
}

// Packet implements analyze.Analyzer.
func (a *Analyzer) Packet(rec *decode.Record) {
	for rec.Input >= len(a.inputs) {
		a.inputs = append(a.inputs, inputState{})
	}
	in := &a.inputs[rec.Input]
	if rec.Time > in.end {
		in.end = rec.Time
	}
	p := &rec.ARP
	if !p.Valid {
		return
	}
	in.arps++
	d := domain{input: rec.Input}
	if p.Level == 0 {
		if rec.NumVLANs > 0 {
			d.vlan = rec.VLANs[0]
		}
	} else {
		for i := int(rec.NumTunnel) - 1; i >= 0; i-- {
			if t := &rec.Tunnels[i]; int(t.Level) == int(p.Level)-1 {
				d.tunnel = uint64(t.Kind)<<32 | uint64(t.ID)
				break
			}
		}
	}
	grat := p.Gratuitous()
	if grat {
		a.gratuitous(in, rec)
	}
	if p.Op == 2 {
		in.replies++
	}
	if p.SenderIP.IsValid() && !p.SenderIP.IsUnspecified() {
		if s := a.state(ipKey{d, p.SenderIP}); s != nil {
			s.claim(rec, p)
			if grat {
				s.gratuitous++
				s.gratEx.Add(rec.Input, rec.Frame)
			}
			if p.Op == 2 {
				s.replies++
				s.pending = 0
			}
		}
	}
	if p.Op == 1 && !grat && p.TargetIP.IsValid() && !p.TargetIP.IsUnspecified() && !p.SenderIP.IsUnspecified() {
		if s := a.state(ipKey{d, p.TargetIP}); s != nil {
			s.request(rec, p)
		}
	}
}

func (a *Analyzer) gratuitous(in *inputState, rec *decode.Record) {
	i := in.gratN % StormCount
	in.gratRing[i] = rec.Time
	in.gratN++
	// Count how many of the last StormCount fall within StormWindow.
	n := 0
	for _, t := range in.gratRing[:min(in.gratN, StormCount)] {
		if rec.Time-t < int64(StormWindow) {
			n++
		}
	}
	in.stormPeak = max(in.stormPeak, n)
	if n >= StormCount {
		in.stormEx.Add(rec.Input, rec.Frame)
	}
}

// claim records that p's sender MAC holds p's sender IP.
func (s *ipState) claim(rec *decode.Record, p *decode.ARP) {
	mac := p.SenderMAC
	var c *claim
	for i := 0; i < s.nMACs; i++ {
		if s.claims[i].mac == mac {
			c = &s.claims[i]
			continue
		}
		if rec.Time-s.claims[i].last <= int64(ConcurrentWindow) {
			s.concurrent++
			if s.dupEx.Len() == 0 {
				s.dupEx.Add(rec.Input, s.claims[i].firstFrame)
			}
			s.dupEx.Add(rec.Input, rec.Frame)
		}
	}
	if c == nil {
		if s.nMACs == maxMACs {
			s.moreMACs++
		} else {
			c = &s.claims[s.nMACs]
			s.nMACs++
			*c = claim{mac: mac, firstFrame: rec.Frame}
		}
	}
	if c != nil {
		c.count++
		c.last = rec.Time
	}
	if s.haveLast && s.last != mac {
		s.changes++
		s.changeEx.Add(rec.Input, rec.Frame)
	}
	s.last, s.haveLast = mac, true
}

// request records an ARP request for the address.
func (s *ipState) request(rec *decode.Record, p *decode.ARP) {
	s.requests++
	known := false
	for _, r := range s.requesters[:s.nReq] {
		known = known || r == p.SenderIP
	}
	if !known && s.nReq < len(s.requesters) {
		s.requesters[s.nReq] = p.SenderIP
		s.nReq++
	}
	s.expire(rec.Time, rec.Input)
	if s.pending == 0 {
		s.pendingFrame = rec.Frame
	}
	s.pending++
	s.pendingLast = rec.Time
}

// expire counts pending requests older than AnswerWindow at now as unanswered.
func (s *ipState) expire(now int64, input int) {
	if s.pending > 0 && now-s.pendingLast > int64(AnswerWindow) {
		s.unanswered += s.pending
		s.unansEx.Add(input, s.pendingFrame)
		s.pending = 0
	}
}
