package capture

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// multiCapture is a hand-written pcapng with two sections: the first has an
// Ethernet interface with nanosecond resolution and a raw-IP interface with
// the default microsecond resolution, packets on both, interface statistics
// (two ISBs for interface 0: the last wins), a Name Resolution Block, an
// unknown block and packet options; the second has an SLL2 interface with
// millisecond resolution, a Simple Packet Block and an Enhanced Packet Block.
type multiCapture struct {
	data   []byte
	frames []Frame // expected, Data included
	// skipped counts numbered non-packet records (custom blocks)
	skipped int
}

func buildMulti(bo interface {
	binary.ByteOrder
	binary.AppendByteOrder
}) multiCapture {
	b := &ngBuilder{bo: bo}
	var mc multiCapture
	add := func(iface int, lt uint16, tns int64, data []byte, wire int) {
		mc.frames = append(mc.frames, Frame{Data: data, Time: tns, WireLen: wire, Iface: iface, LinkType: lt,
			Number: uint64(len(mc.frames) + 1 + mc.skipped), Offset: int64(b.offs[len(b.offs)-1])})
	}
	b.shb(ngOpt{4, []byte("vpndiag test")})
	b.idb(1, 65535, ngOpt{2, []byte("eth0")}, ngOpt{3, []byte("outside")},
		ngOpt{11, append([]byte{0}, "udp port 4500"...)}, ngOpt{9, []byte{9}})
	b.idb(101, 262144, ngOpt{2, []byte("wg0")})
	nrb := append(b.u16(1), b.u16(7)...) // nrb_record_ipv4, 4 address bytes + "gw\0"
	nrb = append(nrb, 198, 18, 0, 1, 'g', 'w', 0, 0)
	b.block(ngNRB, append(nrb, 0, 0, 0, 0)) // nrb_record_end
	b.block(0x40000BAD, append(b.u32(32473), "custom block payload"...))
	mc.skipped++ // Wireshark numbers the custom block as frame 1
	for i := range 6 {
		tm := testTime(i).UnixNano()
		d := testFrame(i, 60+i)
		if i%2 == 0 {
			b.epb(0, uint64(tm), d, uint32(len(d)+4), ngOpt{1, []byte("a comment")}, ngOpt{2, b.u32(1)})
			add(0, 1, tm, d, len(d)+4)
		} else {
			b.epb(1, uint64(tm/1000), d, uint32(len(d)))
			add(1, 101, tm/1000*1000, d, len(d))
		}
		if i == 2 {
			b.isb(0, uint64(tm), ngOpt{4, b.u64(1000)}, ngOpt{5, b.u64(7)})
		}
	}
	b.isb(0, uint64(testTime(9).UnixNano()), ngOpt{4, b.u64(2000)}, ngOpt{5, b.u64(9)})
	b.isb(1, uint64(testTime(9).UnixNano()/1000), ngOpt{5, b.u64(3)})

	b.shb()
	b.idb(276, 128, ngOpt{2, []byte("any")}, ngOpt{9, []byte{3}})
	d := testFrame(7, 100)
	b.spb(d, 100)
	add(2, 276, 0, d, 100)
	tm := testTime(8).UnixNano()
	d = testFrame(8, 90)
	b.epb(0, uint64(tm/1e6), d, 1500)
	add(2, 276, tm/1e6*1e6, d, 1500)
	mc.data = b.buf
	return mc
}

// TestPcapngMultiInterface reads the two-section, three-interface capture in
// both byte orders and checks every frame's interface, link type, time (per
// interface resolution), lengths, data and offset, the interfaces' names,
// filters and last-ISB statistics; tshark must read the same frames.
func TestPcapngMultiInterface(t *testing.T) {
	for _, tc := range []struct {
		name string
		mc   multiCapture
	}{
		{"little-endian", buildMulti(binary.LittleEndian)},
		{"big-endian", buildMulti(binary.BigEndian)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, err := NewReader(tc.name, bytes.NewReader(tc.mc.data), int64(len(tc.mc.data)))
			if err != nil {
				t.Fatal(err)
			}
			if src.Format() != "pcapng" {
				t.Errorf("Format() = %q", src.Format())
			}
			var f Frame
			for i, want := range tc.mc.frames {
				if err := src.Next(&f); err != nil {
					t.Fatalf("frame %d: %v", i+1, err)
				}
				if !bytes.Equal(f.Data, want.Data) {
					t.Fatalf("frame %d: data differs", i+1)
				}
				if f.Time != want.Time || f.WireLen != want.WireLen || f.Iface != want.Iface ||
					f.LinkType != want.LinkType || f.Number != want.Number || f.Offset != want.Offset {
					f.Data, want.Data = nil, nil
					t.Fatalf("frame %d:\n got  %+v\n want %+v", i+1, f, want)
				}
			}
			if err := src.Next(&f); err != io.EOF {
				t.Fatalf("after the last frame: %v, want io.EOF", err)
			}
			want := []Interface{
				{Name: "eth0", Description: "outside", Filter: "udp port 4500", LinkType: 1, SnapLen: 65535, HasStats: true, Received: 2000, Dropped: 9},
				{Name: "wg0", LinkType: 101, SnapLen: 262144, HasStats: true, Received: 0, Dropped: 3},
				{Name: "any", LinkType: 276, SnapLen: 128},
			}
			got := src.Interfaces()
			if len(got) != len(want) {
				t.Fatalf("Interfaces() = %+v", got)
			}
			for i := range want {
				if got[i] != want[i] {
					t.Errorf("interface %d:\n got  %+v\n want %+v", i, got[i], want[i])
				}
			}

			// The oracle: tshark reads the same file the same way.
			p := filepath.Join(t.TempDir(), "multi.pcapng")
			if err := os.WriteFile(p, tc.mc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			src2, err := Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer src2.Close()
			frames, err := readAll(t, src2)
			if err != io.EOF {
				t.Fatal(err)
			}
			compareWithTshark(t, tc.name, frames, runTshark(t, p), true, 0, 2)
		})
	}
}

// TestPcapVariants reads pcap in both byte orders and both resolutions and
// checks times (microsecond files lose the sub-microsecond part), lengths,
// offsets and the header's link type and snap length.
func TestPcapVariants(t *testing.T) {
	const n, size = 50, 70
	for _, tc := range []struct {
		name string
		data []byte
		div  int64
	}{
		{"le-micro", makePcap(t, n, size, false), 1000},
		{"le-nano", makePcap(t, n, size, true), 1},
		{"be-micro", swapPcap(makePcap(t, n, size, false)), 1000},
		{"be-nano", swapPcap(makePcap(t, n, size, true)), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, err := NewReader(tc.name, bytes.NewReader(tc.data), int64(len(tc.data)))
			if err != nil {
				t.Fatal(err)
			}
			var f Frame
			for i := range n {
				if err := src.Next(&f); err != nil {
					t.Fatalf("frame %d: %v", i+1, err)
				}
				wantT := testTime(i).UnixNano() / tc.div * tc.div
				if f.Time != wantT || f.WireLen != size+i%3 || !bytes.Equal(f.Data, testFrame(i, size)) ||
					f.Number != uint64(i+1) || f.Offset != int64(24+i*(16+size)) || f.LinkType != 1 || f.Iface != 0 {
					t.Fatalf("frame %d: %+v (want time %d)", i+1, f, wantT)
				}
			}
			if err := src.Next(&f); err != io.EOF {
				t.Fatalf("end: %v", err)
			}
			if ifs := src.Interfaces(); len(ifs) != 1 || ifs[0].LinkType != 1 || ifs[0].SnapLen != 65535 || ifs[0].HasStats {
				t.Fatalf("Interfaces() = %+v", ifs)
			}
			if r, total := src.Progress(); r != int64(len(tc.data)) || total != int64(len(tc.data)) {
				t.Fatalf("Progress() = %d/%d", r, total)
			}
		})
	}
}
