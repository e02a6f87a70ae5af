package dns

import (
	"encoding/binary"
	"net/netip"
)

// DNS header flag bits and values.
const (
	flagQR      = 0x8000
	flagTC      = 0x0200
	rcodeMask   = 0x000f
	rcodeNX     = 3
	rcodeFail   = 2
	rcodeRefuse = 5
	typeAAAA    = 28
	// maxPointers bounds compression pointer jumps in one name.
	maxPointers = 16
	// maxAnswers bounds the answer records read from one response.
	maxAnswers = 64
)

// message is the part of a DNS message the analyzer uses. Parsing fills it
// without allocating.
type message struct {
	id      uint16
	flags   uint16
	qdcount uint16
	ancount uint16
	qhash   uint64 // case-insensitive hash of the question name
	qtype   uint16
	nameOff int // offset of the question name, for namesOf
	ansOff  int // offset of the first answer record
}

func (m *message) response() bool  { return m.flags&flagQR != 0 }
func (m *message) truncated() bool { return m.flags&flagTC != 0 }
func (m *message) rcode() uint8    { return uint8(m.flags & rcodeMask) }

// parse reads the header and the first question of b. It returns false for
// anything that is not a plausible DNS query or response with one question
// (opcode QUERY), so that stray traffic on port 53 is not counted.
func parse(b []byte, m *message) bool {
	if len(b) < 12 {
		return false
	}
	m.id = binary.BigEndian.Uint16(b)
	m.flags = binary.BigEndian.Uint16(b[2:])
	m.qdcount = binary.BigEndian.Uint16(b[4:])
	m.ancount = binary.BigEndian.Uint16(b[6:])
	if m.qdcount != 1 || m.flags&0x7800 != 0 { // one question, opcode QUERY
		return false
	}
	m.nameOff = 12
	h, end, ok := hashName(b, 12)
	if !ok || end+4 > len(b) {
		return false
	}
	m.qhash = h
	m.qtype = binary.BigEndian.Uint16(b[end:])
	m.ansOff = end + 4
	return true
}

// FNV-1a, 64 bit.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// hashName hashes the name at off (following compression pointers),
// case-insensitively, and returns the offset just after the name in place.
func hashName(b []byte, off int) (h uint64, end int, ok bool) {
	h = fnvOffset
	end = -1
	jumps := 0
	for {
		if off >= len(b) {
			return 0, 0, false
		}
		n := int(b[off])
		switch {
		case n == 0:
			if end < 0 {
				end = off + 1
			}
			return h, end, true
		case n&0xc0 == 0xc0:
			if off+1 >= len(b) || jumps == maxPointers {
				return 0, 0, false
			}
			if end < 0 {
				end = off + 2
			}
			off = int(binary.BigEndian.Uint16(b[off:]) & 0x3fff)
			jumps++
			continue
		case n&0xc0 != 0:
			return 0, 0, false
		}
		if off+1+n > len(b) {
			return 0, 0, false
		}
		for _, c := range b[off+1 : off+1+n] {
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			h = (h ^ uint64(c)) * fnvPrime
		}
		h = (h ^ '.') * fnvPrime
		off += 1 + n
	}
}

// nameText appends the dotted, lower-case name at off to dst (at most 255
// bytes), for the report. It is only called when a new name is interned.
func nameText(dst, b []byte, off int) []byte {
	start := len(dst)
	for jumps := 0; off < len(b) && jumps <= maxPointers; {
		n := int(b[off])
		if n == 0 {
			break
		}
		if n&0xc0 == 0xc0 {
			if off+1 >= len(b) {
				break
			}
			off = int(binary.BigEndian.Uint16(b[off:]) & 0x3fff)
			jumps++
			continue
		}
		if n&0xc0 != 0 || off+1+n > len(b) || len(dst)-start+n+1 > 255 {
			break
		}
		for _, c := range b[off+1 : off+1+n] {
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			dst = append(dst, c)
		}
		dst = append(dst, '.')
		off += 1 + n
	}
	if len(dst) == start {
		dst = append(dst, '.')
	}
	return dst
}

// skipName returns the offset after the (possibly compressed) name at off.
func skipName(b []byte, off int) (int, bool) {
	for {
		if off >= len(b) {
			return 0, false
		}
		n := int(b[off])
		switch {
		case n == 0:
			return off + 1, true
		case n&0xc0 == 0xc0:
			if off+2 > len(b) {
				return 0, false
			}
			return off + 2, true
		case n&0xc0 != 0:
			return 0, false
		}
		off += 1 + n
	}
}

// aaaaAnswers stores the AAAA records of the answer section of a parsed
// response in out and returns how many it stored, stopping at the first
// malformed or cut record.
func aaaaAnswers(b []byte, m *message, out []netip.Addr) int {
	found := 0
	off := m.ansOff
	for i := 0; i < int(m.ancount) && i < maxAnswers; i++ {
		var ok bool
		if off, ok = skipName(b, off); !ok || off+10 > len(b) {
			return found
		}
		typ := binary.BigEndian.Uint16(b[off:])
		rdlen := int(binary.BigEndian.Uint16(b[off+8:]))
		off += 10
		if off+rdlen > len(b) {
			return found
		}
		if typ == typeAAAA && rdlen == 16 && found < len(out) {
			out[found] = netip.AddrFrom16([16]byte(b[off : off+16]))
			found++
		}
		off += rdlen
	}
	return found
}

// globalV6 reports whether a is a global unicast IPv6 address outside the
// private (ULA), documentation and special-purpose ranges.
func globalV6(a netip.Addr) bool {
	if !a.Is6() || a.Is4In6() || !a.IsGlobalUnicast() || a.IsPrivate() {
		return false
	}
	b := a.As16()
	switch {
	case b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8: // 2001:db8::/32 documentation
		return false
	case b[0] == 0x20 && b[1] == 0x01 && b[2] == 0 && b[3] == 0x02 && b[4] == 0 && b[5] == 0: // 2001:2::/48 benchmarking
		return false
	case b[0]&0xe0 != 0x20: // only 2000::/3 is allocated global unicast
		return false
	}
	return true
}
