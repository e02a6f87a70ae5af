package correlate

import (
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/vpndiag/vpndiag/analyze/decode"
	"github.com/vpndiag/vpndiag/capture"
)

// Hop is one capture point: a name and a way to open its packets. Open is
// called once per pass (trace reads each hop twice: a bounded sample to
// estimate clock offsets, then the whole capture), so a live source must
// spool what it captured and replay it.
type Hop struct {
	Name   string                         // as the user named it (client, gw-in, ...)
	Source string                         // what it was opened from: a path, iface:NAME, ...
	Open   func() (capture.Source, error) // opens the hop's packets from the start
	// File is the capture file that frame numbers in findings refer to
	// ("" = Source, which is then a path). A live hop spooled to a file
	// sets it to that file.
	File string
}

// FileHop is a Hop over a capture file (pcap, pcapng, gzip).
func FileHop(name, path string) Hop {
	return Hop{Name: name, Source: path, File: path, Open: func() (capture.Source, error) { return capture.Open(path) }}
}

// SpooledHop is a Hop captured live from source (iface:NAME) and spooled to
// the capture file path, which trace reads (twice) as it would any file.
func SpooledHop(name, source, path string) Hop {
	h := FileHop(name, path)
	h.Source = source
	return h
}

// HopError is a hop whose source cannot be opened or is not a capture.
type HopError struct {
	Hop string
	Err error
}

func (e *HopError) Error() string { return fmt.Sprintf("hop %s: %v", e.Hop, e.Err) }
func (e *HopError) Unwrap() error { return e.Err }

// recordSource yields one hop's decoded records in capture order.
type recordSource interface {
	next(rec *decode.Record) error // io.EOF at the end
	progress() (read, total int64)
	close()
}

// fileRecords decodes a capture.Source and keeps the hop's input counters.
type fileRecords struct {
	src   capture.Source
	dec   decode.Decoder
	frame capture.Frame
	input int

	packets, bytes uint64
	first, last    int64
	links          []uint16
}

func openFile(h Hop, input int) (*fileRecords, error) {
	src, err := h.Open()
	if err != nil {
		return nil, &HopError{Hop: h.Name, Err: err}
	}
	itfs := src.Interfaces()
	ok := len(itfs) == 0
	for _, itf := range itfs {
		if decode.Supported(decode.LinkType(itf.LinkType)) {
			ok = true
		}
	}
	if !ok {
		src.Close()
		return nil, &HopError{Hop: h.Name, Err: fmt.Errorf("%s: link type %s is not supported", src.Name(), decode.LinkType(itfs[0].LinkType))}
	}
	return &fileRecords{src: src, input: input}, nil
}

func (f *fileRecords) next(rec *decode.Record) error {
	if err := f.src.Next(&f.frame); err != nil {
		return err
	}
	fr := &f.frame
	rec.Frame = fr.Number
	rec.Input = f.input
	rec.Iface = fr.Iface
	rec.Time = fr.Time
	rec.CapLen = len(fr.Data)
	rec.WireLen = fr.WireLen
	f.dec.Decode(decode.LinkType(fr.LinkType), fr.Data, rec)
	if f.packets == 0 || fr.Time < f.first {
		f.first = fr.Time
	}
	f.last = max(f.last, fr.Time)
	f.packets++
	f.bytes += uint64(fr.WireLen)
	if len(f.links) < 8 && !containsU16(f.links, fr.LinkType) {
		f.links = append(f.links, fr.LinkType)
	}
	return nil
}

func containsU16(s []uint16, v uint16) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func (f *fileRecords) progress() (int64, int64) { return f.src.Progress() }
func (f *fileRecords) close()                   { f.src.Close() }

// fillInput copies the hop's input counters into h.
func (f *fileRecords) fillInput(h *HopResult) {
	h.Format = f.src.Format()
	h.Packets, h.Bytes = f.packets, f.bytes
	h.FirstNs, h.LastNs = f.first, f.last
	for _, l := range f.links {
		h.LinkTypes = append(h.LinkTypes, decode.LinkType(l).String())
	}
	sort.Strings(h.LinkTypes)
	var drops uint64
	has := false
	for _, itf := range f.src.Interfaces() {
		if itf.HasStats {
			has = true
			drops += itf.Dropped
		}
	}
	if has {
		h.CaptureDrops = &drops
	}
	for r := 1; r < decode.NumReasons; r++ {
		if n := f.dec.Reasons[r]; n > 0 {
			if h.Undecoded == nil {
				h.Undecoded = map[string]int64{}
			}
			h.Undecoded[decode.Reason(r).String()] = int64(n)
		}
	}
}

// sliceRecords replays records built in memory (tests, benchmarks).
type sliceRecords struct {
	recs []decode.Record
	i    int
}

func (s *sliceRecords) next(rec *decode.Record) error {
	if s.i >= len(s.recs) {
		return io.EOF
	}
	*rec = s.recs[s.i]
	s.i++
	return nil
}

func (s *sliceRecords) progress() (int64, int64) { return int64(s.i), int64(len(s.recs)) }
func (s *sliceRecords) close()                   {}

// isEOF reports a clean end of input.
func isEOF(err error) bool { return errors.Is(err, io.EOF) }
