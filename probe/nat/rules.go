package nat

import (
	"fmt"
	"net/netip"
	"strings"
)

// Default NAT source-port range Linux uses when a rule gives none (ports below
// 1024 are mapped within 1-1023; everything else within 1024-65535).
const (
	DefaultPortMin = 1024
	DefaultPortMax = 65535
)

// Rule is one source-NAT statement (nftables masquerade/snat, iptables
// MASQUERADE/SNAT) with its ranges and flags.
type Rule struct {
	Source string // "nftables" or "iptables"
	Where  string // "inet t/post handle 3" or "POSTROUTING #2"
	Text   string // the rule as the tool prints it (nftables JSON is summarised)
	Kind   string // "masquerade" or "snat"
	// Protocols the rule is limited to ("tcp", "udp"); empty means all.
	Protocols []string
	// AddrMin-AddrMax is the snat address range (invalid for masquerade: the
	// outgoing interface's address).
	AddrMin, AddrMax netip.Addr
	// PortMin-PortMax is the port range; zero when the rule sets none (Linux
	// then uses DefaultPortMin-DefaultPortMax and prefers the original port).
	PortMin, PortMax uint16
	Random           bool // random: port offset randomised per mapping
	FullyRandom      bool // fully-random: every port chosen at random (PRNG)
	Persistent       bool // persistent: a client keeps its NAT address
}

// HasPorts reports whether the rule sets an explicit port range.
func (r Rule) HasPorts() bool { return r.PortMin != 0 }

// PortRange returns the effective port range of the rule.
func (r Rule) PortRange() (uint16, uint16) {
	if r.HasPorts() {
		return r.PortMin, r.PortMax
	}
	return DefaultPortMin, DefaultPortMax
}

// RangeSize is the number of ports in the effective range.
func (r Rule) RangeSize() int {
	lo, hi := r.PortRange()
	return int(hi) - int(lo) + 1
}

// AddrCount is the number of NAT addresses of an snat range (1 for
// masquerade or a single address).
func (r Rule) AddrCount() int {
	if !r.AddrMin.IsValid() || !r.AddrMax.IsValid() || r.AddrMin == r.AddrMax {
		return 1
	}
	if r.AddrMin.Is4() && r.AddrMax.Is4() {
		a, b := r.AddrMin.As4(), r.AddrMax.As4()
		lo := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
		hi := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		if hi >= lo {
			return int(hi-lo) + 1
		}
	}
	return 1
}

// Covers reports whether a mapping to NAT address a, protocol proto and NAT
// port p could come from this rule.
func (r Rule) Covers(a netip.Addr, proto uint8, p uint16) bool {
	if len(r.Protocols) > 0 {
		ok := false
		for _, name := range r.Protocols {
			if name == ProtoName(proto) {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	if r.AddrMin.IsValid() && a.IsValid() {
		max := r.AddrMax
		if !max.IsValid() {
			max = r.AddrMin
		}
		if a.Compare(r.AddrMin) < 0 || a.Compare(max) > 0 {
			return false
		}
	}
	lo, hi := r.PortRange()
	return p >= lo && p <= hi
}

// Flags returns the rule's flags as nft spells them ("fully-random,persistent").
func (r Rule) Flags() string {
	var f []string
	if r.Random {
		f = append(f, "random")
	}
	if r.FullyRandom {
		f = append(f, "fully-random")
	}
	if r.Persistent {
		f = append(f, "persistent")
	}
	return strings.Join(f, ",")
}

// RangeString renders the effective range as "20000-21975" (with
// "(default)" when the rule sets none).
func (r Rule) RangeString() string {
	lo, hi := r.PortRange()
	s := fmt.Sprintf("%d-%d", lo, hi)
	if !r.HasPorts() {
		s += " (default)"
	}
	return s
}

// ProtoName names an IP protocol number ("tcp", "udp", "icmp", or the number).
func ProtoName(p uint8) string {
	switch p {
	case 1:
		return "icmp"
	case 6:
		return "tcp"
	case 17:
		return "udp"
	case 58:
		return "icmpv6"
	case 132:
		return "sctp"
	case 33:
		return "dccp"
	}
	return fmt.Sprint(p)
}
