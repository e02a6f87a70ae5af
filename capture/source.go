// Package capture provides packet sources and sinks: streaming readers for
// pcap, pcapng and gzip-compressed captures, live capture, and pcapng writing.
package capture

import (
	"fmt"
)

// Frame is one captured frame. Data points into the source's buffer and is
// valid only until the next call to Next.
type Frame struct {
	Data     []byte
	Time     int64  // Unix nanoseconds
	WireLen  int    // original length on the wire
	Iface    int    // index into Interfaces() (the pcapng interface ID in single-section files; 0 for pcap)
	LinkType uint16 // LINKTYPE_* of the interface
	Number   uint64 // 1-based frame number within the source
	Offset   int64  // byte offset of the frame's record in the (uncompressed) stream
}

// Interface describes one capture interface of a source.
type Interface struct {
	Name        string
	Description string
	LinkType    uint16
	SnapLen     uint32
	Filter      string
	// Drop statistics from pcapng interface statistics blocks or the kernel.
	// HasStats is false when the source carries none.
	HasStats bool
	Received uint64 // packets received by the interface (isb_ifrecv), if known
	Dropped  uint64 // packets dropped by the interface/capture (isb_ifdrop), if known
}

// Source streams frames from a capture file or a live interface.
type Source interface {
	// Name returns the file path or interface name, for messages.
	Name() string
	// Format returns "pcap", "pcapng", "pcap.gz", "pcapng.gz" or "live".
	Format() string
	// Next reads the next frame into f. It returns io.EOF at the end, or an
	// *Error describing where the input is damaged; frames read before the
	// damage remain valid results.
	Next(f *Frame) error
	// Interfaces returns the interfaces seen so far (pcapng may add more while
	// reading; statistics are final after io.EOF).
	Interfaces() []Interface
	// Progress returns bytes consumed from the underlying file and its total
	// size (0 when unknown), for progress bars.
	Progress() (read, total int64)
	// Close releases the source.
	Close() error
}

// Error is a damaged or unreadable input: it names the file and where the
// damage is.
type Error struct {
	File   string
	Frame  uint64 // frame number being read when the damage was found (0: in the header)
	Offset int64  // byte offset in the (uncompressed) stream, -1 if unknown
	Err    error
}

func (e *Error) Error() string {
	switch {
	case e.Frame > 0 && e.Offset >= 0:
		return fmt.Sprintf("%s: frame %d at byte offset %d: %v", e.File, e.Frame, e.Offset, e.Err)
	case e.Offset >= 0:
		return fmt.Sprintf("%s: at byte offset %d: %v", e.File, e.Offset, e.Err)
	default:
		return fmt.Sprintf("%s: %v", e.File, e.Err)
	}
}

func (e *Error) Unwrap() error { return e.Err }
