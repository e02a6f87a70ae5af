package correlate

import (
	"context"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/vpndiag/vpndiag/analyze/decode"
)

// pk describes one synthetic packet.
type pk struct {
	t            int64 // ns
	src, dst     string
	sport, dport uint16
	proto        uint8 // 17 default
	id           uint16
	ttl          uint8
	seq          uint32 // TCP
	ack          uint32 // TCP acknowledgment number (the ACK flag is always set)
	payload      []byte
	vxlanOver    [2]string // outer src, dst: wrap in VXLAN when set
	frame        uint64
}

func payloadN(n int) []byte {
	b := make([]byte, 32)
	binary.BigEndian.PutUint64(b, uint64(n))
	return b
}

func (p pk) record() decode.Record {
	var r decode.Record
	r.Frame, r.Time, r.WireLen = p.frame, p.t, 100
	proto := p.proto
	if proto == 0 {
		proto = 17
	}
	ttl := p.ttl
	if ttl == 0 {
		ttl = 64
	}
	in := decode.Level{}
	in.IP = decode.IP{Version: 4, Proto: proto, TTL: ttl, ID: uint32(p.id), HeaderLen: 20, TotalLen: uint16(28 + len(p.payload)),
		Src: netip.MustParseAddr(p.src), Dst: netip.MustParseAddr(p.dst)}
	in.L4 = decode.Transport{Proto: proto, SrcPort: p.sport, DstPort: p.dport, Seq: p.seq, Ack: p.ack,
		PayloadLen: len(p.payload), Payload: p.payload}
	if proto == 6 {
		in.L4.Flags = decode.TCPAck | decode.TCPPsh
	}
	if p.vxlanOver[0] == "" {
		r.Levels[0], r.NumLevels = in, 1
		return r
	}
	out := decode.Level{}
	out.IP = decode.IP{Version: 4, Proto: 17, TTL: 64, ID: uint32(p.id) ^ 0x5555,
		Src: netip.MustParseAddr(p.vxlanOver[0]), Dst: netip.MustParseAddr(p.vxlanOver[1])}
	out.L4 = decode.Transport{Proto: 17, SrcPort: 40000 + p.sport%1000, DstPort: 4789, PayloadLen: 50 + len(p.payload)}
	r.Levels[0], r.Levels[1], r.NumLevels = out, in, 2
	r.Tunnels[0] = decode.Tunnel{Kind: decode.TunnelVXLAN, Level: 0, ID: 42}
	r.NumTunnel = 1
	return r
}

// hopsOf turns per-hop packet lists into records, numbering frames.
func hopsOf(pkts ...[]pk) [][]decode.Record {
	out := make([][]decode.Record, len(pkts))
	for i, l := range pkts {
		for j, p := range l {
			p.frame = uint64(j + 1)
			out[i] = append(out[i], p.record())
		}
	}
	return out
}

func correlate(t testing.TB, names []string, recs [][]decode.Record, opt Options) *Result {
	t.Helper()
	r, err := runRecords(context.Background(), names, recs, opt)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// seg finds the segment row of a class.
func seg(t testing.TB, r *Result, from, to, class string) *Segment {
	t.Helper()
	for i := range r.Segments {
		s := &r.Segments[i]
		if s.From == from && s.To == to && s.Class == class {
			return s
		}
	}
	t.Fatalf("no segment %s -> %s for %s; have %+v", from, to, class, r.Segments)
	return nil
}

const ms1 = int64(1e6)

func timeZero() time.Time { return time.Unix(0, 0) }
