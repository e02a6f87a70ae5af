// Package mtu finds the path MTU to a target with Don't-Fragment ICMP echo
// probes: a binary search between a floor that every IPv4 path carries and
// the MTU of the interface the route uses, with several attempts per size so
// loss is not mistaken for a size limit. It reports the largest size that
// passes, every ICMP "fragmentation needed" (who sent it and the MTU it
// advertised), and a PMTU black hole when large probes vanish without any
// ICMP error while small ones pass.
//
// Probes use a raw ICMP socket (root or CAP_NET_RAW) or an unprivileged ICMP
// datagram socket, with IP_MTU_DISCOVER=IP_PMTUDISC_PROBE (DF set, the
// kernel's cached path MTU ignored, so every size reaches the wire) and
// IP_RECVERR (ICMP errors read from the socket's error queue, with the
// offender address and advertised MTU). IPv6 works the same way with
// ICMPv6 Packet Too Big, which routers always send (IPv6 never fragments in
// the network).
package mtu

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/vpndiag/vpndiag/probe/ping"
)

// Sizes are whole IP packets: IP header (20, IPv6 40) + ICMP header (8) +
// payload.
const (
	// HeaderBytes is the IPv4 and ICMP header overhead of a probe.
	HeaderBytes = 28
	// HeaderBytes6 is the IPv6 and ICMPv6 header overhead of a probe.
	HeaderBytes6 = 48
	// DefaultMin is the default search floor for IPv4: every IPv4 host
	// must accept 576-byte datagrams (RFC 791).
	DefaultMin = 576
	// DefaultMin6 is the default floor for IPv6: every IPv6 link carries
	// 1280 bytes (RFC 8200).
	DefaultMin6 = 1280
	// SmallSize is the size used to tell an unreachable target from a path
	// MTU below the floor (a default ping: 56-byte payload); IPv6 uses
	// SmallSize+20.
	SmallSize = 84
	// MaxSize is the largest IP packet (without IPv6 jumbograms).
	MaxSize = 65535
)

// headerBytes is the probe overhead for the family.
func headerBytes(v6 bool) int {
	if v6 {
		return HeaderBytes6
	}
	return HeaderBytes
}

// Config describes one path MTU search. Zero values take the defaults.
type Config struct {
	Target string // host name, IPv4 or IPv6 address
	// Min is the search floor (IP packet bytes); default DefaultMin (IPv6:
	// DefaultMin6). It is probed first; if it does not pass, a small probe
	// (SmallSize) tells an unreachable target from a path MTU below Min.
	Min int
	// Max is the largest size tried; default the MTU of the interface the
	// route to the target uses.
	Max int
	// Retries is how many probes of one size may go unanswered before the
	// size counts as not passing; default 3.
	Retries int
	// Timeout is how long one probe waits for its reply or ICMP error;
	// default 1 s.
	Timeout time.Duration
	Mode    ping.Mode
	Source  string // source address
	// Netns, if set, probes from that network namespace (a name under
	// /var/run/netns or a path).
	Netns string
	// OnProbe, if set, is called after every probe.
	OnProbe func(Probe)

	small int // the small probe size for the family (set by Run)
}

// Outcome is what happened to one probe.
type Outcome string

// Probe outcomes.
const (
	Reply       Outcome = "reply"         // echo reply received
	FragNeeded  Outcome = "frag-needed"   // ICMP destination unreachable, fragmentation needed (type 3 code 4)
	LocalTooBig Outcome = "local-too-big" // refused by this host's interface MTU (EMSGSIZE)
	Timeout     Outcome = "timeout"       // neither reply nor error within the timeout
	Unreachable Outcome = "unreachable"   // another ICMP error (host/net/port unreachable, prohibited, TTL)
)

// Probe is one sent echo.
type Probe struct {
	Size    int           `json:"size"` // IP packet bytes
	Attempt int           `json:"attempt"`
	Outcome Outcome       `json:"outcome"`
	RTT     time.Duration `json:"rtt_ns,omitempty"` // until the reply or the error
	// From is the source of the ICMP error (the router that refused the
	// packet); MTU the next-hop MTU it advertised.
	From string `json:"from,omitempty"`
	MTU  int    `json:"mtu,omitempty"`
	// ICMPType and ICMPCode identify an Unreachable error.
	ICMPType int `json:"icmp_type,omitempty"`
	ICMPCode int `json:"icmp_code,omitempty"`
}

// FragSource is one router that answered too-large probes with
// "fragmentation needed".
type FragSource struct {
	From     string `json:"from"`
	MTU      int    `json:"mtu"`      // advertised next-hop MTU (0: the router did not say)
	Count    int    `json:"count"`    // errors received
	Smallest int    `json:"smallest"` // smallest probe size it refused
}

// Result is a finished (or interrupted) search.
type Result struct {
	Target     string `json:"target"`
	Addr       string `json:"addr"`
	IPv6       bool   `json:"ipv6,omitempty"`
	Privileged bool   `json:"privileged"`
	// Interface and InterfaceMTU describe the route's output interface
	// (empty and 0 when Max was given and the route could not be read).
	Interface    string `json:"interface,omitempty"`
	InterfaceMTU int    `json:"interface_mtu,omitempty"`
	Min          int    `json:"min"`
	Max          int    `json:"max"`
	// PathMTU is the largest size that passed (0: none passed).
	PathMTU int `json:"path_mtu"`
	// Refused is the smallest size that did not pass (0 when Max passed).
	Refused int `json:"refused,omitempty"`
	// RefusedBy is how the smallest refused size failed: FragNeeded,
	// LocalTooBig, Timeout (all attempts vanished) or Unreachable.
	RefusedBy Outcome `json:"refused_by,omitempty"`
	// FragNeeded lists the routers that sent "fragmentation needed".
	FragNeeded []FragSource `json:"frag_needed"`
	// BlackHole is set when the smallest refused size vanished without any
	// ICMP error on every attempt while smaller probes were answered: a
	// router drops too-large DF packets (or its ICMP errors are filtered),
	// so TCP connections with full-size segments stall.
	BlackHole bool `json:"black_hole"`
	// Vanished counts probes that timed out at sizes above PathMTU, and
	// Lost those that timed out at sizes that passed on a retry.
	Vanished int     `json:"vanished"`
	Lost     int     `json:"lost"`
	Probes   []Probe `json:"probes"`
	Seconds  float64 `json:"seconds"`
}

// Payload returns the ICMP payload bytes of an IPv4 packet of size bytes
// (what ping -s takes).
func Payload(size int) int { return size - HeaderBytes }

// Payload6 is Payload for IPv6.
func Payload6(size int) int { return size - HeaderBytes6 }

// ErrUnreachable is wrapped by Run's error when not even small probes are
// answered.
var ErrUnreachable = errors.New("target does not answer ICMP echo")

// ErrPermission is wrapped by Run's error when no ICMP socket may be opened.
var ErrPermission = ping.ErrPermission

func (c *Config) withDefaults() (Config, error) {
	cfg := *c
	if cfg.Target == "" {
		return cfg, errors.New("no target given")
	}
	if cfg.Retries == 0 {
		cfg.Retries = 3
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Second
	}
	if cfg.Min != 0 && (cfg.Min < SmallSize || cfg.Min > MaxSize) {
		return cfg, fmt.Errorf("minimum size %d out of range %d..%d", cfg.Min, SmallSize, MaxSize)
	}
	if cfg.Max != 0 && (cfg.Max < max(cfg.Min, SmallSize) || cfg.Max > MaxSize) {
		return cfg, fmt.Errorf("maximum size %d out of range %d..%d", cfg.Max, max(cfg.Min, SmallSize), MaxSize)
	}
	if cfg.Retries < 1 || cfg.Retries > 20 {
		return cfg, fmt.Errorf("retries %d out of range 1..20", cfg.Retries)
	}
	if cfg.Source != "" {
		if _, err := netip.ParseAddr(cfg.Source); err != nil {
			return cfg, fmt.Errorf("bad source address %q", cfg.Source)
		}
	}
	return cfg, nil
}
