package main

// The analyzers that `vpndiag analyze` runs register themselves in their
// packages' init functions; importing a package here makes it available.
import (
	_ "github.com/vpndiag/vpndiag/analyze" // summary
	_ "github.com/vpndiag/vpndiag/analyze/arp"
	_ "github.com/vpndiag/vpndiag/analyze/bgp"
	_ "github.com/vpndiag/vpndiag/analyze/dns"
	_ "github.com/vpndiag/vpndiag/analyze/flood"
	_ "github.com/vpndiag/vpndiag/analyze/flow"
	_ "github.com/vpndiag/vpndiag/analyze/ipsec"
	_ "github.com/vpndiag/vpndiag/analyze/mtu"
	_ "github.com/vpndiag/vpndiag/analyze/nat"
	_ "github.com/vpndiag/vpndiag/analyze/tcp"
	_ "github.com/vpndiag/vpndiag/analyze/wireguard"
)
