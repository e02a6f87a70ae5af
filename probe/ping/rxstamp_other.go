//go:build !linux

package ping

import (
	"errors"
	"net"
	"time"
)

// rxStamps is Linux-only (SO_TIMESTAMPNS on a second raw socket); elsewhere
// round trips are pro-bing's user-space times.
type rxStamps struct{}

func openRxStamps(net.IP, int) (*rxStamps, error) {
	return nil, errors.New("kernel receive timestamps are implemented on Linux only")
}

func (*rxStamps) take(int, time.Duration, time.Duration) (time.Duration, bool) { return 0, false }

// Close does nothing.
func (*rxStamps) Close() {}
