package main

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vpndiag/vpndiag/probe/hostcheck"
	"github.com/vpndiag/vpndiag/report"
)

// TestHostcheckUsage: a bad role or an unreadable or malformed wg-quick
// file is exit 2 with a message naming the flag or file:line; nothing
// panics and no report is written.
func TestHostcheckUsage(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "wg0.conf")
	if err := os.WriteFile(bad, []byte("[Interface]\nListenPort = 51820\n\n[Peer]\nPublicKey = x\nAllowedIPs = 198.18.0.0/33\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"hostcheck", "--role", "router"}, `--role: unknown role "router"`},
		{[]string{"hostcheck", "--wg", bad}, "--wg: " + bad + ":6: AllowedIPs"},
		{[]string{"hostcheck", "--wg", filepath.Join(dir, "nope.conf")}, "nope.conf: cannot read WireGuard configuration"},
		{[]string{"hostcheck", "extra"}, "unknown command"},
	} {
		out, stderr, code := vpndiag(t, tc.args...)
		if code != exitUsage || out != "" || !strings.Contains(stderr, tc.msg) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 2 and %q", tc.args, code, out, stderr, tc.msg)
		}
	}
}

// goldenHost is a fixed snapshot of a vpn-router with one of each
// problem (one finding per check), for the golden reports.
func goldenHost() *hostcheck.Host {
	p := netip.MustParsePrefix
	a := netip.MustParseAddr
	return &hostcheck.Host{
		Sysctls: map[string]string{
			"net.ipv4.ip_forward": "0", "net.ipv4.conf.all.rp_filter": "0", "net.ipv4.conf.eth0.rp_filter": "0", "net.ipv4.conf.eth1.rp_filter": "1",
			"net.ipv4.ip_local_port_range": "32768 60999", "net.ipv4.ip_local_reserved_ports": "",
			"net.core.rmem_max": "212992", "net.core.wmem_max": "4194304", "net.core.rmem_default": "212992", "net.core.wmem_default": "212992",
			"net.netfilter.nf_conntrack_max": "65536", "net.netfilter.nf_conntrack_buckets": "16384",
			"net.netfilter.nf_conntrack_udp_timeout": "30", "net.netfilter.nf_conntrack_udp_timeout_stream": "120",
		},
		Interfaces: []hostcheck.Interface{
			{Name: "lo", Kind: "device", MTU: 65536, Up: true},
			{Name: "eth0", Kind: "veth", MTU: 1500, Up: true},
			{Name: "eth1", Kind: "veth", MTU: 1500, Up: true},
			{Name: "wg0", Kind: "wireguard", MTU: 1500, Up: true, Underlay: "eth0", UnderlayMTU: 1500, Remote: a("198.18.41.2")},
		},
		DefaultPaths: 2,
		Listeners:    []hostcheck.Listener{{Proto: "udp", Addr: netip.IPv4Unspecified(), Port: 51820}},
		Forward: []hostcheck.ForwardChain{{Source: "nftables", Name: "inet filter forward", Policy: "drop",
			Rules: []hostcheck.FirewallRule{{Text: "ct state established,related accept (handle 2)", CtStates: []string{"established", "related"}, Verdict: "accept"}}}},
		WireGuard: []hostcheck.WGDevice{{Name: "wg0", File: "/etc/wireguard/wg0.conf", ListenPort: hostcheck.Value[int]{V: 51820, Line: 3, Set: true},
			Table: hostcheck.Value[string]{V: "off", Line: 4, Set: true},
			Peers: []hostcheck.WGPeer{
				{PublicKey: hostcheck.Value[string]{V: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", Line: 7, Set: true}, Line: 6,
					AllowedIPs:   []hostcheck.Value[netip.Prefix]{{V: p("198.18.96.0/22"), Line: 8, Set: true}},
					Endpoint:     hostcheck.Value[string]{V: "198.18.41.2:51820", Line: 9, Set: true},
					EndpointAddr: a("198.18.41.2")},
				{PublicKey: hostcheck.Value[string]{V: "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB=", Line: 12, Set: true}, Line: 11,
					AllowedIPs:   []hostcheck.Value[netip.Prefix]{{V: p("198.18.96.0/24"), Line: 13, Set: true}},
					Endpoint:     hostcheck.Value[string]{V: "198.18.43.2:51820", Line: 14, Set: true},
					EndpointAddr: a("198.18.43.2"), Keepalive: hostcheck.Value[int]{V: 25, Line: 15, Set: true}},
			}}},
		EndpointRoutes: map[netip.Addr]hostcheck.EndpointRoute{
			a("198.18.41.2"): {Dev: "eth0", Src: a("192.168.7.2")},
			a("198.18.43.2"): {Dev: "wg0", Src: a("198.18.200.1")},
		},
		Notes: []string{"nftables rules not read: nft -j list ruleset: exit status 1: Operation not permitted (listing the ruleset needs root or CAP_NET_ADMIN)"},
	}
}

// TestHostcheckGolden renders the report of a fixed snapshot, on which every
// check fires once, as text, JSON and Markdown against
// testdata/golden/hostcheck-snapshot.*.
func TestHostcheckGolden(t *testing.T) {
	for _, f := range []report.Format{report.FormatText, report.FormatJSON, report.FormatMarkdown} {
		r := report.New("hostcheck", "X", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
		r.Title, r.Host = "Gateway host lint", "testhost"
		r.Inputs = append(r.Inputs, report.Input{Name: "localhost", Source: "live", Format: "live"},
			report.Input{Name: "wg0", Source: "/etc/wireguard/wg0.conf", Format: "wg-quick"})
		hostcheck.Fill(r, goldenHost(), hostcheck.Config{})
		r.Sort()
		var b bytes.Buffer
		if err := report.Render(&b, r, f); err != nil {
			t.Fatal(err)
		}
		got := b.String()
		var ids []string
		for _, fd := range r.Findings {
			ids = append(ids, fd.ID)
		}
		if want := len(hostcheck.CheckIDs); len(ids) != want {
			t.Errorf("%d findings %v, want %d", len(ids), ids, want)
		}
		golden(t, "hostcheck-snapshot."+string(f), got)
	}
}

// TestHostcheckUnprivileged runs hostcheck as user nobody: what needs
// CAP_NET_ADMIN (the nftables ruleset) is a note in the report, not a
// failure, and the sysctls are still read.
func TestHostcheckUnprivileged(t *testing.T) {
	cmd := asNobody(t, "TestHostcheckNSHelper")
	cmd.Env = append(os.Environ(), `VDHC_ARGS=["hostcheck","--format","json","--role","client"]`)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	if err != nil && ee.ExitCode() != exitFindings {
		t.Fatalf("exit %d: %s", ee.ExitCode(), stderr.String())
	}
	s := string(out)
	if !strings.Contains(s, `"name": "hostcheck_notes"`) || !strings.Contains(s, "nftables rules not read") || !strings.Contains(s, "CAP_NET_ADMIN") {
		t.Errorf("report without the nftables note:\n%s", s)
	}
	if !strings.Contains(s, `"net.ipv4.ip_local_port_range"`) {
		t.Errorf("sysctls not read as nobody:\n%s", s)
	}
}
