package bgp

import (
	"net/netip"
	"os"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// readTCP extracts the TCP segments of a pcap with gopacket (tests only; the
// product reads captures with the capture and decode packages).
func readTCP(t testing.TB, path string) (segs []Segment, end int64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	for n := uint64(1); ; n++ {
		data, ci, err := r.ReadPacketData()
		if err != nil {
			break
		}
		end = ci.Timestamp.UnixNano()
		p := gopacket.NewPacket(data, r.LinkType(), gopacket.Default)
		tl, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if tl == nil {
			continue
		}
		var src, dst netip.Addr
		switch ip := p.NetworkLayer().(type) {
		case *layers.IPv4:
			src, _ = netip.AddrFromSlice(ip.SrcIP.To4())
			dst, _ = netip.AddrFromSlice(ip.DstIP.To4())
		case *layers.IPv6:
			src, _ = netip.AddrFromSlice(ip.SrcIP)
			dst, _ = netip.AddrFromSlice(ip.DstIP)
		default:
			continue
		}
		var fl uint8
		for bit, on := range map[uint8]bool{flagFin: tl.FIN, flagSyn: tl.SYN, flagRst: tl.RST, flagAck: tl.ACK} {
			if on {
				fl |= bit
			}
		}
		segs = append(segs, Segment{Src: netip.AddrPortFrom(src, uint16(tl.SrcPort)), Dst: netip.AddrPortFrom(dst, uint16(tl.DstPort)),
			Seq: tl.Seq, Flags: fl, Payload: append([]byte(nil), tl.Payload...), Frame: n, Time: ci.Timestamp.UnixNano(), Tunnel: -1})
	}
	return segs, end
}
