// Command vpndiag diagnoses VPN and network incidents: where packets are lost
// across hops, whether a NAT's port pool is exhausted, what a tunnel costs
// over its underlay, and whether a route is breaking a tunnel.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
