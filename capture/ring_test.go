package capture

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

func TestParseRing(t *testing.T) {
	for _, tc := range []struct {
		in    string
		files int
		size  int64
		bad   bool
	}{
		{"10x100MB", 10, 100e6, false},
		{"3x64KiB", 3, 64 << 10, false},
		{"2x1GiB", 2, 1 << 30, false},
		{"5x20000", 5, 20000, false},
		{"1x10k", 1, 10000, false},
		{"0x100MB", 0, 0, true},
		{"10x", 0, 0, true},
		{"10x100XB", 0, 0, true},
		{"x100MB", 0, 0, true},
		{"10x100", 0, 0, true}, // smaller than 4096 bytes
	} {
		got, err := ParseRing(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("%q: no error", tc.in)
			}
			continue
		}
		if err != nil || got.Files != tc.files || got.MaxSize != tc.size {
			t.Errorf("%q: %+v, %v; want %d x %d", tc.in, got, err, tc.files, tc.size)
		}
	}
}

// TestRingRotation writes 2000 frames of 1000 bytes (about 2 MB) into a ring
// of 3 files of 200 kB: 11 files are written, the last 3 are kept
// (named out-K.pcapng), each a complete pcapng no larger than 200 kB that
// Open and tshark read, holding consecutive frames that end with the last
// one written; every file has its own statistics block whose counters are
// the increase while it was current.
func TestRingRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.pcapng")
	ifaces := []Interface{{Name: "eth0", Description: "gw", LinkType: LinkTypeEthernet, SnapLen: 262144, HasStats: true}}
	var recv uint64
	stats := func() []Interface {
		it := ifaces[0]
		it.Received, it.Dropped = recv, recv/100
		return []Interface{it}
	}
	r, err := NewRing(path, RingSpec{Files: 3, MaxSize: 200_000}, ifaces, WriterOptions{}, stats)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 1000)
	for i := range 2000 {
		binary.BigEndian.PutUint32(data, uint32(i))
		f := Frame{Data: data, WireLen: 1000, Time: int64(i) * 1000, Number: uint64(i + 1)}
		if err := r.WriteFrame(&f); err != nil {
			t.Fatal(err)
		}
		recv++
	}
	if err := r.Finish(stats()); err != nil {
		t.Fatal(err)
	}
	// 193 frames of 1032 bytes fit next to the headers in 200 kB: 11 files.
	perFile := 0
	kept := r.Files()
	if len(kept) != 3 || r.Removed() != 8 {
		t.Fatalf("kept %v, removed %d; want 3 kept, 8 removed (11 files)", kept, r.Removed())
	}
	for k, name := range kept {
		if want := filepath.Join(dir, "out-"+strconv.Itoa(8+k)+".pcapng"); name != want {
			t.Errorf("file %d is %s, want %s", k, name, want)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 3 {
		t.Errorf("directory holds %d files, want 3", len(entries))
	}
	next := -1
	for k, name := range kept {
		st, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > 200_000 {
			t.Errorf("%s: %d bytes, more than the ring's 200000", name, st.Size())
		}
		frames, its := readBack(t, name)
		if k == 0 {
			perFile = len(frames)
			next = int(binary.BigEndian.Uint32(frames[0].Data))
		}
		for _, f := range frames {
			if got := int(binary.BigEndian.Uint32(f.Data)); got != next {
				t.Fatalf("%s: frame %d where %d was expected", name, got, next)
			}
			next++
		}
		if len(its) != 1 || !its[0].HasStats || its[0].Received != uint64(len(frames)) {
			t.Errorf("%s: interfaces %+v; want statistics counting its %d frames", name, its, len(frames))
		}
		if n := len(tsharkFields(t, name, "frame.number")); n != len(frames) {
			t.Errorf("tshark reads %d frames of %s, Open %d", n, name, len(frames))
		}
	}
	if next != 2000 {
		t.Errorf("the last file ends with frame %d, want 1999", next-1)
	}
	if perFile < 190 || perFile > 194 {
		t.Errorf("%d frames per file; want about 193 (200000 / 1032)", perFile)
	}
}
