package lab

import (
	"net/netip"
	"strings"
	"testing"
)

const example = `
# the example of README.md
host client
host gw forward
host dns
link client:eth0=198.18.1.2/24,2001:2:0:1::2/64 gw:eth0=198.18.1.1/24,2001:2:0:1::1/64
link gw:eth1=198.18.2.1/24 dns:eth0=198.18.2.53/24 mtu 1400
route client default via 198.18.1.1
route client default6 via 2001:2:0:1::1
route dns 198.18.1.0/24 via 198.18.2.1 metric 10
nat gw masquerade oif eth1 ports 20000-21975 random persistent
nat gw snat 198.18.2.1 oif eth1 daddr != 198.18.3.0/24 proto udp
loss gw forward oif eth1 udp dport 53 30%   # drop 30% of DNS going out
loss gw ingress iif eth0 icmp 5%
vxlan client:vx0 vni 42 local 198.18.1.2 remote 198.18.1.1 dstport 4789 addr 198.18.100.1/24 mtu 1450
switch wire
link client:eth1=198.18.5.1/24 wire:p1
loss wire forward iif p1 udp dport 4789 10%
mtu gw:eth0 1500
sysctl gw net.ipv4.conf.all.rp_filter=0
exec dns echo hello   # escape hatch
`

func TestParseExample(t *testing.T) {
	topo, err := Parse(example)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(topo.Hosts); got != 4 {
		t.Fatalf("hosts = %d, want 4", got)
	}
	if !topo.Host("gw").Forward || topo.Host("client").Forward || !topo.Host("wire").Switch {
		t.Errorf("forward/switch flags wrong: %+v %+v %+v", topo.Host("gw"), topo.Host("client"), topo.Host("wire"))
	}
	if got, want := topo.Addr("client", "eth0"), netip.MustParseAddr("198.18.1.2"); got != want {
		t.Errorf("Addr(client, eth0) = %v, want %v", got, want)
	}
	if got := topo.Addrs("client", "eth0"); len(got) != 2 || got[1].String() != "2001:2:0:1::2/64" {
		t.Errorf("Addrs(client, eth0) = %v", got)
	}
	if l := topo.Links[1]; l.MTU != 1400 || l.B.Host != "dns" || l.B.Iface != "eth0" {
		t.Errorf("link 2 = %+v", l)
	}
	if l := topo.Links[2]; l.B.Bridge != "br0" || l.B.Host != "wire" {
		t.Errorf("switch port not enslaved to br0: %+v", l.B)
	}
	if r := topo.Routes[1]; !r.Default || !r.Family6 || r.Via.String() != "2001:2:0:1::1" {
		t.Errorf("route default6 = %+v", r)
	}
	if r := topo.Routes[2]; r.Dest.String() != "198.18.1.0/24" || r.Metric != 10 {
		t.Errorf("route 3 = %+v", r)
	}
	n := topo.NATs[0]
	if !n.Masquerade || n.Oif != "eth1" || n.PortMin != 20000 || n.PortMax != 21975 || strings.Join(n.Flags, ",") != "random,persistent" {
		t.Errorf("nat = %+v", n)
	}
	if n := topo.NATs[1]; n.Masquerade || n.To.String() != "198.18.2.1" || !n.DaddrNot || n.Proto != "udp" {
		t.Errorf("snat = %+v", n)
	}
	if l := topo.Losses[0]; l.Hook != "forward" || l.Oif != "eth1" || l.Proto != "udp" || l.Dport != 53 || l.Percent != 30 || l.Line != 13 {
		t.Errorf("loss = %+v", l)
	}
	if v := topo.VXLANs[0]; v.VNI != 42 || v.DstPort != 4789 || v.MTU != 1450 || v.Addrs[0].String() != "198.18.100.1/24" {
		t.Errorf("vxlan = %+v", v)
	}
	if e := topo.Execs[0]; e.Host != "dns" || e.Command != "echo hello" {
		t.Errorf("exec = %+v", e)
	}
	if err := topo.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestRuleset(t *testing.T) {
	topo, err := Parse(example)
	if err != nil {
		t.Fatal(err)
	}
	gw := topo.Ruleset("gw")
	for _, want := range []string{
		"table inet vdlab {",
		"type nat hook postrouting priority srcnat; policy accept;",
		`oifname "eth1" meta l4proto { tcp, udp } masquerade to :20000-21975 random,persistent`,
		`oifname "eth1" meta l4proto != { tcp, udp } masquerade random,persistent`,
		`oifname "eth1" ip daddr != 198.18.3.0/24 meta l4proto udp snat ip to 198.18.2.1`,
		`oifname "eth1" udp dport 53 numgen random mod 100 < 30 counter drop comment "line 13"`,
		"table netdev vdlab_eth0 {",
		`type filter hook ingress device "eth0" priority filter;`,
		"meta l4proto icmp numgen random mod 100 < 5 counter drop",
	} {
		if !strings.Contains(gw, want) {
			t.Errorf("gw ruleset lacks %q:\n%s", want, gw)
		}
	}
	wire := topo.Ruleset("wire")
	if !strings.Contains(wire, "table bridge vdlab {") || !strings.Contains(wire, `iifname "p1" udp dport 4789 numgen random mod 100 < 10`) {
		t.Errorf("switch loss must be a bridge-family rule:\n%s", wire)
	}
	edge, err := Parse("host a\nloss a input udp 0%\nloss a output tcp dport 80 100%")
	if err != nil {
		t.Fatal(err)
	}
	rs := edge.Ruleset("a")
	for _, want := range []string{`meta l4proto udp counter comment "line 2"`, `tcp dport 80 counter drop comment "line 3"`} {
		if !strings.Contains(rs, want) {
			t.Errorf("0%%/100%% rules: want %q in:\n%s", want, rs)
		}
	}
	if strings.Contains(rs, "numgen") {
		t.Errorf("0%% and 100%% need no numgen (nft refuses < 100):\n%s", rs)
	}
	if rs := topo.Ruleset("dns"); rs != "" {
		t.Errorf("dns has no rules, got:\n%s", rs)
	}
}

func TestParseErrors(t *testing.T) {
	const ab = "host a\nhost b\n"
	for _, tc := range []struct {
		name, text, want string
	}{
		{"unknown keyword", "host a\nfrobnicate a", `line 2: unknown keyword "frobnicate"`},
		{"address outside lab", ab + "link a:eth0=10.0.0.1/24 b:eth0=198.18.1.2/24", "line 3: address 10.0.0.1/24 is outside the lab ranges"},
		{"ipv6 outside lab", ab + "link a:eth0=2001:db8::1/64 b:eth0", "line 3: address 2001:db8::1/64 is outside"},
		{"gateway outside lab", ab + "link a:eth0=198.18.1.1/24 b:eth0\nroute a default via 192.168.1.1", "line 4: address 192.168.1.1 is outside"},
		{"route prefix outside lab", "host a\nroute a 10.0.0.0/8 dev lo", "line 2: prefix 10.0.0.0/8 is outside"},
		{"snat outside lab", ab + "link a:eth0 b:eth0\nnat a snat 100.64.0.1 oif eth0", "line 4: address 100.64.0.1 is outside"},
		{"vxlan remote outside lab", "host a\nvxlan a:vx0 vni 1 local 198.18.0.1 remote 8.8.8.8", "line 2: address 8.8.8.8 is outside"},
		{"unknown host", "host a\nroute b default via 198.18.1.1", `line 2: unknown host "b"`},
		{"unknown host in link", "host a\n\n# comment\nlink a:eth0 c:eth0", `line 4: unknown host "c"`},
		{"unknown interface", ab + "nat a masquerade oif eth9", `line 3: host "a" has no interface "eth9"`},
		{"bad loss percent", ab + "link a:eth0 b:eth0\nloss a forward oif eth0 130%", `line 4: bad loss percent "130"`},
		{"loss without percent", ab + "link a:eth0 b:eth0\nloss a forward oif eth0 udp 30", "line 4: loss must end with a percentage"},
		{"loss bad hook", "host a\nloss a sideways 3%", `line 2: bad loss hook "sideways"`},
		{"loss port without proto", ab + "link a:eth0 b:eth0\nloss a output dport 53 3%", "line 4: sport/dport need udp or tcp"},
		{"ingress without iif", "host a\nloss a ingress udp 3%", "line 2: loss on ingress needs iif"},
		{"duplicate host", "host a\nhost a", `line 2: host "a" declared twice`},
		{"duplicate interface", ab + "link a:eth0 b:eth0\nlink a:eth0 b:eth1", `line 4: host "a" already has an interface "eth0"`},
		{"interface name too long", ab + "link a:averyveryverylongname b:eth0", "line 3: bad interface name"},
		{"bad port range", ab + "link a:eth0 b:eth0\nnat a masquerade oif eth0 ports 300-200", `line 4: bad port range "300-200"`},
		{"nat without oif", "host a\nnat a masquerade", "line 2: nat needs oif"},
		{"vxlan without vni", "host a\nvxlan a:vx0 local 198.18.0.1 remote 198.18.0.2", "line 2: vxlan needs vni, local and remote"},
		{"neigh static without peer", "host a\nvxlan a:vx0 vni 1 local 198.18.0.1 remote 198.18.0.2 neigh static", "line 2: vxlan a:vx0 neigh static: no vxlan statement for the other end"},
		{"bad neigh", "host a\nvxlan a:vx0 vni 1 local 198.18.0.1 remote 198.18.0.2 neigh sometimes", `line 2: neigh "sometimes": want static or dynamic`},
		{"route without via or dev", "host a\nroute a default", "line 2: route needs via or dev"},
		{"route family mismatch", "host a\nroute a 198.18.0.0/16 via 2001:2::1", "line 2: gateway 2001:2::1 and destination are of different IP families"},
		{"address on switch port", "switch s\nhost a\nlink a:eth0 s:p1=198.18.0.1/24", "line 3: s:p1 is a port of bridge br0"},
		{"unknown bridge", ab + "link a:eth0@br9 b:eth0", `line 3: host "a" has no bridge "br9"`},
		{"non-net sysctl", "host a\nsysctl a kernel.panic=1", "line 2: only net.* sysctls"},
		{"bad host name", "host Gw", `line 1: bad host name "Gw"`},
		{"empty", "# nothing\n", "topology declares no host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.text)
			if err == nil {
				t.Fatalf("Parse accepted:\n%s", tc.text)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

// TestUpRefusesOutsideLab changes a parsed topology to use a non-lab
// address: Up must refuse before creating anything.
func TestUpRefusesOutsideLab(t *testing.T) {
	topo, err := Parse("host a\nhost b\nlink a:eth0=198.18.1.1/24 b:eth0=198.18.1.2/24\nroute a default via 198.18.1.2")
	if err != nil {
		t.Fatal(err)
	}
	topo.Host("a").ifaces["eth0"].Addrs[0] = netip.MustParsePrefix("10.1.1.1/24")
	topo.Routes[0].Via = netip.MustParseAddr("10.1.1.2")
	err = topo.Up(t.Context())
	if err == nil {
		topo.Down()
		t.Fatal("Up accepted addresses outside 198.18.0.0/15")
	}
	for _, want := range []string{"address of a:eth0 10.1.1.1 is outside", "line 4: gateway 10.1.1.2 is outside"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if topo.ID() != "" || len(topo.Namespaces()) != 0 {
		t.Errorf("Up created namespaces before refusing: %v", topo.Namespaces())
	}
}
