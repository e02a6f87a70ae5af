package bgp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
)

// PeerRoutes is what one peer announced according to an MRT dump.
type PeerRoutes struct {
	Peer   MRTPeer
	Routes map[netip.Prefix]*Route
	// Announcements and Withdrawals count prefixes in BGP4MP UPDATEs;
	// RIBEntries counts TABLE_DUMP(_V2) entries; States counts state changes.
	Announcements, Withdrawals, RIBEntries, States uint64
}

// Dump accumulates an MRT file per peer. Record numbers are used as frame
// numbers (1-based), so a finding can point at the record.
type Dump struct {
	File    string
	Peers   []*PeerRoutes
	byAddr  map[netip.Addr]*PeerRoutes
	Records int
	// Bad counts records whose body could not be decoded; FirstErr is the
	// first of them (or the error that ended the file early).
	Bad      int
	FirstErr error
	Skipped  int // non-BGP records
	Messages [MsgRouteRefresh + 1]uint64
	routes   int
}

// NewDump returns an empty dump named file.
func NewDump(file string) *Dump { return &Dump{File: file, byAddr: map[netip.Addr]*PeerRoutes{}} }

func (d *Dump) peer(p MRTPeer) *PeerRoutes {
	pr := d.byAddr[p.Addr]
	if pr == nil {
		pr = &PeerRoutes{Peer: p, Routes: map[netip.Prefix]*Route{}}
		d.byAddr[p.Addr] = pr
		d.Peers = append(d.Peers, pr)
	}
	if pr.Peer.AS == 0 {
		pr.Peer.AS = p.AS
	}
	return pr
}

// Add folds one record into the per-peer tables.
func (d *Dump) Add(rec *MRTRecord) {
	d.Records++
	at := FrameID{Frame: uint64(rec.Index + 1)}
	t := rec.Time.UnixNano()
	switch {
	case rec.RIB != nil:
		for _, e := range rec.RIB {
			pr := d.peer(e.Peer)
			pr.RIBEntries++
			d.announce(pr, rec.Prefix, e.Attrs, at, t)
		}
	case rec.State != nil:
		d.peer(rec.Peer).States++
	case rec.Message != nil:
		m := rec.Message
		if int(m.Type) < len(d.Messages) {
			d.Messages[m.Type]++
		}
		if m.Update == nil {
			return
		}
		pr := d.peer(rec.Peer)
		for _, w := range m.Update.Withdrawn {
			pr.Withdrawals++
			if r := pr.Routes[w.Prefix]; r != nil && !r.Withdrawn {
				r.Withdrawn, r.WithdrawAt = true, at
			}
		}
		for _, a := range m.Update.Announced {
			pr.Announcements++
			d.announce(pr, a.Prefix, m.Update, at, t)
		}
	}
}

func (d *Dump) announce(pr *PeerRoutes, p netip.Prefix, u *Update, at FrameID, t int64) {
	r := pr.Routes[p]
	if r == nil {
		if d.routes >= MaxRoutes && p.Bits() != 0 {
			return
		}
		d.routes++
		r = &Route{Prefix: p, First: at, FirstTime: t, Frames: []FrameID{at}}
		pr.Routes[p] = r
	}
	r.ASPath, r.ASPathNums, r.NextHop, r.Communities = u.ASPathText, u.ASPath, u.NextHop, u.Communities
	r.Last, r.LastTime = at, t
	r.Announced++
	r.Withdrawn = false
}

// ReadMRT reads a whole MRT file into a Dump. Records whose body cannot be
// decoded are counted and skipped; a truncated file keeps what came before
// the damage. The returned error is the first *MRTError (nil when the file
// is clean), or an open/cancel error.
func ReadMRT(ctx context.Context, path string) (*Dump, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open MRT file: %w", err)
	}
	defer f.Close()
	d := NewDump(path)
	err = d.ReadFrom(ctx, f)
	return d, err
}

// ReadFrom reads MRT records from r into the dump (see ReadMRT).
func (d *Dump) ReadFrom(ctx context.Context, r io.Reader) error {
	mr, err := NewMRTReader(r, d.File)
	if err != nil {
		d.FirstErr = err
		return err
	}
	defer mr.Close()
	var rec MRTRecord
	for n := 0; ; n++ {
		if n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		err := mr.Next(&rec)
		if err == io.EOF {
			break
		}
		if err != nil {
			if d.FirstErr == nil {
				d.FirstErr = err
			}
			var me *MRTError
			if errors.As(err, &me) && rec.Index == me.Index && mr.index == rec.Index+1 {
				// Framing intact: skip this record, keep reading.
				d.Bad++
				continue
			}
			d.Skipped = mr.Skipped
			return d.FirstErr
		}
		d.Add(&rec)
	}
	d.Skipped = mr.Skipped
	return d.FirstErr
}
