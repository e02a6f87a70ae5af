package decode

import (
	"bytes"
	"fmt"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// oracleProtos are the frame.protocols names compared per frame: how many
// times each occurs in tshark's protocol stack versus how many headers of that
// kind the decoder recorded.
var oracleProtos = []string{"vlan", "ip", "ipv6", "tcp", "udp", "icmp", "icmpv6", "arp",
	"vxlan", "geneve", "gre", "erspan", "l2tp", "esp", "isakmp", "wg"}

// tsharkFields are the fields read per frame (-E occurrence=a: all values).
var tsharkFields = []string{"frame.number", "frame.protocols",
	"ip.src", "ip.dst", "ipv6.src", "ipv6.dst",
	"tcp.srcport", "tcp.dstport", "udp.srcport", "udp.dstport",
	"esp.spi", "esp.sequence", "wg.type", "isakmp.exchangetype",
	"vxlan.vni", "geneve.vni", "gre.key", "gre.key.call_id", "gre.sequence_number"}

// oracleFile holds what differs, by design, between tshark and vpndiag for
// one capture. Every entry says why.
type oracleFile struct {
	// tsharkArgs are extra tshark options (decode-as and the like).
	tsharkArgs []string
	// reasons is the exact count of frames per Reason the decoder must give
	// (frames vpndiag does not decode completely, all explained).
	reasons map[Reason]int
}

// oracleTable lists, per corpus file, the extra tshark arguments and the
// frames vpndiag legitimately leaves undecoded. A file not listed must
// decode every frame with ReasonNone.
var oracleTable = map[string]oracleFile{
	// WireGuard on UDP 51194, not 51820. tshark 4.0 finds it with its
	// heuristic wg dissector; the decode-as keeps the oracle independent of
	// that preference. vpndiag finds it by the message length rule.
	"corelight_zeek-spicy-wireguard/wireguard.pcap": {tsharkArgs: []string{"-d", "udp.port==51194,wg"}},
	"the-tcpdump-group_tcpdump/various_gre.pcap": {reasons: map[Reason]int{
		// 42 STP + 21 STP in 802.1Q + 1 DTP + 1 CDP: 802.3/LLC frames, not IP.
		ReasonLLC: 65,
		// Ethertype 0x9000 (configuration testing protocol, "loop"), not IP.
		ReasonUnknownEtherType: 5,
		// CDP carried in GRE (protocol type 0x2000): not a payload vpndiag decodes.
		ReasonUnknownTunnelPayload: 2,
	}},
}

// tsharkFrame is one frame as tshark dissected it.
type tsharkFrame struct {
	protos []string
	fields map[string][]string
}

func runTshark(t *testing.T, path string, extra []string) []tsharkFrame {
	t.Helper()
	args := []string{"-r", path, "-n",
		// Dissect each fragment as it is (the first one's transport header),
		// like vpndiag does, instead of the reassembled datagram.
		"-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE",
		"-T", "fields", "-E", "occurrence=a", "-E", "separator=/t", "-E", "aggregator=,"}
	args = append(args, extra...)
	for _, f := range tsharkFields {
		args = append(args, "-e", f)
	}
	cmd := exec.Command("tshark", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark %s: %v: %s", path, err, stderr.String())
	}
	var frames []tsharkFrame
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		cols := strings.Split(line, "\t")
		if len(cols) != len(tsharkFields) {
			t.Fatalf("tshark %s: %d columns in %q", path, len(cols), line)
		}
		tf := tsharkFrame{protos: strings.Split(cols[1], ":"), fields: map[string][]string{}}
		for i, c := range cols {
			if c != "" {
				tf.fields[tsharkFields[i]] = strings.Split(c, ",")
			}
		}
		frames = append(frames, tf)
	}
	return frames
}

// decodedProtos counts, like tshark's frame.protocols, the headers in rec.
func decodedProtos(rec *Record) map[string]int {
	m := map[string]int{}
	m["vlan"] = int(rec.NumVLANs)
	count := func(proto uint8) {
		switch proto {
		case protoTCP:
			m["tcp"]++
		case protoUDP:
			m["udp"]++
		case protoICMP:
			m["icmp"]++
		case protoICMPv6:
			m["icmpv6"]++
		}
	}
	for i := 0; i < int(rec.NumLevels); i++ {
		l := &rec.Levels[i]
		if l.IP.Version == 4 {
			m["ip"]++
		} else {
			m["ipv6"]++
		}
		count(l.L4.Proto)
		if q := &l.L4.Quoted; q.Valid {
			if l.L4.Proto == protoICMP {
				m["ip"]++
			} else {
				m["ipv6"]++
			}
			count(q.Proto)
		}
	}
	for i := 0; i < int(rec.NumTunnel); i++ {
		tu := &rec.Tunnels[i]
		switch tu.Kind {
		case TunnelVXLAN:
			m["vxlan"]++
		case TunnelGENEVE:
			m["geneve"]++
		case TunnelGRE:
			m["gre"]++
			if tu.GREProt == etherERSPAN2 || tu.GREProt == etherERSPAN3 {
				m["erspan"]++
			}
		case TunnelL2TPv2, TunnelL2TPv3:
			m["l2tp"]++
		case TunnelESP, TunnelESPinUDP:
			m["esp"]++
		}
	}
	if rec.ARP.Valid {
		m["arp"]++
	}
	if rec.IKE.Valid {
		m["isakmp"]++
	}
	if rec.WireGuard.Type != 0 {
		m["wg"]++
	}
	return m
}

// decodedFlow is the innermost flow as tshark shows it with its last field
// occurrences: for an ICMP error that is the quoted header.
func decodedFlow(rec *Record) string {
	l := rec.Inner()
	if l == nil {
		return ""
	}
	t := &l.L4
	if (t.Proto == protoICMP || t.Proto == protoICMPv6) && t.Quoted.Valid {
		q := &t.Quoted
		name := ""
		switch q.Proto {
		case protoTCP:
			name = "tcp"
		case protoUDP:
			name = "udp"
		}
		if name == "" {
			return fmt.Sprintf("%s>%s", q.Src, q.Dst)
		}
		return fmt.Sprintf("%s:%d>%s:%d/%s", q.Src, q.SrcPort, q.Dst, q.DstPort, name)
	}
	switch t.Proto {
	case protoTCP:
		return fmt.Sprintf("%s:%d>%s:%d/tcp", l.IP.Src, t.SrcPort, l.IP.Dst, t.DstPort)
	case protoUDP:
		return fmt.Sprintf("%s:%d>%s:%d/udp", l.IP.Src, t.SrcPort, l.IP.Dst, t.DstPort)
	}
	return fmt.Sprintf("%s>%s", l.IP.Src, l.IP.Dst)
}

// tsharkFlow is the innermost flow of a tshark frame: the last IP header in
// the protocol stack and the TCP/UDP header after it, if any.
func tsharkFlow(tf *tsharkFrame) string {
	lastIP, lastL4 := -1, -1
	var ipName, l4Name string
	for i, p := range tf.protos {
		switch p {
		case "ip", "ipv6":
			lastIP, ipName = i, p
		case "tcp", "udp":
			lastL4, l4Name = i, p
		}
	}
	if lastIP < 0 {
		return ""
	}
	last := func(f string) string {
		v := tf.fields[f]
		if len(v) == 0 {
			return "?"
		}
		return v[len(v)-1]
	}
	src, dst := last(ipName+".src"), last(ipName+".dst")
	if lastL4 < lastIP {
		return fmt.Sprintf("%s>%s", src, dst)
	}
	return fmt.Sprintf("%s:%s>%s:%s/%s", src, last(l4Name+".srcport"), dst, last(l4Name+".dstport"), l4Name)
}

type spiStat struct {
	n        int
	min, max uint64
}

func (s *spiStat) add(seq uint64) {
	if s.n == 0 || seq < s.min {
		s.min = seq
	}
	if s.n == 0 || seq > s.max {
		s.max = seq
	}
	s.n++
}

func parseUint(t *testing.T, s string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return v
}

// TestOracleTshark decodes every corpus capture and compares, frame by
// frame, with tshark run on the same file in the same test run: protocol
// header counts, innermost flows, tunnel IDs (VXLAN/GENEVE VNI, GRE key),
// ESP SPIs with their sequence ranges, WireGuard message types and IKE
// exchange types. Frames vpndiag does not decode completely must match the
// per-file reason counts in oracleTable.
func TestOracleTshark(t *testing.T) {
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Fatal("tshark not found: apt-get install tshark")
	}
	for _, path := range corpusCaptures(t) {
		name := corpusName(t, path)
		t.Run(name, func(t *testing.T) {
			want := oracleTable[name]
			frames := readCapture(t, path)
			ts := runTshark(t, path, want.tsharkArgs)
			if len(ts) != len(frames) {
				t.Fatalf("tshark has %d frames, pcapgo %d", len(ts), len(frames))
			}
			var d Decoder
			var rec Record
			total := map[string][2]int{}
			reasons := map[Reason]int{}
			mySPI, tsSPI := map[uint64]*spiStat{}, map[uint64]*spiStat{}
			myWG, tsWG := map[uint64]int{}, map[uint64]int{}
			myIKE, tsIKE := map[uint64]int{}, map[uint64]int{}
			flows := map[string]bool{}
			bad := 0
			fail := func(format string, args ...any) {
				bad++
				if bad <= 15 {
					t.Errorf(format, args...)
				}
			}
			for i, fr := range frames {
				d.Decode(fr.link, fr.data, &rec)
				tf := &ts[i]
				if rec.Reason != ReasonNone {
					reasons[rec.Reason]++
				}
				mine := decodedProtos(&rec)
				theirs := map[string]int{}
				for _, p := range tf.protos {
					theirs[p]++
				}
				for _, p := range oracleProtos {
					c := total[p]
					c[0] += mine[p]
					c[1] += theirs[p]
					total[p] = c
					if mine[p] != theirs[p] {
						fail("frame %d: %s: vpndiag %d, tshark %d (tshark %s, reason %v)",
							fr.num, p, mine[p], theirs[p], strings.Join(tf.protos, ":"), rec.Reason)
					}
				}
				if a, b := decodedFlow(&rec), tsharkFlow(tf); a != b {
					fail("frame %d: innermost flow: vpndiag %q, tshark %q", fr.num, a, b)
				} else if a != "" {
					flows[a] = true
				}
				// Tunnel IDs, in order of appearance.
				var vni, gvni, keys, calls, greSeqs []uint64
				for j := 0; j < int(rec.NumTunnel); j++ {
					tu := &rec.Tunnels[j]
					if tu.Kind == TunnelGRE && tu.HasSeq {
						greSeqs = append(greSeqs, uint64(tu.Seq))
					}
					switch {
					case tu.Kind == TunnelVXLAN:
						vni = append(vni, uint64(tu.ID))
					case tu.Kind == TunnelGENEVE:
						gvni = append(gvni, uint64(tu.ID))
					case tu.Kind == TunnelGRE && tu.Version == 1:
						// tshark shows enhanced GRE's key as payload length and call ID.
						calls = append(calls, uint64(tu.Session))
					case tu.Kind == TunnelGRE && tu.HasKey:
						keys = append(keys, uint64(tu.ID))
					case tu.Kind == TunnelESP || tu.Kind == TunnelESPinUDP:
						s := mySPI[uint64(tu.ID)]
						if s == nil {
							s = &spiStat{}
							mySPI[uint64(tu.ID)] = s
						}
						s.add(uint64(tu.Seq))
					}
				}
				for _, c := range []struct {
					field string
					mine  []uint64
				}{{"vxlan.vni", vni}, {"geneve.vni", gvni}, {"gre.key", keys}, {"gre.key.call_id", calls}, {"gre.sequence_number", greSeqs}} {
					var theirs []uint64
					for _, v := range tf.fields[c.field] {
						theirs = append(theirs, parseUint(t, v))
					}
					if fmt.Sprint(c.mine) != fmt.Sprint(theirs) {
						fail("frame %d: %s: vpndiag %v, tshark %v", fr.num, c.field, c.mine, theirs)
					}
				}
				spis, seqs := tf.fields["esp.spi"], tf.fields["esp.sequence"]
				for j, spi := range spis {
					s := tsSPI[parseUint(t, spi)]
					if s == nil {
						s = &spiStat{}
						tsSPI[parseUint(t, spi)] = s
					}
					if j < len(seqs) {
						s.add(parseUint(t, seqs[j]))
					}
				}
				if rec.WireGuard.Type != 0 {
					myWG[uint64(rec.WireGuard.Type)]++
				}
				for _, v := range tf.fields["wg.type"] {
					tsWG[parseUint(t, v)]++
				}
				if rec.IKE.Valid {
					myIKE[uint64(rec.IKE.Exchange)]++
				}
				for _, v := range tf.fields["isakmp.exchangetype"] {
					tsIKE[parseUint(t, v)]++
				}
			}
			cmpMaps := func(what string, a, b any) {
				if fmt.Sprint(a) != fmt.Sprint(b) {
					t.Errorf("%s: vpndiag %v, tshark %v", what, a, b)
				}
			}
			cmpMaps("ESP SPI stats", spiString(mySPI), spiString(tsSPI))
			cmpMaps("WireGuard message types", myWG, tsWG)
			cmpMaps("IKE exchange types", myIKE, tsIKE)
			if fmt.Sprint(reasons) != fmt.Sprint(nonZero(want.reasons)) {
				t.Errorf("reasons: got %v, oracle table says %v", reasons, want.reasons)
			}
			var sum []string
			for _, p := range oracleProtos {
				if c := total[p]; c[0]+c[1] > 0 {
					sum = append(sum, fmt.Sprintf("%s=%d/%d", p, c[0], c[1]))
				}
			}
			t.Logf("%d frames, %d inner flows; vpndiag/tshark: %s; reasons %v; esp %s; wg %v; ike %v",
				len(frames), len(flows), strings.Join(sum, " "), reasons, spiString(mySPI), myWG, myIKE)
		})
	}
}

func spiString(m map[uint64]*spiStat) string {
	var keys []uint64
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	var parts []string
	for _, k := range keys {
		s := m[k]
		parts = append(parts, fmt.Sprintf("%#x:n=%d,seq=%d..%d", k, s.n, s.min, s.max))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func nonZero(m map[Reason]int) map[Reason]int {
	out := map[Reason]int{}
	for k, v := range m {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}
