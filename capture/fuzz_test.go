package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"testing"
)

// FuzzOpen reads arbitrary bytes as a capture: NewReader and Next must
// never panic, must stop (io.EOF or a *Error) within a bounded number of
// frames, and every frame must lie inside the input's size limits. Seeds:
// every capture of the corpus, crafted pcap/pcapng/gzip files and
// truncations of them.
func FuzzOpen(f *testing.F) {
	for _, p := range corpusFiles(f) {
		if k := sniffFile(f, p); k == kindPcap || k == kindPcapng {
			b, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	pc := makePcap(f, 4, 60, true)
	ng, _ := ngTestFile()
	multi := buildMulti(binary.BigEndian).data
	for _, b := range [][]byte{pc, swapPcap(pc), ng, multi, gz(f, pc), gz(f, ng)} {
		f.Add(b)
		f.Add(b[:len(b)/2])
		f.Add(b[:len(b)-3])
	}
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x0d, 0x0d, 0x0a})
	f.Add([]byte{0x1f, 0x8b})

	f.Fuzz(func(t *testing.T, data []byte) {
		src, err := NewReader("fuzz", bytes.NewReader(data), int64(len(data)))
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("NewReader error %T is not a *Error: %v", err, err)
			}
			return
		}
		var fr Frame
		for i := 0; ; i++ {
			if i > 10000 {
				// Every frame takes at least 12 input bytes (pcapng
				// block) or 16 (pcap record), gzip aside.
				if src.Format() == "pcap" || src.Format() == "pcapng" {
					t.Fatalf("more than 10000 frames from %d bytes", len(data))
				}
				return
			}
			err := src.Next(&fr)
			if err == io.EOF {
				break
			}
			if err != nil {
				var e *Error
				if !errors.As(err, &e) {
					t.Fatalf("Next error %T is not a *Error: %v", err, err)
				}
				break
			}
			if fr.Iface < 0 || fr.Iface >= len(src.Interfaces()) {
				t.Fatalf("frame %d: interface %d of %d", fr.Number, fr.Iface, len(src.Interfaces()))
			}
			if len(fr.Data) > bufSize || fr.Offset < 0 {
				t.Fatalf("frame %d: %d bytes at offset %d", fr.Number, len(fr.Data), fr.Offset)
			}
			if src.Format() == "pcap" || src.Format() == "pcapng" {
				if fr.Offset+int64(len(fr.Data)) > int64(len(data)) {
					t.Fatalf("frame %d: %d bytes at offset %d beyond the input's %d", fr.Number, len(fr.Data), fr.Offset, len(data))
				}
			}
		}
		src.Interfaces()
		src.Progress()
		src.Close()
	})
}
