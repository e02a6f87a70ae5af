package decode

import (
	"testing"

	"github.com/gopacket/gopacket/layers"
)

// BenchmarkDecode measures Decode per frame: over the mix of all corpus
// frames (cycled), over a synthetic VXLAN/UDP/IPv4/TCP frame, and over a
// plain Ethernet/IPv4/TCP frame.
func BenchmarkDecode(b *testing.B) {
	corpus := corpusAll(b)
	vxlan := udpFrame(b, 50000, 4789, cat([]byte{0x08, 0, 0, 0}, u32(0x123456<<8), innerEthIPv4TCP(b)))
	plain := cat(ethHdr(macB, macA, layers.EthernetTypeIPv4), innerIPv4TCP(b))
	b.Run("corpus-mix", func(b *testing.B) {
		var d Decoder
		var rec Record
		var bytes int64
		for _, f := range corpus {
			bytes += int64(len(f.data))
		}
		b.SetBytes(bytes / int64(len(corpus)))
		b.ReportAllocs()
		n := 0
		for b.Loop() {
			f := &corpus[n]
			d.Decode(f.link, f.data, &rec)
			if n++; n == len(corpus) {
				n = 0
			}
		}
	})
	for _, c := range []struct {
		name string
		data []byte
	}{{"vxlan-tcp", vxlan}, {"ethernet-tcp", plain}} {
		b.Run(c.name, func(b *testing.B) {
			var d Decoder
			var rec Record
			b.SetBytes(int64(len(c.data)))
			b.ReportAllocs()
			for b.Loop() {
				d.Decode(LinkEthernet, c.data, &rec)
			}
			if rec.NumLevels == 0 {
				b.Fatal("not decoded")
			}
		})
	}
}
