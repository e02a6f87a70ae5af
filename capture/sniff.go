package capture

import (
	"encoding/binary"
	"fmt"
)

// kind is the container format found by sniffing the first bytes.
type kind int

const (
	kindUnknown kind = iota
	kindPcap
	kindPcapng
	kindGzip
)

// Magic numbers of the formats this package reads.
const (
	pcapMagicMicro     = 0xa1b2c3d4 // classic pcap, microsecond timestamps
	pcapMagicNano      = 0xa1b23c4d // pcap with nanosecond timestamps
	pcapMagicModified  = 0xa1b2cd34 // Alexey Kuznetsov's modified pcap (not supported)
	pcapngBlockSHB     = 0x0a0d0d0a // pcapng Section Header Block type (a palindrome)
	pcapngByteOrderMag = 0x1a2b3c4d // pcapng byte-order magic
)

// sniff classifies the first (up to 4) bytes of a stream.
func sniff(b []byte) kind {
	if len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b {
		return kindGzip
	}
	if len(b) < 4 {
		return kindUnknown
	}
	le, be := binary.LittleEndian.Uint32(b), binary.BigEndian.Uint32(b)
	switch {
	case le == pcapMagicMicro || be == pcapMagicMicro || le == pcapMagicNano || be == pcapMagicNano:
		return kindPcap
	case be == pcapngBlockSHB:
		return kindPcapng
	}
	return kindUnknown
}

// notCapture is the message for a stream that is neither pcap nor pcapng.
func notCapture(b []byte, gz bool) error {
	where := ""
	if gz {
		where = "gzip-compressed, but "
	}
	if len(b) >= 4 {
		if m := binary.LittleEndian.Uint32(b); m == pcapMagicModified || binary.BigEndian.Uint32(b) == pcapMagicModified {
			return fmt.Errorf("%sa modified (Kuznetsov) pcap file, which is not supported; convert it with editcap -F pcap", where)
		}
	}
	return fmt.Errorf("%snot a pcap or pcapng file (starts with 0x%x)", where, b)
}
