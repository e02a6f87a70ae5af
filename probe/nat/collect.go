package nat

import (
	"errors"
	"fmt"
)

// Options control a live collection.
type Options struct {
	// NetNS names a network namespace (as in /run/netns/NAME, `ip netns`)
	// to inspect instead of the current one.
	NetNS string
	// NoRules skips reading nftables and iptables rules.
	NoRules bool
}

// ErrUnsupported is returned by Collect on systems other than Linux.
var ErrUnsupported = errors.New("live NAT inspection reads conntrack over netlink and needs Linux; on other systems use capture mode (natcheck --outside FILE [--inside FILE])")

// PermissionError is a collection refused by the kernel for lack of
// privilege: reading conntrack needs CAP_NET_ADMIN.
type PermissionError struct {
	Op  string // what was refused, e.g. "conntrack dump"
	Err error
}

func (e *PermissionError) Error() string {
	return fmt.Sprintf("%s: %v: reading the conntrack table needs the CAP_NET_ADMIN capability: run as root (sudo vpndiag natcheck) or grant it (sudo setcap cap_net_admin+ep $(command -v vpndiag))", e.Op, e.Err)
}

func (e *PermissionError) Unwrap() error { return e.Err }
