//go:build !linux

package capture

import (
	"context"
	"fmt"
)

// OpenLive is only implemented on Linux; elsewhere it returns an error
// wrapping ErrLiveUnsupported. Capture there with tcpdump or Wireshark and
// give vpndiag the file.
func OpenLive(ctx context.Context, cfg LiveConfig) (Source, error) {
	return nil, fmt.Errorf("capture on %v: %w; capture with tcpdump or Wireshark and read the file instead", cfg.Interfaces, ErrLiveUnsupported)
}
