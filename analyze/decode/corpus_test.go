package decode

import (
	"bufio"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/gopacket/gopacket/pcapgo"
)

// corpusFrame is one frame of a corpus capture, read in place.
type corpusFrame struct {
	num  int // 1-based, as in Wireshark
	link LinkType
	data []byte
}

// corpusDir finds ../shared/corpus next to the module root (the directory
// holding go.mod above this package).
func corpusDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("getwd: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the package directory")
		}
		dir = parent
	}
	c := filepath.Join(dir, "..", "shared", "corpus")
	if _, err := os.Stat(c); err != nil {
		t.Fatalf("corpus missing: %v (expected ../shared/corpus next to the module root)", err)
	}
	return c
}

// corpusCaptures lists every pcap and pcapng file in the corpus.
func corpusCaptures(t testing.TB) []string {
	t.Helper()
	root := corpusDir(t)
	var files []string
	err := filepath.WalkDir(root, func(p string, de os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !de.IsDir() && (strings.HasSuffix(p, ".pcap") || strings.HasSuffix(p, ".pcapng")) {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk corpus: %v", err)
	}
	if len(files) == 0 {
		t.Fatalf("no captures in %s", root)
	}
	sort.Strings(files)
	return files
}

// corpusName is the path of a capture relative to the corpus directory.
func corpusName(t testing.TB, path string) string {
	rel, err := filepath.Rel(corpusDir(t), path)
	if err != nil {
		t.Fatalf("rel %s: %v", path, err)
	}
	return filepath.ToSlash(rel)
}

// readCapture reads every frame of a pcap or pcapng file with pcapgo.
func readCapture(t testing.TB, path string) []corpusFrame {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	magic, err := br.Peek(4)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	var frames []corpusFrame
	add := func(link LinkType, data []byte) {
		frames = append(frames, corpusFrame{num: len(frames) + 1, link: link, data: append([]byte(nil), data...)})
	}
	if string(magic) == "\x0a\x0d\x0d\x0a" {
		r, err := pcapgo.NewNgReader(br, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			t.Fatalf("read %s: %v", path, err)
		}
		for {
			data, ci, err := r.ReadPacketData()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("read %s frame %d: %v", path, len(frames)+1, err)
			}
			iface, err := r.Interface(ci.InterfaceIndex)
			if err != nil {
				t.Fatalf("read %s frame %d: %v", path, len(frames)+1, err)
			}
			add(LinkType(iface.LinkType), data)
		}
		return frames
	}
	r, err := pcapgo.NewReader(br)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	for {
		data, _, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("read %s frame %d: %v", path, len(frames)+1, err)
		}
		add(LinkType(r.LinkType()), data)
	}
	return frames
}
