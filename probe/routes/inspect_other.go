//go:build !linux

package routes

import "context"

// Options select what Inspect reads.
type Options struct {
	// NetNS is a network namespace name (ip netns) to inspect instead of the
	// current one.
	NetNS string
	// NoWireGuard skips WireGuard device enumeration.
	NoWireGuard bool
}

// Inspect is only available on Linux.
func Inspect(ctx context.Context, o Options) (*Snapshot, error) { return nil, ErrUnsupported }
