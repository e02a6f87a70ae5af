package bgp

import (
	"math/rand/v2"
	"net/netip"
	"reflect"
	"testing"

	"github.com/vpndiag/vpndiag/analyze/decode"
)

// randomTunnelFrame fills rec with a frame drawn from a few shapes: one or two
// tunnels of several kinds, with or without an inner level, both
// directions, IKE and WireGuard control messages, BGP inside, and times out
// of order. Consecutive frames often repeat a shape (runs).
func randomTunnelFrame(rng *rand.Rand, rec *decode.Record, n uint64, now int64) {
	addrs := []netip.Addr{netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2"),
		netip.MustParseAddr("198.18.9.1"), netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2"),
		netip.MustParseAddr("198.19.0.1"), netip.MustParseAddr("198.19.0.2"), netip.MustParseAddr("198.19.0.3")}
	kinds := []decode.TunnelKind{decode.TunnelVXLAN, decode.TunnelVXLAN, decode.TunnelGRE, decode.TunnelESP,
		decode.TunnelESPinUDP, decode.TunnelWireGuard, decode.TunnelGENEVE}
	keep := rng.IntN(10) < 8 && rec.NumLevels > 0
	if keep {
		// Same shape, maybe the other direction, maybe another inner pair.
		for i := 0; i < int(rec.NumLevels); i++ {
			ip := &rec.Levels[i].IP
			if rng.IntN(2) == 0 {
				ip.Src, ip.Dst = ip.Dst, ip.Src
			}
			if i > 0 && rng.IntN(20) == 0 {
				ip.Dst = netip.AddrFrom4([4]byte{198, 19, byte(rng.IntN(256)), byte(rng.IntN(256))})
			}
		}
		rec.IKE.Valid = false
		rec.WireGuard.Type = 0
		if rng.IntN(30) == 0 {
			rec.WireGuard.Type = uint8(1 + rng.IntN(4))
		}
	} else {
		*rec = decode.Record{}
		rec.NumTunnel = uint8(rng.IntN(3))
		rec.NumLevels = 1
		for i := 0; i < int(rec.NumTunnel); i++ {
			k := kinds[rng.IntN(len(kinds))]
			rec.Tunnels[i] = decode.Tunnel{Kind: k, Level: uint8(i), ID: uint32(rng.IntN(4))}
			if !k.Encrypted() && rng.IntN(5) > 0 {
				rec.NumLevels = uint8(i + 2)
			} else {
				break
			}
		}
		for i := 0; i < int(rec.NumLevels); i++ {
			rec.Levels[i].IP = decode.IP{Version: 4, Proto: 17, Src: addrs[rng.IntN(len(addrs))], Dst: addrs[rng.IntN(len(addrs))]}
			rec.Levels[i].L4 = decode.Transport{Proto: 17, SrcPort: 4789, DstPort: 4789}
		}
		if rng.IntN(10) == 0 {
			inner := &rec.Levels[rec.NumLevels-1]
			inner.L4 = decode.Transport{Proto: 6, SrcPort: 179, DstPort: 40000, Flags: decode.TCPSyn}
		}
		rec.IKE.Valid = rng.IntN(15) == 0
		rec.IKE.Exchange = []uint8{34, 35, 36, 37}[rng.IntN(4)]
		if rng.IntN(15) == 0 {
			rec.WireGuard.Type = uint8(1 + rng.IntN(4))
		}
	}
	rec.Frame = n
	rec.Time = now - int64(rng.IntN(5))*int64(rng.IntN(1e8))
}

// TestTunnelRunSame feeds random tunnel frames to two analyzers, one counting
// runs of a tunnel on the fast path and one always taking the full path: the
// tunnels learned (Packets, First/Last times, Inner sets, SPIs,
// renegotiations) and the tunnel carrying each level must be the same.
func TestTunnelRunSame(t *testing.T) {
	fast, slow := New(), New()
	slow.tunnels.noRun = true
	rng := rand.New(rand.NewPCG(3, 4))
	var rec decode.Record
	var now int64 = 1e18
	runs := 0
	for n := uint64(1); n <= 200000; n++ {
		now += int64(rng.IntN(1e7))
		randomTunnelFrame(rng, &rec, n, now)
		if fast.tunnels.run != nil {
			runs++
		}
		fast.Packet(&rec)
		slow.Packet(&rec)
		if rec.NumTunnel > 0 && fast.carried != slow.carried {
			t.Fatalf("frame %d: carried %v, want %v", n, fast.carried, slow.carried)
		}
	}
	if !reflect.DeepEqual(fast.Tunnels(), slow.Tunnels()) {
		t.Fatalf("tunnels differ:\n fast %+v\n slow %+v", fast.Tunnels(), slow.Tunnels())
	}
	if runs < 50000 || len(fast.Tunnels()) < 20 {
		t.Fatalf("%d frames with a run, %d tunnels: the test proves little", runs, len(fast.Tunnels()))
	}
	t.Logf("%d tunnels, %d frames in a run", len(fast.Tunnels()), runs)
}

// TestTunnelRunFast: frames of one VXLAN tunnel in both directions, between
// the same inner addresses, take the fast path and count.
func TestTunnelRunFast(t *testing.T) {
	a := New()
	var rec decode.Record
	rec.NumTunnel, rec.NumLevels = 1, 2
	rec.Tunnels[0] = decode.Tunnel{Kind: decode.TunnelVXLAN, ID: 7}
	rec.Levels[0].IP = decode.IP{Version: 4, Proto: 17, Src: netip.MustParseAddr("198.18.0.1"), Dst: netip.MustParseAddr("198.18.0.2")}
	rec.Levels[1].IP = decode.IP{Version: 4, Proto: 6, Src: netip.MustParseAddr("198.19.0.1"), Dst: netip.MustParseAddr("198.19.0.2")}
	for i := range 10 {
		rec.Time = int64(i)
		a.Packet(&rec)
		rec.Levels[0].IP.Src, rec.Levels[0].IP.Dst = rec.Levels[0].IP.Dst, rec.Levels[0].IP.Src
		rec.Levels[1].IP.Src, rec.Levels[1].IP.Dst = rec.Levels[1].IP.Dst, rec.Levels[1].IP.Src
	}
	rec.Time = 10
	if !a.tunnels.fast(&rec) {
		t.Fatal("a frame of the tunnel's run took the slow path")
	}
	tn := a.Tunnels()
	if len(tn) != 1 || tn[0].Packets != 11 || tn[0].LastTime != 10 || len(tn[0].Inner) != 2 || a.carried[1] != 0 {
		t.Fatalf("tunnels %+v carried %v", tn, a.carried)
	}
	if n := testing.AllocsPerRun(1000, func() { rec.Frame++; a.Packet(&rec) }); n != 0 {
		t.Errorf("%v allocations per tunnel frame", n)
	}
}
