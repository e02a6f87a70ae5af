package lab

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

var (
	regenFixtures = flag.Bool("fixtures", false, "regenerate the committed captures in testdata/fixtures from the lab (needs root)")
	regenOnly     = flag.String("fixtures-only", "", "with -fixtures: regenerate only this fixture (nat-dns, vxlan, mixed, loss-wire; \"readme\": none, only re-render README.md)")
)

// fixturesDir is testdata/fixtures, relative to this package's directory.
const fixturesDir = "../fixtures"

// truth is what the lab did and saw while making a fixture; it is written
// next to the captures as truth.json and checked against them by
// TestFixtures on every run.
type truth struct {
	Fixture string         `json:"fixture"`
	Topo    string         `json:"topology"`
	Did     map[string]int `json:"did"`     // what the lab sent or configured
	Files   map[string]int `json:"files"`   // frames per capture file
	Counted map[string]int `json:"counted"` // numbers read back from the captures
}

func (tr *truth) save(t *testing.T, dir string) {
	t.Helper()
	b, err := json.MarshalIndent(tr, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "truth.json"), append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

func loadTruth(t *testing.T, dir string) *truth {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "truth.json"))
	if err != nil {
		t.Fatalf("%v (regenerate: go test ./testdata/lab/ -run TestFixtures -fixtures)", err)
	}
	var tr truth
	if err := json.Unmarshal(b, &tr); err != nil {
		t.Fatalf("%s/truth.json: %v", dir, err)
	}
	return &tr
}

// TestFixtures regenerates the fixtures when run with -fixtures, and always
// checks the committed fixtures against their truth.json: frame counts per
// file and the numbers that make each fixture useful (NAT ports inside the
// range, VNI 42, lost packets per class, interfaces of the pcapng).
func TestFixtures(t *testing.T) {
	if *regenFixtures {
		Require(t, "dnsmasq", "dumpcap", "conntrack", "ping")
		for _, g := range []struct {
			name string
			fn   func(*testing.T, string) *truth
		}{
			{"nat-dns", genNATDNS}, {"vxlan", genVXLAN}, {"mixed", genMixed}, {"loss-wire", genLossWire},
		} {
			if *regenOnly != "" && *regenOnly != g.name {
				continue
			}
			t.Run("generate/"+g.name, func(t *testing.T) {
				dir := filepath.Join(fixturesDir, g.name)
				tmp := t.TempDir()
				tr := g.fn(t, tmp)
				if t.Failed() {
					return
				}
				if err := os.RemoveAll(dir); err != nil {
					t.Fatal(err)
				}
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				for name := range tr.Files {
					b, err := os.ReadFile(filepath.Join(tmp, name))
					if err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				tr.save(t, dir)
			})
		}
		if t.Failed() {
			return
		}
		writeFixturesReadme(t)
	}
	t.Run("verify/nat-dns", verifyNATDNS)
	t.Run("verify/vxlan", verifyVXLAN)
	t.Run("verify/mixed", verifyMixed)
	t.Run("verify/loss-wire", verifyLossWire)
	t.Run("verify/size", func(t *testing.T) {
		var total int64
		err := filepath.Walk(fixturesDir, func(_ string, fi os.FileInfo, err error) error {
			if err == nil && !fi.IsDir() {
				total += fi.Size()
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("fixtures total %d bytes", total)
		if total > 1<<20 {
			t.Errorf("fixtures take %d bytes, keep them under 1 MiB", total)
		}
	})
}

// checkFiles compares frame counts with truth.Files.
func checkFiles(t *testing.T, dir string, tr *truth) {
	t.Helper()
	for name, want := range tr.Files {
		n, err := CountPackets(filepath.Join(dir, name))
		if err != nil {
			t.Error(err)
			continue
		}
		if n != want {
			t.Errorf("%s: %d frames, truth.json says %d", name, n, want)
		}
	}
}

func startProc(t *testing.T, topo *Topology, host string, argv ...string) *Proc {
	t.Helper()
	p, err := topo.Start(t.Context(), host, argv...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func startDNS(t *testing.T, topo *Topology, host, listen string) {
	t.Helper()
	if _, err := topo.StartDNS(t.Context(), host, netip.MustParseAddr(listen), "lab.test", netip.MustParseAddr("198.18.9.9")); err != nil {
		t.Fatal(err)
	}
}

func captureTo(t *testing.T, topo *Topology, host, iface, file string) *Capture {
	t.Helper()
	c, err := topo.Capture(t.Context(), host, iface, file, "")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const natDNSTopo = `# the NAT DNS incident in miniature
host client
host gw forward
host dns
host dns2
link client:eth0=198.18.1.2/24 gw:eth0=198.18.1.1/24
link gw:eth1=198.18.2.1/24 dns:eth0=198.18.2.53/24
link gw:eth2=198.18.3.1/24 dns2:eth0=198.18.3.53/24
route client default via 198.18.1.1
route dns2 default via 198.18.3.1
nat gw masquerade oif eth1 ports 20000-20199
`

// dnsStats are DNS numbers read from one capture.
type dnsStats struct {
	queries, answers map[string]int // per server address
	sports           map[uint16]bool
	repeats          map[string]int // queries per server from a source port already used
	minPort, maxPort uint16
	badSrc           int // queries to 198.18.2.53 not from the expected source
}

// readDNS counts DNS queries and answers in a capture. natSrc, if valid, is
// the source address every query must carry (checked into badSrc).
func readDNS(t *testing.T, file string, natSrc netip.Addr) dnsStats {
	t.Helper()
	s := dnsStats{queries: map[string]int{}, answers: map[string]int{}, sports: map[uint16]bool{}, repeats: map[string]int{}, minPort: 65535}
	seen := map[string]bool{}
	for _, p := range readPackets(t, file) {
		if p.proto != layers.IPProtocolUDP {
			continue
		}
		switch {
		case p.dport == 53:
			s.queries[p.dst.String()]++
			key := fmt.Sprintf("%s:%d", p.dst, p.sport)
			if seen[key] {
				s.repeats[p.dst.String()]++
			}
			seen[key] = true
			if natSrc.IsValid() {
				if p.src != natSrc {
					s.badSrc++
				}
				s.sports[p.sport] = true
				s.minPort, s.maxPort = min(s.minPort, p.sport), max(s.maxPort, p.sport)
			}
		case p.sport == 53:
			s.answers[p.src.String()]++
		}
	}
	return s
}

// genNATDNS: 500 queries at 100/s from fresh source ports through a NAT
// whose pool has 200 ports (UDP mappings live 30 s), plus 100 queries at
// 20/s to a second resolver that is routed around the NAT.
func genNATDNS(t *testing.T, dir string) *truth {
	topo := New(t, natDNSTopo)
	startDNS(t, topo, "dns", "198.18.2.53")
	startDNS(t, topo, "dns2", "198.18.3.53")
	caps := []*Capture{
		captureTo(t, topo, "client", "eth0", filepath.Join(dir, "client.pcap")),
		captureTo(t, topo, "gw", "eth0", filepath.Join(dir, "gw-in.pcap")),
		captureTo(t, topo, "gw", "eth1", filepath.Join(dir, "gw-out.pcap")),
		captureTo(t, topo, "dns", "eth0", filepath.Join(dir, "dns.pcap")),
	}
	tool := Tool(t)
	nat := startProc(t, topo, "client", tool, "dns", "-to", "198.18.2.53:53", "-count", "500", "-rate", "100", "-name", "nat.lab.test", "-timeout", "2s")
	direct := startProc(t, topo, "client", tool, "dns", "-to", "198.18.3.53:53", "-count", "100", "-rate", "20", "-name", "direct.lab.test", "-timeout", "2s")
	var rn, rd struct{ Sent, Answered, Timeouts int }
	procJSON(t, nat, &rn)
	procJSON(t, direct, &rd)
	for _, c := range caps {
		stop(t, c)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	ctS, err := topo.Exec(ctx, "gw", "conntrack", "-S")
	if err != nil {
		t.Fatal(err)
	}
	sum := func(key string) int {
		n := 0
		for _, m := range regexp.MustCompile(`\b`+key+`=(\d+)`).FindAllStringSubmatch(string(ctS), -1) {
			v, _ := strconv.Atoi(m[1])
			n += v
		}
		return n
	}
	ctL, err := topo.Exec(ctx, "gw", "conntrack", "-L", "-p", "udp", "--orig-dst", "198.18.2.53")
	if err != nil {
		t.Fatal(err)
	}
	mappings := strings.Count(string(ctL), "dport=53 ")

	tr := &truth{Fixture: "nat-dns", Topo: natDNSTopo,
		Did: map[string]int{
			"nat_port_min": 20000, "nat_port_max": 20199, "nat_pool_size": 200,
			"queries_nat_sent": rn.Sent, "queries_nat_answered": rn.Answered, "queries_nat_timeouts": rn.Timeouts,
			"queries_direct_sent": rd.Sent, "queries_direct_answered": rd.Answered,
			"rate_nat_qps": 100, "rate_direct_qps": 20,
			"gw_conntrack_insert_failed": sum("insert_failed"), "gw_conntrack_drop": sum("drop"),
			"gw_conntrack_nat_mappings_after": mappings,
		},
		Files: map[string]int{}, Counted: map[string]int{},
	}
	for _, c := range caps {
		tr.Files[filepath.Base(c.File)] = c.Stats().Packets
	}
	cl := readDNS(t, filepath.Join(dir, "client.pcap"), netip.Addr{})
	out := readDNS(t, filepath.Join(dir, "gw-out.pcap"), netip.MustParseAddr("198.18.2.1"))
	tr.Counted["client_queries_nat"] = cl.queries["198.18.2.53"]
	tr.Counted["client_answers_nat"] = cl.answers["198.18.2.53"]
	tr.Counted["client_queries_direct"] = cl.queries["198.18.3.53"]
	tr.Counted["client_answers_direct"] = cl.answers["198.18.3.53"]
	tr.Counted["client_nat_queries_reusing_a_port"] = cl.repeats["198.18.2.53"]
	tr.Counted["gw_out_queries"] = out.queries["198.18.2.53"]
	tr.Counted["gw_out_answers"] = out.answers["198.18.2.53"]
	tr.Counted["gw_out_distinct_ports"] = len(out.sports)
	tr.Counted["gw_out_min_port"] = int(out.minPort)
	tr.Counted["gw_out_max_port"] = int(out.maxPort)
	t.Logf("nat-dns truth: %+v", tr)
	if rn.Sent != 500 || rd.Sent != 100 || rd.Answered != 100 || rn.Answered >= rn.Sent {
		t.Errorf("want 500 NAT'd queries with some unanswered and 100 direct all answered, got %+v %+v", rn, rd)
	}
	return tr
}

func verifyNATDNS(t *testing.T) {
	dir := filepath.Join(fixturesDir, "nat-dns")
	tr := loadTruth(t, dir)
	checkFiles(t, dir, tr)
	cl := readDNS(t, filepath.Join(dir, "client.pcap"), netip.Addr{})
	in := readDNS(t, filepath.Join(dir, "gw-in.pcap"), netip.Addr{})
	out := readDNS(t, filepath.Join(dir, "gw-out.pcap"), netip.MustParseAddr("198.18.2.1"))
	dns := readDNS(t, filepath.Join(dir, "dns.pcap"), netip.Addr{})
	c := tr.Counted
	if cl.queries["198.18.2.53"] != c["client_queries_nat"] || in.queries["198.18.2.53"] != c["client_queries_nat"] {
		t.Errorf("NAT'd queries: client %d, gw-in %d, truth %d", cl.queries["198.18.2.53"], in.queries["198.18.2.53"], c["client_queries_nat"])
	}
	if out.queries["198.18.2.53"] != c["gw_out_queries"] || dns.queries["198.18.2.53"] != c["gw_out_queries"] {
		t.Errorf("queries after the NAT: gw-out %d, dns %d, truth %d", out.queries["198.18.2.53"], dns.queries["198.18.2.53"], c["gw_out_queries"])
	}
	if cl.repeats["198.18.2.53"] != c["client_nat_queries_reusing_a_port"] {
		t.Errorf("client reused a source port for %d NAT'd queries, truth %d", cl.repeats["198.18.2.53"], c["client_nat_queries_reusing_a_port"])
	}
	if out.queries["198.18.2.53"] >= cl.queries["198.18.2.53"] {
		t.Errorf("no NAT'd query was lost at the gateway (%d in, %d out)", cl.queries["198.18.2.53"], out.queries["198.18.2.53"])
	}
	if out.badSrc != 0 || out.minPort < 20000 || out.maxPort > 20199 || len(out.sports) != c["gw_out_distinct_ports"] {
		t.Errorf("gw-out: %d queries not from 198.18.2.1, ports %d-%d (%d distinct), want 20000-20199 (%d)",
			out.badSrc, out.minPort, out.maxPort, len(out.sports), c["gw_out_distinct_ports"])
	}
	if cl.queries["198.18.3.53"] != tr.Did["queries_direct_sent"] || cl.answers["198.18.3.53"] != tr.Did["queries_direct_answered"] || out.queries["198.18.3.53"] != 0 {
		t.Errorf("direct resolver: %d queries, %d answers at the client, %d on gw-out; truth %d/%d/0",
			cl.queries["198.18.3.53"], cl.answers["198.18.3.53"], out.queries["198.18.3.53"], tr.Did["queries_direct_sent"], tr.Did["queries_direct_answered"])
	}
}

const vxlanFixtureTopo = `# a VXLAN tunnel (VNI 42) between two hosts on one underlay link
host a
host b
link a:eth0=198.18.1.1/24 b:eth0=198.18.1.2/24
vxlan a:vx0 vni 42 local 198.18.1.1 remote 198.18.1.2 dstport 4789 addr 198.18.100.1/24 mtu 1450
vxlan b:vx0 vni 42 local 198.18.1.2 remote 198.18.1.1 dstport 4789 addr 198.18.100.2/24 mtu 1450
`

// genVXLAN: through the tunnel, 5 pings, one TCP transfer of 32 KiB in 1 KiB
// writes, and 10 DNS queries; captured on a's underlay interface.
func genVXLAN(t *testing.T, dir string) *truth {
	topo := New(t, vxlanFixtureTopo)
	startDNS(t, topo, "b", "198.18.100.2")
	sink := startSink(t, topo, "b", "tcp-sink", "-listen", "198.18.100.2:5201", "-conns", "1", "-duration", "30s")
	c := captureTo(t, topo, "a", "eth0", filepath.Join(dir, "vxlan.pcap"))
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	out, err := topo.Exec(ctx, "a", "ping", "-c", "5", "-i", "0.2", "-W", "2", "198.18.100.2")
	if err != nil || !strings.Contains(string(out), "5 received") {
		t.Fatalf("ping: %v\n%s", err, out)
	}
	var sent struct{ Bytes int }
	toolJSON(t, topo, "a", &sent, "tcp-send", "-to", "198.18.100.2:5201", "-bytes", "32768", "-write", "1024")
	var got struct{ Bytes int }
	procJSON(t, sink, &got)
	var q struct{ Sent, Answered int }
	toolJSON(t, topo, "a", &q, "dns", "-to", "198.18.100.2:53", "-count", "10", "-rate", "20", "-name", "vx.lab.test")
	stop(t, c)
	if got.Bytes != 32768 || q.Answered != 10 {
		t.Errorf("tcp received %d bytes (want 32768), dns answered %d (want 10)", got.Bytes, q.Answered)
	}
	tr := &truth{Fixture: "vxlan", Topo: vxlanFixtureTopo,
		Did:   map[string]int{"vni": 42, "pings": 5, "tcp_bytes": sent.Bytes, "tcp_write_size": 1024, "dns_queries": q.Sent, "dns_answered": q.Answered},
		Files: map[string]int{"vxlan.pcap": c.Stats().Packets}, Counted: countVXLAN(t, filepath.Join(dir, "vxlan.pcap")),
	}
	t.Logf("vxlan truth: %+v", tr)
	return tr
}

func countVXLAN(t *testing.T, file string) map[string]int {
	m := map[string]int{}
	for _, p := range readPackets(t, file) {
		if p.proto != layers.IPProtocolUDP || p.dport != 4789 {
			continue
		}
		m["vxlan_packets"]++
		if !p.hasVXLAN || p.vni != 42 {
			m["vxlan_other_vni"]++
		}
		switch p.innerProto {
		case layers.IPProtocolICMPv4:
			m["inner_icmp"]++
		case layers.IPProtocolTCP:
			m["inner_tcp"]++
		case layers.IPProtocolUDP:
			m["inner_udp"]++
		}
	}
	return m
}

func verifyVXLAN(t *testing.T) {
	dir := filepath.Join(fixturesDir, "vxlan")
	tr := loadTruth(t, dir)
	checkFiles(t, dir, tr)
	got := countVXLAN(t, filepath.Join(dir, "vxlan.pcap"))
	for k, v := range tr.Counted {
		if got[k] != v {
			t.Errorf("%s = %d, truth %d", k, got[k], v)
		}
	}
	if got["vxlan_other_vni"] != 0 || got["inner_icmp"] != 10 || got["inner_udp"] != 20 {
		t.Errorf("want every packet on VNI 42, 10 inner ICMP and 20 inner DNS packets, got %v", got)
	}
}

// genMixed: a pcapng written by dumpcap on both interfaces of a NAT gateway
// (ping, DNS and UDP through the NAT).
func genMixed(t *testing.T, dir string) *truth {
	topo := New(t, natTopo)
	startDNS(t, topo, "server", "198.18.2.10")
	file := filepath.Join(dir, "mixed.pcapng")
	c, err := topo.CaptureNG(t.Context(), "gw", []string{"eth0", "eth1"}, file, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if out, err := topo.Exec(ctx, "client", "ping", "-c", "3", "-i", "0.2", "-W", "2", "198.18.2.10"); err != nil {
		t.Fatalf("ping: %v\n%s", err, out)
	}
	var q struct{ Sent, Answered int }
	toolJSON(t, topo, "client", &q, "dns", "-to", "198.18.2.10:53", "-count", "5", "-rate", "20", "-name", "mixed.lab.test")
	var u struct{ Sent int }
	toolJSON(t, topo, "client", &u, "udp-send", "-to", "198.18.2.10:9000", "-count", "10", "-rate", "50")
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	tr := &truth{Fixture: "mixed", Topo: natTopo,
		Did:   map[string]int{"pings": 3, "dns_queries": q.Sent, "dns_answered": q.Answered, "udp_datagrams": u.Sent},
		Files: map[string]int{"mixed.pcapng": c.Stats().Packets}, Counted: countPerInterface(t, file),
	}
	tr.Counted["icmp_port_unreachable"] = countUnreachable(t, file)
	t.Logf("mixed truth: %+v", tr)
	return tr
}

func countPerInterface(t *testing.T, file string) map[string]int {
	m := map[string]int{}
	err := ForEachPacket(file, func(_ int, ci gopacket.CaptureInfo, lt layers.LinkType, _ []byte) error {
		m[fmt.Sprintf("interface_%d", ci.InterfaceIndex)]++
		if lt != layers.LinkTypeEthernet {
			m["non_ethernet"]++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// countUnreachable counts ICMP destination unreachable messages.
func countUnreachable(t *testing.T, file string) int {
	n := 0
	for _, p := range readPackets(t, file) {
		if p.proto == layers.IPProtocolICMPv4 && p.innerICMPType == layers.ICMPv4TypeDestinationUnreachable {
			n++
		}
	}
	return n
}

func verifyMixed(t *testing.T) {
	dir := filepath.Join(fixturesDir, "mixed")
	tr := loadTruth(t, dir)
	checkFiles(t, dir, tr)
	got := countPerInterface(t, filepath.Join(dir, "mixed.pcapng"))
	if n := countUnreachable(t, filepath.Join(dir, "mixed.pcapng")); n != tr.Counted["icmp_port_unreachable"] {
		t.Errorf("%d ICMP unreachable, truth %d", n, tr.Counted["icmp_port_unreachable"])
	}
	if len(got) != 2 || got["interface_0"] != tr.Counted["interface_0"] || got["interface_1"] != tr.Counted["interface_1"] {
		t.Errorf("per interface %v, truth %v (want two Ethernet interfaces)", got, tr.Counted)
	}
}

// genLossWire: 400 datagrams to port 5000 (30% dropped on the wire) and 100
// to port 5001 (not dropped), captured on both routers' wire interfaces.
func genLossWire(t *testing.T, dir string) *truth {
	topo := New(t, lossTopo)
	sink := startSink(t, topo, "b", "udp-sink", "-listen", "198.18.3.2:5000", "-duration", "30s", "-idle", "2s")
	ctl := startSink(t, topo, "b", "udp-sink", "-listen", "198.18.3.2:5001", "-duration", "30s", "-idle", "2s")
	r1 := captureTo(t, topo, "r1", "eth1", filepath.Join(dir, "r1-eth1.pcap"))
	r2 := captureTo(t, topo, "r2", "eth1", filepath.Join(dir, "r2-eth1.pcap"))
	var s1, s2 struct{ Sent int }
	toolJSON(t, topo, "a", &s1, "udp-send", "-to", "198.18.3.2:5000", "-count", "400", "-rate", "400", "-size", "64")
	toolJSON(t, topo, "a", &s2, "udp-send", "-to", "198.18.3.2:5001", "-count", "100", "-rate", "400", "-size", "64")
	var g1, g2 struct{ Received int }
	procJSON(t, sink, &g1)
	procJSON(t, ctl, &g2)
	stop(t, r1)
	stop(t, r2)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	rs, err := topo.Exec(ctx, "wire", "nft", "list", "table", "bridge", NFTTable)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`counter packets (\d+)`).FindSubmatch(rs)
	dropped, _ := strconv.Atoi(string(m[1]))
	tr := &truth{Fixture: "loss-wire", Topo: lossTopo,
		Did: map[string]int{"loss_percent": 30, "sent_5000": s1.Sent, "sent_5001": s2.Sent, "received_5000": g1.Received,
			"received_5001": g2.Received, "nft_dropped": dropped},
		Files:   map[string]int{"r1-eth1.pcap": r1.Stats().Packets, "r2-eth1.pcap": r2.Stats().Packets},
		Counted: countPorts(t, dir),
	}
	t.Logf("loss-wire truth: %+v", tr)
	return tr
}

func countPorts(t *testing.T, dir string) map[string]int {
	m := map[string]int{}
	for _, f := range []string{"r1-eth1", "r2-eth1"} {
		for _, p := range readPackets(t, filepath.Join(dir, f+".pcap")) {
			if p.proto == layers.IPProtocolUDP {
				m[fmt.Sprintf("%s_udp_%d", f, p.dport)]++
			}
		}
	}
	return m
}

func verifyLossWire(t *testing.T) {
	dir := filepath.Join(fixturesDir, "loss-wire")
	tr := loadTruth(t, dir)
	checkFiles(t, dir, tr)
	got := countPorts(t, dir)
	for k, v := range tr.Counted {
		if got[k] != v {
			t.Errorf("%s = %d, truth %d", k, got[k], v)
		}
	}
	if lost := got["r1-eth1_udp_5000"] - got["r2-eth1_udp_5000"]; lost != tr.Did["nft_dropped"] || got["r1-eth1_udp_5001"] != got["r2-eth1_udp_5001"] {
		t.Errorf("lost %d of port 5000 (nft dropped %d) and %d of 5001 (want 0)", lost, tr.Did["nft_dropped"], got["r1-eth1_udp_5001"]-got["r2-eth1_udp_5001"])
	}
}
