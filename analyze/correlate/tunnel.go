package correlate

import "github.com/vpndiag/vpndiag/analyze/decode"

// tunWindow is the span of sequence numbers within which a repeated ESP
// sequence number or WireGuard counter is recognised as a duplicate.
const tunWindow = 4096

type tunKey struct {
	hop  uint8
	kind uint8
	id   uint32
}

// tunStat follows the sequence numbers (ESP) or counters (WireGuard) of one
// encrypted tunnel direction at one hop: numbers that never appear between
// the smallest and the largest seen were lost before this hop (or reordered
// beyond the window).
type tunStat struct {
	packets, unique uint64
	min, max        uint64
	bits            [tunWindow / 64]uint64
	started         bool
	dst             tuple
}

type tunnelTable struct {
	m     map[tunKey]*tunStat
	order []tunKey
}

func (t *tunnelTable) init() { t.m = map[tunKey]*tunStat{} }

const maxTunnels = 4096

func (t *tunnelTable) add(h int, s *sighting) {
	k := tunKey{hop: uint8(h), kind: s.encKind, id: s.encID}
	st := t.m[k]
	if st == nil {
		if len(t.m) >= maxTunnels {
			return
		}
		st = &tunStat{dst: s.tup}
		t.m[k] = st
		t.order = append(t.order, k)
	}
	st.packets++
	q := s.encSeq
	if !st.started {
		st.started, st.min, st.max = true, q, q
		st.set(q)
		st.unique++
		return
	}
	switch {
	case q > st.max:
		if q-st.max >= tunWindow {
			st.bits = [tunWindow / 64]uint64{}
		} else {
			for x := st.max + 1; x < q; x++ {
				st.clear(x)
			}
		}
		st.max = q
		st.set(q)
		st.unique++
	case st.max-q >= tunWindow:
		st.unique++ // too old to tell; count it
		st.min = min(st.min, q)
	default:
		if st.has(q) {
			return // duplicate (replay or capture duplicate)
		}
		st.set(q)
		st.unique++
		st.min = min(st.min, q)
	}
}

func (st *tunStat) set(q uint64)      { st.bits[(q%tunWindow)/64] |= 1 << (q % 64) }
func (st *tunStat) clear(q uint64)    { st.bits[(q%tunWindow)/64] &^= 1 << (q % 64) }
func (st *tunStat) has(q uint64) bool { return st.bits[(q%tunWindow)/64]&(1<<(q%64)) != 0 }

// TunnelCounters is one encrypted tunnel direction at one hop.
type TunnelCounters struct {
	Hop      string `json:"hop"`
	Kind     string `json:"kind"` // esp, esp-in-udp, wireguard
	ID       uint32 `json:"id"`   // SPI or WireGuard receiver index
	Dst      string `json:"dst"`
	Packets  uint64 `json:"packets"`
	First    uint64 `json:"first_seq"`
	Last     uint64 `json:"last_seq"`
	Expected uint64 `json:"expected"`
	Missing  uint64 `json:"missing"`
}

func (t *tunnelTable) results(names []string) []TunnelCounters {
	var out []TunnelCounters
	for _, k := range t.order {
		st := t.m[k]
		exp := st.max - st.min + 1
		miss := uint64(0)
		if exp > st.unique {
			miss = exp - st.unique
		}
		d := addrOf(st.dst.dst, st.dst.v4)
		out = append(out, TunnelCounters{Hop: names[k.hop], Kind: decode.TunnelKind(k.kind).String(), ID: k.id,
			Dst: d.String(), Packets: st.packets, First: st.min, Last: st.max, Expected: exp, Missing: miss})
	}
	return out
}
