// Package nat inspects a live Linux NAT gateway: the conntrack table and its
// per-CPU statistics (over netlink), the source-NAT rules of nftables and
// iptables with their address and port ranges, and the sysctls that size the
// NAT. It groups source-NAT mappings into port pools — one per NAT address,
// protocol and destination, because Linux can reuse a NAT port towards
// different destinations — and turns a snapshot (or two, for rates) into
// findings: nat.port-exhaustion, nat.conntrack-full and nat.range-small.
//
// Collection is Linux-only (Collect returns ErrUnsupported elsewhere); the
// parsers, pool accounting, findings and metrics are portable and tested with
// fixtures.
package nat
