package decode

import "encoding/binary"

// maxSteps bounds how many link-layer headers (VLAN stacks excepted, which
// consume bytes) one frame may nest: TEB in GRE in ..., MPLS pseudowires,
// Cisco metadata. Real frames need a handful.
const maxSteps = 16

// Decoder decodes frames into Records. The zero value is ready to use. A
// Decoder is not safe for concurrent use; use one per goroutine and input
// stream: besides the counters it remembers recent WireGuard session indexes,
// which lets it recognise full-MTU WireGuard transport messages on ports
// other than 51820 (see wireguard).
type Decoder struct {
	// Counts per Reason of frames not fully decoded (index 0: fully decoded).
	Reasons [NumReasons]uint64

	steps int       // link-layer dispatches in the current frame
	wg    wgIndexes // recent WireGuard session indexes
}

// Decode fills rec from one frame of the given link type. It resets every
// decoded field of rec but keeps the caller-set Frame, Input, Iface, Time,
// CapLen and WireLen. It never fails: a frame it cannot decode completely has
// rec.Reason set and keeps what was decoded before the problem.
//
// Decode does not allocate. Payload slices in rec point into data.
func (d *Decoder) Decode(link LinkType, data []byte, rec *Record) {
	rec.reset(link)
	d.steps = 0
	why := d.link(link, data, rec)
	rec.Reason = why
	d.Reasons[why]++
}

// reset clears what a previous Decode filled. Levels and tunnels beyond the
// previous counts are already zero, so only those are cleared.
func (r *Record) reset(link LinkType) {
	n := int(r.NumLevels)
	if n > MaxLevels {
		n = MaxLevels
	}
	for i := 0; i < n; i++ {
		r.Levels[i] = Level{}
	}
	n = int(r.NumTunnel)
	if n > MaxLevels {
		n = MaxLevels
	}
	for i := 0; i < n; i++ {
		r.Tunnels[i] = Tunnel{}
	}
	r.Link = link
	r.EthType = 0
	r.SrcMAC = [6]byte{}
	r.DstMAC = [6]byte{}
	r.VLANs = [2]uint16{}
	r.NumVLANs = 0
	r.NumLevels = 0
	r.NumTunnel = 0
	r.ARP = ARP{}
	r.IKE = IKE{}
	r.WireGuard = WireGuard{}
	r.Reason = ReasonNone
}

// pushLevel returns the next free level, or nil when MaxLevels are in use.
func (r *Record) pushLevel() *Level {
	if r.NumLevels >= MaxLevels {
		return nil
	}
	l := &r.Levels[r.NumLevels]
	r.NumLevels++
	return l
}

// pushTunnel records a tunnel carried by the current innermost level, or
// returns nil when no slot is left.
func (r *Record) pushTunnel(k TunnelKind) *Tunnel {
	if r.NumTunnel >= MaxLevels || r.NumLevels == 0 {
		return nil
	}
	t := &r.Tunnels[r.NumTunnel]
	r.NumTunnel++
	t.Kind = k
	t.Level = r.NumLevels - 1
	return t
}

// truncated is the reason for a link header cut short: on the link itself it
// is ReasonTruncatedLink, inside a tunnel ReasonTruncatedTunnel.
func (r *Record) truncated() Reason {
	if r.NumLevels == 0 {
		return ReasonTruncatedLink
	}
	return ReasonTruncatedTunnel
}

func be16(b []byte) uint16 { return binary.BigEndian.Uint16(b) }
func be32(b []byte) uint32 { return binary.BigEndian.Uint32(b) }
func be64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }
func le32(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }
func le64(b []byte) uint64 { return binary.LittleEndian.Uint64(b) }
