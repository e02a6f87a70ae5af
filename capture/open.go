package capture

import (
	"bufio"
	"compress/flate"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/gopacket/gopacket/pcapgo"
)

// bufSize is the size of the read buffers over the file and over the
// decompressed stream. It is also the largest pcapng block (and pcap record)
// the reader accepts.
const bufSize = 1 << 20

// Open opens a pcap, pcapng or gzip-compressed pcap/pcapng file for
// streaming. The format is found from the file's first bytes, not its name.
// Every error is a *Error naming the file.
func Open(path string) (Source, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &Error{File: path, Offset: -1, Err: fmt.Errorf("cannot open: %w", unwrapPath(err))}
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, &Error{File: path, Offset: -1, Err: fmt.Errorf("cannot stat: %w", err)}
	}
	if st.IsDir() {
		f.Close()
		return nil, &Error{File: path, Offset: -1, Err: errors.New("is a directory, not a capture file")}
	}
	s, err := newSource(path, f, st.Size())
	if err != nil {
		f.Close()
		return nil, err
	}
	s.closer = f
	return s, nil
}

// NewReader reads a capture from r; name is used in messages and size (0 if
// unknown) for Progress. The caller keeps ownership of r: Close does not
// close it.
func NewReader(name string, r io.Reader, size int64) (Source, error) {
	s, err := newSource(name, r, size)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// fileSource is the Source over a capture stream. The layers are
//
//	file -> countingReader -> bufio (1 MiB) [-> gzip -> bufio (1 MiB)] -> framer -> pcapgo
//
// The framer hands pcapgo one complete, validated record at a time, so
// pcapgo never sees damaged input and Frame.Offset is exact (see framer).
// pcap records after the file header skip pcapgo: the framer has already
// parsed and checked them, so Next serves their bytes straight from the
// buffer (framer.nextPcap).
type fileSource struct {
	name   string
	format string
	size   int64
	count  *countingReader
	fileBR *bufio.Reader
	gz     *gzip.Reader
	closer io.Closer

	fr     framer
	pcap   *pcapgo.Reader
	ng     *pcapgo.NgReader
	ifaces []Interface

	n      uint64 // frames returned so far (and numbered non-packet records)
	err    error  // sticky: io.EOF or *Error
	opened bool   // the file header has been read
}

// frameNo is the frame number for an error found now: 0 while reading the
// file header, else the frame being read.
func (s *fileSource) frameNo() uint64 {
	if !s.opened {
		return 0
	}
	return s.n + 1
}

func newSource(name string, r io.Reader, size int64) (*fileSource, error) {
	s := &fileSource{name: name, size: size, count: &countingReader{r: r}}
	s.fileBR = bufio.NewReaderSize(s.count, bufSize)
	fail := func(off int64, err error) (*fileSource, error) {
		return nil, &Error{File: name, Offset: off, Err: err}
	}
	head, err := s.fileBR.Peek(4)
	if len(head) == 0 && err == io.EOF {
		return fail(-1, errors.New("empty file, not a capture"))
	}
	if err != nil && err != io.EOF {
		return fail(0, fmt.Errorf("read error: %w", err))
	}
	data := s.fileBR
	k := sniff(head)
	if k == kindGzip {
		s.gz, err = gzip.NewReader(s.fileBR)
		if err != nil {
			return fail(0, gzipError(err))
		}
		data = bufio.NewReaderSize(s.gz, bufSize)
		head, err = data.Peek(4)
		if len(head) == 0 && err == io.EOF {
			return fail(0, errors.New("gzip stream holds no data, not a capture"))
		}
		if err != nil && err != io.EOF {
			return fail(0, gzipError(err))
		}
		k = sniff(head)
		if k == kindGzip {
			return fail(0, errors.New("gzip inside gzip: decompress the file once first"))
		}
	}
	s.fr = framer{src: s, br: data, gz: s.gz != nil}
	switch k {
	case kindPcap:
		s.format = "pcap"
		s.fr.kind = kindPcap
		s.pcap, err = pcapgo.NewReader(&s.fr)
	case kindPcapng:
		s.format = "pcapng"
		s.fr.kind = kindPcapng
		s.ng, err = pcapgo.NewNgReader(&s.fr, pcapgo.NgReaderOptions{
			// Link types are tracked by the framer, which shows pcapgo
			// one link type only; see framer.checkNg.
			WantMixedLinkType:  false,
			StatisticsCallback: s.onStats,
		})
		if err == io.EOF && s.fr.err == io.EOF {
			// A section header and nothing else: a capture of no frames.
			s.err, err = io.EOF, nil
		}
	default:
		return fail(0, notCapture(head, s.gz != nil))
	}
	if s.gz != nil {
		s.format += ".gz"
	}
	if err != nil {
		return nil, s.wrap(err)
	}
	s.opened = true
	return s, nil
}

// gzipError describes a failure of the gzip layer.
func gzipError(err error) error {
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("gzip stream truncated: the compressed data ends early (%w)", err)
	case errors.Is(err, gzip.ErrChecksum):
		return fmt.Errorf("gzip stream corrupt: checksum mismatch (%w)", err)
	case errors.Is(err, gzip.ErrHeader):
		return fmt.Errorf("gzip stream corrupt: bad header (%w)", err)
	}
	var ce flate.CorruptInputError
	if errors.As(err, &ce) {
		return fmt.Errorf("gzip stream corrupt: %w", err)
	}
	return fmt.Errorf("gzip stream unreadable: %w", err)
}

// wrap turns an error from pcapgo into the sticky *Error. Damage the framer
// found takes precedence: pcapgo only passes it on.
func (s *fileSource) wrap(err error) error {
	switch {
	case s.fr.err != nil && s.fr.err != io.EOF:
		s.err = s.fr.err
	case err == io.EOF:
		s.err = io.EOF
	default:
		// pcapgo rejected a record the framer let through.
		s.err = &Error{File: s.name, Frame: s.frameNo(), Offset: s.fr.off, Err: fmt.Errorf("%s: %w", s.format, err)}
	}
	return s.err
}

// onStats records an Interface Statistics Block; pcapgo calls it while the
// framer is serving that block, so the framer's section base applies.
func (s *fileSource) onStats(local int, st pcapgo.NgInterfaceStatistics) {
	i := s.fr.sectionBase + local
	if i < 0 || i >= len(s.ifaces) {
		return
	}
	it := &s.ifaces[i]
	it.HasStats = true
	it.Received, it.Dropped = 0, 0
	if st.PacketsReceived != pcapgo.NgNoValue64 {
		it.Received = st.PacketsReceived
	}
	if st.PacketsDropped != pcapgo.NgNoValue64 {
		it.Dropped = st.PacketsDropped
	}
}

// Name returns the file name given to Open or NewReader.
func (s *fileSource) Name() string { return s.name }

// Format returns "pcap", "pcapng", "pcap.gz" or "pcapng.gz".
func (s *fileSource) Format() string { return s.format }

// Interfaces returns a copy of the interfaces seen so far.
func (s *fileSource) Interfaces() []Interface { return slices.Clone(s.ifaces) }

// Progress returns the bytes of the file consumed so far (compressed bytes
// for .gz) and the file size.
func (s *fileSource) Progress() (read, total int64) {
	return s.count.n - int64(s.fileBR.Buffered()), s.size
}

// Close closes the file if Open opened it.
func (s *fileSource) Close() error {
	if s.err == nil {
		s.err = &Error{File: s.name, Frame: s.n + 1, Offset: -1, Err: errors.New("source is closed")}
	}
	var err error
	if s.gz != nil {
		err = s.gz.Close()
		s.gz = nil
	}
	if s.closer != nil {
		if cerr := s.closer.Close(); cerr != nil {
			err = cerr
		}
		s.closer = nil
	}
	if err != nil {
		return &Error{File: s.name, Offset: -1, Err: fmt.Errorf("close: %w", err)}
	}
	return nil
}

// Next reads the next frame into f. Frames before damage are returned first;
// the damage is then reported as a *Error, on this and every later call.
//
// f.Number is Wireshark's frame number (pcapng records Wireshark shows as
// frames without being packets, such as custom blocks, are skipped but
// counted). f.Iface indexes Interfaces(): it is the pcapng interface ID in a
// single-section file; later sections' interfaces follow the earlier ones
// (Wireshark numbers them per section). A Simple Packet Block has Time 0.
// len(f.Data) may exceed f.WireLen in a pcap whose record says so.
func (s *fileSource) Next(f *Frame) error {
	if s.err != nil {
		return s.err
	}
	var (
		data []byte
		ts   int64
		err  error
	)
	if s.pcap != nil {
		data, ts, err = s.fr.nextPcap()
	} else {
		d, c, e := s.ng.ZeroCopyReadPacketData()
		data, err = d, e
		if e == nil && !c.Timestamp.IsZero() {
			ts = c.Timestamp.UnixNano()
		}
	}
	if err != nil {
		return s.wrap(err)
	}
	s.n++
	f.Data = data
	f.Time = ts
	f.WireLen = s.fr.wire
	f.Iface = s.fr.iface
	f.LinkType = s.ifaces[s.fr.iface].LinkType
	f.Number = s.n
	f.Offset = s.fr.off
	return nil
}
