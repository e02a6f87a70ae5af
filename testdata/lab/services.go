package lab

import (
	"context"
	"fmt"
	"net/netip"
	"time"
)

// StartDNS runs dnsmasq in host as an authoritative-looking resolver that
// answers every A query under zone with answer, listening only on listen
// (port 53). It returns once dnsmasq has bound its sockets. dnsmasq comes
// with the dnsmasq-base package.
func (t *Topology) StartDNS(ctx context.Context, host string, listen netip.Addr, zone string, answer netip.Addr) (*Proc, error) {
	p, err := t.Start(context.WithoutCancel(ctx), host, "dnsmasq", "--no-daemon", "--no-resolv", "--no-hosts",
		"--address=/"+zone+"/"+answer.String(), "--listen-address="+listen.String(), "--bind-interfaces",
		"--pid-file=", "--log-facility=-", "--user=root", "--group=root")
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := p.WaitFor(wctx, "started, version"); err != nil {
		_ = p.Stop()
		return nil, fmt.Errorf("dnsmasq on %s: %w", host, err)
	}
	return p, nil
}
