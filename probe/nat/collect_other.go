//go:build !linux

package nat

import "context"

// Collect reads a snapshot of the NAT state. It needs Linux.
func Collect(ctx context.Context, opt Options) (*Snapshot, error) { return nil, ErrUnsupported }
