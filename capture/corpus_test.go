package capture

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// corpusDir finds ../shared/corpus beside the module root (the directory
// holding go.mod), wherever the work tree is.
func corpusDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's working directory")
		}
		dir = parent
	}
	c := filepath.Join(dir, "..", "shared", "corpus")
	if st, err := os.Stat(c); err != nil || !st.IsDir() {
		t.Fatalf("corpus directory %s not found: it must sit beside the module root", c)
	}
	return c
}

// corpusFiles lists every regular file in the corpus (recursively).
func corpusFiles(t testing.TB) []string {
	t.Helper()
	var files []string
	root := corpusDir(t)
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no files in %s", root)
	}
	return files
}

// sniffFile classifies a file by its first bytes, decompressing gzip.
func sniffFile(t testing.TB, p string) kind {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	k := sniff(b)
	if k == kindGzip {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return kindUnknown
		}
		var h [4]byte
		n, _ := io.ReadFull(zr, h[:])
		k = sniff(h[:n])
	}
	return k
}

// tsharkFrame is one line of tshark's field output.
type tsharkFrame struct {
	number   uint64
	time     int64
	iface    int
	wire     int
	capLen   int
	linkType uint16
	offset   int64
	section  int
}

// wtapToLinkType maps Wireshark's WTAP_ENCAP numbers (frame.encap_type) to
// LINKTYPE_* for the encapsulations in the corpus.
var wtapToLinkType = map[int]uint16{
	1:   1,   // Ethernet
	7:   101, // raw IP
	15:  0,   // BSD loopback (NULL)
	25:  113, // Linux cooked (SLL)
	210: 276, // Linux cooked v2 (SLL2)
}

// runTshark reads every frame of p with tshark.
func runTshark(t testing.TB, p string) []tsharkFrame {
	t.Helper()
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Fatal("tshark not found: apt-get install tshark")
	}
	cmd := exec.Command("tshark", "-o", "frame.show_file_off:TRUE", "-r", p, "-T", "fields",
		"-e", "frame.number", "-e", "frame.time_epoch", "-e", "frame.interface_id",
		"-e", "frame.len", "-e", "frame.cap_len", "-e", "frame.encap_type", "-e", "frame.file_off", "-e", "frame.section_number")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark -r %s: %v: %s", p, err, stderr.String())
	}
	var frames []tsharkFrame
	for line := range strings.Lines(string(out)) {
		f := strings.Split(strings.TrimRight(line, "\n"), "\t")
		if len(f) != 8 {
			t.Fatalf("tshark line %q: want 8 fields", line)
		}
		if f[5] == "" {
			// A numbered record that is not a packet (a pcapng custom
			// block, say): it takes a frame number, the reader skips it.
			continue
		}
		var tf tsharkFrame
		tf.number = mustUint(t, f[0])
		tf.time = parseEpoch(t, f[1])
		if f[2] != "" {
			tf.iface = int(mustUint(t, f[2]))
		}
		tf.wire = int(mustUint(t, f[3]))
		tf.capLen = int(mustUint(t, f[4]))
		encap := int(mustUint(t, f[5]))
		lt, ok := wtapToLinkType[encap]
		if !ok {
			t.Fatalf("%s: tshark encapsulation %d has no LINKTYPE mapping in the test; add it", p, encap)
		}
		tf.linkType = lt
		tf.offset = int64(mustUint(t, f[6]))
		tf.section = 1 // pcap has no sections
		if f[7] != "" {
			tf.section = int(mustUint(t, f[7]))
		}
		frames = append(frames, tf)
	}
	return frames
}

func mustUint(t testing.TB, s string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("tshark field %q: %v", s, err)
	}
	return v
}

// parseEpoch parses "seconds.fraction" exactly into Unix nanoseconds; a
// frame without a time (a Simple Packet Block) is 0.
func parseEpoch(t testing.TB, s string) int64 {
	t.Helper()
	if s == "" {
		return 0
	}
	sec, frac, _ := strings.Cut(s, ".")
	frac = (frac + "000000000")[:9]
	return int64(mustUint(t, sec))*1e9 + int64(mustUint(t, frac))
}

// ourFrame is what the reader reports for one frame.
type ourFrame struct {
	number   uint64
	time     int64
	iface    int
	wire     int
	capLen   int
	linkType uint16
	offset   int64
}

// readAll reads every frame of src, and the error that ended the reading.
func readAll(t testing.TB, src Source) ([]ourFrame, error) {
	t.Helper()
	var frames []ourFrame
	var f Frame
	for i := 0; i < 10_000_000; i++ {
		err := src.Next(&f)
		if err != nil {
			return frames, err
		}
		frames = append(frames, ourFrame{f.Number, f.Time, f.Iface, f.WireLen, len(f.Data), f.LinkType, f.Offset})
	}
	t.Fatal("more than 10 million frames")
	return nil, nil
}

// compareWithTshark asserts that frames equal tshark's, frame by frame.
// Offsets are compared only when withOffsets (tshark reports compressed
// file offsets for .gz). tshark numbers interfaces per section, the reader
// across sections: bases[s-1] is the index of section s's interface 0 (nil:
// a single section).
func compareWithTshark(t *testing.T, name string, got []ourFrame, want []tsharkFrame, withOffsets bool, bases ...int) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d frames, tshark reads %d", name, len(got), len(want))
	}
	var wireSum, capSum, tWire, tCap int
	for i, g := range got {
		w := want[i]
		if w.section > 1 {
			w.iface += bases[w.section-1]
		}
		if g.number != w.number || g.time != w.time || g.iface != w.iface || g.wire != w.wire ||
			g.capLen != w.capLen || g.linkType != w.linkType || (withOffsets && g.offset != w.offset) {
			t.Fatalf("%s frame %d:\n got  %+v\n tshark %+v", name, i+1, g, w)
		}
		wireSum += g.wire
		capSum += g.capLen
		tWire += w.wire
		tCap += w.capLen
	}
	if wireSum != tWire || capSum != tCap {
		t.Fatalf("%s: wire bytes %d captured %d, tshark %d %d", name, wireSum, capSum, tWire, tCap)
	}
}

// TestCorpusMatchesTshark reads every capture of the shared corpus and
// compares, frame by frame, the count, number, timestamp, interface, link
// type, wire and captured length and record offset with tshark. Corpus files
// that are not captures must fail to open with a clear *Error.
func TestCorpusMatchesTshark(t *testing.T) {
	captures := 0
	for _, p := range corpusFiles(t) {
		rel, _ := filepath.Rel(corpusDir(t), p)
		t.Run(rel, func(t *testing.T) {
			k := sniffFile(t, p)
			src, err := Open(p)
			if k != kindPcap && k != kindPcapng {
				var ce *Error
				if err == nil || !errors.As(err, &ce) || ce.File != p || !strings.Contains(err.Error(), "not a pcap or pcapng file (starts with 0x") {
					t.Fatalf("non-capture %s: want a *Error naming it, got %v", p, err)
				}
				return
			}
			captures++
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			defer src.Close()
			got, err := readAll(t, src)
			if err != io.EOF {
				t.Fatalf("read: %v", err)
			}
			want := runTshark(t, p)
			compareWithTshark(t, rel, got, want, sniff(mustRead(t, p)) != kindGzip)
			wantFormat := map[kind]string{kindPcap: "pcap", kindPcapng: "pcapng"}[k]
			if src.Format() != wantFormat {
				t.Errorf("Format() = %q, want %q", src.Format(), wantFormat)
			}
			if read, total := src.Progress(); read != total || total != fileSize(t, p) {
				t.Errorf("Progress() = %d/%d at EOF, want %d/%d", read, total, fileSize(t, p), fileSize(t, p))
			}
			// Every interface a frame names exists, with the frame's link type.
			ifs := src.Interfaces()
			for _, g := range got {
				if g.iface >= len(ifs) || ifs[g.iface].LinkType != g.linkType {
					t.Fatalf("frame %d: interface %d not in Interfaces() %+v", g.number, g.iface, ifs)
				}
			}
		})
	}
	if captures < 20 {
		t.Fatalf("only %d captures found in the corpus, expected at least 20", captures)
	}
}

// TestGzipCorpus compresses a corpus pcap and pcapng and checks that the
// .gz reads the same frames as tshark reads from the original, with
// Format() "pcap.gz"/"pcapng.gz" and compressed-byte Progress.
func TestGzipCorpus(t *testing.T) {
	dir := corpusDir(t)
	for _, tc := range []struct{ file, format string }{
		{"zeek_zeek/smtp.pcap", "pcap.gz"},
		{"ntop_nDPI/wireguard.pcap", "pcapng.gz"}, // pcapng despite its name
		{"ntop_nDPI/esp.pcapng", "pcapng.gz"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			orig := filepath.Join(dir, tc.file)
			gz := filepath.Join(t.TempDir(), filepath.Base(tc.file)+".gz")
			writeGzip(t, gz, mustRead(t, orig))
			src, err := Open(gz)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			if src.Format() != tc.format {
				t.Errorf("Format() = %q, want %q", src.Format(), tc.format)
			}
			got, err := readAll(t, src)
			if err != io.EOF {
				t.Fatalf("read: %v", err)
			}
			// Offsets are in the uncompressed stream, so they match
			// tshark on the original file.
			compareWithTshark(t, tc.file, got, runTshark(t, orig), true)
			if read, total := src.Progress(); read != total || total != fileSize(t, gz) {
				t.Errorf("Progress() = %d/%d, want %d/%d", read, total, fileSize(t, gz), fileSize(t, gz))
			}
		})
	}
}

func mustRead(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func fileSize(t testing.TB, p string) int64 {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

func writeGzip(t testing.TB, p string, data []byte) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(data)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
