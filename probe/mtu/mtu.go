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
// offender address and advertised MTU). IPv4 only.
package mtu

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/vpndiag/vpndiag/probe/ping"
)

// Sizes are IPv4 packet sizes: IP header (20) + ICMP header (8) + payload.
const (
	// HeaderBytes is the IPv4 and ICMP header overhead of a probe.
	HeaderBytes = 28
	// DefaultMin is the default search floor: every IPv4 host must accept
	// 576-byte datagrams (RFC 791).
	DefaultMin = 576
	// SmallSize is the size used to tell an unreachable target from a path
	// MTU below the floor (a default ping: 56-byte payload).
	SmallSize = 84
	// MaxSize is the largest IPv4 packet.
	MaxSize = 65535
)

// Config describes one path MTU search. Zero values take the defaults.
type Config struct {
	Target string // host name or IPv4 address
	// Min is the search floor (IP packet bytes); default DefaultMin. It is
	// probed first; if it does not pass, SmallSize is tried to tell an
	// unreachable target from a path MTU below Min.
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

// Payload returns the ICMP payload bytes of an IP packet of size bytes
// (what ping -s takes).
func Payload(size int) int { return size - HeaderBytes }

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
	if cfg.Min == 0 {
		cfg.Min = DefaultMin
	}
	if cfg.Retries == 0 {
		cfg.Retries = 3
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Second
	}
	if cfg.Min < SmallSize || cfg.Min > MaxSize {
		return cfg, fmt.Errorf("minimum size %d out of range %d..%d", cfg.Min, SmallSize, MaxSize)
	}
	if cfg.Max != 0 && (cfg.Max < cfg.Min || cfg.Max > MaxSize) {
		return cfg, fmt.Errorf("maximum size %d out of range %d..%d", cfg.Max, cfg.Min, MaxSize)
	}
	if cfg.Retries < 1 || cfg.Retries > 20 {
		return cfg, fmt.Errorf("retries %d out of range 1..20", cfg.Retries)
	}
	if cfg.Source != "" {
		a, err := netip.ParseAddr(cfg.Source)
		if err != nil || !a.Is4() {
			return cfg, fmt.Errorf("bad source address %q (IPv4 only)", cfg.Source)
		}
	}
	return cfg, nil
}
