package capture

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ngTestFile is a little-endian pcapng: SHB, IDB (eth0), five 60-byte EPBs.
// Block offsets: offs[0] SHB, offs[1] IDB, offs[2+i] frame i+1.
func ngTestFile() ([]byte, []int) {
	b := &ngBuilder{bo: binary.LittleEndian}
	b.shb()
	b.idb(1, 65535, ngOpt{2, []byte("eth0")})
	for i := range 5 {
		b.epb(0, uint64(testTime(i).UnixNano()/1000), testFrame(i, 60), 60)
	}
	return b.buf, b.offs
}

// edit returns a copy of b with f applied.
func edit(b []byte, f func([]byte) []byte) []byte { return f(bytes.Clone(b)) }

func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestDamagedInput feeds damaged captures to NewReader and checks that the
// intact frames come first, then a sticky *Error naming the file, the frame
// being read, the offset of the damaged record, and what is wrong.
func TestDamagedInput(t *testing.T) {
	pc := makePcap(t, 5, 60, false) // header 24, records of 76 bytes
	rec := func(i int) int { return 24 + (i-1)*76 }
	ng, offs := ngTestFile()
	epb := func(i int) int { return offs[1+i] }
	bigGz := gz(t, makePcap(t, 20000, 60, false))
	le := binary.LittleEndian

	for _, tc := range []struct {
		name       string
		data       []byte
		wantFrames int    // intact frames before the error
		wantFrame  uint64 // Error.Frame
		wantOff    int64  // Error.Offset; -2: any
		wantMsg    []string
		openFails  bool
		atLeast    bool // wantFrames is a minimum (gzip)
	}{
		{name: "empty", data: nil, openFails: true, wantOff: -1, wantMsg: []string{"empty file, not a capture"}},
		{name: "text", data: []byte("<html><body>not a capture</body></html>\n"), openFails: true, wantOff: 0,
			wantMsg: []string{"not a pcap or pcapng file (starts with 0x3c68746d)"}},
		{name: "three bytes", data: []byte("abc"), openFails: true, wantOff: 0,
			wantMsg: []string{"not a pcap or pcapng file (starts with 0x616263)"}},
		{name: "pcap global header truncated", data: pc[:10], openFails: true, wantOff: 0,
			wantMsg: []string{"truncated: the pcap file header needs 24 bytes, the file ends 10 bytes into it"}},
		{name: "pcap version", data: edit(pc, func(b []byte) []byte { le.PutUint16(b[4:], 3); return b }), openFails: true, wantOff: 0,
			wantMsg: []string{"unsupported pcap version 3.4"}},
		{name: "pcap record header truncated", data: pc[:rec(3)+5], wantFrames: 2, wantFrame: 3, wantOff: int64(rec(3)),
			wantMsg: []string{"truncated: the record header needs 16 bytes, the file ends 5 bytes into it"}},
		{name: "pcap record data truncated", data: pc[:rec(3)+26], wantFrames: 2, wantFrame: 3, wantOff: int64(rec(3)),
			wantMsg: []string{"truncated: the record needs 76 bytes, the file ends 26 bytes into it"}},
		{name: "pcap last record truncated", data: pc[:len(pc)-1], wantFrames: 4, wantFrame: 5, wantOff: int64(rec(5)),
			wantMsg: []string{"the record needs 76 bytes, the file ends 75 bytes into it"}},
		{name: "pcap corrupt captured length", data: edit(pc, func(b []byte) []byte { le.PutUint32(b[rec(3)+8:], 0x7fffffff); return b }),
			wantFrames: 2, wantFrame: 3, wantOff: int64(rec(3)),
			wantMsg: []string{"captured length 2147483647 exceeds the maximum 262144"}},
		{name: "pcapng block length below 12", data: edit(ng, func(b []byte) []byte { le.PutUint32(b[epb(3)+4:], 8); return b }),
			wantFrames: 2, wantFrame: 3, wantOff: int64(epb(3)),
			wantMsg: []string{"pcapng Enhanced Packet Block length 8 is less than the minimum 32"}},
		{name: "pcapng block length not a multiple of 4", data: edit(ng, func(b []byte) []byte { le.PutUint32(b[epb(3)+4:], 94); return b }),
			wantFrames: 2, wantFrame: 3, wantOff: int64(epb(3)),
			wantMsg: []string{"pcapng Enhanced Packet Block length 94 is not a multiple of 4"}},
		{name: "pcapng block longer than the file", data: edit(ng, func(b []byte) []byte { le.PutUint32(b[epb(3)+4:], 4096); return b }),
			wantFrames: 2, wantFrame: 3, wantOff: int64(epb(3)),
			wantMsg: []string{"truncated: the pcapng Enhanced Packet Block needs 4096 bytes, the file ends 276 bytes into it"}},
		{name: "pcapng block longer than the reader's maximum", data: edit(ng, func(b []byte) []byte { le.PutUint32(b[epb(3)+4:], 0xfffffff0); return b }),
			wantFrames: 2, wantFrame: 3, wantOff: int64(epb(3)),
			wantMsg: []string{"length 4294967280 exceeds the supported maximum 1048576"}},
		{name: "pcapng trailing length mismatch", data: edit(ng, func(b []byte) []byte { le.PutUint32(b[epb(4)-4:], 12); return b }),
			wantFrames: 2, wantFrame: 3, wantOff: int64(epb(3)),
			wantMsg: []string{"trailing length 12 does not match the leading length 92"}},
		{name: "pcapng captured length overruns block", data: edit(ng, func(b []byte) []byte { le.PutUint32(b[epb(3)+20:], 200); return b }),
			wantFrames: 2, wantFrame: 3, wantOff: int64(epb(3)),
			wantMsg: []string{"captured length 200 does not fit in a block of 92 bytes"}},
		{name: "pcapng unknown interface", data: edit(ng, func(b []byte) []byte { le.PutUint32(b[epb(3)+8:], 5); return b }),
			wantFrames: 2, wantFrame: 3, wantOff: int64(epb(3)),
			wantMsg: []string{"refers to interface 5, but its section defines 1"}},
		{name: "pcapng truncated inside a block", data: ng[:epb(5)+50], wantFrames: 4, wantFrame: 5, wantOff: int64(epb(5)),
			wantMsg: []string{"the pcapng Enhanced Packet Block needs 92 bytes, the file ends 50 bytes into it"}},
		{name: "pcapng truncated inside a block header", data: ng[:epb(5)+6], wantFrames: 4, wantFrame: 5, wantOff: int64(epb(5)),
			wantMsg: []string{"the pcapng block header needs 8 bytes, the file ends 6 bytes into it"}},
		{name: "pcapng option overruns IDB", data: edit(ng, func(b []byte) []byte { le.PutUint16(b[offs[1]+18:], 200); return b }),
			openFails: true, wantFrame: 0, wantOff: int64(offs[1]),
			wantMsg: []string{"Interface Description Block: option 2 of 200 bytes overruns the block"}},
		{name: "pcapng bad byte-order magic", data: edit(ng, func(b []byte) []byte { le.PutUint32(b[8:], 0x12345678); return b }),
			openFails: true, wantFrame: 0, wantOff: 0, wantMsg: []string{"bad byte-order magic 0x78563412"}},
		{name: "pcapng header truncated", data: ng[:10], openFails: true, wantFrame: 0, wantOff: 0,
			wantMsg: []string{"the pcapng Section Header Block needs 12 bytes, the file ends 10 bytes into it"}},
		{name: "gzip truncated", data: bigGz[:len(bigGz)/2], wantFrames: 1000, atLeast: true, wantOff: -2,
			wantMsg: []string{"gzip stream truncated"}},
		{name: "gzip checksum", data: edit(bigGz, func(b []byte) []byte { b[len(b)-8] ^= 0xff; return b }),
			wantFrames: 20000, wantFrame: 20001, wantOff: 24 + 20000*76, wantMsg: []string{"gzip stream corrupt: checksum mismatch"}},
		{name: "gzip deflate block type", data: edit(bigGz, func(b []byte) []byte { b[10] |= 0x06; return b }),
			openFails: true, wantOff: 0, wantMsg: []string{"gzip stream corrupt: flate: corrupt input"}},
		// Garbage in the middle of the deflate stream decodes to wrong
		// bytes before (if ever) flate notices: some *Error, after the
		// intact frames.
		{name: "gzip garbage", data: edit(bigGz, func(b []byte) []byte {
			for i := len(b) / 2; i < len(b)/2+64; i++ {
				b[i] ^= 0x5a
			}
			return b
		}), wantFrames: 1000, atLeast: true, wantOff: -2},
		{name: "gzip header truncated", data: bigGz[:5], openFails: true, wantOff: 0, wantMsg: []string{"gzip stream truncated"}},
		{name: "gzip of text", data: gz(t, []byte("hello world")), openFails: true, wantOff: 0,
			wantMsg: []string{"gzip-compressed, but not a pcap or pcapng file (starts with 0x68656c6c)"}},
		{name: "gzip of truncated pcap", data: gz(t, pc[:rec(4)+20]), wantFrames: 3, wantFrame: 4, wantOff: int64(rec(4)),
			wantMsg: []string{"the record needs 76 bytes, the decompressed data ends 20 bytes into it"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := strings.ReplaceAll(tc.name, " ", "-") + ".cap"
			src, err := NewReader(name, bytes.NewReader(tc.data), int64(len(tc.data)))
			frames := 0
			if err == nil {
				if tc.openFails {
					t.Fatalf("NewReader succeeded, want an error")
				}
				var f Frame
				for {
					err = src.Next(&f)
					if err != nil {
						break
					}
					frames++
					if f.Number != uint64(frames) || !bytes.Equal(f.Data, testFrame(frames-1, 60)) {
						t.Fatalf("frame %d: number %d or data wrong", frames, f.Number)
					}
				}
				if again := src.Next(&f); again != err {
					t.Errorf("Next after the error returned %v, want the same error", again)
				}
			} else if !tc.openFails {
				t.Fatalf("NewReader: %v", err)
			}
			if err == io.EOF {
				t.Fatalf("damage hidden: io.EOF after %d frames", frames)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T %v is not a *capture.Error", err, err)
			}
			if tc.atLeast {
				if frames < tc.wantFrames || e.Frame != uint64(frames+1) {
					t.Errorf("%d frames, error at frame %d; want at least %d frames and the next frame", frames, e.Frame, tc.wantFrames)
				}
			} else if frames != tc.wantFrames || e.Frame != tc.wantFrame {
				t.Errorf("%d frames, error at frame %d; want %d frames, error at frame %d", frames, e.Frame, tc.wantFrames, tc.wantFrame)
			}
			if e.File != name || (tc.wantOff != -2 && e.Offset != tc.wantOff) {
				t.Errorf("error file %q offset %d, want %q offset %d", e.File, e.Offset, name, tc.wantOff)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, name+": ") || strings.Contains(msg, "\n") {
				t.Errorf("message %q must start with the file name and be one line", msg)
			}
			for _, want := range tc.wantMsg {
				if !strings.Contains(msg, want) {
					t.Errorf("message %q does not contain %q", msg, want)
				}
			}
			t.Log(msg)
		})
	}
}

// TestOddButValid covers inputs that are not damage: a pcapng of a section
// header only reads as zero frames, blocks larger than the read buffer are
// skipped (and a truncated one reported), and a pcap record whose original length
// is shorter than its captured length is read (as Wireshark does) with
// WireLen kept.
func TestOddButValid(t *testing.T) {
	b := &ngBuilder{bo: binary.LittleEndian}
	b.shb()
	src, err := NewReader("shb-only", bytes.NewReader(b.buf), 0)
	if err != nil {
		t.Fatal(err)
	}
	var f Frame
	if err := src.Next(&f); err != io.EOF {
		t.Fatalf("SHB only: %v, want io.EOF", err)
	}

	// Blocks larger than the read buffer are skipped when the reader does
	// not need them; a large custom block still takes a frame number.
	b = &ngBuilder{bo: binary.LittleEndian}
	b.shb()
	b.idb(1, 0)
	b.epb(0, 1, testFrame(0, 60), 60)
	b.block(0x80000001, make([]byte, 3*bufSize/2))
	b.block(0x00000bad, append(b.u32(32473), make([]byte, 2*bufSize)...))
	b.epb(0, 2, testFrame(1, 60), 60)
	src, err = NewReader("large-blocks", bytes.NewReader(b.buf), 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, wantNo := range []uint64{1, 3} {
		if err := src.Next(&f); err != nil || f.Number != wantNo || f.Offset != int64(b.offs[2+i*3]) || !bytes.Equal(f.Data, testFrame(i, 60)) {
			t.Fatalf("large blocks, frame %d: %v %+v", i+1, err, f)
		}
	}
	if err := src.Next(&f); err != io.EOF {
		t.Fatal(err)
	}
	if b.offs[3] != 140 {
		t.Fatalf("layout changed: large block at %d", b.offs[3])
	}
	cut := b.buf[:b.offs[3]+bufSize+100]
	src, err = NewReader("large-cut", bytes.NewReader(cut), 0)
	if err != nil {
		t.Fatal(err)
	}
	src.Next(&f)
	err = src.Next(&f)
	if err == nil || !strings.Contains(err.Error(), "large-cut: frame 2 at byte offset 140: truncated: the pcapng block of type 0x80000001 needs 1572876 bytes, the file ends 1048676 bytes into it") {
		t.Fatalf("truncated large block: %v", err)
	}

	pc := makePcap(t, 3, 60, false)
	binary.LittleEndian.PutUint32(pc[24+76+12:], 20) // frame 2: wire 20 < captured 60
	src, err = NewReader("short-wire", bytes.NewReader(pc), 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := src.Next(&f); err != nil {
			t.Fatalf("frame %d: %v", i+1, err)
		}
		if i == 1 && (f.WireLen != 20 || len(f.Data) != 60) {
			t.Fatalf("frame 2: WireLen %d, %d bytes; want 20, 60", f.WireLen, len(f.Data))
		}
	}
	if err := src.Next(&f); err != io.EOF {
		t.Fatal(err)
	}
}

// TestOpenErrors checks the errors of Open itself: a missing file (which
// is fs.ErrNotExist underneath) and a directory.
func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pcap")
	_, err := Open(missing)
	var e *Error
	if !errors.As(err, &e) || e.File != missing || !errors.Is(err, fs.ErrNotExist) ||
		err.Error() != missing+": cannot open: no such file or directory" {
		t.Errorf("missing file: %v", err)
	}
	_, err = Open(dir)
	if !errors.As(err, &e) || e.File != dir || !strings.Contains(err.Error(), "is a directory, not a capture file") {
		t.Errorf("directory: %v", err)
	}
	p := filepath.Join(dir, "ok.pcap")
	if err := os.WriteFile(p, makePcap(t, 2, 60, false), 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	var f Frame
	if err := src.Next(&f); err == nil || err == io.EOF || !strings.Contains(err.Error(), "source is closed") {
		t.Errorf("Next after Close: %v", err)
	}
}
