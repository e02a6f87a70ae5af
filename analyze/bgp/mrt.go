package bgp

import (
	"bufio"
	"compress/bzip2"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"

	gobgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/packet/mrt"
)

// MRT record types and subtypes handled here (RFC 6396, RFC 8050).
const (
	mrtTableDump   = 12
	mrtTableDumpV2 = 13
	mrtBGP4MP      = 16
	mrtBGP4MPET    = 17
)

// maxMRTRecord bounds one record's length so a corrupt length field cannot
// make the reader allocate gigabytes.
const maxMRTRecord = 16 << 20

// MRTPeer is a BGP peer as an MRT dump names it.
type MRTPeer struct {
	Addr     netip.Addr
	AS       uint32
	RouterID netip.Addr
}

// RIBEntry is one peer's path for a prefix in a TABLE_DUMP(_V2) record.
type RIBEntry struct {
	Peer    MRTPeer
	PathID  uint32
	Attrs   *Update // ASPath, NextHop, Origin, Communities (no prefixes)
	Created time.Time
}

// MRTRecord is one decoded MRT record. Exactly one of PeerIndex, RIB,
// Message and State is set, or none for record types that are skipped.
type MRTRecord struct {
	Index   int   // 0-based record number in the file
	Offset  int64 // byte offset of the record in the uncompressed stream
	Time    time.Time
	Type    uint16
	Subtype uint16

	PeerIndex []MRTPeer // TABLE_DUMP_V2 PEER_INDEX_TABLE
	Prefix    netip.Prefix
	RIB       []RIBEntry // TABLE_DUMP_V2 RIB_* and TABLE_DUMP entries for Prefix
	Message   *Message   // BGP4MP(_ET) MESSAGE*: the BGP message
	State     *[2]uint16 // BGP4MP STATE_CHANGE: old and new FSM state
	Peer      MRTPeer    // BGP4MP: the peer; TABLE_DUMP: the peer of the entry
	Local     MRTPeer    // BGP4MP: the collector side
}

// MRTError is damage in an MRT file: it names the record and its offset.
type MRTError struct {
	File   string
	Index  int   // 0-based record number
	Offset int64 // byte offset in the uncompressed stream
	Err    error
}

func (e *MRTError) Error() string {
	return fmt.Sprintf("%s: MRT record %d at byte offset %d: %v", e.File, e.Index, e.Offset, e.Err)
}

func (e *MRTError) Unwrap() error { return e.Err }

// MRTReader streams records from an MRT file, plain, gzip or bzip2.
type MRTReader struct {
	name   string
	r      *bufio.Reader
	closer io.Closer
	index  int
	offset int64
	peers  []MRTPeer // the latest PEER_INDEX_TABLE
	hdr    [16]byte
	body   []byte
	// Skipped counts records of types that are not BGP (OSPF, IS-IS, ...).
	Skipped int
}

// NewMRTReader reads MRT records from r, detecting gzip and bzip2 by their
// magic bytes. name is used in errors.
func NewMRTReader(r io.Reader, name string) (*MRTReader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, _ := br.Peek(3)
	m := &MRTReader{name: name, r: br}
	switch {
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, &MRTError{File: name, Offset: 0, Err: fmt.Errorf("gzip: %w", err)}
		}
		m.r, m.closer = bufio.NewReaderSize(zr, 64<<10), zr
	case len(magic) >= 3 && string(magic) == "BZh":
		m.r = bufio.NewReaderSize(bzip2.NewReader(br), 64<<10)
	}
	return m, nil
}

// Close releases the decompressor (not the underlying reader).
func (m *MRTReader) Close() error {
	if m.closer != nil {
		return m.closer.Close()
	}
	return nil
}

// Next reads and decodes the next record into rec. It returns io.EOF at the
// end. A record whose framing is intact but whose body cannot be decoded
// returns an *MRTError and reading may continue with the next record; a
// truncated or corrupt framing returns an *MRTError and the stream ends.
func (m *MRTReader) Next(rec *MRTRecord) error {
	*rec = MRTRecord{Index: m.index, Offset: m.offset}
	n, err := io.ReadFull(m.r, m.hdr[:12])
	if err == io.EOF {
		return io.EOF
	}
	if err != nil {
		return m.fatal(fmt.Errorf("truncated record header: have %d of 12 bytes: %w", n, unexpected(err)))
	}
	ts := binary.BigEndian.Uint32(m.hdr[0:4])
	rec.Type = binary.BigEndian.Uint16(m.hdr[4:6])
	rec.Subtype = binary.BigEndian.Uint16(m.hdr[6:8])
	length := binary.BigEndian.Uint32(m.hdr[8:12])
	rec.Time = time.Unix(int64(ts), 0).UTC()
	if length > maxMRTRecord {
		return m.fatal(fmt.Errorf("record length %d exceeds the %d-byte limit (corrupt file?)", length, maxMRTRecord))
	}
	if cap(m.body) < int(length) {
		m.body = make([]byte, length)
	}
	body := m.body[:length]
	n, err = io.ReadFull(m.r, body)
	if err != nil {
		return m.fatal(fmt.Errorf("truncated record: type %d subtype %d announces %d bytes, have %d: %w",
			rec.Type, rec.Subtype, length, n, unexpected(err)))
	}
	m.index++
	m.offset += 12 + int64(length)
	if rec.Type == mrtBGP4MPET {
		if len(body) < 4 {
			return m.bad(rec, errors.New("BGP4MP_ET record shorter than its microsecond timestamp"))
		}
		us := binary.BigEndian.Uint32(body[:4])
		rec.Time = rec.Time.Add(time.Duration(us) * time.Microsecond)
		body = body[4:]
	}
	if err := m.decode(rec, body); err != nil {
		return m.bad(rec, err)
	}
	return nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func (m *MRTReader) fatal(err error) error {
	return &MRTError{File: m.name, Index: m.index, Offset: m.offset, Err: err}
}

func (m *MRTReader) bad(rec *MRTRecord, err error) error {
	return &MRTError{File: m.name, Index: rec.Index, Offset: rec.Offset,
		Err: fmt.Errorf("type %d subtype %d: %w", rec.Type, rec.Subtype, err)}
}

func (m *MRTReader) decode(rec *MRTRecord, body []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("decoder failure: %v", r)
		}
	}()
	switch rec.Type {
	case mrtTableDumpV2:
		return m.decodeTableDumpV2(rec, body)
	case mrtBGP4MP, mrtBGP4MPET:
		return decodeBGP4MP(rec, body)
	case mrtTableDump:
		return decodeTableDump(rec, body)
	}
	m.Skipped++
	return nil
}

func (m *MRTReader) decodeTableDumpV2(rec *MRTRecord, body []byte) error {
	h := &mrt.MRTHeader{Type: mrt.TABLE_DUMPv2, SubType: rec.Subtype, Len: uint32(len(body))}
	msg, err := mrt.ParseBody(body, h)
	if err != nil {
		return err
	}
	switch b := msg.Body.(type) {
	case *mrt.PeerIndexTable:
		m.peers = m.peers[:0]
		for _, p := range b.Peers {
			m.peers = append(m.peers, MRTPeer{Addr: p.IpAddress, AS: p.AS, RouterID: p.BgpId})
		}
		rec.PeerIndex = append([]MRTPeer(nil), m.peers...)
	case *mrt.Rib:
		p, ok := b.Prefix.(*gobgp.IPAddrPrefix)
		if !ok {
			return nil // not an IP unicast/multicast RIB (e.g. RIB_GENERIC of another family)
		}
		rec.Prefix = p.Prefix
		for _, e := range b.Entries {
			if int(e.PeerIndex) >= len(m.peers) {
				return fmt.Errorf("RIB entry for %s names peer index %d, but the peer index table has %d peers",
					p.Prefix, e.PeerIndex, len(m.peers))
			}
			attrs := updateFrom(&gobgp.BGPUpdate{PathAttributes: e.PathAttributes}, false)
			attrs.Announced, attrs.EndOfRIB = nil, false
			rec.RIB = append(rec.RIB, RIBEntry{Peer: m.peers[e.PeerIndex], PathID: e.PathIdentifier,
				Attrs: attrs, Created: time.Unix(int64(e.OriginatedTime), 0).UTC()})
		}
	}
	return nil
}

// decodeBGP4MP parses the BGP4MP header itself (gobgp's mrt package decodes
// every BGP4MP message with 4-byte AS paths, wrong for BGP4MP_MESSAGE) and
// the BGP message with the AS size and add-path mode the subtype says.
func decodeBGP4MP(rec *MRTRecord, b []byte) error {
	st := rec.Subtype
	var as4, addPath, state bool
	switch st {
	case 0: // STATE_CHANGE
		state = true
	case 5: // STATE_CHANGE_AS4
		state, as4 = true, true
	case 1, 6: // MESSAGE, MESSAGE_LOCAL
	case 4, 7: // MESSAGE_AS4, MESSAGE_AS4_LOCAL
		as4 = true
	case 8, 10: // MESSAGE_ADDPATH, MESSAGE_LOCAL_ADDPATH
		addPath = true
	case 9, 11: // MESSAGE_AS4_ADDPATH, MESSAGE_AS4_LOCAL_ADDPATH
		as4, addPath = true, true
	default:
		return fmt.Errorf("unsupported BGP4MP subtype %d", st)
	}
	asLen := 2
	if as4 {
		asLen = 4
	}
	if len(b) < 2*asLen+4 {
		return fmt.Errorf("BGP4MP header needs %d bytes, have %d", 2*asLen+4, len(b))
	}
	if as4 {
		rec.Peer.AS, rec.Local.AS = binary.BigEndian.Uint32(b), binary.BigEndian.Uint32(b[4:])
	} else {
		rec.Peer.AS, rec.Local.AS = uint32(binary.BigEndian.Uint16(b)), uint32(binary.BigEndian.Uint16(b[2:]))
	}
	b = b[2*asLen:]
	afi := binary.BigEndian.Uint16(b[2:4])
	b = b[4:]
	alen := 4
	switch afi {
	case 1:
	case 2:
		alen = 16
	default:
		return fmt.Errorf("BGP4MP address family %d is neither IPv4 (1) nor IPv6 (2)", afi)
	}
	if len(b) < 2*alen {
		return fmt.Errorf("BGP4MP addresses need %d bytes, have %d", 2*alen, len(b))
	}
	rec.Peer.Addr, _ = netip.AddrFromSlice(b[:alen])
	rec.Local.Addr, _ = netip.AddrFromSlice(b[alen : 2*alen])
	b = b[2*alen:]
	if state {
		if len(b) < 4 {
			return fmt.Errorf("BGP4MP state change needs 4 bytes, have %d", len(b))
		}
		rec.State = &[2]uint16{binary.BigEndian.Uint16(b), binary.BigEndian.Uint16(b[2:])}
		return nil
	}
	o := Options{AS2: !as4}
	if addPath {
		o.AddPath = []gobgp.Family{gobgp.RF_IPv4_UC, gobgp.RF_IPv6_UC, gobgp.RF_IPv4_MC, gobgp.RF_IPv6_MC}
	}
	msg, err := Parse(b, o)
	if err != nil {
		return err
	}
	rec.Message = &msg
	return nil
}

// decodeTableDump parses a legacy TABLE_DUMP (type 12) record: one prefix,
// one peer, 2-byte AS numbers.
func decodeTableDump(rec *MRTRecord, b []byte) error {
	alen := 4
	switch rec.Subtype {
	case 1:
	case 2:
		alen = 16
	default:
		return fmt.Errorf("unsupported TABLE_DUMP subtype %d", rec.Subtype)
	}
	need := 4 + alen + 1 + 1 + 4 + alen + 2 + 2
	if len(b) < need {
		return fmt.Errorf("TABLE_DUMP entry needs %d bytes, have %d", need, len(b))
	}
	b = b[4:] // view number, sequence number
	addr, _ := netip.AddrFromSlice(b[:alen])
	bits := int(b[alen])
	pfx, err := addr.Prefix(bits)
	if err != nil || bits > alen*8 {
		return fmt.Errorf("TABLE_DUMP prefix length %d is invalid", bits)
	}
	rec.Prefix = pfx
	b = b[alen+2:] // prefix length, status
	created := time.Unix(int64(binary.BigEndian.Uint32(b)), 0).UTC()
	b = b[4:]
	rec.Peer.Addr, _ = netip.AddrFromSlice(b[:alen])
	rec.Peer.AS = uint32(binary.BigEndian.Uint16(b[alen:]))
	b = b[alen+2:]
	attrLen := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	if len(b) < attrLen {
		return fmt.Errorf("TABLE_DUMP attributes announce %d bytes, have %d", attrLen, len(b))
	}
	attrs, err := decodeAttrs(b[:attrLen], &gobgp.MarshallingOption{Use2ByteAS: true, MRT: true})
	if err != nil {
		return err
	}
	rec.RIB = []RIBEntry{{Peer: rec.Peer, Attrs: attrs, Created: created}}
	return nil
}

func decodeAttrs(b []byte, opt *gobgp.MarshallingOption) (*Update, error) {
	var list []gobgp.PathAttributeInterface
	for len(b) > 0 {
		p, err := gobgp.GetPathAttribute(b)
		if err != nil {
			return nil, err
		}
		if err := p.DecodeFromBytes(b, opt); err != nil {
			return nil, err
		}
		l := p.Len(opt)
		if l <= 0 || l > len(b) {
			return nil, fmt.Errorf("path attribute %d length %d exceeds the %d bytes left", p.GetType(), l, len(b))
		}
		list = append(list, p)
		b = b[l:]
	}
	u := updateFrom(&gobgp.BGPUpdate{PathAttributes: list}, opt.Use2ByteAS)
	u.Announced, u.EndOfRIB = nil, false
	return u, nil
}
