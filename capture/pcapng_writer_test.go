package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// sliceSource is a Source over frames in memory, with fixed interfaces.
type sliceSource struct {
	frames []Frame
	ifaces []Interface
	i      int
	closed bool
}

func (s *sliceSource) Name() string                  { return "slice" }
func (s *sliceSource) Format() string                { return "live" }
func (s *sliceSource) Interfaces() []Interface       { return slices.Clone(s.ifaces) }
func (s *sliceSource) Progress() (read, total int64) { return 0, 0 }
func (s *sliceSource) Close() error                  { s.closed = true; return nil }
func (s *sliceSource) Next(f *Frame) error {
	if s.i == len(s.frames) {
		return io.EOF
	}
	*f = s.frames[s.i]
	s.i++
	return nil
}

// twoIfaceFrames makes n frames alternating between an Ethernet and a
// raw-IP interface, with nanosecond timestamps and some truncated frames.
func twoIfaceFrames(n int) *sliceSource {
	s := &sliceSource{ifaces: []Interface{
		{Name: "eth0", Description: "gw-out", LinkType: LinkTypeEthernet, SnapLen: 262144, Filter: "udp or icmp", HasStats: true, Received: uint64(n/2 + 5), Dropped: 5},
		{Name: "wg0", Description: "gw-out", LinkType: LinkTypeRaw, SnapLen: 96, Filter: "udp or icmp", HasStats: true, Received: uint64(n / 2), Dropped: 0},
	}}
	for i := range n {
		iface := i % 2
		var data []byte
		wire := 0
		if iface == 0 {
			data = make([]byte, 14+20+8+i%50)
			binary.BigEndian.PutUint16(data[12:], 0x0800)
			copy(data[14:], ipv4Packet(17, [4]byte{198, 18, 0, 1}, [4]byte{198, 18, 0, 2}, 8+i%50))
			wire = len(data)
		} else {
			data = ipv4Packet(1, [4]byte{198, 18, 9, 1}, [4]byte{198, 18, 9, 2}, 200)[:96]
			wire = 220
		}
		s.frames = append(s.frames, Frame{Data: data, Time: 1700000000_123456789 + int64(i)*1001, WireLen: wire, Iface: iface,
			LinkType: s.ifaces[iface].LinkType, Number: uint64(i + 1)})
	}
	return s
}

// TestTeePcapngRoundTrip tees 1000 frames of two interfaces into a pcapng
// file and reads it back with Open: same frames (bytes, nanosecond
// timestamps, wire lengths, interfaces), interface names, descriptions,
// filters, link types, snap lengths, and the statistics (ISB) given at
// Close. tshark must read the file too and report the interface names and
// descriptions and frame lengths per frame.
func TestTeePcapngRoundTrip(t *testing.T) {
	src := twoIfaceFrames(1000)
	want := slices.Clone(src.frames)
	path := filepath.Join(t.TempDir(), "out.pcapng")
	w, err := CreatePcapng(path, src.Interfaces(), WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tee := Tee(src, w)
	var f Frame
	n := 0
	for tee.Next(&f) == nil {
		n++
	}
	if err := tee.Close(); err != nil {
		t.Fatal(err)
	}
	if n != 1000 || !src.closed {
		t.Fatalf("tee passed %d frames, source closed %v", n, src.closed)
	}
	got, its := readBack(t, path)
	if len(got) != len(want) {
		t.Fatalf("read back %d frames, want %d", len(got), len(want))
	}
	for i, g := range got {
		w := want[i]
		if !bytes.Equal(g.Data, w.Data) || g.Time != w.Time || g.WireLen != w.WireLen || g.Iface != w.Iface || g.LinkType != w.LinkType {
			t.Fatalf("frame %d differs: got time %d wire %d iface %d lt %d, want %d %d %d %d", i+1, g.Time, g.WireLen, g.Iface, g.LinkType, w.Time, w.WireLen, w.Iface, w.LinkType)
		}
	}
	if len(its) != 2 {
		t.Fatalf("%d interfaces", len(its))
	}
	for i, it := range its {
		if it != src.ifaces[i] {
			t.Errorf("interface %d read back as %+v, want %+v", i, it, src.ifaces[i])
		}
	}
	// tshark, the reference reader.
	out := tsharkFields(t, path, "frame.interface_name", "frame.interface_description", "frame.len", "frame.cap_len")
	if len(out) != 1000 {
		t.Fatalf("tshark read %d frames", len(out))
	}
	for i, row := range out {
		wantName := []string{"eth0", "wg0"}[i%2]
		if row[0] != wantName || row[1] != "gw-out" || row[2] != strconv.Itoa(want[i].WireLen) || row[3] != strconv.Itoa(len(want[i].Data)) {
			t.Fatalf("tshark frame %d: %v", i+1, row)
		}
	}
}

// tsharkFields runs tshark -T fields over a file.
func tsharkFields(t *testing.T, path string, fields ...string) [][]string {
	t.Helper()
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Fatal("tshark is this test's oracle: apt-get install tshark")
	}
	args := []string{"-n", "-r", path, "-T", "fields", "-E", "separator=|"}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	cmd := exec.Command("tshark", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark -r %s: %v: %s", path, err, stderr.String())
	}
	if s := strings.TrimSpace(stderr.String()); s != "" && !strings.HasPrefix(s, "Running as user") {
		t.Fatalf("tshark -r %s complains: %s", path, s)
	}
	var rows [][]string
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if line != "" {
			rows = append(rows, strings.Split(line, "|"))
		}
	}
	return rows
}

// TestPcapngWriterNoStats: interfaces without statistics get no ISB, and a
// reader reports HasStats false.
func TestPcapngWriterNoStats(t *testing.T) {
	src := twoIfaceFrames(4)
	for i := range src.ifaces {
		src.ifaces[i].HasStats = false
	}
	path := filepath.Join(t.TempDir(), "n.pcapng")
	w, err := CreatePcapng(path, src.Interfaces(), WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range src.frames {
		if err := w.WriteFrame(&f); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Finish(src.Interfaces()); err != nil {
		t.Fatal(err)
	}
	_, its := readBack(t, path)
	for _, it := range its {
		if it.HasStats {
			t.Errorf("%s has statistics", it.Name)
		}
	}
	if err := w.WriteFrame(&src.frames[0]); err == nil {
		t.Error("WriteFrame after Finish succeeded")
	}
}

// TestPcapngWriterErrors: a frame on an undeclared interface, a file that
// cannot be created, and no interfaces are errors naming the file.
func TestPcapngWriterErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := CreatePcapng(filepath.Join(dir, "nope", "x.pcapng"), []Interface{{Name: "a", LinkType: 1}}, WriterOptions{}); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("create in a missing directory: %v", err)
	}
	if _, err := CreatePcapng(filepath.Join(dir, "y.pcapng"), nil, WriterOptions{}); err == nil || !strings.Contains(err.Error(), "y.pcapng") {
		t.Errorf("no interfaces: %v", err)
	}
	w, err := CreatePcapng(filepath.Join(dir, "z.pcapng"), []Interface{{Name: "a", LinkType: 1}}, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteFrame(&Frame{Data: []byte{1}, Iface: 3, Number: 9}); err == nil || !strings.Contains(err.Error(), "z.pcapng") || !strings.Contains(err.Error(), "interface 3") {
		t.Errorf("undeclared interface: %v", err)
	}
	w.Finish(nil)
	// A failing underlying writer is reported by Finish (the flush).
	fw, err := NewPcapngWriter("broken", failWriter{}, []Interface{{Name: "a", LinkType: 1}}, WriterOptions{})
	if err == nil {
		fw.Finish(nil)
		t.Fatal("writing to a failing writer succeeded")
	}
}

type failWriter struct{}

func (failWriter) Write(p []byte) (int, error) { return 0, errors.New("disk full") }

// TestPcapngWriterAllocs: WriteFrame does not allocate.
func TestPcapngWriterAllocs(t *testing.T) {
	src := twoIfaceFrames(2)
	w, err := NewPcapngWriter("discard", io.Discard, src.Interfaces(), WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f := src.frames[0]
	if a := testing.AllocsPerRun(1000, func() { w.WriteFrame(&f) }); a != 0 {
		t.Errorf("WriteFrame allocates %.1f times", a)
	}
	tee := Tee(&sliceSource{frames: make([]Frame, 2000), ifaces: src.ifaces}, w)
	var g Frame
	if a := testing.AllocsPerRun(1000, func() { tee.Next(&g) }); a != 0 {
		t.Errorf("Tee.Next allocates %.1f times", a)
	}
}

// BenchmarkPcapngWriter measures WriteFrame of 1000-byte frames to memory.
func BenchmarkPcapngWriter(b *testing.B) {
	src := twoIfaceFrames(2)
	w, err := NewPcapngWriter("discard", io.Discard, src.Interfaces(), WriterOptions{})
	if err != nil {
		b.Fatal(err)
	}
	f := Frame{Data: make([]byte, 1000), WireLen: 1000}
	b.ReportAllocs()
	b.SetBytes(1000)
	for b.Loop() {
		w.WriteFrame(&f)
	}
}

// readBack reads a whole capture file with Open, copying the frames, and
// returns them with the final interfaces; any read error fails t.
func readBack(t *testing.T, path string) ([]Frame, []Interface) {
	t.Helper()
	src, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var frames []Frame
	var f Frame
	for {
		err := src.Next(&f)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read %s: %v", path, err)
		}
		g := f
		g.Data = append([]byte(nil), f.Data...)
		frames = append(frames, g)
	}
	return frames, src.Interfaces()
}

// ipv4Packet builds an IPv4 packet with a UDP (17) or ICMP echo (1) header
// and payload bytes; payload is the bytes after the IP header.
func ipv4Packet(proto byte, src, dst [4]byte, payload int) []byte {
	b := make([]byte, 20+payload)
	b[0], b[8], b[9] = 0x45, 64, proto
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	copy(b[12:], src[:])
	copy(b[16:], dst[:])
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(b[10:], ^uint16(sum))
	if proto == 17 {
		binary.BigEndian.PutUint16(b[20:], 4000)
		binary.BigEndian.PutUint16(b[22:], 4001)
		binary.BigEndian.PutUint16(b[24:], uint16(payload))
	} else {
		b[20] = 8
	}
	return b
}
