package hostcheck

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vpndiag/vpndiag/report"
)

// baseHost is a correctly configured vpn-router: forwarding on, loose
// rp_filter, 51820 reserved, large buffers and conntrack, a WireGuard
// tunnel whose MTU fits its underlay, one peer with keepalive.
func baseHost() Host {
	return Host{
		Sysctls: map[string]string{
			"net.ipv4.ip_forward": "1", "net.ipv4.conf.all.rp_filter": "0", "net.ipv4.conf.eth0.rp_filter": "2",
			"net.ipv4.conf.wg0.rp_filter": "0", "net.ipv4.conf.lo.rp_filter": "1",
			"net.ipv4.ip_local_port_range": "32768 60999", "net.ipv4.ip_local_reserved_ports": "51820",
			"net.core.rmem_max": "4194304", "net.core.wmem_max": "4194304", "net.core.rmem_default": "212992", "net.core.wmem_default": "212992",
			"net.netfilter.nf_conntrack_max": "262144", "net.netfilter.nf_conntrack_buckets": "65536",
			"net.netfilter.nf_conntrack_udp_timeout": "30", "net.netfilter.nf_conntrack_udp_timeout_stream": "120",
		},
		Interfaces: []Interface{
			{Name: "lo", Kind: "device", MTU: 65536},
			{Name: "eth0", Kind: "veth", MTU: 1500},
			{Name: "wg0", Kind: "wireguard", MTU: 1420, Underlay: "eth0", UnderlayMTU: 1500, Remote: netip.MustParseAddr("198.18.41.2")},
		},
		Routes:       []Route{{Dst: netip.MustParsePrefix("198.18.42.0/24"), Dev: "wg0", Table: 254}},
		DefaultPaths: 1,
		Listeners:    []Listener{{"udp", netip.IPv4Unspecified(), 51820}},
		Forward: []ForwardChain{{Source: "nftables", Name: "inet filter forward", Policy: "accept",
			Rules: []FirewallRule{{Text: "iifname eth0 accept", Verdict: "accept", Other: true}}}},
		WireGuard: []WGDevice{{Name: "wg0", ListenPort: Value[int]{V: 51820, Set: true}, Peers: []WGPeer{
			{PublicKey: Value[string]{V: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", Set: true},
				AllowedIPs:   []Value[netip.Prefix]{{V: netip.MustParsePrefix("198.18.42.0/24"), Set: true}},
				EndpointAddr: netip.MustParseAddr("198.18.41.2"), Endpoint: Value[string]{V: "198.18.41.2:51820", Set: true},
				Keepalive: Value[int]{V: 25, Set: true}},
		}}},
		EndpointRoutes: map[netip.Addr]EndpointRoute{netip.MustParseAddr("198.18.41.2"): {Dev: "eth0", Src: netip.MustParseAddr("198.18.41.1")}},
	}
}

func TestCheckQuietOnGoodHost(t *testing.T) {
	for _, role := range []Role{RoleAuto, RoleVPNRouter, RoleNATGateway, RoleClient} {
		if fs := Check(baseHost(), Config{Role: role}); len(fs) != 0 {
			b, _ := json.MarshalIndent(fs, "", " ")
			t.Errorf("role %q: findings on a good host:\n%s", role, b)
		}
	}
}

// TestChecks breaks one thing per case and expects exactly the findings
// (ids and evidence) it causes; the quiet cases change the role or the
// circumstance that makes the setting wrong.
func TestChecks(t *testing.T) {
	set := func(k, v string) func(*Host) { return func(h *Host) { h.Sysctls[k] = v } }
	peer2 := func(pfx string, line int) func(*Host) {
		return func(h *Host) {
			d := &h.WireGuard[0]
			d.File = "/etc/wireguard/wg0.conf"
			d.Peers[0].AllowedIPs[0].Line = 9
			d.Peers = append(d.Peers, WGPeer{PublicKey: Value[string]{V: "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB=", Set: true},
				AllowedIPs: []Value[netip.Prefix]{{V: netip.MustParsePrefix(pfx), Line: line, Set: true}}, Keepalive: Value[int]{V: 25, Set: true}})
		}
	}
	for _, tc := range []struct {
		name     string
		role     Role
		change   func(*Host)
		want     []string       // finding ids, in order
		evidence map[string]any // of the first finding
		remedy   string         // in the first finding's remedy
	}{
		{"forwarding off, router", RoleVPNRouter, set("net.ipv4.ip_forward", "0"), []string{IDForwardingOff},
			map[string]any{"sysctl": "net.ipv4.ip_forward", "value": int64(0)}, "sysctl -w net.ipv4.ip_forward=1"},
		{"forwarding off, nat-gateway", RoleNATGateway, set("net.ipv4.ip_forward", "0"), []string{IDForwardingOff}, nil, "`net.ipv4.ip_forward = 1`"},
		{"forwarding off, client", RoleClient, set("net.ipv4.ip_forward", "0"), nil, nil, ""},
		{"forwarding off, role inferred from the WireGuard device", RoleAuto, set("net.ipv4.ip_forward", "0"), []string{IDForwardingOff},
			map[string]any{"role": "vpn-router"}, "--role client"},
		{"rp_filter strict on eth0", RoleVPNRouter, set("net.ipv4.conf.eth0.rp_filter", "1"), []string{IDRPFilterStrict},
			map[string]any{"interface": "eth0", "sysctl": "net.ipv4.conf.eth0.rp_filter", "value": int64(1), "effective": 1}, "sysctl -w net.ipv4.conf.eth0.rp_filter=2"},
		{"rp_filter all=1 makes every interface strict", RoleVPNRouter, func(h *Host) {
			h.Sysctls["net.ipv4.conf.all.rp_filter"] = "1"
			h.Sysctls["net.ipv4.conf.eth0.rp_filter"] = "0"
		}, []string{IDRPFilterStrict, IDRPFilterStrict}, map[string]any{"interface": "eth0", "all": int64(1)}, "`net.ipv4.conf.eth0.rp_filter = 2`"},
		{"rp_filter strict, nat-gateway with one uplink", RoleNATGateway, set("net.ipv4.conf.eth0.rp_filter", "1"), nil, nil, ""},
		{"rp_filter strict, nat-gateway with two uplinks", RoleNATGateway, func(h *Host) {
			h.Sysctls["net.ipv4.conf.eth0.rp_filter"] = "1"
			h.DefaultPaths = 2
		}, []string{IDRPFilterStrict}, map[string]any{"default_paths": 2}, ""},
		{"rp_filter on a dotted vlan name", RoleVPNRouter, func(h *Host) {
			h.Interfaces = append(h.Interfaces, Interface{Name: "eth0.7", Kind: "vlan", MTU: 1500})
			h.Sysctls["net.ipv4.conf.eth0/7.rp_filter"] = "1"
		}, []string{IDRPFilterStrict}, map[string]any{"interface": "eth0.7", "sysctl": "net.ipv4.conf.eth0/7.rp_filter"}, "net.ipv4.conf.eth0/7.rp_filter=2"},
		{"stateful forward: drop policy + established accept", RoleVPNRouter, func(h *Host) {
			h.Forward[0].Policy = "drop"
			h.Forward[0].Rules = []FirewallRule{{Text: "ct state established,related accept (handle 2)", CtStates: []string{"established", "related"}, Verdict: "accept"}}
		}, []string{IDStatefulForwardDrop}, map[string]any{"chain": "inet filter forward", "policy": "drop", "rule": "ct state established,related accept (handle 2) with policy drop"}, "notrack"},
		{"stateful forward: invalid drop", RoleNATGateway, func(h *Host) {
			h.Forward[0].Rules = append(h.Forward[0].Rules, FirewallRule{Text: "-A FORWARD -m conntrack --ctstate INVALID -j DROP", CtStates: []string{"invalid"}, Verdict: "drop"})
			h.Forward[0].Source = "iptables-legacy"
		}, []string{IDStatefulForwardDrop}, map[string]any{"source": "iptables-legacy", "rule": "-A FORWARD -m conntrack --ctstate INVALID -j DROP"}, "iptables -t raw -A PREROUTING"},
		{"stateful forward on a client", RoleClient, func(h *Host) {
			h.Forward[0].Policy = "drop"
			h.Forward[0].Rules = []FirewallRule{{CtStates: []string{"established"}, Verdict: "accept"}}
		}, nil, nil, ""},
		{"stateful accept with policy accept", RoleVPNRouter, func(h *Host) {
			h.Forward[0].Rules = []FirewallRule{{CtStates: []string{"established"}, Verdict: "accept"}}
		}, nil, nil, ""},
		{"VPN port not reserved", RoleVPNRouter, set("net.ipv4.ip_local_reserved_ports", "8080"), []string{IDVPNPortEphemeral},
			map[string]any{"port": 51820, "port_range_min": 32768, "port_range_max": 60999, "reserved_ports": "8080"}, "sysctl -w net.ipv4.ip_local_reserved_ports=8080,51820"},
		{"VPN port reserved in a span", RoleVPNRouter, set("net.ipv4.ip_local_reserved_ports", "51000-52000"), nil, nil, ""},
		{"VPN port outside the range", RoleVPNRouter, func(h *Host) {
			h.Sysctls["net.ipv4.ip_local_reserved_ports"] = ""
			h.Sysctls["net.ipv4.ip_local_port_range"] = "32768 50000"
		}, nil, nil, ""},
		{"IKE port in a widened range", RoleVPNRouter, func(h *Host) {
			h.Sysctls["net.ipv4.ip_local_port_range"] = "1024 65000"
			h.Listeners = append(h.Listeners, Listener{"udp", netip.IPv4Unspecified(), 4500}, Listener{"tcp", netip.IPv4Unspecified(), 4500})
		}, []string{IDVPNPortEphemeral}, map[string]any{"port": 4500, "what": "IKE NAT-T (udp socket)"}, "ip_local_reserved_ports=51820,4500"},
		{"config ListenPort not reserved", RoleVPNRouter, func(h *Host) {
			h.Sysctls["net.ipv4.ip_local_reserved_ports"] = ""
			h.Listeners = nil
			h.WireGuard[0].File, h.WireGuard[0].ListenPort = "/etc/wireguard/wg0.conf", Value[int]{V: 40000, Line: 4, Set: true}
		}, []string{IDVPNPortEphemeral}, map[string]any{"port": 40000, "source": "/etc/wireguard/wg0.conf:4"}, "`net.ipv4.ip_local_reserved_ports = 40000`"},
		{"rmem_max small", RoleVPNRouter, set("net.core.rmem_max", "212992"), []string{IDUDPBuffersSmall},
			map[string]any{"sysctl": "net.core.rmem_max", "value": int64(212992), "threshold": int64(4194304)}, "sysctl -w net.core.rmem_max=4194304"},
		{"rmem_default lowered", RoleVPNRouter, set("net.core.rmem_default", "65536"), []string{IDUDPBuffersSmall}, map[string]any{"sysctl": "net.core.rmem_default", "threshold": int64(212992)}, ""},
		{"rmem_max small, client without tunnel", RoleClient, func(h *Host) {
			h.Sysctls["net.core.rmem_max"] = "212992"
			h.WireGuard, h.Listeners = nil, nil
			h.Interfaces = h.Interfaces[:2]
		}, nil, nil, ""},
		{"conntrack max small", RoleNATGateway, set("net.netfilter.nf_conntrack_max", "65536"), []string{IDConntrackSmall},
			map[string]any{"sysctl": "net.netfilter.nf_conntrack_max", "value": int64(65536), "threshold": int64(131072)}, "nf_conntrack_max=131072"},
		{"conntrack buckets few", RoleVPNRouter, set("net.netfilter.nf_conntrack_buckets", "16384"), []string{IDConntrackSmall},
			map[string]any{"sysctl": "net.netfilter.nf_conntrack_buckets", "value": int64(16384), "threshold": int64(32768)}, ""},
		{"udp stream timeout short", RoleVPNRouter, set("net.netfilter.nf_conntrack_udp_timeout_stream", "20"), []string{IDConntrackSmall},
			map[string]any{"sysctl": "net.netfilter.nf_conntrack_udp_timeout_stream", "value": int64(20), "threshold": int64(30)}, ""},
		{"conntrack small on a client", RoleClient, set("net.netfilter.nf_conntrack_max", "4096"), nil, nil, ""},
		{"WireGuard MTU too large (IPv4)", RoleClient, func(h *Host) { h.Interfaces[2].MTU = 1500 }, []string{IDTunnelMTU},
			map[string]any{"interface": "wg0", "mtu": 1500, "overhead": 60, "underlay": "eth0", "underlay_mtu": 1500, "max_mtu": 1440}, "ip link set dev wg0 mtu 1440"},
		{"WireGuard 1420 over IPv6 underlay", RoleClient, func(h *Host) { h.Interfaces[2].Remote = netip.MustParseAddr("2001:2::2") }, nil, nil, ""},
		{"WireGuard 1440 over IPv6 underlay", RoleClient, func(h *Host) {
			h.Interfaces[2].Remote, h.Interfaces[2].MTU = netip.MustParseAddr("2001:2::2"), 1440
			h.WireGuard[0].File, h.WireGuard[0].MTU = "/etc/wireguard/wg0.conf", Value[int]{V: 1440, Line: 6, Set: true}
		}, []string{IDTunnelMTU}, map[string]any{"overhead": 80, "max_mtu": 1420}, "in /etc/wireguard/wg0.conf:6 change to `MTU = 1420`"},
		{"VXLAN 1500 over 1500", RoleClient, func(h *Host) {
			h.Interfaces = append(h.Interfaces, Interface{Name: "vx0", Kind: "vxlan", MTU: 1500, Underlay: "eth0", UnderlayMTU: 1500, Remote: netip.MustParseAddr("198.18.41.2")})
		}, []string{IDTunnelMTU}, map[string]any{"interface": "vx0", "overhead": 50, "max_mtu": 1450}, ""},
		{"VXLAN 1450 over 1500", RoleClient, func(h *Host) {
			h.Interfaces = append(h.Interfaces, Interface{Name: "vx0", Kind: "vxlan", MTU: 1450, Underlay: "eth0", UnderlayMTU: 1500})
		}, nil, nil, ""},
		{"GRE over a 1400 underlay", RoleClient, func(h *Host) {
			h.Interfaces = append(h.Interfaces, Interface{Name: "gre1", Kind: "gre", MTU: 1380, Underlay: "eth0", UnderlayMTU: 1400})
		}, []string{IDTunnelMTU}, map[string]any{"overhead": 24, "max_mtu": 1376}, ""},
		{"AllowedIPs nested", RoleVPNRouter, peer2("198.18.42.128/25", 14), []string{IDAllowedIPsOverlap},
			map[string]any{"interface": "wg0", "peer_a": "AAAAAAAA…", "prefix_a": "198.18.42.0/24", "line_a": "/etc/wireguard/wg0.conf:9",
				"peer_b": "BBBBBBBB…", "prefix_b": "198.18.42.128/25", "line_b": "/etc/wireguard/wg0.conf:14"}, "remove 198.18.42.0/24 from the AllowedIPs at /etc/wireguard/wg0.conf:9"},
		{"AllowedIPs identical", RoleVPNRouter, peer2("198.18.42.0/24", 14), []string{IDAllowedIPsOverlap}, map[string]any{"prefix_b": "198.18.42.0/24"}, ""},
		{"AllowedIPs disjoint", RoleVPNRouter, peer2("198.18.43.0/24", 14), nil, nil, ""},
		{"no keepalive behind NAT", RoleVPNRouter, func(h *Host) {
			h.WireGuard[0].Peers[0].Keepalive = Value[int]{}
			h.EndpointRoutes[netip.MustParseAddr("198.18.41.2")] = EndpointRoute{Dev: "eth0", Src: netip.MustParseAddr("100.64.3.4")}
		}, []string{IDNoKeepaliveNAT}, map[string]any{"peer": "AAAAAAAA…", "endpoint": "198.18.41.2", "source": "100.64.3.4"}, "persistent-keepalive 25"},
		{"no keepalive, private source, config", RoleVPNRouter, func(h *Host) {
			d := &h.WireGuard[0]
			d.File, d.Peers[0].Line, d.Peers[0].Keepalive = "wg0.conf", 11, Value[int]{V: 0, Line: 15, Set: true}
			h.EndpointRoutes[netip.MustParseAddr("198.18.41.2")] = EndpointRoute{Dev: "eth0", Src: netip.MustParseAddr("192.168.1.10")}
		}, []string{IDNoKeepaliveNAT}, map[string]any{"line": "wg0.conf:11", "source": "192.168.1.10"}, "in wg0.conf:15 change to `PersistentKeepalive = 25`"},
		{"no keepalive, public source", RoleVPNRouter, func(h *Host) { h.WireGuard[0].Peers[0].Keepalive = Value[int]{} }, nil, nil, ""},
		{"no keepalive, private source and private endpoint (same LAN)", RoleVPNRouter, func(h *Host) {
			p := &h.WireGuard[0].Peers[0]
			p.Keepalive, p.EndpointAddr = Value[int]{}, netip.MustParseAddr("10.0.0.2")
			h.EndpointRoutes[p.EndpointAddr] = EndpointRoute{Dev: "eth0", Src: netip.MustParseAddr("10.0.0.1")}
		}, nil, nil, ""},
		{"Table = off without routes", RoleVPNRouter, func(h *Host) {
			d := &h.WireGuard[0]
			d.File, d.Table = "wg0.conf", Value[string]{V: "off", Line: 7, Set: true}
			h.Routes = nil
		}, []string{IDTableOffNoRoutes}, map[string]any{"interface": "wg0", "line": "wg0.conf:7", "unrouted": []string{"198.18.42.0/24"}}, "PostUp = ip route add 198.18.42.0/24 dev %i"},
		{"Table = off with a covering route", RoleVPNRouter, func(h *Host) {
			h.WireGuard[0].Table = Value[string]{V: "off", Line: 7, Set: true}
			h.Routes = []Route{{Dst: netip.MustParsePrefix("198.18.0.0/16"), Dev: "wg0", Table: 100}}
		}, nil, nil, ""},
		{"Table = off with routes in PostUp", RoleVPNRouter, func(h *Host) {
			d := &h.WireGuard[0]
			d.Table, d.PostUp = Value[string]{V: "off", Line: 7, Set: true}, []Value[string]{{V: "ip route add 198.18.42.0/24 dev %i table 7", Line: 8, Set: true}}
			h.Routes = nil
		}, nil, nil, ""},
		{"endpoint routed into its own tunnel", RoleVPNRouter, func(h *Host) {
			h.EndpointRoutes[netip.MustParseAddr("198.18.41.2")] = EndpointRoute{Dev: "wg0", Src: netip.MustParseAddr("198.18.200.1")}
		}, []string{IDEndpointViaTunnel}, map[string]any{"interface": "wg0", "endpoint": "198.18.41.2", "route_device": "wg0"}, "ip route add 198.18.41.2/32"},
		{"endpoint routed into another tunnel", RoleVPNRouter, func(h *Host) {
			h.Interfaces = append(h.Interfaces, Interface{Name: "vx0", Kind: "vxlan", MTU: 1450})
			h.EndpointRoutes[netip.MustParseAddr("198.18.41.2")] = EndpointRoute{Dev: "vx0"}
		}, []string{IDEndpointViaTunnel}, map[string]any{"route_device": "vx0"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := baseHost()
			tc.change(&h)
			fs := Check(h, Config{Role: tc.role})
			var ids []string
			for _, f := range fs {
				ids = append(ids, f.ID)
			}
			if strings.Join(ids, " ") != strings.Join(tc.want, " ") {
				b, _ := json.MarshalIndent(fs, "", " ")
				t.Fatalf("findings %v, want %v:\n%s", ids, tc.want, b)
			}
			if len(fs) == 0 {
				return
			}
			f := fs[0]
			for k, v := range tc.evidence {
				got, _ := json.Marshal(f.Evidence[k])
				want, _ := json.Marshal(v)
				if string(got) != string(want) {
					t.Errorf("evidence %s = %s, want %s (all: %v)", k, got, want, f.Evidence)
				}
			}
			if !strings.Contains(f.Remedy, tc.remedy) {
				t.Errorf("remedy %q does not contain %q", f.Remedy, tc.remedy)
			}
			if f.Title == "" || f.Summary == "" || f.Remedy == "" {
				t.Errorf("finding without title, summary or remedy: %+v", f)
			}
			// Forwarding off is an error for a router named by --role, a
			// warning for one inferred.
			if want := report.SeverityError; f.ID == IDForwardingOff {
				if tc.role == RoleAuto {
					want = report.SeverityWarning
				}
				if f.Severity != want {
					t.Errorf("severity %s, want %s", f.Severity, want)
				}
			}
		})
	}
}

func TestInferRole(t *testing.T) {
	h := baseHost()
	if r := InferRole(&h); r != RoleVPNRouter {
		t.Errorf("WireGuard host: %s", r)
	}
	h.WireGuard = nil
	if r := InferRole(&h); r != RoleVPNRouter {
		t.Errorf("host with a UDP 51820 socket: %s", r)
	}
	h.Listeners = []Listener{{"tcp", netip.IPv4Unspecified(), 51820}}
	if r := InferRole(&h); r != RoleNATGateway {
		t.Errorf("forwarding host, no VPN socket: %s", r)
	}
	h.Sysctls["net.ipv4.ip_forward"] = "0"
	if r := InferRole(&h); r != RoleClient {
		t.Errorf("no forwarding, no VPN: %s", r)
	}
	for _, s := range []string{"", "vpn-router", "NAT-GATEWAY", "client"} {
		if _, err := ParseRole(s); err != nil {
			t.Errorf("ParseRole(%q): %v", s, err)
		}
	}
	if _, err := ParseRole("router"); err == nil {
		t.Error("ParseRole(router): no error")
	}
}

// TestNoSecretsInReport parses a configuration with a PrivateKey and a
// PresharedKey, checks it with every finding a peer can raise, and looks
// for the secrets in every rendering of the report.
func TestNoSecretsInReport(t *testing.T) {
	d, err := ParseConfig("wg7.conf", strings.NewReader(wgConf))
	if err != nil {
		t.Fatal(err)
	}
	h := baseHost()
	h.WireGuard = []WGDevice{*d}
	h.Interfaces = append(h.Interfaces, Interface{Name: "wg7", Kind: "wireguard", MTU: 1500, Underlay: "eth0", UnderlayMTU: 1500})
	h.EndpointRoutes[netip.MustParseAddr("198.18.41.2")] = EndpointRoute{Dev: "wg7", Src: netip.MustParseAddr("10.1.1.1")}
	r := report.New("hostcheck", "test", time.Unix(0, 0))
	Fill(r, &h, Config{})
	if len(r.Findings) < 4 {
		t.Fatalf("only %d findings; the test wants the peer findings to render", len(r.Findings))
	}
	for _, format := range []report.Format{report.FormatJSON, report.FormatText, report.FormatMarkdown} {
		var b strings.Builder
		if err := report.Render(&b, r, format); err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{"cGFzc3dvcmRwYXNzd29yZHBhc3N3b3JkcGFzc3dvcmQ=", "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2U=", "cGFzc3dvcmRw", "c2VjcmV0c2Vj"} {
			if strings.Contains(b.String(), secret) {
				t.Errorf("%s report contains a secret %q", format, secret)
			}
		}
	}
}
