package capture

import (
	"encoding/binary"
	"io"
)

// pcapMaxRecord is libpcap's MAXIMUM_SNAPLEN: records up to this size are
// read whatever snaplen the header declares, as tcpdump and Wireshark do.
const pcapMaxRecord = 262144

// loadPcap loads the file header (first call) or the next record.
func (fr *framer) loadPcap() error {
	fr.off = fr.next
	if !fr.started {
		b, err := fr.br.Peek(24)
		if len(b) < 24 {
			return fr.short(len(b), err, 24, "the pcap file header")
		}
		fr.be = binary.BigEndian.Uint32(b) == pcapMagicMicro || binary.BigEndian.Uint32(b) == pcapMagicNano
		fr.nsFactor = 1000
		if m := fr.u32(b[0:4]); m == pcapMagicNano {
			fr.nsFactor = 1
		}
		if major, minor := fr.u16(b[4:6]), fr.u16(b[6:8]); major != 2 || minor != 4 {
			return fr.damage("unsupported pcap version %d.%d (only 2.4 is read)", major, minor)
		}
		snap := fr.u32(b[16:20])
		fr.maxCap = max(snap, pcapMaxRecord)
		fr.maxCap = min(fr.maxCap, bufSize-16)
		// The low 16 bits are the link type; the upper ones carry FCS
		// information.
		fr.src.ifaces = append(fr.src.ifaces, Interface{LinkType: uint16(fr.u32(b[20:24])), SnapLen: snap})
		fr.started = true
		fr.cur, fr.next = b, fr.off+24
		return nil
	}
	b, err := fr.br.Peek(16)
	if len(b) == 0 && err == io.EOF {
		return err
	}
	if len(b) < 16 {
		return fr.short(len(b), err, 16, "the record header")
	}
	capLen, wire := fr.u32(b[8:12]), fr.u32(b[12:16])
	if capLen > fr.maxCap {
		return fr.damage("captured length %d exceeds the maximum %d: the record header is corrupt", capLen, fr.maxCap)
	}
	need := 16 + int(capLen)
	if b, err = fr.br.Peek(need); len(b) < need {
		return fr.short(len(b), err, need, "the record")
	}
	fr.cur, fr.next = b, fr.off+int64(need)
	fr.wire, fr.iface = int(wire), 0
	if wire < capLen {
		// pcapgo refuses this; Wireshark reads it. Frame.WireLen keeps
		// the original length.
		fr.patchUint(12, 4, capLen)
	}
	return nil
}

// nextPcap loads the next pcap record for fileSource.Next, which reads pcap
// records straight from the framer instead of through pcapgo (after pcapgo
// has read the file header): one copy and several calls less per packet,
// with the same data, timestamps and errors. It returns the record's
// captured bytes, which stay valid until the next call, and its time in
// Unix nanoseconds.
func (fr *framer) nextPcap() ([]byte, int64, error) {
	if fr.cur != nil {
		fr.br.Discard(len(fr.cur)) // was peeked, cannot fail
		fr.cur, fr.pos, fr.patchLen = nil, 0, 0
	}
	if fr.err != nil {
		return nil, 0, fr.err
	}
	if err := fr.loadPcap(); err != nil {
		fr.err = err
		return nil, 0, err
	}
	fr.pos = len(fr.cur)
	// As pcapgo computes it: the fraction is scaled in 32 bits.
	ts := int64(fr.u32(fr.cur[0:4]))*1e9 + int64(fr.u32(fr.cur[4:8])*fr.nsFactor)
	return fr.cur[16:], ts, nil
}
