package bgp

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	gobgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"

	"github.com/vpndiag/vpndiag/analyze/analyzetest"
	"github.com/vpndiag/vpndiag/analyze/decode"
	"github.com/vpndiag/vpndiag/report"
)

// runPass runs the real capture + decode pipeline with one bgp analyzer
// watching the given tunnel endpoints, and returns the analyzer too.
func runPass(t *testing.T, path string, endpoints ...string) (*report.Report, *Analyzer) {
	t.Helper()
	a := New()
	for _, e := range endpoints {
		a.Endpoints = append(a.Endpoints, netip.MustParseAddr(e))
	}
	return analyzetest.Run(t, a, path), a
}

// TestAnalyzerCorpusEndpoint runs the analyzer over the real BGP capture with
// --endpoint 1.1.1.1: the capture has no tunnel headers, so its sessions are
// taken to run in the tunnel to 1.1.1.1, and every speaker that announced
// 1.1.1.1/32 (tshark: frames 13, 37, 52, 75, 79, 81, 83) is reported.
func TestAnalyzerCorpusEndpoint(t *testing.T) {
	rep, a := runPass(t, analyzetest.Corpus(t, "the-tcpdump-group_tcpdump/bgp-4byte-asn.pcap"), "1.1.1.1")
	if n := len(a.Tracker().Pairs()); n != 4 {
		t.Fatalf("%d pairs, want 4", n)
	}
	rec := analyzetest.Findings(rep, IDEndpointRecursion)
	frames := map[uint64]bool{}
	for _, f := range rec {
		if f.Evidence["prefix"] != "1.1.1.1/32" || f.Severity != report.SeverityError || f.Remedy == "" {
			t.Errorf("finding %+v", f)
		}
		for _, fr := range f.Frames {
			frames[fr.Frame] = true
			if fr.File != "bgp-4byte-asn.pcap" {
				t.Errorf("frame file %q", fr.File)
			}
		}
	}
	// Speakers announcing 1.1.1.1/32 (tshark next hops): 1.0.2.1 (13),
	// 1.0.3.1 (37, again 79), 1.0.4.1 (52, again 81), 1.0.0.1 (75), 1.0.2.2 (83).
	for _, want := range []uint64{13, 37, 52, 75, 79, 81, 83} {
		if !frames[want] {
			t.Errorf("no finding points at UPDATE frame %d (have %v)", want, frames)
		}
	}
	for _, f := range rec {
		t.Logf("%s %v", f.Summary, f.Frames)
	}
	if len(rec) != 5 {
		t.Errorf("%d endpoint-recursion findings, want 5", len(rec))
	}
	if len(analyzetest.Findings(rep, IDDefaultOverTunnel)) != 0 || len(analyzetest.Findings(rep, IDSessionFlapping)) != 0 {
		t.Errorf("unexpected findings: %+v", rep.Findings)
	}
	// Without --endpoint nothing is in a tunnel and nothing is raised.
	rep, _ = runPass(t, analyzetest.Corpus(t, "the-tcpdump-group_tcpdump/bgp-4byte-asn.pcap"))
	if len(rep.Findings) != 0 {
		t.Errorf("findings without endpoints: %+v", rep.Findings)
	}
}

// vxlanCapture writes a pcap of BGP sessions between 198.18.1.1 and
// 198.18.1.2 carried in VXLAN between 198.18.0.1 and 198.18.0.2. The far
// speaker (198.18.1.2) advertises 0.0.0.0/0 and 198.18.0.0/16 (covering both
// endpoints); the session is then torn down by a hold-timer NOTIFICATION and
// comes back, `flaps` times.
func vxlanCapture(t *testing.T, flaps int, advertise bool) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vxlan-bgp.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	near, far := net.IP{198, 18, 1, 1}, net.IP{198, 18, 1, 2}
	ulNear, ulFar := net.IP{198, 18, 0, 1}, net.IP{198, 18, 0, 2}
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	seq := map[bool]uint32{}
	write := func(fromFar bool, flags string, payload []byte) {
		src, dst, usrc, udst := near, far, ulNear, ulFar
		sport, dport := layers.TCPPort(40000), layers.TCPPort(179)
		if fromFar {
			src, dst, usrc, udst, sport, dport = far, near, ulFar, ulNear, 179, 40000
		}
		tcp := &layers.TCP{SrcPort: sport, DstPort: dport, Seq: seq[fromFar], Window: 1000}
		for _, c := range flags {
			switch c {
			case 'S':
				tcp.SYN = true
			case 'A':
				tcp.ACK = true
			case 'F':
				tcp.FIN = true
			case 'P':
				tcp.PSH = true
			}
		}
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: src, DstIP: dst}
		tcp.SetNetworkLayerForChecksum(ip)
		oip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: usrc, DstIP: udst}
		udp := &layers.UDP{SrcPort: 50000, DstPort: 4789}
		udp.SetNetworkLayerForChecksum(oip)
		buf := gopacket.NewSerializeBuffer()
		err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
			&layers.Ethernet{SrcMAC: mac, DstMAC: mac, EthernetType: layers.EthernetTypeIPv4}, oip, udp,
			&layers.VXLAN{ValidIDFlag: true, VNI: 42},
			&layers.Ethernet{SrcMAC: mac, DstMAC: mac, EthernetType: layers.EthernetTypeIPv4}, ip, tcp, gopacket.Payload(payload))
		if err != nil {
			t.Fatal(err)
		}
		ts = ts.Add(10 * time.Millisecond)
		b := buf.Bytes()
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(b), Length: len(b)}, b); err != nil {
			t.Fatal(err)
		}
		n := uint32(len(payload))
		if tcp.SYN || tcp.FIN {
			n++
		}
		seq[fromFar] += n
	}
	ser := func(m *gobgp.BGPMessage) []byte {
		b, err := m.Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	open := func(as uint32, id string) []byte {
		caps := []gobgp.ParameterCapabilityInterface{gobgp.NewCapMultiProtocol(gobgp.RF_IPv4_UC), gobgp.NewCapFourOctetASNumber(as)}
		m, err := gobgp.NewBGPOpenMessage(uint16(as), 9, netip.MustParseAddr(id), []gobgp.OptionParameterInterface{gobgp.NewOptionParameterCapability(caps)})
		if err != nil {
			t.Fatal(err)
		}
		return ser(m)
	}
	nh, _ := gobgp.NewPathAttributeNextHop(netip.MustParseAddr("198.18.1.2"))
	attrs := []gobgp.PathAttributeInterface{gobgp.NewPathAttributeOrigin(0),
		gobgp.NewPathAttributeAsPath([]gobgp.AsPathParamInterface{gobgp.NewAs4PathParam(2, []uint32{65002})}), nh}
	var nlri []gobgp.PathNLRI
	for _, p := range []string{"0.0.0.0/0", "198.18.0.0/16", "203.0.113.0/24"} {
		n, _ := gobgp.NewIPAddrPrefix(netip.MustParsePrefix(p))
		nlri = append(nlri, gobgp.PathNLRI{NLRI: n})
	}
	if !advertise {
		nlri = nlri[2:]
	}
	update := ser(gobgp.NewBGPUpdateMessage(nil, attrs, nlri))
	ka := ser(gobgp.NewBGPKeepAliveMessage())
	for i := 0; i <= flaps; i++ {
		seq[false], seq[true] = uint32(1000*i), uint32(5000*i+7)
		write(false, "S", nil)
		write(true, "SA", nil)
		o1, o2 := open(65001, "198.18.1.1"), open(65002, "198.18.1.2")
		write(false, "PA", o1[:20]) // OPEN split across two segments
		write(false, "PA", o1[20:])
		write(true, "PA", append(o2, ka...)) // OPEN and KEEPALIVE in one segment
		write(false, "PA", ka)
		write(true, "PA", update)
		if i < flaps {
			ts = ts.Add(10 * time.Second) // silence: longer than the 9 s hold time
			write(false, "PA", ser(gobgp.NewBGPNotificationMessage(4, 0, nil)))
			write(false, "FA", nil)
			ts = ts.Add(2 * time.Second)
		}
	}
	return path
}

// TestAnalyzerVXLANDefaultRoute: BGP inside VXLAN, the far speaker advertises
// 0.0.0.0/0 and 198.18.0.0/16; the tunnel endpoints come from the capture.
func TestAnalyzerVXLANDefaultRoute(t *testing.T) {
	rep, a := runPass(t, vxlanCapture(t, 2, true))
	if len(a.Tunnels()) != 1 || a.Tunnels()[0].Kind != "vxlan" {
		t.Fatalf("tunnels %+v", a.Tunnels())
	}
	def := analyzetest.Findings(rep, IDDefaultOverTunnel)
	if len(def) != 1 {
		t.Fatalf("%d default-over-tunnel findings, want 1: %+v", len(def), rep.Findings)
	}
	d := def[0]
	if d.Severity != report.SeverityError || d.Evidence["peer"] != "198.18.1.2" || d.Evidence["as_path"] != "65002" ||
		d.Evidence["tunnel_kind"] != "vxlan" || d.Evidence["peer_as"] != uint32(65002) {
		t.Errorf("default finding %+v", d)
	}
	if len(d.Frames) == 0 || d.Frames[0].Frame != 7 {
		t.Errorf("default finding frames %v, want the UPDATE in frame 7 first", d.Frames)
	}
	rec := analyzetest.Findings(rep, IDEndpointRecursion)
	if len(rec) != 1 || rec[0].Evidence["prefix"] != "198.18.0.0/16" {
		t.Fatalf("endpoint-recursion: %+v", rec)
	}
	if cov := rec[0].Evidence["covers_endpoints"].([]string); len(cov) != 2 {
		t.Errorf("covers %v, want both VXLAN endpoints", cov)
	}
	flap := analyzetest.Findings(rep, IDSessionFlapping)
	if len(flap) != 1 || flap[0].Evidence["established"] != 3 || flap[0].Evidence["downs"] != 2 || flap[0].Severity != report.SeverityError {
		t.Fatalf("flapping: %+v", flap)
	}
	if c := flap[0].Evidence["causes"].(map[string]int); c["hold-expired"] != 2 {
		t.Errorf("causes %v", c)
	}
	// Without the risky routes: no route findings; the flapping remains a warning.
	rep, _ = runPass(t, vxlanCapture(t, 2, false))
	if len(analyzetest.Findings(rep, IDDefaultOverTunnel))+len(analyzetest.Findings(rep, IDEndpointRecursion)) != 0 {
		t.Errorf("route findings without risky routes: %+v", rep.Findings)
	}
	if f := analyzetest.Findings(rep, IDSessionFlapping); len(f) != 1 || f[0].Severity != report.SeverityWarning {
		t.Errorf("flapping without risky routes: %+v", f)
	}
	// One stable session with the default route: error is not proven, warning.
	rep, _ = runPass(t, vxlanCapture(t, 0, true))
	if f := analyzetest.Findings(rep, IDDefaultOverTunnel); len(f) != 1 || f[0].Severity != report.SeverityWarning {
		t.Errorf("stable session: %+v", f)
	}
}

// TestAnalyzerNoAllocs: frames that are neither BGP nor tunnels cost no
// allocation.
func TestAnalyzerNoAllocs(t *testing.T) {
	a := New()
	var rec decode.Record
	rec.NumLevels = 1
	rec.Levels[0].IP = decode.IP{Version: 4, Proto: 6, Src: netip.MustParseAddr("198.18.0.1"), Dst: netip.MustParseAddr("198.18.0.2")}
	rec.Levels[0].L4 = decode.Transport{Proto: 6, SrcPort: 443, DstPort: 5555, Payload: []byte("x")}
	if n := testing.AllocsPerRun(1000, func() { rec.Frame++; a.Packet(&rec) }); n != 0 {
		t.Errorf("%v allocations per non-BGP frame", n)
	}
}

// BenchmarkAnalyzerPlain measures the per-frame cost on non-BGP traffic.
func BenchmarkAnalyzerPlain(b *testing.B) {
	a := New()
	var rec decode.Record
	rec.NumLevels = 1
	rec.Levels[0].L4 = decode.Transport{Proto: 6, SrcPort: 443, DstPort: 5555}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		a.Packet(&rec)
	}
}
