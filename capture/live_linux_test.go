//go:build linux

package capture

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vpndiag/vpndiag/probe/netns"
	"github.com/vpndiag/vpndiag/testdata/lab"
)

// liveRec is a copy of one captured frame.
type liveRec struct {
	iface int
	time  int64
	wire  int
	data  []byte
}

// openLiveIn opens a live capture inside a lab host's namespace; the
// sockets stay in that namespace. The source is closed at cleanup.
func openLiveIn(t *testing.T, topo *lab.Topology, host string, ctx context.Context, cfg LiveConfig) Source {
	t.Helper()
	var src Source
	err := netns.Do(topo.NS(host), func() error {
		var err error
		src, err = OpenLive(ctx, cfg)
		return err
	})
	if err != nil {
		t.Fatalf("OpenLive in %s: %v", host, err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

// collect reads src until io.EOF (or an error) in the background.
func collect(src Source) <-chan []liveRec {
	out := make(chan []liveRec, 1)
	go func() {
		var recs []liveRec
		var f Frame
		for {
			if err := src.Next(&f); err != nil {
				if err != io.EOF {
					recs = append(recs, liveRec{iface: -1, data: []byte(err.Error())})
				}
				out <- recs
				return
			}
			recs = append(recs, liveRec{iface: f.Iface, time: f.Time, wire: f.WireLen, data: append([]byte(nil), f.Data...)})
		}
	}()
	return out
}

// finish cancels the capture and returns what it read, failing on a read
// error and if Next does not return io.EOF within 2 s of the cancellation.
func finish(t *testing.T, cancel context.CancelFunc, ch <-chan []liveRec) []liveRec {
	t.Helper()
	time.Sleep(50 * time.Millisecond) // frames in flight
	cancel()
	select {
	case recs := <-ch:
		for _, r := range recs {
			if r.iface < 0 {
				t.Fatalf("Next: %s", r.data)
			}
		}
		return recs
	case <-time.After(2 * time.Second):
		t.Fatal("Next did not return io.EOF within 2s of the cancellation")
	}
	return nil
}

const twoHosts = `
host a
host b
link a:eth0=198.18.1.1/24 b:eth0=198.18.1.2/24
`

func ipProtoOf(b []byte) byte {
	if len(b) < 14+20 || binary.BigEndian.Uint16(b[12:]) != 0x0800 {
		return 0
	}
	return b[14+9]
}

// TestLivePingExact sends 7 pings of 100 payload bytes and expects exactly
// 14 ICMP frames of 142 bytes (Ethernet 14 + IPv4 20 + ICMP 8 + 100),
// alternating echo request/reply, with kernel timestamps of now, link type
// Ethernet, the hop name as description, and kernel statistics (received
// 14, dropped 0) — with both filter compilers.
func TestLivePingExact(t *testing.T) {
	topo := lab.New(t, twoHosts)
	for _, native := range []bool{false, true} {
		t.Run(fmt.Sprintf("native=%v", native), func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			start := time.Now()
			src := openLiveIn(t, topo, "a", ctx, LiveConfig{Interfaces: []string{"eth0"}, Hop: "client", Filter: "icmp", NativeFilter: native})
			ch := collect(src)
			if out, err := topo.Exec(t.Context(), "a", "ping", "-n", "-q", "-c", "7", "-i", "0.01", "-s", "100", "198.18.1.2"); err != nil {
				t.Fatalf("ping: %v: %s", err, out)
			}
			recs := finish(t, cancel, ch)
			if len(recs) != 14 {
				t.Fatalf("captured %d frames, want 14", len(recs))
			}
			for i, r := range recs {
				if r.wire != 142 || len(r.data) != 142 || r.iface != 0 {
					t.Errorf("frame %d: wire %d, captured %d, iface %d; want 142, 142, 0", i+1, r.wire, len(r.data), r.iface)
				}
				if ipProtoOf(r.data) != 1 {
					t.Errorf("frame %d is not ICMP", i+1)
				}
				wantType := byte(8)
				if i%2 == 1 {
					wantType = 0
				}
				if r.data[34] != wantType {
					t.Errorf("frame %d: ICMP type %d, want %d", i+1, r.data[34], wantType)
				}
				if r.time < start.UnixNano() || r.time > time.Now().UnixNano() {
					t.Errorf("frame %d: timestamp %v outside the test's run", i+1, time.Unix(0, r.time))
				}
				if i > 0 && r.time < recs[i-1].time {
					t.Errorf("frame %d: timestamp goes backwards", i+1)
				}
			}
			its := src.Interfaces()
			if len(its) != 1 {
				t.Fatalf("%d interfaces", len(its))
			}
			it := its[0]
			if it.Name != "eth0" || it.Description != "client" || it.LinkType != LinkTypeEthernet || it.Filter != "icmp" ||
				it.SnapLen != DefaultSnapLen || !it.HasStats || it.Received != 14 || it.Dropped != 0 {
				t.Errorf("interface %+v; want eth0/client/Ethernet/icmp, received 14, dropped 0", it)
			}
			if src.Format() != "live" || src.Name() != "eth0" {
				t.Errorf("format %q name %q", src.Format(), src.Name())
			}
		})
	}
}

// TestLiveFilterDrops sends 40 UDP datagrams to port 5001, 30 to port 5002
// and 3 pings, with the filter "udp dst port 5001": exactly the 40 must be
// captured, each 14+20+8+64 = 106 bytes. The snapshot length truncates to
// 60 bytes while WireLen keeps 106.
func TestLiveFilterDrops(t *testing.T) {
	topo := lab.New(t, twoHosts)
	tool := lab.Tool(t)
	for _, native := range []bool{false, true} {
		t.Run(fmt.Sprintf("native=%v", native), func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			src := openLiveIn(t, topo, "b", ctx, LiveConfig{Interfaces: []string{"eth0"}, Filter: "udp dst port 5001", SnapLen: 60, NativeFilter: native})
			ch := collect(src)
			for _, c := range []struct{ port, n string }{{"5001", "40"}, {"5002", "30"}} {
				if out, err := topo.Exec(t.Context(), "a", tool, "udp-send", "-to", "198.18.1.2:"+c.port, "-count", c.n, "-size", "64", "-rate", "2000"); err != nil {
					t.Fatalf("udp-send: %v: %s", err, out)
				}
			}
			if out, err := topo.Exec(t.Context(), "a", "ping", "-n", "-q", "-c", "3", "-i", "0.01", "198.18.1.2"); err != nil {
				t.Fatalf("ping: %v: %s", err, out)
			}
			recs := finish(t, cancel, ch)
			if len(recs) != 40 {
				t.Fatalf("captured %d frames, want 40", len(recs))
			}
			for i, r := range recs {
				if r.wire != 106 || len(r.data) != 60 || ipProtoOf(r.data) != 17 || binary.BigEndian.Uint16(r.data[36:]) != 5001 {
					t.Errorf("frame %d: wire %d len %d proto %d dport %d", i+1, r.wire, len(r.data), ipProtoOf(r.data), binary.BigEndian.Uint16(r.data[36:]))
				}
				if seq := binary.BigEndian.Uint64(r.data[42:50]); len(r.data) >= 50 && seq != uint64(i) {
					t.Errorf("frame %d carries sequence %d", i+1, seq)
				}
			}
		})
	}
}

// TestLiveTwoInterfaces captures on both interfaces of a forwarding
// gateway: each of 5 pings passes eth0 and eth1 in both directions, so 20
// frames, 10 per interface, merged in timestamp order, each request seen
// on eth0 before eth1.
func TestLiveTwoInterfaces(t *testing.T) {
	topo := lab.New(t, `
host a
host gw forward
host b
link a:eth0=198.18.1.2/24 gw:eth0=198.18.1.1/24
link gw:eth1=198.18.2.1/24 b:eth0=198.18.2.2/24
route a default via 198.18.1.1
route b default via 198.18.2.1
`)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	src := openLiveIn(t, topo, "gw", ctx, LiveConfig{Interfaces: []string{"eth0", "eth1"}, Hop: "gw", Filter: "icmp"})
	ch := collect(src)
	if out, err := topo.Exec(t.Context(), "a", "ping", "-n", "-q", "-c", "5", "-i", "0.02", "198.18.2.2"); err != nil {
		t.Fatalf("ping: %v: %s", err, out)
	}
	recs := finish(t, cancel, ch)
	per := [2]int{}
	for i, r := range recs {
		per[r.iface]++
		if i > 0 && r.time < recs[i-1].time {
			t.Errorf("frame %d: not in timestamp order", i+1)
		}
	}
	if len(recs) != 20 || per[0] != 10 || per[1] != 10 {
		t.Fatalf("captured %d frames (eth0 %d, eth1 %d), want 20 (10, 10)", len(recs), per[0], per[1])
	}
	// Requests: eth0 then eth1 for the same ICMP sequence.
	firstSeen := map[uint16]int{}
	for _, r := range recs {
		if r.data[34] != 8 {
			continue
		}
		seq := binary.BigEndian.Uint16(r.data[40:])
		if _, ok := firstSeen[seq]; !ok {
			firstSeen[seq] = r.iface
		}
	}
	for seq, iface := range firstSeen {
		if iface != 0 {
			t.Errorf("echo request %d seen first on interface %d", seq, iface)
		}
	}
	its := src.Interfaces()
	if len(its) != 2 || its[0].Name != "eth0" || its[1].Name != "eth1" || its[0].Received != 10 || its[1].Received != 10 {
		t.Errorf("interfaces %+v", its)
	}
}

// TestLiveTun captures on a tun device (ARPHRD_NONE): frames are raw IP
// (link type 101), and the filter is compiled for raw IP. The test writes
// 5 UDP datagrams and 2 ICMP echo requests into the tun from user space;
// the filter "udp" keeps the 5, each 20+8+12 = 40 bytes.
func TestLiveTun(t *testing.T) {
	topo := lab.New(t, "host a\n")
	ns := topo.NS("a")
	var tunFd int
	err := netns.Do(ns, func() error {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		ifr, err := unix.NewIfreq("vdtun0")
		if err != nil {
			return err
		}
		ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
		if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
			unix.Close(fd)
			return fmt.Errorf("TUNSETIFF: %w", err)
		}
		tunFd = fd
		return nil
	})
	if err != nil {
		t.Fatalf("create tun (needs the tun module and /dev/net/tun): %v", err)
	}
	t.Cleanup(func() { unix.Close(tunFd) })
	for _, args := range [][]string{{"ip", "link", "set", "vdtun0", "up"}, {"ip", "addr", "add", "198.18.5.1/24", "dev", "vdtun0"}} {
		if out, err := topo.Exec(t.Context(), "a", args...); err != nil {
			t.Fatalf("%v: %v: %s", args, err, out)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	src := openLiveIn(t, topo, "a", ctx, LiveConfig{Interfaces: []string{"vdtun0"}, Filter: "udp", NativeFilter: true})
	if lt := src.Interfaces()[0].LinkType; lt != LinkTypeRaw {
		t.Fatalf("tun link type %d, want %d", lt, LinkTypeRaw)
	}
	ch := collect(src)
	for i := 0; i < 7; i++ {
		proto := byte(17)
		if i%3 == 2 {
			proto = 1
		}
		pkt := ipv4Packet(proto, [4]byte{198, 18, 5, 2}, [4]byte{198, 18, 5, 1}, 20)
		if _, err := unix.Write(tunFd, pkt); err != nil {
			t.Fatalf("write tun: %v", err)
		}
	}
	recs := finish(t, cancel, ch)
	if len(recs) != 5 {
		t.Fatalf("captured %d frames, want 5", len(recs))
	}
	for i, r := range recs {
		if len(r.data) != 40 || r.data[0]>>4 != 4 || r.data[9] != 17 {
			t.Errorf("frame %d: %d bytes, version %d, proto %d", i+1, len(r.data), r.data[0]>>4, r.data[9])
		}
	}
}

// TestLiveDropsCounted fills a small ring (2 blocks) without reading it:
// the kernel drops what does not fit and says so. Captured + dropped must
// equal received, which must equal the 3000 datagrams sent.
func TestLiveDropsCounted(t *testing.T) {
	topo := lab.New(t, twoHosts)
	tool := lab.Tool(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	src := openLiveIn(t, topo, "b", ctx, LiveConfig{Interfaces: []string{"eth0"}, Filter: "udp port 5001", BufferSize: 256 << 10})
	if out, err := topo.Exec(t.Context(), "a", tool, "udp-send", "-to", "198.18.1.2:5001", "-count", "3000", "-size", "200", "-rate", "0"); err != nil {
		t.Fatalf("udp-send: %v: %s", err, out)
	}
	recs := finish(t, cancel, collect(src))
	it := src.Interfaces()[0]
	t.Logf("captured %d, kernel received %d, dropped %d", len(recs), it.Received, it.Dropped)
	if it.Dropped == 0 {
		t.Fatal("no drops counted although the ring was far too small")
	}
	if it.Received != 3000 || uint64(len(recs))+it.Dropped != it.Received {
		t.Errorf("captured %d + dropped %d != received %d (sent 3000)", len(recs), it.Dropped, it.Received)
	}
}

// TestLiveCancelIdle: with no traffic, Next returns io.EOF within the drain
// wait of the cancellation, and keeps returning it.
func TestLiveCancelIdle(t *testing.T) {
	topo := lab.New(t, "host a\n")
	ctx, cancel := context.WithCancel(t.Context())
	src := openLiveIn(t, topo, "a", ctx, LiveConfig{Interfaces: []string{"lo"}})
	go func() { time.Sleep(100 * time.Millisecond); cancel() }()
	start := time.Now()
	var f Frame
	err := src.Next(&f)
	if el := time.Since(start); err != io.EOF || el > 100*time.Millisecond+liveDrainWait+200*time.Millisecond {
		t.Fatalf("Next returned %v after %v", err, el)
	}
	if err := src.Next(&f); err != io.EOF {
		t.Fatalf("second Next: %v", err)
	}
}

// TestLiveLoopbackOnce: on loopback each ping is seen once per direction,
// not twice (the outgoing copies are dropped as libpcap does).
func TestLiveLoopbackOnce(t *testing.T) {
	topo := lab.New(t, "host a\n")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	src := openLiveIn(t, topo, "a", ctx, LiveConfig{Interfaces: []string{"lo"}, Filter: "icmp"})
	ch := collect(src)
	if out, err := topo.Exec(t.Context(), "a", "ping", "-n", "-q", "-c", "4", "-i", "0.01", "127.0.0.1"); err != nil {
		t.Fatalf("ping: %v: %s", err, out)
	}
	if recs := finish(t, cancel, ch); len(recs) != 8 {
		t.Fatalf("captured %d frames on lo, want 8", len(recs))
	}
}

// TestLiveErrors: a missing interface wraps ErrNoInterface and names it;
// a duplicate interface and a bad filter are errors naming them.
func TestLiveErrors(t *testing.T) {
	topo := lab.New(t, "host a\n")
	for _, tc := range []struct {
		cfg  LiveConfig
		is   error
		want string
	}{
		{LiveConfig{Interfaces: []string{"vdnope0"}}, ErrNoInterface, "vdnope0"},
		{LiveConfig{Interfaces: []string{"lo", "lo"}}, nil, "given twice"},
		{LiveConfig{Interfaces: []string{"lo"}, Filter: "port eighty"}, nil, "eighty"},
		{LiveConfig{Interfaces: []string{"lo"}, Filter: "port eighty", NativeFilter: true}, nil, "eighty"},
		{LiveConfig{}, nil, "no interface"},
	} {
		err := netns.Do(topo.NS("a"), func() error {
			src, err := OpenLive(t.Context(), tc.cfg)
			if err == nil {
				src.Close()
			}
			return err
		})
		if err == nil || !strings.Contains(err.Error(), tc.want) || tc.is != nil && !errors.Is(err, tc.is) {
			t.Errorf("%+v: error %v, want one containing %q", tc.cfg, err, tc.want)
		}
		var fe *FilterError
		if tc.cfg.Filter != "" && !errors.As(err, &fe) {
			t.Errorf("bad filter: %v is not a *FilterError", err)
		}
	}
}

// TestLiveNextAllocs proves Next does not allocate per frame.
func TestLiveNextAllocs(t *testing.T) {
	topo := lab.New(t, twoHosts)
	tool := lab.Tool(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	src := openLiveIn(t, topo, "b", ctx, LiveConfig{Interfaces: []string{"eth0"}, Filter: "udp"})
	if out, err := topo.Exec(t.Context(), "a", tool, "udp-send", "-to", "198.18.1.2:5001", "-count", "2000", "-size", "100", "-rate", "0"); err != nil {
		t.Fatalf("udp-send: %v: %s", err, out)
	}
	time.Sleep(3 * blockTimeout)
	var f Frame
	allocs := testing.AllocsPerRun(1000, func() {
		if err := src.Next(&f); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Next allocates %.1f times per frame", allocs)
	}
}
