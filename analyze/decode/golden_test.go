package decode

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// goldenCase is a tcpdump golden output in the corpus and how many facts of
// each kind the test must find in it (so it cannot pass vacuously).
type goldenCase struct {
	pcap, out string
	counts    map[string]int
}

var goldenCases = []goldenCase{
	{"espudp1.pcap", "espudp1.out", map[string]int{"esp": 8}},
	{"vxlan.pcap", "vxlan.out", map[string]int{"vni": 10, "arp": 2}},
	{"geneve.pcap", "geneve-vv.out", map[string]int{"vni": 39}},
	{"various_gre.pcap", "various_gre.out", map[string]int{"key": 30}},
	{"ikev2four.pcap", "ikev2four.out", map[string]int{"ike": 21}},
	{"isakmp4500.pcap", "isakmp4.out", map[string]int{"ike": 15, "esp": 8, "keepalive": 4, "arp": 8}},
}

var (
	goldenFrame     = regexp.MustCompile(`(?m)^\s*(\d+)  \d{4}-\d\d-\d\d `)
	goldenESP       = regexp.MustCompile(`ESP\(spi=0x([0-9a-f]+),seq=0x([0-9a-f]+)\)`)
	goldenVNI       = regexp.MustCompile(`(?:VXLAN|Geneve), [^\n]*?vni (0x[0-9a-f]+|\d+)`)
	goldenKey       = regexp.MustCompile(`key=0x([0-9a-f]+)`)
	goldenIKEv2     = regexp.MustCompile(`isakmp 2\.0 msgid ([0-9a-f]+): \S+\s+([\w-]+)\[([IR])\]`)
	goldenIKEv1     = regexp.MustCompile(`isakmp: phase \S+ ([IR]) ([\w-]+)`)
	goldenKeepalive = regexp.MustCompile(`isakmp-nat-keep-alive`)
	goldenARPReq    = regexp.MustCompile(`Request who-has ([0-9.]+) tell ([0-9.]+)`)
	goldenARPReply  = regexp.MustCompile(`Reply ([0-9.]+) is-at ([0-9a-f:]+)`)
)

var ikeExchanges = map[string]uint8{
	"ikev2_init": 34, "ikev2_auth": 35, "child_sa": 36, "inf2": 37,
	"ident": 2, "agg": 4, "inf": 5, "oakley-quick": 32,
}

// TestTcpdumpGolden checks the decoder against tcpdump's committed golden
// outputs in the corpus: ESP SPI and sequence, VXLAN/GENEVE VNI, GRE keys,
// IKE version/exchange/message ID/direction/NAT-T, NAT keepalives and ARP
// fields, frame by frame.
func TestTcpdumpGolden(t *testing.T) {
	dir := filepath.Join(corpusDir(t), "the-tcpdump-group_tcpdump")
	for _, gc := range goldenCases {
		t.Run(gc.out, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(dir, gc.out))
			if err != nil {
				t.Fatalf("read golden: %v", err)
			}
			text := string(raw)
			frames := readCapture(t, filepath.Join(dir, gc.pcap))
			starts := goldenFrame.FindAllStringSubmatchIndex(text, -1)
			if len(starts) != len(frames) {
				t.Fatalf("%s has %d packets, %s %d frames", gc.out, len(starts), gc.pcap, len(frames))
			}
			found := map[string]int{}
			var d Decoder
			var rec Record
			for i, st := range starts {
				end := len(text)
				if i+1 < len(starts) {
					end = starts[i+1][0]
				}
				body := text[st[0]:end]
				num, _ := strconv.Atoi(text[st[2]:st[3]])
				if num != i+1 {
					t.Fatalf("golden packet %d numbered %d", i+1, num)
				}
				d.Decode(frames[i].link, frames[i].data, &rec)
				checkGoldenFrame(t, num, body, &rec, found)
			}
			for k, n := range gc.counts {
				if found[k] != n {
					t.Errorf("%s: checked %d %s facts, want %d", gc.out, found[k], k, n)
				}
			}
			t.Logf("%s: %v", gc.out, found)
		})
	}
}

func hexU(t *testing.T, s string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return v
}

func checkGoldenFrame(t *testing.T, num int, body string, rec *Record, found map[string]int) {
	t.Helper()
	tunnels := func(match func(*Tunnel) bool) []*Tunnel {
		var out []*Tunnel
		for i := 0; i < int(rec.NumTunnel); i++ {
			if match(&rec.Tunnels[i]) {
				out = append(out, &rec.Tunnels[i])
			}
		}
		return out
	}
	esps := tunnels(func(tu *Tunnel) bool { return tu.Kind == TunnelESP || tu.Kind == TunnelESPinUDP })
	ms := goldenESP.FindAllStringSubmatch(body, -1)
	if len(ms) != len(esps) {
		t.Errorf("frame %d: %d ESP headers in golden, %d decoded", num, len(ms), len(esps))
	}
	for i := 0; i < len(ms) && i < len(esps); i++ {
		if uint64(esps[i].ID) != hexU(t, ms[i][1]) || uint64(esps[i].Seq) != hexU(t, ms[i][2]) {
			t.Errorf("frame %d: ESP spi %#x seq %d, golden %s", num, esps[i].ID, esps[i].Seq, ms[i][0])
		}
		found["esp"]++
	}
	vnis := tunnels(func(tu *Tunnel) bool { return tu.Kind == TunnelVXLAN || tu.Kind == TunnelGENEVE })
	ms = goldenVNI.FindAllStringSubmatch(body, -1)
	if len(ms) != len(vnis) {
		t.Errorf("frame %d: %d VNIs in golden, %d decoded", num, len(ms), len(vnis))
	}
	for i := 0; i < len(ms) && i < len(vnis); i++ {
		want, err := strconv.ParseUint(ms[i][1], 0, 32)
		if err != nil || uint64(vnis[i].ID) != want {
			t.Errorf("frame %d: VNI %d, golden %s", num, vnis[i].ID, ms[i][0])
		}
		found["vni"]++
	}
	keys := tunnels(func(tu *Tunnel) bool { return tu.Kind == TunnelGRE && tu.HasKey })
	ms = goldenKey.FindAllStringSubmatch(body, -1)
	// tcpdump 4.99 does not decode Cisco metadata (GRE protocol 0x8909) and
	// so never sees the GRE keepalive inside it: it shows only the outer key.
	if len(keys) > len(ms) && regexp.MustCompile(`gre-proto-0x8909`).MatchString(body) {
		keys = keys[:len(ms)]
	}
	if len(ms) != len(keys) {
		t.Errorf("frame %d: %d GRE keys in golden, %d decoded", num, len(ms), len(keys))
	}
	for i := 0; i < len(ms) && i < len(keys); i++ {
		if uint64(keys[i].ID) != hexU(t, ms[i][1]) {
			t.Errorf("frame %d: GRE key %#x, golden %s", num, keys[i].ID, ms[i][0])
		}
		found["key"]++
	}
	k := &rec.IKE
	if m := goldenIKEv2.FindStringSubmatch(body); m != nil {
		found["ike"]++
		if !k.Valid || k.Version != 2 || uint64(k.MessageID) != hexU(t, m[1]) ||
			k.Exchange != ikeExchanges[m[2]] || k.Response() != (m[3] == "R") {
			t.Errorf("frame %d: IKE %+v, golden %s", num, *k, m[0])
		}
	} else if m := goldenIKEv1.FindStringSubmatch(body); m != nil {
		found["ike"]++
		natt := regexp.MustCompile(`NONESP-encap`).MatchString(body)
		// IKEv1 has no response flag; tcpdump's I/R is from the cookies.
		if !k.Valid || k.Version != 1 || k.Exchange != ikeExchanges[m[2]] || k.NATT != natt {
			t.Errorf("frame %d: IKE %+v, golden %s (NAT-T %v)", num, *k, m[0], natt)
		}
	} else if k.Valid {
		t.Errorf("frame %d: IKE decoded, none in golden", num)
	}
	if goldenKeepalive.MatchString(body) {
		found["keepalive"]++
		if k.Valid || len(esps) != 0 || rec.Reason != ReasonNone || rec.Inner().L4.DstPort != portNATT {
			t.Errorf("frame %d: NAT keepalive decoded as %+v reason %v", num, rec.Tunnels[:rec.NumTunnel], rec.Reason)
		}
	}
	a := &rec.ARP
	if m := goldenARPReq.FindStringSubmatch(body); m != nil {
		found["arp"]++
		if !a.Valid || a.Op != 1 || a.TargetIP.String() != m[1] || a.SenderIP.String() != m[2] {
			t.Errorf("frame %d: ARP %+v, golden %s", num, *a, m[0])
		}
	} else if m := goldenARPReply.FindStringSubmatch(body); m != nil {
		found["arp"]++
		if !a.Valid || a.Op != 2 || a.SenderIP.String() != m[1] || macString(a.SenderMAC) != m[2] {
			t.Errorf("frame %d: ARP %+v, golden %s", num, *a, m[0])
		}
	}
}

func macString(m [6]byte) string {
	const hex = "0123456789abcdef"
	b := make([]byte, 0, 17)
	for i, c := range m {
		if i > 0 {
			b = append(b, ':')
		}
		b = append(b, hex[c>>4], hex[c&15])
	}
	return string(b)
}
