package decode

// Decoder decodes frames into Records. The zero value is ready to use. A
// Decoder is not safe for concurrent use; use one per goroutine.
type Decoder struct {
	// Counts per Reason of frames not fully decoded (index 0: fully decoded).
	Reasons [NumReasons]uint64
}

// Decode fills rec from one frame of the given link type. It resets every
// decoded field of rec but keeps the caller-set Frame, Input, Iface, Time,
// CapLen and WireLen. It never fails: a frame it cannot decode completely has
// rec.Reason set and keeps what was decoded before the problem.
func (d *Decoder) Decode(link LinkType, data []byte, rec *Record) {
	// TODO(decoder): implemented by the decoder work.
	rec.Link = link
	rec.Reason = ReasonUnknownLinkType
	d.Reasons[rec.Reason]++
}
