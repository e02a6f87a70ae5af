package capture

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// testFrame returns the i-th synthetic frame of size bytes: an Ethernet
// header followed by a counter pattern.
func testFrame(i, size int) []byte {
	b := make([]byte, size)
	for j := range b {
		b[j] = byte(i + j)
	}
	return b
}

// testTime is the timestamp of the i-th synthetic frame: 1.5 s apart, with
// a nanosecond part that microsecond files cannot hold.
func testTime(i int) time.Time {
	return time.Unix(1_700_000_000+int64(i), int64(i)*1_500+123).UTC()
}

// makePcap writes n frames of size bytes with pcapgo.Writer (little
// endian), with nanosecond timestamps if nano.
func makePcap(t testing.TB, n, size int, nano bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w *pcapgo.Writer
	if nano {
		w = pcapgo.NewWriterNanos(&buf)
	} else {
		w = pcapgo.NewWriter(&buf)
	}
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		d := testFrame(i, size)
		ci := gopacket.CaptureInfo{Timestamp: testTime(i), CaptureLength: size, Length: size + i%3}
		if err := w.WritePacket(ci, d); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// swapPcap converts a little-endian pcap into big-endian.
func swapPcap(b []byte) []byte {
	out := bytes.Clone(b)
	sw32 := func(p []byte) { binary.BigEndian.PutUint32(p, binary.LittleEndian.Uint32(p)) }
	sw16 := func(p []byte) { binary.BigEndian.PutUint16(p, binary.LittleEndian.Uint16(p)) }
	sw32(out[0:4])
	sw16(out[4:6])
	sw16(out[6:8])
	for _, o := range []int{8, 12, 16, 20} {
		sw32(out[o : o+4])
	}
	for off := 24; off+16 <= len(out); {
		capLen := int(binary.LittleEndian.Uint32(out[off+8:]))
		for o := 0; o < 16; o += 4 {
			sw32(out[off+o : off+o+4])
		}
		off += 16 + capLen
	}
	return out
}

// ngBuilder hand-writes pcapng in either byte order, for what pcapgo's
// NgWriter cannot write: big endian, microsecond resolution, several
// sections, Simple Packet Blocks and arbitrary block types.
type ngBuilder struct {
	bo interface {
		binary.ByteOrder
		binary.AppendByteOrder
	}
	buf []byte
	// offsets of the blocks written, in order
	offs []int
}

// ngOpt is one option: code and raw value.
type ngOpt struct {
	code uint16
	val  []byte
}

func (b *ngBuilder) u16(v uint16) []byte { return b.bo.AppendUint16(nil, v) }
func (b *ngBuilder) u32(v uint32) []byte { return b.bo.AppendUint32(nil, v) }
func (b *ngBuilder) u64(v uint64) []byte { return b.bo.AppendUint64(nil, v) }

// opts encodes options followed by opt_endofopt (none if there are none).
func (b *ngBuilder) opts(os ...ngOpt) []byte {
	if len(os) == 0 {
		return nil
	}
	var out []byte
	for _, o := range os {
		out = append(out, b.u16(o.code)...)
		out = append(out, b.u16(uint16(len(o.val)))...)
		out = append(out, o.val...)
		for len(out)%4 != 0 {
			out = append(out, 0)
		}
	}
	return append(out, 0, 0, 0, 0)
}

// block appends a block of type typ with body (padded to 4 bytes).
func (b *ngBuilder) block(typ uint32, body []byte) {
	for len(body)%4 != 0 {
		body = append(body, 0)
	}
	n := uint32(12 + len(body))
	b.offs = append(b.offs, len(b.buf))
	b.buf = append(b.buf, b.u32(typ)...)
	b.buf = append(b.buf, b.u32(n)...)
	b.buf = append(b.buf, body...)
	b.buf = append(b.buf, b.u32(n)...)
}

func (b *ngBuilder) shb(os ...ngOpt) {
	body := b.u32(pcapngByteOrderMag)
	body = append(body, b.u16(1)...)
	body = append(body, b.u16(0)...)
	body = append(body, b.u64(^uint64(0))...)
	b.block(ngSHB, append(body, b.opts(os...)...))
}

func (b *ngBuilder) idb(linkType uint16, snap uint32, os ...ngOpt) {
	body := b.u16(linkType)
	body = append(body, 0, 0)
	body = append(body, b.u32(snap)...)
	b.block(ngIDB, append(body, b.opts(os...)...))
}

// epb writes an Enhanced Packet Block; ts is in the interface's units.
func (b *ngBuilder) epb(iface uint32, ts uint64, data []byte, wire uint32, os ...ngOpt) {
	body := b.u32(iface)
	body = append(body, b.u32(uint32(ts>>32))...)
	body = append(body, b.u32(uint32(ts))...)
	body = append(body, b.u32(uint32(len(data)))...)
	body = append(body, b.u32(wire)...)
	body = append(body, data...)
	for len(body)%4 != 0 {
		body = append(body, 0)
	}
	b.block(ngEPB, append(body, b.opts(os...)...))
}

func (b *ngBuilder) spb(data []byte, wire uint32) {
	b.block(ngSPB, append(b.u32(wire), data...))
}

func (b *ngBuilder) isb(iface uint32, ts uint64, os ...ngOpt) {
	body := b.u32(iface)
	body = append(body, b.u32(uint32(ts>>32))...)
	body = append(body, b.u32(uint32(ts))...)
	b.block(ngISB, append(body, b.opts(os...)...))
}

// makePcapng writes n Ethernet frames of size bytes on one interface with
// nanosecond resolution (little endian), the way pcapgo.NgWriter would.
func makePcapng(t testing.TB, n, size int) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := pcapgo.NewNgWriter(&buf, layers.LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		ci := gopacket.CaptureInfo{Timestamp: testTime(i), CaptureLength: size, Length: size, InterfaceIndex: 0}
		if err := w.WritePacket(ci, testFrame(i, size)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
