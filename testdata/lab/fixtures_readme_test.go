package lab

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
)

// fixturesReadme is rendered into testdata/fixtures/README.md by
// TestFixtures -fixtures, with the numbers of that run.
const fixturesReadme = `# Fixtures made by the lab

Small real captures made by ` + "`testdata/lab`" + ` in network namespaces on a real
kernel (veth, nftables NAT, VXLAN, Linux bridge, dnsmasq). Everything uses
198.18.0.0/15. Each directory has a ` + "`truth.json`" + ` with what the lab did
and the numbers read back from the captures; ` + "`go test ./testdata/lab/ -run TestFixtures`" + `
checks the files against it on every run. GRO/GSO/TSO and TX checksum offload are off
on every veth, so frames are wire-sized and checksums are valid.

Regenerate (root; apt-get install iproute2 nftables ethtool tcpdump dnsmasq-base
wireshark-common conntrack iputils-ping):

    go test ./testdata/lab/ -run TestFixtures -fixtures -v
    go test ./testdata/lab/ -run TestFixtures -fixtures -fixtures-only mixed -v   # one fixture
    go test ./testdata/lab/ -run TestFixtures -fixtures -fixtures-only readme     # only this README

Other packages' golden files are made from these captures (cmd/vpndiag,
analyze/...): regenerating a fixture changes its packets, so refresh those
goldens in the same change.

Numbers below are from the last regeneration (they vary a little between runs:
the NAT's port choice and the loss are random).

## nat-dns/ — NAT port-pool exhaustion drops DNS
{{with .natdns}}
Topology (lab language):

{{indent .Topo}}
` + "`client`" + ` sends {{.Did.queries_nat_sent}} DNS A queries (` + "`q<N>.nat.lab.test`" + `) to 198.18.2.53 at {{.Did.rate_nat_qps}}/s,
each from a fresh source port, through ` + "`gw`" + `, which masquerades them to 198.18.2.1 with
the port range {{.Did.nat_port_min}}-{{.Did.nat_port_max}} ({{.Did.nat_pool_size}} ports). A UDP mapping lives 30 s, so the
pool runs out after about {{.Did.nat_pool_size}} queries and the kernel drops the NAT'd queries
that find no free port (conntrack insert_failed={{.Did.gw_conntrack_insert_failed}}, drop={{.Did.gw_conntrack_drop}} on gw).
At the same time ` + "`client`" + ` sends {{.Did.queries_direct_sent}} queries (` + "`q<N>.direct.lab.test`" + `) at {{.Did.rate_direct_qps}}/s to a
second resolver 198.18.3.53 routed through gw's eth2, where nothing is NAT'd: none of
those is lost. Both resolvers are dnsmasq answering 198.18.9.9 for lab.test.

| | NAT'd class (to 198.18.2.53) | direct class (to 198.18.3.53) |
|---|---|---|
| queries sent (labtool) | {{.Did.queries_nat_sent}} | {{.Did.queries_direct_sent}} |
| answered (labtool) | {{.Did.queries_nat_answered}} | {{.Did.queries_direct_answered}} |
| queries in client.pcap / gw-in.pcap | {{.Counted.client_queries_nat}} | {{.Counted.client_queries_direct}} |
| queries in gw-out.pcap / dns.pcap | {{.Counted.gw_out_queries}} | 0 (other path) |
| answers in client.pcap | {{.Counted.client_answers_nat}} | {{.Counted.client_answers_direct}} |

On gw-out.pcap every query comes from 198.18.2.1, source ports {{.Counted.gw_out_min_port}}-{{.Counted.gw_out_max_port}}
({{.Counted.gw_out_distinct_ports}} distinct). conntrack on gw listed {{.Did.gw_conntrack_nat_mappings_after}} NAT'd mappings after the run.
{{.Counted.client_nat_queries_reusing_a_port}} of the client's NAT'd queries came from a source port the client had already used
for an earlier query (the kernel hands out ephemeral ports again once a socket is
closed); such a query matches the earlier conntrack entry, reuses its mapping and
passes even when the pool is exhausted; that is how {{.Counted.gw_out_queries}} queries got through a pool of
{{.Did.nat_pool_size}} ports.

| file | where | frames |
|---|---|---|
| client.pcap | client eth0 | {{index .Files "client.pcap"}} |
| gw-in.pcap | gw eth0 (inside) | {{index .Files "gw-in.pcap"}} |
| gw-out.pcap | gw eth1 (outside, after NAT) | {{index .Files "gw-out.pcap"}} |
| dns.pcap | dns eth0 | {{index .Files "dns.pcap"}} |
{{end}}
## vxlan/ — VXLAN underlay with ICMP, TCP and DNS inside
{{with .vxlan}}
{{indent .Topo}}
Captured on a's underlay eth0 (vxlan.pcap, {{index .Files "vxlan.pcap"}} frames): {{.Did.pings}} pings a->b through
the tunnel, one TCP connection carrying {{.Did.tcp_bytes}} bytes in {{.Did.tcp_write_size}}-byte writes (labtool tcp-send,
TCP_NODELAY), and {{.Did.dns_queries}} DNS queries to dnsmasq on b's tunnel address ({{.Did.dns_answered}} answered).
{{.Counted.vxlan_packets}} packets are UDP 4789 with VNI {{.Did.vni}}: {{.Counted.inner_icmp}} carry ICMP, {{.Counted.inner_tcp}} TCP, {{.Counted.inner_udp}} UDP (DNS);
the other VXLAN packets carry the inner ARP, and the frames that are not VXLAN are the
underlay's ARP.
{{end}}
## mixed/ — one pcapng, two interfaces
{{with .mixed}}
mixed.pcapng ({{index .Files "mixed.pcapng"}} frames) was written by dumpcap on gw's eth0 (interface 0, inside,
{{.Counted.interface_0}} frames) and eth1 (interface 1, outside after masquerade, {{.Counted.interface_1}} frames) of:

{{indent .Topo}}
Traffic: {{.Did.pings}} pings client->server, {{.Did.dns_queries}} DNS queries to dnsmasq on server ({{.Did.dns_answered}} answered),
{{.Did.udp_datagrams}} UDP datagrams to port 9000 from one socket (nobody listens: the server answers with ICMP
port unreachable, {{.Counted.icmp_port_unreachable}} of them counted over both interfaces, the rest suppressed by the
kernel's ICMP rate limit).
Both interfaces are Ethernet; the interface blocks carry the names eth0 and eth1.
{{end}}
## loss-wire/ — 30% loss of one traffic class on a switch between two routers
{{with .losswire}}
{{indent .Topo}}
` + "`a`" + ` sends {{.Did.sent_5000}} UDP datagrams (64-byte payload, 400/s) to 198.18.3.2:5000 and then {{.Did.sent_5001}} to
port 5001. The switch namespace ` + "`wire`" + ` drops {{.Did.loss_percent}}% of UDP to port 5000 entering from r1
(nftables bridge family, numgen random); its counter says {{.Did.nft_dropped}} dropped.

| | port 5000 | port 5001 |
|---|---|---|
| r1-eth1.pcap (before the wire) | {{index .Counted "r1-eth1_udp_5000"}} | {{index .Counted "r1-eth1_udp_5001"}} |
| r2-eth1.pcap (after the wire) | {{index .Counted "r2-eth1_udp_5000"}} | {{index .Counted "r2-eth1_udp_5001"}} |
| received by b (labtool) | {{.Did.received_5000}} | {{.Did.received_5001}} |

Frames: r1-eth1.pcap {{index .Files "r1-eth1.pcap"}}, r2-eth1.pcap {{index .Files "r2-eth1.pcap"}} (including ARP).
{{end}}`

func writeFixturesReadme(t *testing.T) {
	t.Helper()
	data := map[string]*truth{
		"natdns":   loadTruth(t, filepath.Join(fixturesDir, "nat-dns")),
		"vxlan":    loadTruth(t, filepath.Join(fixturesDir, "vxlan")),
		"mixed":    loadTruth(t, filepath.Join(fixturesDir, "mixed")),
		"losswire": loadTruth(t, filepath.Join(fixturesDir, "loss-wire")),
	}
	tmpl := template.Must(template.New("readme").Option("missingkey=error").Funcs(template.FuncMap{
		"indent": func(s string) string {
			var b strings.Builder
			for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
				b.WriteString("    " + l + "\n")
			}
			return b.String()
		},
	}).Parse(fixturesReadme))
	f, err := os.Create(filepath.Join(fixturesDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := tmpl.Execute(f, data); err != nil {
		t.Fatal(err)
	}
}
