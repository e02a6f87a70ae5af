//go:build !linux

package hostcheck

import "context"

// Gather is Linux only.
func Gather(ctx context.Context, o Options) (*Host, error) { return nil, ErrUnsupported }
