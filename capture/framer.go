package capture

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// framer sits between the buffered (decompressed) stream and pcapgo. It
// reads one pcap record or pcapng block at a time, checks that the record is
// complete and that every length inside it stays inside it, and only then
// serves its bytes to pcapgo. pcapgo therefore never reads across a record
// boundary, never sees a truncated or inconsistent record (it has no checks
// for pcapng block lengths and would read past a block or wrap a length),
// and the framer always knows exactly which record pcapgo is parsing:
// Frame.Offset is the exact offset of the record in the uncompressed stream.
//
// pcapgo reads through its own bufio.Reader, but that reader fills with one
// Read call at a time and the framer never returns bytes beyond the current
// record, so pcapgo cannot read ahead into the next record.
//
// A few bytes are rewritten on their way to pcapgo (see patch): pcapng link
// types (tracked here, so pcapgo reads mixed link types without boxing them
// per packet), Enhanced Packet Block options (pcapgo allocates for them) and
// a pcap original length shorter than the captured length (pcapgo refuses
// it; Wireshark reads such records). Name Resolution, Decryption Secrets and
// unknown pcapng blocks are checked and skipped, never shown to pcapgo.
type framer struct {
	src  *fileSource
	br   *bufio.Reader
	gz   bool
	kind kind
	be   bool // byte order of the pcap file or current pcapng section

	off  int64  // stream offset of the current record
	next int64  // stream offset of the record after it
	cur  []byte // the current record, peeked from br
	pos  int    // bytes of cur served to pcapgo

	patchAt  int // offset in cur of bytes to rewrite; patchLen 0: none
	patchLen int
	patch    [4]byte

	err error // sticky: io.EOF at a clean end, or a *Error

	// Results for the packet record being served.
	wire  int // original length
	iface int // index into src.ifaces

	// pcap
	started  bool
	maxCap   uint32
	nsFactor uint32 // nanoseconds per timestamp fraction unit: 1000 (microsecond pcap) or 1

	// pcapng
	sectionBase   int // index in src.ifaces of the current section's interface 0
	sectionIfaces int // interfaces defined so far in the current section
}

// Read serves the current record to pcapgo, loading the next one when the
// current one is used up.
func (fr *framer) Read(p []byte) (int, error) {
	if fr.pos == len(fr.cur) {
		if fr.cur != nil {
			fr.br.Discard(len(fr.cur)) // was peeked, cannot fail
			fr.cur, fr.pos, fr.patchLen = nil, 0, 0
		}
		if fr.err != nil {
			return 0, fr.err
		}
		var err error
		if fr.kind == kindPcap {
			err = fr.loadPcap()
		} else {
			err = fr.loadNg()
		}
		if err != nil {
			fr.err = err
			return 0, err
		}
	}
	n := copy(p, fr.cur[fr.pos:])
	if fr.patchLen > 0 {
		for i := fr.patchAt; i < fr.patchAt+fr.patchLen; i++ {
			if j := i - fr.pos; j >= 0 && j < n {
				p[j] = fr.patch[i-fr.patchAt]
			}
		}
	}
	fr.pos += n
	return n, nil
}

// patchUint makes Read serve v (n = 2 or 4 bytes, in the record's byte
// order) at offset at of the current record instead of the bytes there.
func (fr *framer) patchUint(at, n int, v uint32) {
	fr.patchAt, fr.patchLen = at, n
	switch {
	case n == 2 && fr.be:
		binary.BigEndian.PutUint16(fr.patch[:], uint16(v))
	case n == 2:
		binary.LittleEndian.PutUint16(fr.patch[:], uint16(v))
	case fr.be:
		binary.BigEndian.PutUint32(fr.patch[:], v)
	default:
		binary.LittleEndian.PutUint32(fr.patch[:], v)
	}
}

// damage returns a *Error at the current record.
func (fr *framer) damage(format string, args ...any) error {
	return &Error{File: fr.src.name, Frame: fr.src.frameNo(), Offset: fr.off, Err: fmt.Errorf(format, args...)}
}

// short explains why only got of the need bytes of what could be read.
func (fr *framer) short(got int, err error, need int, what string) error {
	switch {
	case fr.gz && err != io.EOF:
		return &Error{File: fr.src.name, Frame: fr.src.frameNo(), Offset: fr.off, Err: gzipError(err)}
	case errors.Is(err, bufio.ErrBufferFull):
		return fr.damage("%s needs %d bytes, more than the supported maximum %d", what, need, bufSize)
	case err != io.EOF:
		return fr.damage("read error: %w", err)
	}
	ends := "the file ends"
	if fr.gz {
		ends = "the decompressed data ends"
	}
	return fr.damage("truncated: %s needs %d bytes, %s %d bytes into it", what, need, ends, got)
}

func (fr *framer) u16(b []byte) uint16 {
	if fr.be {
		return binary.BigEndian.Uint16(b)
	}
	return binary.LittleEndian.Uint16(b)
}

func (fr *framer) u32(b []byte) uint32 {
	if fr.be {
		return binary.BigEndian.Uint32(b)
	}
	return binary.LittleEndian.Uint32(b)
}
