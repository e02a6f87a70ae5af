//go:build !linux

package mtu

import (
	"context"
	"errors"
)

// Run is only supported on Linux (it needs IP_PMTUDISC_PROBE and the
// socket error queue).
func Run(ctx context.Context, cfg Config) (*Result, error) {
	return nil, errors.New("mtu: path MTU probing is only supported on Linux")
}
