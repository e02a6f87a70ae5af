package hostcheck

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestSysctlName(t *testing.T) {
	for in, want := range map[string]string{
		"net/ipv4/ip_forward":                "net.ipv4.ip_forward",
		"net/ipv4/conf/eth0.100/rp_filter":   "net.ipv4.conf.eth0/100.rp_filter",
		"net/netfilter/nf_conntrack_buckets": "net.netfilter.nf_conntrack_buckets",
	} {
		if got := SysctlName(in); got != want {
			t.Errorf("SysctlName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestReadSysctls(t *testing.T) {
	root := t.TempDir()
	for path, v := range map[string]string{
		"net/ipv4/ip_forward":                    "1\n",
		"net/ipv4/ip_local_port_range":           "32768\t60999\n",
		"net/ipv4/ip_local_reserved_ports":       "\n",
		"net/ipv4/conf/all/rp_filter":            "0\n",
		"net/ipv4/conf/eth0.7/rp_filter":         "1\n",
		"net/core/rmem_max":                      "212992\n",
		"net/netfilter/nf_conntrack_max":         "65536\n",
		"net/netfilter/nf_conntrack_udp_timeout": "30\n",
	} {
		p := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, notes := ReadSysctls(root)
	want := map[string]string{
		"net.ipv4.ip_forward": "1", "net.ipv4.ip_local_port_range": "32768 60999", "net.ipv4.ip_local_reserved_ports": "",
		"net.ipv4.conf.all.rp_filter": "0", "net.ipv4.conf.eth0/7.rp_filter": "1", "net.core.rmem_max": "212992",
		"net.netfilter.nf_conntrack_max": "65536", "net.netfilter.nf_conntrack_udp_timeout": "30",
	}
	if len(got) != len(want) {
		t.Errorf("read %d sysctls %v, want %d", len(got), got, len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if len(notes) != 0 {
		t.Errorf("notes %v, want none (missing files are left out)", notes)
	}
	// Without the conntrack module the checks say so.
	os.RemoveAll(filepath.Join(root, "net/netfilter"))
	if _, notes := ReadSysctls(root); len(notes) != 1 || !strings.Contains(notes[0], "conntrack module not loaded") {
		t.Errorf("notes without netfilter: %v", notes)
	}
}

func TestParseProcNet(t *testing.T) {
	udp := `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  100: 00000000:CA6C 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1234 2 0000000000000000 0
  101: 0100007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1235 2 0000000000000000 0
  102: 0100007F:D431 0200007F:0035 01 00000000:00000000 00:00000000 00000000     0        0 1236 2 0000000000000000 0
`
	got, err := ParseProcNet(strings.NewReader(udp), "udp")
	if err != nil {
		t.Fatal(err)
	}
	want := []Listener{{"udp", netip.MustParseAddr("0.0.0.0"), 51820}, {"udp", netip.MustParseAddr("127.0.0.1"), 53}}
	if !slices.Equal(got, want) {
		t.Errorf("udp: %v, want %v (the connected socket left out)", got, want)
	}
	tcp6 := `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:04AA 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 00000000000000000000000001000000:0016 00000000000000000000000001000000:D000 01 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
`
	got, err = ParseProcNet(strings.NewReader(tcp6), "tcp")
	if err != nil {
		t.Fatal(err)
	}
	if want := []Listener{{"tcp", netip.MustParseAddr("::"), 1194}}; !slices.Equal(got, want) {
		t.Errorf("tcp6: %v, want %v", got, want)
	}
	if _, err := ParseProcNet(strings.NewReader("h\n 0: 0000:XYZ 00000000:0000 07\n"), "udp"); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("bad line: error %v, want one naming line 2", err)
	}
}

// nftForward is `nft -j list ruleset` of a stateful forward chain (policy
// drop, established/related accepted, invalid dropped) and an accepting one.
const nftForward = `{"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
{"table": {"family": "inet", "name": "filter", "handle": 1}},
{"chain": {"family": "inet", "table": "filter", "name": "forward", "handle": 1, "type": "filter", "hook": "forward", "prio": 0, "policy": "drop"}},
{"chain": {"family": "inet", "table": "filter", "name": "input", "handle": 5, "type": "filter", "hook": "input", "prio": 0, "policy": "drop"}},
{"rule": {"family": "inet", "table": "filter", "chain": "forward", "handle": 2, "expr": [{"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}}, {"accept": null}]}},
{"rule": {"family": "inet", "table": "filter", "chain": "forward", "handle": 3, "expr": [{"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": "invalid"}}, {"counter": {"packets": 0, "bytes": 0}}, {"drop": null}]}},
{"rule": {"family": "inet", "table": "filter", "chain": "forward", "handle": 4, "expr": [{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "eth0"}}, {"accept": null}]}},
{"rule": {"family": "inet", "table": "filter", "chain": "input", "handle": 6, "expr": [{"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": "invalid"}}, {"drop": null}]}},
{"chain": {"family": "ip", "table": "plain", "name": "fwd", "handle": 1, "type": "filter", "hook": "forward", "prio": 0, "policy": "accept"}},
{"rule": {"family": "ip", "table": "plain", "chain": "fwd", "handle": 2, "expr": [{"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": "eth9"}}, {"drop": null}]}}
]}`

func TestParseNFTForward(t *testing.T) {
	cs, err := ParseNFTForward([]byte(nftForward))
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 2 || cs[0].Name != "inet filter forward" || cs[0].Policy != "drop" || len(cs[0].Rules) != 3 ||
		cs[1].Name != "ip plain fwd" || cs[1].Policy != "accept" || len(cs[1].Rules) != 1 {
		t.Fatalf("chains %+v, want inet filter forward (drop, 3 rules) and ip plain fwd (accept, 1 rule); not the input chain", cs)
	}
	r := cs[0].Rules
	if !slices.Equal(r[0].CtStates, []string{"established", "related"}) || r[0].Verdict != "accept" || r[0].Other ||
		!slices.Equal(r[1].CtStates, []string{"invalid"}) || r[1].Verdict != "drop" || r[1].Text != "ct state invalid drop (handle 3)" ||
		len(r[2].CtStates) != 0 || !r[2].Other {
		t.Errorf("rules %+v", r)
	}
	if _, err := ParseNFTForward([]byte("{")); err == nil {
		t.Error("truncated JSON: no error")
	}
}

func TestParseIPTablesSave(t *testing.T) {
	in := `# Generated by iptables-save v1.8.9 (nf_tables)
*nat
:FORWARD ACCEPT [0:0]
-A FORWARD -j DROP
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -m conntrack ! --ctstate ESTABLISHED -j DROP
-A FORWARD -i eth0 -o eth1 -j ACCEPT
COMMIT
`
	cs, err := ParseIPTablesSave([]byte(in), "iptables-nft")
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || cs[0].Policy != "drop" || cs[0].Source != "iptables-nft" || len(cs[0].Rules) != 3 {
		t.Fatalf("chains %+v, want the filter FORWARD chain only, policy drop, 3 rules", cs)
	}
	r := cs[0].Rules
	if !slices.Equal(r[0].CtStates, []string{"related", "established"}) || r[0].Negated || r[0].Verdict != "accept" ||
		!r[1].Negated || r[1].Verdict != "drop" || !r[2].Other || r[2].Verdict != "accept" {
		t.Errorf("rules %+v", r)
	}
}

const wgConf = `# site A
[Interface]
PrivateKey = cGFzc3dvcmRwYXNzd29yZHBhc3N3b3JkcGFzc3dvcmQ=
Address = 198.18.200.1/24
ListenPort = 51820
mtu = 1500
Table = off
PostUp = logger up # a comment

[Peer]
PublicKey = AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=
PresharedKey = c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2U=
AllowedIPs = 198.18.10.0/24, 198.18.11.0/24
AllowedIPs = 2001:2:0:1::/64
Endpoint = 198.18.41.2:51820

[peer]
publickey = BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB=
allowedips = 198.18.10.128/25,198.18.12.1
endpoint = vpn.example.net:51820
PersistentKeepalive = off
`

func TestParseConfig(t *testing.T) {
	d, err := ParseConfig("/etc/wireguard/wg7.conf", strings.NewReader(wgConf))
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "wg7" || d.ListenPort != (Value[int]{51820, 5, true}) || d.MTU != (Value[int]{1500, 6, true}) ||
		d.Table != (Value[string]{"off", 7, true}) || len(d.PostUp) != 1 || d.PostUp[0].V != "logger up" || len(d.Peers) != 2 {
		t.Fatalf("interface %+v", d)
	}
	a, b := d.Peers[0], d.Peers[1]
	var aips []string
	for _, p := range a.AllowedIPs {
		aips = append(aips, p.V.String()+"@"+string(rune('0'+p.Line/10))+string(rune('0'+p.Line%10)))
	}
	if a.Line != 10 || a.PublicKey.Line != 11 || !slices.Equal(aips, []string{"198.18.10.0/24@13", "198.18.11.0/24@13", "2001:2:0:1::/64@14"}) ||
		a.EndpointAddr != netip.MustParseAddr("198.18.41.2") || a.Endpoint.Line != 15 || a.Keepalive.Set {
		t.Errorf("peer 1 %+v (%v)", a, aips)
	}
	if b.Line != 17 || len(b.AllowedIPs) != 2 || b.AllowedIPs[0].V != netip.MustParsePrefix("198.18.10.128/25") ||
		b.AllowedIPs[1].V != netip.MustParsePrefix("198.18.12.1/32") || b.EndpointAddr.IsValid() || b.Endpoint.V != "vpn.example.net:51820" ||
		b.Keepalive != (Value[int]{0, 21, true}) {
		t.Errorf("peer 2 %+v", b)
	}
}

func TestParseConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		line       int
		msg        string
	}{
		{"no section", "ListenPort = 1\n", 1, "outside a section"},
		{"bad header", "[Interface\n", 1, "missing ]"},
		{"unknown section", "\n[Tunnel]\n", 2, "unknown section"},
		{"no equals", "[Interface]\nListenPort 51820\n", 2, "want Key = Value"},
		{"bad port", "[Interface]\nListenPort = 70000\n", 2, "ListenPort"},
		{"bad prefix", "[Peer]\nPublicKey = x\nAllowedIPs = 198.18.0.0/33\n", 3, "AllowedIPs"},
		{"bad endpoint", "[Peer]\nPublicKey = x\nEndpoint = 198.18.0.1\n", 3, "Endpoint"},
		{"bad keepalive", "[Peer]\nPublicKey = x\nPersistentKeepalive = soon\n", 3, "PersistentKeepalive"},
		{"unknown key", "[Peer]\nPublicKey = x\nColour = blue\n", 3, "unknown [Peer] key"},
		{"no public key", "[Interface]\n[Peer]\nAllowedIPs = 198.18.0.0/16\n", 2, "without PublicKey"},
		{"long line", "[Interface]\n# " + strings.Repeat("x", maxConfigLine) + "\n", 2, "read"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig("wg0.conf", strings.NewReader(tc.text))
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.File != "wg0.conf" || ce.Line != tc.line || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %v, want wg0.conf:%d ... %s", err, tc.line, tc.msg)
			}
			if !strings.HasPrefix(err.Error(), "wg0.conf:") {
				t.Errorf("error %q does not start with file:line", err)
			}
		})
	}
	_, err := ReadConfig(filepath.Join(t.TempDir(), "missing.conf"))
	var ce *ConfigError
	if !errors.As(err, &ce) || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "missing.conf") {
		t.Errorf("missing file: %v", err)
	}
}

// FuzzParseConfig: the parser never panics, and whatever it accepts keeps
// no secret and names real lines.
func FuzzParseConfig(f *testing.F) {
	f.Add(wgConf)
	f.Add("[Interface]\nListenPort=1\n[Peer]\nPublicKey=k\nAllowedIPs=::/0,0.0.0.0/0\nEndpoint=[2001:2::1]:51820\n")
	f.Add("[Peer]\nPublicKey = k\nAllowedIPs = 198.18.0.1\n#\n[")
	f.Fuzz(func(t *testing.T, text string) {
		d, err := ParseConfig("f.conf", strings.NewReader(text))
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.File != "f.conf" {
				t.Fatalf("error %v is not a *ConfigError naming the file", err)
			}
			return
		}
		lines := strings.Count(text, "\n") + 1
		for _, p := range d.Peers {
			if p.Line < 1 || p.Line > lines || !p.PublicKey.Set {
				t.Fatalf("peer %+v: line outside 1-%d or no key", p, lines)
			}
			for _, a := range p.AllowedIPs {
				if a.Line < p.Line || a.Line > lines || !a.V.IsValid() {
					t.Fatalf("AllowedIPs %+v outside its peer (line %d)", a, p.Line)
				}
			}
		}
	})
}
