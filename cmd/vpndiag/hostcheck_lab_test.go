package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vpndiag/vpndiag/probe/hostcheck"
	"github.com/vpndiag/vpndiag/report"
	"github.com/vpndiag/vpndiag/testdata/lab"
)

// TestHostcheckNSHelper is not a test: the lab tests run this test binary
// inside a lab namespace with VDHC_ARGS (a JSON array of vpndiag
// arguments) set, so that vpndiag hostcheck reads that namespace, as
// `ip netns exec NS vpndiag hostcheck` does.
func TestHostcheckNSHelper(t *testing.T) {
	raw := os.Getenv("VDHC_ARGS")
	if raw == "" {
		return
	}
	var args []string
	if err := json.Unmarshal([]byte(raw), &args); err != nil {
		fmt.Fprintln(os.Stderr, "VDHC_ARGS:", err)
		os.Exit(100)
	}
	os.Exit(run(context.Background(), append([]string{"--host", "testhost"}, args...), os.Stdout, os.Stderr))
}

// hostcheckIn runs vpndiag hostcheck --format json ARGS in host's namespace
// and returns the report, stderr and the exit code.
func hostcheckIn(t *testing.T, topo *lab.Topology, host string, args ...string) (*report.Report, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	a, _ := json.Marshal(append([]string{"hostcheck", "--format", "json"}, args...))
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", topo.NS(host), os.Args[0], "-test.run=^TestHostcheckNSHelper$")
	cmd.Env = append(os.Environ(), "VDHC_ARGS="+string(a))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("hostcheck in %s: %v", host, err)
	}
	if code == 100 || len(out) == 0 {
		t.Fatalf("hostcheck in %s: exit %d, no report: %s", host, code, stderr.String())
	}
	var r report.Report
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("hostcheck in %s: %v\n%s", host, err, out)
	}
	return &r, stderr.String(), code
}

// hostcheckTopo: "bad" and "good" are both vpn-routers with two uplinks
// to "peer", a VXLAN tunnel and a WireGuard device (added by the test).
// bad is wrong on purpose: no forwarding, strict rp_filter on eth1, a
// stateful forward chain (policy drop, established/related accepted), a
// 20 s UDP stream timeout, VXLAN MTU 1500 over a 1500 underlay (no lower
// device: the kernel refuses a larger MTU than fits one), 51820 not
// reserved. good is right: forwarding, rp_filter strict on eth1 but all=2
// (the effective value is the maximum: loose), an accepting forward chain,
// VXLAN MTU 1450, 51820 reserved.
const hostcheckTopo = `
host bad
host good forward
host peer forward
link bad:eth0=198.18.90.1/24 peer:eth0=198.18.90.2/24
link bad:eth1=198.18.91.1/24 peer:eth1=198.18.91.2/24
link good:eth0=198.18.92.1/24 peer:eth2=198.18.92.2/24
link good:eth1=198.18.93.1/24 peer:eth3=198.18.93.2/24
route bad default via 198.18.90.2
route good default via 198.18.92.2
vxlan bad:vx0 vni 10 local 198.18.90.1 remote 198.18.90.2 mtu 1500 addr 198.18.94.1/24
vxlan good:vx1 vni 11 local 198.18.92.1 remote 198.18.92.2 dev eth0 mtu 1450 addr 198.18.95.1/24
exec bad sysctl -qw net.ipv4.conf.eth1.rp_filter=1
exec good sysctl -qw net.ipv4.conf.all.rp_filter=2 net.ipv4.conf.eth1.rp_filter=1
exec bad sysctl -qw net.netfilter.nf_conntrack_udp_timeout_stream=20
exec good sysctl -qw net.ipv4.ip_local_reserved_ports=51820
exec bad nft 'add table inet vdhc; add chain inet vdhc fwdchk { type filter hook forward priority 0; policy drop; }; add rule inet vdhc fwdchk ct state established,related accept'
exec good nft 'add table inet vdhc; add chain inet vdhc fwdchk { type filter hook forward priority 0; policy accept; }; add rule inet vdhc fwdchk iifname "eth0" counter accept'
`

// wgKey returns a new private key file and its public key.
func wgKey(t *testing.T, ctx context.Context, dir, name string) (string, string) {
	t.Helper()
	k, err := exec.CommandContext(ctx, "wg", "genkey").Output()
	if err != nil {
		t.Fatalf("wg genkey: %v", err)
	}
	path := filepath.Join(dir, name+".key")
	if err := os.WriteFile(path, k, 0o600); err != nil {
		t.Fatal(err)
	}
	c := exec.CommandContext(ctx, "wg", "pubkey")
	c.Stdin = strings.NewReader(string(k))
	p, err := c.Output()
	if err != nil {
		t.Fatalf("wg pubkey: %v", err)
	}
	return path, strings.TrimSpace(string(p))
}

// wgPeer is one peer given to wg set.
type wgPeer struct{ key, allowed, endpoint, keepalive string }

// startWG starts wireguard-go as dev in host's namespace (until Down) and
// configures it: listen port 51820, the peers, address, MTU, up, and the
// ip commands in extra.
func startWG(t *testing.T, topo *lab.Topology, host, dev, address string, mtu int, peers []wgPeer, extra ...[]string) {
	t.Helper()
	wgGo := wireguardGo(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	priv, _ := wgKey(t, ctx, t.TempDir(), dev)
	proc, err := topo.Start(t.Context(), host, wgGo, "-f", dev)
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join("/var/run/wireguard", dev+".sock")
	t.Cleanup(func() { os.Remove(sock) })
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("wireguard-go %s on %s: no control socket after 10 s: %s", dev, host, proc.Stderr())
		}
	}
	set := []string{"wg", "set", dev, "private-key", priv, "listen-port", "51820"}
	for _, p := range peers {
		set = append(set, "peer", p.key, "allowed-ips", p.allowed, "endpoint", p.endpoint)
		if p.keepalive != "" {
			set = append(set, "persistent-keepalive", p.keepalive)
		}
	}
	cmds := append([][]string{set,
		{"ip", "addr", "add", address, "dev", dev},
		{"ip", "link", "set", dev, "mtu", strconv.Itoa(mtu), "up"}}, extra...)
	for _, argv := range cmds {
		if out, err := topo.Exec(ctx, host, argv...); err != nil {
			t.Fatalf("%s on %s: %v %s", strings.Join(argv, " "), host, err, out)
		}
	}
}

// byID returns the findings with id.
func byID(r *report.Report, id string) []report.Finding {
	var out []report.Finding
	for _, f := range r.Findings {
		if f.ID == id {
			out = append(out, f)
		}
	}
	return out
}

// hostSysctl reads a sysctl of the test process's own namespace (the
// host's, for the read-only ones a lab namespace mirrors).
func hostSysctl(t *testing.T, name string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/" + strings.ReplaceAll(name, ".", "/"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// checkEv compares a finding's evidence with want (numbers as JSON gives them).
func checkEv(t *testing.T, f report.Finding, want map[string]any) {
	t.Helper()
	for k, v := range want {
		got, _ := json.Marshal(f.Evidence[k])
		w, _ := json.Marshal(v)
		if string(got) != string(w) {
			t.Errorf("%s evidence %s = %s, want %s (all: %v)", f.ID, k, got, w, f.Evidence)
		}
	}
}

// TestHostcheckLab runs vpndiag hostcheck in a namespace configured wrong
// on purpose and in one configured right, live and with wg-quick files, and
// checks every finding against what the test configured.
//
// Not per network namespace on this kernel (6.18): net.core.rmem_max,
// rmem_default, wmem_max, wmem_default, nf_conntrack_max and
// nf_conntrack_buckets are read-only mirrors of the host's values in a
// child namespace, so host.udp-buffers-small and the nf_conntrack_max /
// buckets part of host.conntrack-small cannot be made to fire here without
// changing the host: this test expects what the host's own values give
// (fire below the threshold, quiet above), and the snapshot tests
// (probe/hostcheck TestChecks) make them fire. wireguard.no-keepalive-behind-nat
// needs a private or CGNAT source address, which the lab (198.18.0.0/15
// only) never has: here it must stay quiet; TestChecks makes it fire.
func TestHostcheckLab(t *testing.T) {
	lab.Require(t, "wg")
	wireguardGo(t)
	topo := lab.New(t, hostcheckTopo)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	_, k1 := wgKey(t, ctx, dir, "p1")
	_, k2 := wgKey(t, ctx, dir, "p2")
	_, k3 := wgKey(t, ctx, dir, "p3")
	_, k4 := wgKey(t, ctx, dir, "p4")
	devBad, devGood := "hb"+topo.ID(), "hg"+topo.ID()
	// bad: overlapping AllowedIPs (/22 and a /24 in it), MTU 1500 over a
	// 1500 underlay, and peer 2's endpoint routed into the device itself.
	startWG(t, topo, "bad", devBad, "198.18.97.1/24", 1500, []wgPeer{
		{k1, "198.18.96.0/22", "198.18.90.2:51820", ""},
		{k2, "198.18.96.0/24", "198.18.91.2:51820", ""},
	}, []string{"ip", "route", "add", "198.18.91.2/32", "dev", devBad})
	// good: disjoint AllowedIPs, MTU 1420, endpoints via the uplinks,
	// and a route for Table = off below.
	startWG(t, topo, "good", devGood, "198.18.97.2/24", 1420, []wgPeer{
		{k3, "198.18.98.0/24", "198.18.92.2:51820", "25"},
		{k4, "198.18.99.0/24", "198.18.93.2:51820", ""},
	}, []string{"ip", "route", "add", "198.18.98.0/24", "dev", devGood}, []string{"ip", "route", "add", "198.18.99.0/24", "dev", devGood})

	// The host values a lab namespace cannot change.
	bufs := map[string]int64{"net.core.rmem_max": hostcheck.MinSocketBufferMax, "net.core.wmem_max": hostcheck.MinSocketBufferMax,
		"net.core.rmem_default": hostcheck.MinSocketBufferDefault, "net.core.wmem_default": hostcheck.MinSocketBufferDefault}
	var wantBufs []string
	for name, min := range bufs {
		if hostSysctl(t, name) < min {
			wantBufs = append(wantBufs, name)
		}
	}
	slices.Sort(wantBufs)
	ctMax, ctBuckets := hostSysctl(t, "net.netfilter.nf_conntrack_max"), hostSysctl(t, "net.netfilter.nf_conntrack_buckets")
	wantCT := []string{"net.netfilter.nf_conntrack_udp_timeout_stream"} // set in bad
	if ctMax < hostcheck.MinConntrackMax {
		wantCT = append(wantCT, "net.netfilter.nf_conntrack_max")
	}
	if ctMax > hostcheck.MaxConntrackPerBucket*ctBuckets {
		wantCT = append(wantCT, "net.netfilter.nf_conntrack_buckets")
	}
	slices.Sort(wantCT)
	t.Logf("host: %v below their thresholds; nf_conntrack_max %d, buckets %d", wantBufs, ctMax, ctBuckets)

	sysctlsOf := func(fs []report.Finding) []string {
		var out []string
		for _, f := range fs {
			out = append(out, f.Evidence["sysctl"].(string))
		}
		slices.Sort(out)
		return out
	}

	t.Run("bad", func(t *testing.T) {
		r, stderr, code := hostcheckIn(t, topo, "bad")
		for _, f := range r.Findings {
			t.Logf("%s %s: %s", f.Severity, f.ID, f.Summary)
		}
		if code != exitFindings {
			t.Errorf("exit %d (%s), want 1", code, stderr)
		}
		if d, _ := r.Data["hostcheck"].(map[string]any); d["role"] != "vpn-router" || d["role_inferred"] != true {
			t.Errorf("data %v, want the inferred role vpn-router (a WireGuard device)", r.Data["hostcheck"])
		}
		// A warning, not an error: the role is inferred (an error with --role, in the unit tests).
		if fs := byID(r, hostcheck.IDForwardingOff); len(fs) != 1 || fs[0].Severity != report.SeverityWarning {
			t.Errorf("forwarding-off: %+v, want one warning", fs)
		} else {
			checkEv(t, fs[0], map[string]any{"sysctl": "net.ipv4.ip_forward", "value": 0, "role": "vpn-router"})
		}
		if fs := byID(r, hostcheck.IDRPFilterStrict); len(fs) != 1 {
			t.Errorf("rp-filter-strict: %+v, want one, on eth1", fs)
		} else {
			checkEv(t, fs[0], map[string]any{"interface": "eth1", "sysctl": "net.ipv4.conf.eth1.rp_filter", "value": 1, "all": 0, "effective": 1})
			if !strings.Contains(fs[0].Remedy, "sysctl -w net.ipv4.conf.eth1.rp_filter=2") {
				t.Errorf("remedy %q", fs[0].Remedy)
			}
		}
		if fs := byID(r, hostcheck.IDStatefulForwardDrop); len(fs) != 1 {
			t.Errorf("stateful-forward-drop: %+v", fs)
		} else {
			checkEv(t, fs[0], map[string]any{"source": "nftables", "chain": "inet vdhc fwdchk", "policy": "drop"})
			if rule, _ := fs[0].Evidence["rule"].(string); !strings.HasPrefix(rule, "ct state established,related accept") {
				t.Errorf("rule %q", rule)
			}
		}
		if fs := byID(r, hostcheck.IDVPNPortEphemeral); len(fs) != 1 {
			t.Errorf("vpn-port-ephemeral: %+v", fs)
		} else {
			checkEv(t, fs[0], map[string]any{"port": 51820, "port_range_min": 32768, "port_range_max": 60999, "reserved_ports": ""})
			if !strings.Contains(fs[0].Remedy, "sysctl -w net.ipv4.ip_local_reserved_ports=51820") {
				t.Errorf("remedy %q", fs[0].Remedy)
			}
		}
		if got := sysctlsOf(byID(r, hostcheck.IDUDPBuffersSmall)); !slices.Equal(got, wantBufs) {
			t.Errorf("udp-buffers-small for %v, want %v (the host's values)", got, wantBufs)
		}
		ct := byID(r, hostcheck.IDConntrackSmall)
		if got := sysctlsOf(ct); !slices.Equal(got, wantCT) {
			t.Errorf("conntrack-small for %v, want %v", got, wantCT)
		}
		for _, f := range ct {
			if f.Evidence["sysctl"] == "net.netfilter.nf_conntrack_udp_timeout_stream" {
				checkEv(t, f, map[string]any{"value": 20, "threshold": 30})
			}
		}
		mtu := byID(r, hostcheck.IDTunnelMTU)
		if len(mtu) != 2 {
			t.Errorf("tunnel-mtu: %+v, want vx0 and %s", mtu, devBad)
		}
		for _, f := range mtu {
			switch f.Evidence["interface"] {
			case "vx0":
				checkEv(t, f, map[string]any{"kind": "vxlan", "mtu": 1500, "overhead": 50, "underlay": "eth0", "underlay_mtu": 1500, "max_mtu": 1450})
			case devBad:
				checkEv(t, f, map[string]any{"kind": "wireguard", "mtu": 1500, "overhead": 60, "underlay": "eth0", "underlay_mtu": 1500, "max_mtu": 1440})
			default:
				t.Errorf("tunnel-mtu on %v", f.Evidence["interface"])
			}
		}
		if fs := byID(r, hostcheck.IDAllowedIPsOverlap); len(fs) != 1 {
			t.Errorf("allowed-ips-overlap: %+v", fs)
		} else {
			ev := fs[0].Evidence
			got := []string{ev["prefix_a"].(string), ev["prefix_b"].(string)}
			slices.Sort(got)
			if !slices.Equal(got, []string{"198.18.96.0/22", "198.18.96.0/24"}) || ev["interface"] != devBad {
				t.Errorf("overlap evidence %v", ev)
			}
			peers := []string{ev["peer_a"].(string), ev["peer_b"].(string)}
			if !slices.Contains(peers, hostcheck.ShortKey(k1)) || !slices.Contains(peers, hostcheck.ShortKey(k2)) {
				t.Errorf("overlap peers %v, want %s and %s", peers, hostcheck.ShortKey(k1), hostcheck.ShortKey(k2))
			}
		}
		if fs := byID(r, hostcheck.IDEndpointViaTunnel); len(fs) != 1 || fs[0].Severity != report.SeverityError {
			t.Errorf("endpoint-via-tunnel: %+v", fs)
		} else {
			checkEv(t, fs[0], map[string]any{"interface": devBad, "endpoint": "198.18.91.2", "route_device": devBad, "peer": hostcheck.ShortKey(k2)})
		}
		for _, id := range []string{hostcheck.IDNoKeepaliveNAT, hostcheck.IDTableOffNoRoutes} {
			if fs := byID(r, id); len(fs) != 0 {
				t.Errorf("%s raised in the lab: %+v", id, fs)
			}
		}
		if !slices.Contains(r.Checks, hostcheck.IDTunnelMTU) || len(r.Checks) != len(hostcheck.CheckIDs) {
			t.Errorf("checks %v", r.Checks)
		}
	})

	t.Run("good", func(t *testing.T) {
		r, stderr, code := hostcheckIn(t, topo, "good")
		var ids []string
		for _, f := range r.Findings {
			t.Logf("%s %s: %s", f.Severity, f.ID, f.Summary)
			ids = append(ids, f.ID)
		}
		want := slices.Repeat([]string{hostcheck.IDUDPBuffersSmall}, len(wantBufs))
		for _, s := range wantCT {
			if s != "net.netfilter.nf_conntrack_udp_timeout_stream" {
				want = append(want, hostcheck.IDConntrackSmall)
			}
		}
		slices.Sort(ids)
		slices.Sort(want)
		if !slices.Equal(ids, want) {
			t.Errorf("findings %v, want %v (only what the host's own read-only values give)", ids, want)
		}
		if len(want) == 0 && code != exitOK {
			t.Errorf("exit %d (%s), want 0", code, stderr)
		}
		if d, _ := r.Data["hostcheck"].(map[string]any); d["role"] != "vpn-router" {
			t.Errorf("data %v", r.Data["hostcheck"])
		}
	})

	// wg-quick files: the file stands in for the live device of its name.
	writeConf := func(name, text string) string {
		p := filepath.Join(dir, name+".conf")
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const secret = "cGFzc3dvcmRwYXNzd29yZHBhc3N3b3JkcGFzc3dvcmQ="
	badConf := writeConf(devBad, fmt.Sprintf(`[Interface]
PrivateKey = %s
ListenPort = 51820
Table = off

[Peer]
PublicKey = %s
AllowedIPs = 198.18.100.0/24
Endpoint = 198.18.90.2:51820

[Peer]
PublicKey = %s
AllowedIPs = 198.18.101.0/24, 198.18.100.0/25
Endpoint = 198.18.91.2:51820
PersistentKeepalive = 25
`, secret, k1, k2))
	goodConf := writeConf(devGood, fmt.Sprintf(`[Interface]
PrivateKey = %s
ListenPort = 51820
Table = off
MTU = 1420

[Peer]
PublicKey = %s
AllowedIPs = 198.18.98.0/24
Endpoint = 198.18.92.2:51820
PersistentKeepalive = 25
`, secret, k3))

	t.Run("bad-config", func(t *testing.T) {
		r, _, code := hostcheckIn(t, topo, "bad", "--wg", badConf)
		if code != exitFindings {
			t.Errorf("exit %d", code)
		}
		b, _ := json.Marshal(r)
		if strings.Contains(string(b), secret) {
			t.Error("the report contains the PrivateKey")
		}
		if fs := byID(r, hostcheck.IDTableOffNoRoutes); len(fs) != 1 {
			t.Errorf("table-off-no-routes: %+v", fs)
		} else {
			checkEv(t, fs[0], map[string]any{"interface": devBad, "line": badConf + ":4",
				"unrouted": []string{"198.18.100.0/24", "198.18.101.0/24", "198.18.100.0/25"}})
		}
		if fs := byID(r, hostcheck.IDAllowedIPsOverlap); len(fs) != 1 {
			t.Errorf("allowed-ips-overlap: %+v", fs)
		} else {
			checkEv(t, fs[0], map[string]any{"interface": devBad, "peer_a": hostcheck.ShortKey(k1), "prefix_a": "198.18.100.0/24", "line_a": badConf + ":8",
				"peer_b": hostcheck.ShortKey(k2), "prefix_b": "198.18.100.0/25", "line_b": badConf + ":13"})
		}
		if fs := byID(r, hostcheck.IDEndpointViaTunnel); len(fs) != 1 {
			t.Errorf("endpoint-via-tunnel: %+v", fs)
		} else {
			checkEv(t, fs[0], map[string]any{"endpoint": "198.18.91.2", "route_device": devBad, "line": badConf + ":14"})
		}
		if fs := byID(r, hostcheck.IDVPNPortEphemeral); len(fs) != 1 || fs[0].Evidence["port"] != 51820.0 {
			t.Errorf("vpn-port-ephemeral: %+v", fs)
		}
	})

	t.Run("good-config", func(t *testing.T) {
		r, _, _ := hostcheckIn(t, topo, "good", "--wg", goodConf)
		for _, id := range []string{hostcheck.IDTableOffNoRoutes, hostcheck.IDAllowedIPsOverlap, hostcheck.IDEndpointViaTunnel,
			hostcheck.IDTunnelMTU, hostcheck.IDVPNPortEphemeral, hostcheck.IDNoKeepaliveNAT} {
			if fs := byID(r, id); len(fs) != 0 {
				t.Errorf("%s: %+v", id, fs)
			}
		}
		if len(r.Inputs) != 2 || r.Inputs[1].Source != goodConf || r.Inputs[1].Format != "wg-quick" {
			t.Errorf("inputs %+v", r.Inputs)
		}
	})

	t.Run("client-role", func(t *testing.T) {
		// The same wrong namespace judged as a client: forwarding, stateful
		// forwarding and conntrack sizing are not its business.
		r, _, _ := hostcheckIn(t, topo, "bad", "--role", "client")
		for _, id := range []string{hostcheck.IDForwardingOff, hostcheck.IDStatefulForwardDrop, hostcheck.IDConntrackSmall} {
			if fs := byID(r, id); len(fs) != 0 {
				t.Errorf("%s for a client: %+v", id, fs)
			}
		}
		if len(byID(r, hostcheck.IDTunnelMTU)) != 2 {
			t.Errorf("tunnel-mtu should not depend on the role")
		}
	})
}
