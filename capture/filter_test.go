package capture

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os/exec"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/bpf"
)

// filterExprs are compiled by both tcpdump and the native compiler and run
// over every test frame.
var filterExprs = []string{
	"", "ip", "ip6", "arp", "rarp", "tcp", "udp", "sctp", "icmp", "icmp6", "igmp", "esp", "ah",
	"port 53", "udp port 53", "tcp port 179", "src port 53", "dst port 53", "tcp src port 80",
	"udp dst port 4500", "port 500 or port 4500", "udp port 500 or 4500", "port domain",
	"host 198.18.0.1", "src host 198.18.1.2", "dst host 198.18.1.2", "host 10.0.0.1 or 10.0.0.2",
	"ip host 192.168.1.1", "arp host 192.168.1.1", "src or dst host 198.18.0.1", "src and dst host 198.18.0.1",
	"net 192.168.0.0/16", "src net 10.0.0.0/8", "dst net 172.16.0.0/12", "net 198.18", "net 198.18.0.0/15",
	"host 2001:2::1", "ip6 host 2001:2::2", "net 2001:2::/48", "src net 2001:2::/33", "net fe80::/10",
	"ip proto 50", "ip6 proto 50", "proto 47", "proto 17", "ip proto 4",
	"tcp and port 80", "udp and not port 53", "not ip", "not (tcp or udp)", "!icmp && !arp",
	"(udp or icmp) and net 198.18.0.0/15", "ip and (tcp[13] = 2 or udp)",
	"tcp or udp and host 198.18.1.2", "not host 198.18.1.2 and not arp",
	"host 198.18.1.2 and (port 53 or icmp)", "icmp or icmp6 or arp",
}

// filterFrame is one frame of one link type.
type filterFrame struct {
	lt   uint16
	data []byte
}

// corpusTestFrames reads every capture of the corpus, keeps its Ethernet and
// Linux cooked frames, derives raw-IP, SLL and SLL2 versions of them, and
// adds synthetic frames for cases the corpus lacks (IPv6 transport, SCTP,
// fragments, the lab's addresses).
func corpusTestFrames(t *testing.T) []filterFrame {
	t.Helper()
	var frames []filterFrame
	add := func(lt uint16, b []byte) { frames = append(frames, filterFrame{lt, append([]byte(nil), b...)}) }
	for _, p := range corpusFiles(t) {
		if sniffFile(t, p) == kindUnknown {
			continue
		}
		src, err := Open(p)
		if err != nil {
			t.Fatalf("open %s: %v", p, err)
		}
		var f Frame
		for {
			err := src.Next(&f)
			if err == io.EOF {
				break
			}
			var ce *Error
			if errors.As(err, &ce) {
				break // damaged corpus file: the frames before count
			}
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			addDerived(add, f.LinkType, f.Data)
		}
		src.Close()
	}
	for _, b := range syntheticFrames(t) {
		addDerived(add, LinkTypeEthernet, b)
	}
	return frames
}

// addDerived adds a frame and its other link-type forms.
func addDerived(add func(uint16, []byte), lt uint16, b []byte) {
	var et uint16
	var payload []byte
	switch lt {
	case LinkTypeEthernet:
		if len(b) < 14 {
			add(lt, b)
			return
		}
		et, payload = binary.BigEndian.Uint16(b[12:14]), b[14:]
	case LinkTypeLinuxSLL:
		if len(b) < 16 {
			add(lt, b)
			return
		}
		et, payload = binary.BigEndian.Uint16(b[14:16]), b[16:]
	default:
		return
	}
	eth := make([]byte, 14, 14+len(payload))
	copy(eth, []byte{2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2})
	binary.BigEndian.PutUint16(eth[12:], et)
	add(LinkTypeEthernet, append(eth, payload...))
	sll := make([]byte, 16, 16+len(payload))
	binary.BigEndian.PutUint16(sll[2:], 1)
	binary.BigEndian.PutUint16(sll[4:], 6)
	binary.BigEndian.PutUint16(sll[14:], et)
	add(LinkTypeLinuxSLL, append(sll, payload...))
	sll2 := make([]byte, 20, 20+len(payload))
	binary.BigEndian.PutUint16(sll2[0:], et)
	binary.BigEndian.PutUint32(sll2[4:], 2)
	binary.BigEndian.PutUint16(sll2[8:], 1)
	sll2[11] = 6
	add(LinkTypeLinuxSLL2, append(sll2, payload...))
	if et == etIPv4 || et == etIPv6 {
		add(LinkTypeRaw, payload)
	}
}

// syntheticFrames builds Ethernet frames over IPv4/IPv6 with TCP, UDP, SCTP,
// ICMP, ICMPv6, ESP, fragments and ARP, between lab addresses.
func syntheticFrames(t *testing.T) [][]byte {
	t.Helper()
	v4 := []string{"198.18.0.1", "198.18.1.2", "198.19.255.1", "10.0.0.1", "192.168.1.1"}
	v6 := []string{"2001:2::1", "2001:2::2", "2001:2:0:8000::5", "fe80::1", "2001:db8::1"}
	ports := []uint16{53, 80, 179, 500, 4500, 1234}
	var out [][]byte
	ser := func(ls ...gopacket.SerializableLayer) {
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true}, ls...); err != nil {
			t.Fatalf("serialize: %v", err)
		}
		out = append(out, append([]byte(nil), buf.Bytes()...))
	}
	eth := func(et layers.EthernetType) *layers.Ethernet {
		return &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: et}
	}
	payload := gopacket.Payload([]byte("vpndiag filter test"))
	for i, s := range v4 {
		d := v4[(i+1)%len(v4)]
		p, q := ports[i%len(ports)], ports[(i+2)%len(ports)]
		ip := func(proto layers.IPProtocol, frag uint16, flags layers.IPv4Flag) *layers.IPv4 {
			return &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: proto, SrcIP: net.ParseIP(s), DstIP: net.ParseIP(d), FragOffset: frag, Flags: flags}
		}
		tcp := &layers.TCP{SrcPort: layers.TCPPort(p), DstPort: layers.TCPPort(q), SYN: i%2 == 0, ACK: true, Window: 100}
		ser(eth(layers.EthernetTypeIPv4), ip(layers.IPProtocolTCP, 0, 0), tcp, payload)
		udp := &layers.UDP{SrcPort: layers.UDPPort(q), DstPort: layers.UDPPort(p)}
		ser(eth(layers.EthernetTypeIPv4), ip(layers.IPProtocolUDP, 0, layers.IPv4MoreFragments), udp, payload)
		// A later fragment whose payload looks like ports 53/53.
		ser(eth(layers.EthernetTypeIPv4), ip(layers.IPProtocolUDP, 100, 0), gopacket.Payload([]byte{0, 53, 0, 53, 0, 8, 0, 0}))
		ser(eth(layers.EthernetTypeIPv4), ip(layers.IPProtocolSCTP, 0, 0), gopacket.Payload([]byte{byte(p >> 8), byte(p), byte(q >> 8), byte(q), 0, 0, 0, 0, 0, 0, 0, 0}))
		ser(eth(layers.EthernetTypeIPv4), ip(layers.IPProtocolICMPv4, 0, 0), &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0)}, payload)
		ser(eth(layers.EthernetTypeIPv4), ip(layers.IPProtocolESP, 0, 0), gopacket.Payload([]byte{0, 0, 1, 0, 0, 0, 0, 1}))
		ser(eth(layers.EthernetTypeIPv4), ip(layers.IPProtocolAH, 0, 0), gopacket.Payload([]byte{17, 4, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0}))
		ser(eth(layers.EthernetTypeIPv4), ip(layers.IPProtocolIGMP, 0, 0), gopacket.Payload([]byte{0x11, 0, 0, 0, 0, 0, 0, 0}))
		// IPv4 with options (IHL 6): the port must be read behind them.
		opt := ip(layers.IPProtocolUDP, 0, 0)
		opt.Options = []layers.IPv4Option{{OptionType: 1}, {OptionType: 1}, {OptionType: 1}, {OptionType: 0}}
		ser(eth(layers.EthernetTypeIPv4), opt, &layers.UDP{SrcPort: layers.UDPPort(p), DstPort: 53}, payload)
		ser(eth(layers.EthernetTypeARP), &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
			HwAddressSize: 6, ProtAddressSize: 4, Operation: 1, SourceHwAddress: []byte{2, 0, 0, 0, 0, 1},
			SourceProtAddress: net.ParseIP(s).To4(), DstHwAddress: make([]byte, 6), DstProtAddress: net.ParseIP(d).To4()})
		// A truncated frame: the IPv4 header ends before the ports.
		buf := out[len(out)-10]
		out = append(out, append([]byte(nil), buf[:30]...))
	}
	// Source and destination equal (for "src and dst host").
	self := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.ParseIP("198.18.0.1"), DstIP: net.ParseIP("198.18.0.1")}
	ser(eth(layers.EthernetTypeIPv4), self, &layers.UDP{SrcPort: 9, DstPort: 9}, payload)
	for i, s := range v6 {
		d := v6[(i+1)%len(v6)]
		p, q := ports[i%len(ports)], ports[(i+3)%len(ports)]
		ip := func(nh layers.IPProtocol) *layers.IPv6 {
			return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: nh, SrcIP: net.ParseIP(s), DstIP: net.ParseIP(d)}
		}
		tcp := &layers.TCP{SrcPort: layers.TCPPort(p), DstPort: layers.TCPPort(q), ACK: true}
		ser(eth(layers.EthernetTypeIPv6), ip(layers.IPProtocolTCP), tcp, payload)
		udp := &layers.UDP{SrcPort: layers.UDPPort(q), DstPort: layers.UDPPort(p)}
		ser(eth(layers.EthernetTypeIPv6), ip(layers.IPProtocolUDP), udp, payload)
		ser(eth(layers.EthernetTypeIPv6), ip(layers.IPProtocolSCTP), gopacket.Payload([]byte{byte(p >> 8), byte(p), byte(q >> 8), byte(q), 0, 0, 0, 0}))
		ser(eth(layers.EthernetTypeIPv6), ip(layers.IPProtocolICMPv6), gopacket.Payload([]byte{128, 0, 0, 0, 0, 1, 0, 1}))
		ser(eth(layers.EthernetTypeIPv6), ip(layers.IPProtocolESP), gopacket.Payload([]byte{0, 0, 1, 0, 0, 0, 0, 1}))
		// A fragment header in front of UDP and of ICMPv6.
		for _, nh := range []byte{17, 58} {
			ser(eth(layers.EthernetTypeIPv6), ip(layers.IPProtocolIPv6Fragment),
				gopacket.Payload([]byte{nh, 0, 0, 1, 0, 0, 0, 7, byte(p >> 8), byte(p), 0, 53, 0, 16, 0, 0}))
		}
	}
	return out
}

// TestNativeFilterMatchesTcpdump compiles every expression of filterExprs
// with tcpdump -ddd and with the native compiler for Ethernet, raw IP, SLL
// and SLL2, runs both programs in the BPF VM over every corpus and synthetic
// frame of that link type, and requires identical accept/reject decisions.
// Where tcpdump rejects an expression, the native compiler must too.
func TestNativeFilterMatchesTcpdump(t *testing.T) {
	if _, err := exec.LookPath("tcpdump"); err != nil {
		t.Fatal("tcpdump is the oracle of this test: apt-get install tcpdump")
	}
	frames := corpusTestFrames(t)
	byLT := map[uint16][][]byte{}
	for _, f := range frames {
		byLT[f.lt] = append(byLT[f.lt], f.data)
	}
	for _, lt := range []uint16{LinkTypeEthernet, LinkTypeRaw, LinkTypeLinuxSLL, LinkTypeLinuxSLL2} {
		if len(byLT[lt]) < 500 {
			t.Fatalf("link type %d: only %d test frames", lt, len(byLT[lt]))
		}
	}
	t.Logf("frames: ethernet %d, raw %d, sll %d, sll2 %d", len(byLT[1]), len(byLT[101]), len(byLT[113]), len(byLT[276]))
	for _, expr := range filterExprs {
		for _, lt := range []uint16{LinkTypeEthernet, LinkTypeRaw, LinkTypeLinuxSLL, LinkTypeLinuxSLL2} {
			want, werr := CompileFilterTcpdump(t.Context(), expr, lt, 0)
			got, gerr := CompileFilterNative(expr, lt, 0)
			if strings.Contains(expr, "tcp[") {
				// Byte-offset expressions are tcpdump-only.
				if werr != nil || gerr == nil {
					t.Errorf("%q lt %d: tcpdump err %v, native err %v; want tcpdump ok, native error", expr, lt, werr, gerr)
				}
				continue
			}
			if (werr != nil) != (gerr != nil) {
				t.Errorf("%q lt %d: tcpdump err %v, native err %v", expr, lt, werr, gerr)
				continue
			}
			if werr != nil {
				continue
			}
			wm, err := NewFilterMatcher(want)
			if err != nil {
				t.Fatal(err)
			}
			gm, err := NewFilterMatcher(got)
			if err != nil {
				t.Fatalf("%q: native program does not load: %v", expr, err)
			}
			acc, diff := 0, 0
			for i, b := range byLT[lt] {
				w, _ := wm.Match(b)
				g, _ := gm.Match(b)
				if w {
					acc++
				}
				if w != g {
					if diff < 3 {
						t.Errorf("%q lt %d frame %d (%d bytes): tcpdump %v, native %v: % x", expr, lt, i, len(b), w, g, b[:min(len(b), 64)])
					}
					diff++
				}
			}
			if lt == LinkTypeEthernet {
				t.Logf("%-45q accepts %5d of %d", expr, acc, len(byLT[lt]))
				if expr != "" && expr != "rarp" && (acc == 0 || acc == len(byLT[lt])) {
					t.Errorf("%q accepts %d of %d Ethernet frames: the test frames do not exercise it", expr, acc, len(byLT[lt]))
				}
			}
		}
	}
}

// TestFilterErrors checks that bad expressions are errors naming the
// expression and the place.
func TestFilterErrors(t *testing.T) {
	for _, tc := range []struct{ expr, want string }{
		{"host", "expected a value"},
		{"port 99999", "not a port number"},
		{"host 1.2.3", "not an IP address"},
		{"(tcp", "missing )"},
		{"tcp)", `unexpected ")"`},
		{"tcp port 80 and", "ends early"},
		{"ip host 2001:2::1", "IPv6"},
		{"net 198.18.0.1/15", "non-network bits"},
		{"tcp host 1.2.3.4", "modifier"},
		{"udp $", "unexpected character"},
		{"arp", "rejects all packets"}, // on raw IP, below
	} {
		lt := uint16(LinkTypeEthernet)
		if tc.expr == "arp" {
			lt = LinkTypeRaw
		}
		_, err := CompileFilterNative(tc.expr, lt, 0)
		var fe *FilterError
		if !errors.As(err, &fe) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.expr) {
			t.Errorf("%q: got %v, want a FilterError containing %q", tc.expr, err, tc.want)
		}
	}
	if _, err := CompileFilterNative("tcp", 9999, 0); err == nil || !strings.Contains(err.Error(), "link type 9999") {
		t.Errorf("unknown link type: %v", err)
	}
	// tcpdump's own message comes through CompileFilter.
	_, err := CompileFilter("tcp port eighty", LinkTypeEthernet, 0)
	var fe *FilterError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "eighty") {
		t.Errorf("tcpdump error: %v", err)
	}
}

// TestFilterSnapLen checks that accepted frames return the snapshot length.
func TestFilterSnapLen(t *testing.T) {
	for _, compile := range []func() ([]bpf.RawInstruction, error){
		func() ([]bpf.RawInstruction, error) { return CompileFilterNative("udp", LinkTypeRaw, 96) },
		func() ([]bpf.RawInstruction, error) { return CompileFilterTcpdump(t.Context(), "udp", LinkTypeRaw, 96) },
	} {
		prog, err := compile()
		if err != nil {
			t.Fatal(err)
		}
		last := prog[len(prog)-2]
		if last.K != 96 {
			t.Errorf("accept returns %d, want 96", last.K)
		}
	}
}

// FuzzFilterNative: any expression either fails with a *FilterError or
// compiles to a program the BPF VM loads and runs, for every link type.
func FuzzFilterNative(f *testing.F) {
	for _, e := range filterExprs {
		f.Add(e)
	}
	f.Add("src or dst net 10 and not (ip6 proto 58 || port 53 or 54)")
	frame := make([]byte, 80)
	binary.BigEndian.PutUint16(frame[12:], 0x0800)
	frame[14] = 0x45
	f.Fuzz(func(t *testing.T, expr string) {
		for _, lt := range []uint16{LinkTypeEthernet, LinkTypeRaw, LinkTypeLinuxSLL, LinkTypeLinuxSLL2} {
			prog, err := CompileFilterNative(expr, lt, 0)
			if err != nil {
				var fe *FilterError
				if !errors.As(err, &fe) {
					t.Fatalf("%q: error %v is not a *FilterError", expr, err)
				}
				continue
			}
			m, err := NewFilterMatcher(prog)
			if err != nil {
				t.Fatalf("%q: program does not load: %v", expr, err)
			}
			m.Match(frame)
			m.Match(frame[:20])
		}
	})
}
