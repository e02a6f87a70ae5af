package capture

import (
	"bufio"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// benchFrames is the number of frames in the benchmark files.
const benchFrames = 300_000

// benchSize gives an IMIX-like size mix: 60% 64 bytes, 30% 576, 10% 1500.
func benchSize(i int) int {
	switch r := i % 10; {
	case r < 6:
		return 64
	case r < 9:
		return 576
	}
	return 1500
}

var (
	benchOnce  sync.Once
	benchDir   string
	benchFiles map[string]string
	benchErr   error
)

// TestMain removes the benchmark files, which are shared by all runs of the
// benchmarks in this process.
func TestMain(m *testing.M) {
	code := m.Run()
	if benchDir != "" {
		os.RemoveAll(benchDir)
	}
	os.Exit(code)
}

// benchFile returns the path of a synthetic capture of benchFrames frames
// in format "pcap", "pcapng" or "pcap.gz", written once per process with
// pcapgo's writers.
func benchFile(b *testing.B, format string) string {
	b.Helper()
	benchOnce.Do(func() {
		benchDir, benchErr = os.MkdirTemp("", "vpndiag-capture-bench-")
		if benchErr != nil {
			return
		}
		benchFiles = map[string]string{}
		for _, f := range []string{"pcap", "pcapng", "pcap.gz"} {
			p := filepath.Join(benchDir, "bench."+f)
			if benchErr = writeBenchFile(p, f); benchErr != nil {
				return
			}
			benchFiles[f] = p
		}
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchFiles[format]
}

func writeBenchFile(p, format string) error {
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	var out io.Writer = bw
	var zw *gzip.Writer
	if format == "pcap.gz" {
		zw = gzip.NewWriter(bw)
		out = zw
	}
	var write func(gopacket.CaptureInfo, []byte) error
	var flush func() error
	if format == "pcapng" {
		w, err := pcapgo.NewNgWriter(out, layers.LinkTypeEthernet)
		if err != nil {
			return err
		}
		write, flush = w.WritePacket, w.Flush
	} else {
		w := pcapgo.NewWriterNanos(out)
		if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
			return err
		}
		write, flush = w.WritePacket, func() error { return nil }
	}
	buf := testFrame(0, 1500)
	for i := range benchFrames {
		n := benchSize(i)
		ci := gopacket.CaptureInfo{Timestamp: testTime(i), CaptureLength: n, Length: n}
		if err := write(ci, buf[:n]); err != nil {
			return err
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			return err
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return f.Close()
}

// benchRead opens the file and reads every frame, b.N times. It reports
// bytes of file per second and ns per frame.
func benchRead(b *testing.B, format string) {
	p := benchFile(b, format)
	st, err := os.Stat(p)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(st.Size())
	b.ReportAllocs()
	b.ResetTimer()
	var f Frame
	for b.Loop() {
		src, err := Open(p)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			err := src.Next(&f)
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		src.Close()
		if n != benchFrames {
			b.Fatalf("%d frames, want %d", n, benchFrames)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchFrames), "ns/frame")
}

// BenchmarkReadPcap reads a 300,000-frame nanosecond pcap.
func BenchmarkReadPcap(b *testing.B) { benchRead(b, "pcap") }

// BenchmarkReadPcapng reads a 300,000-frame pcapng.
func BenchmarkReadPcapng(b *testing.B) { benchRead(b, "pcapng") }

// BenchmarkReadPcapGz reads the pcap gzip-compressed (MB/s of compressed
// file).
func BenchmarkReadPcapGz(b *testing.B) { benchRead(b, "pcap.gz") }
