package nat

import (
	"net/netip"
	"os"
	"testing"
)

func TestParseNFT(t *testing.T) {
	data, err := os.ReadFile("testdata/nft-ruleset.json")
	if err != nil {
		t.Fatal(err)
	}
	rules, err := ParseNFT(data)
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddr
	want := []struct {
		where, kind      string
		protos           int
		addrMin, addrMax netip.Addr
		pmin, pmax       uint16
		flags            string
		size, addrs      int
		text             string
	}{
		{"inet t/post handle 3", "masquerade", 2, netip.Addr{}, netip.Addr{}, 20000, 21975, "fully-random,persistent", 1976, 1,
			"meta oifname eth0 meta l4proto { tcp, udp } masquerade to :20000-21975 fully-random,persistent"},
		{"inet t/post handle 4", "snat", 1, a("198.18.1.1"), a("198.18.1.4"), 1024, 65535, "random", 64512, 4,
			"meta oifname eth1 meta l4proto udp snat to 198.18.1.1-198.18.1.4:1024-65535 random"},
		{"inet t/post handle 5", "snat", 0, a("198.18.2.1"), a("198.18.2.1"), 0, 0, "", 64512, 1,
			"meta oifname eth2 snat to 198.18.2.1"},
		{"inet t/post handle 6", "snat", 0, a("198.18.3.0"), a("198.18.3.3"), 0, 0, "", 64512, 4,
			"ip saddr 198.18.0.0/24 snat to 198.18.3.0-198.18.3.3"},
		{"inet t/post handle 7", "snat", 1, a("198.18.4.1"), a("198.18.4.1"), 3000, 3000, "", 1, 1,
			"meta oifname eth3 udp dport 53 snat to 198.18.4.1:3000"},
		{"ip t4/p handle 2", "masquerade", 0, netip.Addr{}, netip.Addr{}, 0, 0, "random", 64512, 1, "masquerade random"},
	}
	if len(rules) != len(want) {
		t.Fatalf("got %d rules, want %d: %+v", len(rules), len(want), rules)
	}
	for i, w := range want {
		r := rules[i]
		if r.Where != w.where || r.Kind != w.kind || len(r.Protocols) != w.protos || r.AddrMin != w.addrMin || r.AddrMax != w.addrMax ||
			r.PortMin != w.pmin || r.PortMax != w.pmax || r.Flags() != w.flags || r.RangeSize() != w.size || r.AddrCount() != w.addrs ||
			r.Text != w.text || r.Source != "nftables" {
			t.Errorf("rule %d = %+v (flags %q size %d addrs %d)\nwant %+v", i, r, r.Flags(), r.RangeSize(), r.AddrCount(), w)
		}
	}
	if !rules[0].Covers(netip.Addr{}, 17, 20000) || rules[0].Covers(netip.Addr{}, 17, 21976) || rules[0].Covers(netip.Addr{}, 1, 20000) {
		t.Error("Covers of the masquerade range is wrong")
	}
	if rules[1].Covers(a("198.18.1.5"), 17, 2000) || !rules[1].Covers(a("198.18.1.4"), 17, 2000) || rules[1].Covers(a("198.18.1.4"), 6, 2000) {
		t.Error("Covers of the snat address range is wrong")
	}
}

func TestParseNFTErrors(t *testing.T) {
	for _, in := range []string{
		`{`,
		`{"nftables":[{"rule":{"expr":[{"masquerade":{"port":{"range":[30000,20000]}}}]}}]}`,
		`{"nftables":[{"rule":{"expr":[{"snat":{"addr":{"range":["x","y"]}}}]}}]}`,
		`{"nftables":[{"rule":{"expr":[{"snat":{"port":70000}}]}}]}`,
	} {
		if _, err := ParseNFT([]byte(in)); err == nil {
			t.Errorf("ParseNFT(%s): no error", in)
		}
	}
}

func TestParseIPTablesSave(t *testing.T) {
	data, err := os.ReadFile("testdata/iptables-save-nat.txt")
	if err != nil {
		t.Fatal(err)
	}
	if b := IPTablesBackend(data); b != "iptables-nft" {
		t.Errorf("backend %q", b)
	}
	rules, err := ParseIPTablesSave(data, "iptables-nft")
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddr
	want := []struct {
		where, kind      string
		protos           []string
		addrMin, addrMax netip.Addr
		pmin, pmax       uint16
		flags            string
	}{
		{"POSTROUTING #1", "masquerade", []string{"udp"}, netip.Addr{}, netip.Addr{}, 20000, 21975, "fully-random"},
		{"POSTROUTING #2", "snat", []string{"tcp"}, a("198.18.1.1"), a("198.18.1.4"), 1024, 65535, "random,persistent"},
		{"POSTROUTING #3", "masquerade", nil, netip.Addr{}, netip.Addr{}, 0, 0, ""},
		{"POSTROUTING #4", "snat", nil, a("198.18.2.1"), a("198.18.2.1"), 0, 0, ""},
		{"POSTROUTING #5", "snat", []string{"udp"}, a("2001:2::1"), a("2001:2::4"), 3000, 3999, ""},
	}
	if len(rules) != len(want) {
		t.Fatalf("got %d rules, want %d: %+v", len(rules), len(want), rules)
	}
	for i, w := range want {
		r := rules[i]
		if r.Where != w.where || r.Kind != w.kind || len(r.Protocols) != len(w.protos) || r.AddrMin != w.addrMin || r.AddrMax != w.addrMax ||
			r.PortMin != w.pmin || r.PortMax != w.pmax || r.Flags() != w.flags || r.Source != "iptables-nft" {
			t.Errorf("rule %d = %+v, want %+v", i, r, w)
		}
		for j := range w.protos {
			if r.Protocols[j] != w.protos[j] {
				t.Errorf("rule %d protocols %v, want %v", i, r.Protocols, w.protos)
			}
		}
	}
	if _, err := ParseIPTablesSave([]byte("*nat\n-A POSTROUTING -j MASQUERADE --to-ports 9-1\n"), "iptables"); err == nil {
		t.Error("bad port range accepted")
	}
	if _, err := ParseIPTablesSave([]byte("*nat\n-A POSTROUTING -j SNAT --to-source 1.2.3\n"), "iptables"); err == nil {
		t.Error("bad address accepted")
	}
}

func FuzzParseNFT(f *testing.F) {
	data, err := os.ReadFile("testdata/nft-ruleset.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = ParseNFT(b) })
}

func FuzzParseIPTablesSave(f *testing.F) {
	data, err := os.ReadFile("testdata/iptables-save-nat.txt")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = ParseIPTablesSave(b, "iptables") })
}
