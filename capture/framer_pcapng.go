package capture

import (
	"encoding/binary"
	"fmt"
	"io"
)

// pcapng block types.
const (
	ngSHB = pcapngBlockSHB
	ngIDB = 0x00000001
	ngPB  = 0x00000002 // obsolete Packet Block
	ngSPB = 0x00000003
	ngNRB = 0x00000004
	ngISB = 0x00000005
	ngEPB = 0x00000006
	ngDSB = 0x0000000a
)

// ngMinLen is the smallest valid total length of the blocks pcapgo parses
// (header, fixed fields, trailing length); pcapgo subtracts these without
// checking.
func ngMinLen(typ uint32) uint32 {
	switch typ {
	case ngSHB:
		return 28
	case ngIDB:
		return 20
	case ngPB, ngEPB:
		return 32
	case ngSPB:
		return 16
	case ngISB:
		return 24
	}
	return 12
}

// ngBlockName names a block type for messages.
func ngBlockName(typ uint32) string {
	switch typ {
	case ngSHB:
		return "Section Header Block"
	case ngIDB:
		return "Interface Description Block"
	case ngPB:
		return "Packet Block"
	case ngSPB:
		return "Simple Packet Block"
	case ngNRB:
		return "Name Resolution Block"
	case ngISB:
		return "Interface Statistics Block"
	case ngEPB:
		return "Enhanced Packet Block"
	case ngDSB:
		return "Decryption Secrets Block"
	}
	return fmt.Sprintf("block of type 0x%08x", typ)
}

// ngServed reports whether blocks of this type are handed to pcapgo.
func ngServed(typ uint32) bool {
	switch typ {
	case ngSHB, ngIDB, ngPB, ngSPB, ngISB, ngEPB:
		return true
	}
	return false
}

// ngNumbered reports whether Wireshark (4.0) numbers blocks of this type
// as records although they are not packets: custom blocks, systemd journal
// export blocks and sysdig events. They are skipped, but they take a frame
// number so that Frame.Number stays Wireshark's frame number.
func ngNumbered(typ uint32) bool {
	switch typ {
	case 0x00000bad, 0x40000bad, 0x00000009, 0x00000204, 0x00000216, 0x00000221:
		return true
	}
	return false
}

// loadNg loads the next block pcapgo needs, checking and skipping the others.
func (fr *framer) loadNg() error {
	for {
		fr.off = fr.next
		h, err := fr.br.Peek(12)
		if len(h) == 0 && err == io.EOF {
			return io.EOF
		}
		if len(h) < 8 {
			return fr.short(len(h), err, 8, "the pcapng block header")
		}
		typ := fr.u32(h[0:4])
		if typ == ngSHB {
			if len(h) < 12 {
				return fr.short(len(h), err, 12, "the pcapng Section Header Block")
			}
			switch {
			case binary.BigEndian.Uint32(h[8:12]) == pcapngByteOrderMag:
				fr.be = true
			case binary.LittleEndian.Uint32(h[8:12]) == pcapngByteOrderMag:
				fr.be = false
			default:
				return fr.damage("pcapng Section Header Block has a bad byte-order magic 0x%08x", binary.BigEndian.Uint32(h[8:12]))
			}
		}
		blen := fr.u32(h[4:8])
		if minLen := ngMinLen(typ); blen < minLen {
			return fr.damage("pcapng %s length %d is less than the minimum %d", ngBlockName(typ), blen, minLen)
		}
		if blen%4 != 0 {
			return fr.damage("pcapng %s length %d is not a multiple of 4", ngBlockName(typ), blen)
		}
		if !ngServed(typ) && blen > bufSize {
			if err := fr.skipLarge(typ, blen); err != nil {
				return err
			}
			if ngNumbered(typ) {
				fr.src.n++
			}
			continue
		}
		if blen > bufSize {
			return fr.damage("pcapng %s length %d exceeds the supported maximum %d", ngBlockName(typ), blen, bufSize)
		}
		b, err := fr.br.Peek(int(blen))
		if len(b) < int(blen) {
			return fr.short(len(b), err, int(blen), "the pcapng "+ngBlockName(typ))
		}
		if trail := fr.u32(b[blen-4:]); trail != blen {
			return fr.damage("pcapng %s: trailing length %d does not match the leading length %d", ngBlockName(typ), trail, blen)
		}
		fr.next = fr.off + int64(blen)
		if !ngServed(typ) {
			fr.br.Discard(int(blen)) // peeked
			if ngNumbered(typ) {
				fr.src.n++
			}
			continue
		}
		if err := fr.checkNg(typ, b); err != nil {
			return err
		}
		fr.cur = b
		return nil
	}
}

// skipLarge skips an unserved block larger than the read buffer.
func (fr *framer) skipLarge(typ uint32, blen uint32) error {
	if n, err := fr.br.Discard(int(blen) - 4); n < int(blen)-4 {
		return fr.short(n, err, int(blen), "the pcapng "+ngBlockName(typ))
	}
	b, err := fr.br.Peek(4)
	if len(b) < 4 {
		return fr.short(int(blen)-4+len(b), err, int(blen), "the pcapng "+ngBlockName(typ))
	}
	if trail := fr.u32(b); trail != blen {
		return fr.damage("pcapng %s: trailing length %d does not match the leading length %d", ngBlockName(typ), trail, blen)
	}
	fr.br.Discard(4)
	fr.next = fr.off + int64(blen)
	return nil
}

// checkNg checks the fixed fields and options of a block pcapgo will parse,
// records interfaces and packet facts, and sets up patches.
func (fr *framer) checkNg(typ uint32, b []byte) error {
	blen := uint32(len(b))
	switch typ {
	case ngSHB:
		if major, minor := fr.u16(b[12:14]), fr.u16(b[14:16]); major != 1 || minor != 0 {
			return fr.damage("unsupported pcapng version %d.%d (only 1.0 is read)", major, minor)
		}
		if err := fr.checkOptions(typ, b[24:blen-4], nil); err != nil {
			return err
		}
		fr.sectionBase, fr.sectionIfaces = len(fr.src.ifaces), 0
	case ngIDB:
		it := Interface{LinkType: fr.u16(b[8:10]), SnapLen: fr.u32(b[12:16])}
		err := fr.checkOptions(typ, b[16:blen-4], func(code uint16, v []byte) error {
			switch code {
			case 2:
				it.Name = string(v)
			case 3:
				it.Description = string(v)
			case 11:
				if len(v) > 0 {
					it.Filter = string(v[1:]) // first byte: filter type
				}
			case 9:
				if len(v) > 0 {
					if r := v[0]; r&0x80 != 0 && r&0x7f > 63 || r&0x80 == 0 && r > 19 {
						return fmt.Errorf("unsupported timestamp resolution 0x%02x", r)
					}
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		fr.src.ifaces = append(fr.src.ifaces, it)
		fr.sectionIfaces++
		// pcapgo is shown a single link type so that it neither drops
		// packets of other link types nor boxes the link type per packet.
		fr.patchUint(8, 2, 1)
	case ngEPB, ngPB:
		var id uint32
		if typ == ngEPB {
			id = fr.u32(b[8:12])
		} else {
			id = uint32(fr.u16(b[8:10]))
		}
		if id >= uint32(fr.sectionIfaces) {
			return fr.damage("pcapng %s refers to interface %d, but its section defines %d", ngBlockName(typ), id, fr.sectionIfaces)
		}
		capLen, wire := fr.u32(b[20:24]), fr.u32(b[24:28])
		if (uint64(capLen)+3)&^3 > uint64(blen-32) {
			return fr.damage("pcapng %s: captured length %d does not fit in a block of %d bytes", ngBlockName(typ), capLen, blen)
		}
		fr.wire, fr.iface = int(wire), fr.sectionBase+int(id)
		opts := 28 + (capLen+3)&^3
		if typ == ngEPB && opts < blen-4 {
			if err := fr.checkOptions(typ, b[opts:blen-4], nil); err != nil {
				return err
			}
			// Options are not exposed; pcapgo allocates for some of them.
			fr.patchUint(int(opts), 4, 0)
		}
	case ngSPB:
		if fr.sectionIfaces == 0 {
			return fr.damage("pcapng Simple Packet Block before any Interface Description Block in its section")
		}
		wire := fr.u32(b[8:12])
		capLen := wire
		if snap := fr.src.ifaces[fr.sectionBase].SnapLen; snap != 0 && capLen > snap {
			capLen = snap
		}
		if (uint64(capLen)+3)&^3 > uint64(blen-16) {
			return fr.damage("pcapng Simple Packet Block: packet of %d bytes does not fit in a block of %d bytes", capLen, blen)
		}
		fr.wire, fr.iface = int(wire), fr.sectionBase
	case ngISB:
		if id := fr.u32(b[8:12]); id >= uint32(fr.sectionIfaces) {
			return fr.damage("pcapng Interface Statistics Block refers to interface %d, but its section defines %d", id, fr.sectionIfaces)
		}
		if err := fr.checkOptions(typ, b[20:blen-4], nil); err != nil {
			return err
		}
	}
	return nil
}

// checkOptions walks the options of a block: each must fit in the block,
// and opt_endofopt must have length 0. fn, if not nil, sees each option.
func (fr *framer) checkOptions(typ uint32, b []byte, fn func(code uint16, v []byte) error) error {
	for len(b) >= 4 {
		code, n := fr.u16(b[0:2]), int(fr.u16(b[2:4]))
		if code == 0 {
			if n != 0 {
				return fr.damage("pcapng %s: end-of-options option has length %d, not 0", ngBlockName(typ), n)
			}
			return nil
		}
		padded := (n + 3) &^ 3
		if 4+padded > len(b) {
			return fr.damage("pcapng %s: option %d of %d bytes overruns the block", ngBlockName(typ), code, n)
		}
		if fn != nil {
			if err := fn(code, b[4:4+n]); err != nil {
				return fr.damage("pcapng %s: %w", ngBlockName(typ), err)
			}
		}
		b = b[4+padded:]
	}
	return nil
}
