//go:build linux

package capture

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// The live source is written directly against AF_PACKET with
// golang.org/x/sys/unix rather than gopacket's (cgo-free) afpacket package,
// because it needs three things that package does not give: the socket's
// file descriptor (one poll over the sockets of every interface, so several
// interfaces merge in one goroutine without copying frames), attaching the
// filter before the socket is bound (no unfiltered frame slips in between),
// and the frame's packet type (to drop loopback's outgoing copies, as
// libpcap does).
//
// Each interface has a TPACKET_V3 ring: blocks of blockSize bytes that the
// kernel fills with frames and hands over (TP_STATUS_USER) when full or
// blockTimeout after their first frame. A block is given back once every
// frame in it was returned and the caller asked for the next one, so
// Frame.Data points into the ring and is valid until the next call to Next.

// Sizes of the kernel's TPACKET_V3 structures.
const (
	tpacket3HdrLen = int(unsafe.Sizeof(unix.Tpacket3Hdr{})) // 48
	sllPkttypeOff  = tpacket3HdrLen + 10                    // sockaddr_ll.sll_pkttype after the header
	blockHdrOff    = 8                                      // tpacket_block_desc.hdr
	ringFrameSize  = 2048                                   // only for tp_frame_nr bookkeeping in V3
	ringBlockSize  = 128 << 10
	pollInterval   = 100 * time.Millisecond
	// mergeWait is how long after a frame's timestamp every interface's
	// earlier frames must have been handed over (the block timeout plus a
	// timer tick and scheduling slack).
	mergeWait = 2*blockTimeout + 5*time.Millisecond
)

// liveSocket is one interface's AF_PACKET socket and ring.
type liveSocket struct {
	name     string
	fd       int
	ring     []byte
	blkSize  int
	blkNr    int
	blk      int    // index of the block being read or waited for
	inBlock  bool   // blk is handed to us (TP_STATUS_USER)
	left     uint32 // frames of blk not yet returned, including the pending one
	pkt      int    // ring offset of the pending frame
	loopback bool
	snap     int
	vlan     []byte // scratch for frames whose VLAN tag is put back

	recv, drop uint64 // accumulated PACKET_STATISTICS
	statErr    error
}

// liveSource merges the sockets of several interfaces.
type liveSource struct {
	name    string
	socks   []*liveSocket
	ifaces  []Interface
	pfds    []unix.PollFd
	done    <-chan struct{}
	last    *liveSocket // returned the previous frame
	n       uint64
	drainBy time.Time // set once ctx is done: return what the kernel holds until then
	err     error     // sticky
	closed  bool
}

// OpenLive opens a live capture on cfg.Interfaces in the calling OS
// thread's network namespace (lock the thread and switch namespaces around
// the call to capture in another one: the sockets stay there). Frames of
// all interfaces come out of one Source, merged in kernel timestamp order:
// with several interfaces a frame is held until every other interface has
// had time to hand over earlier frames (mergeWait, about 20 ms). Next blocks
// until a frame arrives; when ctx is done it returns the frames the kernel
// still holds for a few milliseconds and then io.EOF, after which
// Interfaces holds the final kernel statistics.
//
// Errors: an interface that does not exist wraps ErrNoInterface; missing
// privileges wrap os.ErrPermission and say how to grant CAP_NET_RAW; a bad
// filter is a *FilterError.
func OpenLive(ctx context.Context, cfg LiveConfig) (Source, error) {
	if len(cfg.Interfaces) == 0 {
		return nil, errors.New("live capture: no interface given")
	}
	snap := int(snapOrDefault(cfg.SnapLen))
	bufSize := cfg.BufferSize
	if bufSize <= 0 {
		bufSize = DefaultBufferSize
	}
	s := &liveSource{name: strings.Join(cfg.Interfaces, ","), done: ctx.Done()}
	seen := map[string]bool{}
	for _, name := range cfg.Interfaces {
		if seen[name] {
			s.Close()
			return nil, fmt.Errorf("live capture: interface %s given twice", name)
		}
		seen[name] = true
		sock, it, err := openSocket(name, cfg, snap, bufSize)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.socks = append(s.socks, sock)
		s.ifaces = append(s.ifaces, it)
		s.pfds = append(s.pfds, unix.PollFd{Fd: int32(sock.fd), Events: unix.POLLIN})
	}
	return s, nil
}

// ifaceInfo returns an interface's index and ARPHRD type.
func ifaceInfo(name string) (index int, hwType uint16, err error) {
	if len(name) >= unix.IFNAMSIZ || name == "" || strings.ContainsAny(name, "/ \t\n") {
		return 0, 0, fmt.Errorf("capture on %q: %w (not a valid interface name)", name, ErrNoInterface)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		if fd, err = unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0); err != nil {
			return 0, 0, fmt.Errorf("capture on %s: look up the interface: %w", name, err)
		}
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return 0, 0, fmt.Errorf("capture on %q: %w", name, ErrNoInterface)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
		if errors.Is(err, unix.ENODEV) {
			return 0, 0, fmt.Errorf("capture on %s: %w (see ip link)", name, ErrNoInterface)
		}
		return 0, 0, fmt.Errorf("capture on %s: look up the interface: %w", name, err)
	}
	index = int(ifr.Uint32())
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFHWADDR, ifr); err != nil {
		return 0, 0, fmt.Errorf("capture on %s: read the link type: %w", name, err)
	}
	return index, ifr.Uint16(), nil
}

// linkTypeOf maps an ARPHRD_* device type to the LINKTYPE_* of the frames
// a SOCK_RAW packet socket reads from it.
func linkTypeOf(hw uint16) (uint16, bool) {
	switch hw {
	case unix.ARPHRD_ETHER, unix.ARPHRD_LOOPBACK:
		return LinkTypeEthernet, true // loopback frames carry an all-zero Ethernet header
	case unix.ARPHRD_NONE, unix.ARPHRD_RAWIP, unix.ARPHRD_PPP, unix.ARPHRD_TUNNEL,
		unix.ARPHRD_TUNNEL6, unix.ARPHRD_SIT:
		return LinkTypeRaw, true // tun, WireGuard, PPP, IP-in-IP: the frame starts at the IP header
	}
	return 0, false
}

func openSocket(name string, cfg LiveConfig, snap, bufSize int) (sock *liveSocket, it Interface, err error) {
	index, hw, err := ifaceInfo(name)
	if err != nil {
		return nil, it, err
	}
	lt, ok := linkTypeOf(hw)
	if !ok {
		return nil, it, fmt.Errorf("capture on %s: link type ARPHRD %d is not supported (Ethernet, loopback, tun/WireGuard, PPP and IP tunnels are)", name, hw)
	}
	it = Interface{Name: name, Description: cfg.Hop, LinkType: lt, SnapLen: uint32(snap), Filter: cfg.Filter, HasStats: true}
	var prog []bpf.RawInstruction
	if cfg.Filter != "" {
		if cfg.NativeFilter {
			prog, err = CompileFilterNative(cfg.Filter, lt, snap)
		} else {
			var f *Filter
			if f, err = CompileFilter(cfg.Filter, lt, snap); err == nil {
				prog = f.Program
			}
		}
		if err != nil {
			return nil, it, fmt.Errorf("capture on %s: %w", name, err)
		}
	} else {
		// Accept everything, truncated to the snapshot length in the kernel.
		prog = []bpf.RawInstruction{{Op: 0x06, K: uint32(snap)}}
	}
	// Protocol 0: the socket receives nothing until bind, so the filter
	// and the ring are in place before the first frame.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			return nil, it, permissionError(name, err)
		}
		return nil, it, fmt.Errorf("capture on %s: open packet socket: %w", name, err)
	}
	sock = &liveSocket{name: name, fd: fd, snap: snap, loopback: hw == unix.ARPHRD_LOOPBACK}
	defer func() {
		if err != nil {
			sock.close()
		}
	}()
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: (*unix.SockFilter)(unsafe.Pointer(&prog[0]))}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
		return nil, it, fmt.Errorf("capture on %s: attach filter %q: %w", name, cfg.Filter, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V3); err != nil {
		return nil, it, fmt.Errorf("capture on %s: TPACKET_V3 not available: %w", name, err)
	}
	// Blocks of 128 KiB hold the largest GRO/GSO frame (64 KiB) and keep
	// the ring fine-grained: the kernel refills a block only once every
	// frame in it was read, so many small blocks lose less than few big
	// ones. Frames larger than a block are truncated by the kernel.
	sock.blkSize = ringBlockSize
	sock.blkNr = max(bufSize/sock.blkSize, 4)
	req := unix.TpacketReq3{
		Block_size:     uint32(sock.blkSize),
		Block_nr:       uint32(sock.blkNr),
		Frame_size:     ringFrameSize,
		Frame_nr:       uint32(sock.blkSize / ringFrameSize * sock.blkNr),
		Retire_blk_tov: uint32(blockTimeout / time.Millisecond),
	}
	if err := unix.SetsockoptTpacketReq3(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return nil, it, fmt.Errorf("capture on %s: set up a %d-byte ring: %w", name, sock.blkSize*sock.blkNr, err)
	}
	sock.ring, err = unix.Mmap(fd, 0, sock.blkSize*sock.blkNr, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_LOCKED)
	if err != nil {
		// MAP_LOCKED can fail under RLIMIT_MEMLOCK; the ring works unlocked.
		sock.ring, err = unix.Mmap(fd, 0, sock.blkSize*sock.blkNr, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		if err != nil {
			return nil, it, fmt.Errorf("capture on %s: map the ring: %w", name, err)
		}
	}
	if lt == LinkTypeEthernet {
		sock.vlan = make([]byte, snap+4)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: index}); err != nil {
		if errors.Is(err, unix.ENODEV) {
			return nil, it, fmt.Errorf("capture on %s: %w", name, ErrNoInterface)
		}
		return nil, it, fmt.Errorf("capture on %s: bind: %w", name, err)
	}
	if cfg.Promisc {
		mreq := unix.PacketMreq{Ifindex: int32(index), Type: unix.PACKET_MR_PROMISC}
		if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
			if errors.Is(err, unix.EPERM) {
				return nil, it, permissionError(name, err)
			}
			return nil, it, fmt.Errorf("capture on %s: promiscuous mode: %w", name, err)
		}
	}
	return sock, it, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (k *liveSocket) close() {
	if k.ring != nil {
		_ = unix.Munmap(k.ring)
		k.ring = nil
	}
	if k.fd >= 0 {
		_ = unix.Close(k.fd)
		k.fd = -1
	}
}

// status returns a pointer to block b's block_status word.
func (k *liveSocket) status(b int) *uint32 {
	return (*uint32)(unsafe.Pointer(&k.ring[b*k.blkSize+blockHdrOff]))
}

func (k *liveSocket) u32(off int) uint32 { return *(*uint32)(unsafe.Pointer(&k.ring[off])) }
func (k *liveSocket) u16(off int) uint16 { return *(*uint16)(unsafe.Pointer(&k.ring[off])) }

// release gives the current block back to the kernel.
func (k *liveSocket) release() {
	atomic.StoreUint32(k.status(k.blk), unix.TP_STATUS_KERNEL)
	k.inBlock = false
	k.blk++
	if k.blk == k.blkNr {
		k.blk = 0
	}
}

// advance moves past the pending frame.
func (k *liveSocket) advance() {
	k.left--
	if k.left == 0 {
		k.release()
		return
	}
	next := k.u32(k.pkt) // tp_next_offset
	k.pkt += int(next)
}

// pending reports whether a frame is ready, taking the next block from the
// kernel when the current one is done, and skipping loopback's outgoing
// copies.
func (k *liveSocket) pending() bool {
	for {
		if !k.inBlock {
			if atomic.LoadUint32(k.status(k.blk))&unix.TP_STATUS_USER == 0 {
				return false
			}
			base := k.blk * k.blkSize
			k.inBlock = true
			k.left = k.u32(base + blockHdrOff + 4)        // num_pkts
			k.pkt = base + int(k.u32(base+blockHdrOff+8)) // offset_to_first_pkt
			if k.left == 0 {
				k.release()
				continue
			}
		}
		if k.loopback && k.ring[k.pkt+sllPkttypeOff] == unix.PACKET_OUTGOING {
			k.advance()
			continue
		}
		return true
	}
}

// time returns the pending frame's timestamp in Unix nanoseconds.
func (k *liveSocket) time() int64 {
	return int64(k.u32(k.pkt+4))*1e9 + int64(k.u32(k.pkt+8))
}

// frame fills f from the pending frame.
func (k *liveSocket) frame(f *Frame) {
	snaplen := int(k.u32(k.pkt + 12))
	wire := int(k.u32(k.pkt + 16))
	status := k.u32(k.pkt + 20)
	mac := k.pkt + int(k.u16(k.pkt+24))
	data := k.ring[mac : mac+snaplen : mac+snaplen]
	if status&unix.TP_STATUS_VLAN_VALID != 0 && k.vlan != nil && len(data) >= 12 {
		// The kernel took the 802.1Q tag off; put it back, as libpcap does.
		tci := uint16(k.u32(k.pkt + 32))
		tpid := uint16(0x8100)
		if status&unix.TP_STATUS_VLAN_TPID_VALID != 0 {
			tpid = k.u16(k.pkt + 36)
		}
		n := copy(k.vlan, data[:12])
		k.vlan[n], k.vlan[n+1], k.vlan[n+2], k.vlan[n+3] = byte(tpid>>8), byte(tpid), byte(tci>>8), byte(tci)
		n += 4
		n += copy(k.vlan[n:], data[12:])
		data = k.vlan[:n]
		wire += 4
	}
	if len(data) > k.snap {
		data = data[:k.snap]
	}
	f.Data = data
	f.WireLen = wire
	f.Time = k.time()
}

// stats adds the kernel's counters since the last read (reading resets them).
func (k *liveSocket) stats() {
	if k.fd < 0 {
		return
	}
	st, err := unix.GetsockoptTpacketStatsV3(k.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	if err != nil {
		k.statErr = err
		return
	}
	k.recv += uint64(st.Packets) // includes the drops
	k.drop += uint64(st.Drops)
}

// Name returns the interface names, comma-separated.
func (s *liveSource) Name() string { return s.name }

// Format returns "live".
func (s *liveSource) Format() string { return "live" }

// Progress returns 0, 0: a live capture has no size.
func (s *liveSource) Progress() (read, total int64) { return 0, 0 }

// Interfaces returns the interfaces with the kernel's statistics so far
// (final after io.EOF): Received counts frames that passed the filter,
// including Dropped, the frames the ring had no room for.
func (s *liveSource) Interfaces() []Interface {
	if s.err == nil && !s.closed {
		s.readStats()
	}
	return slices.Clone(s.ifaces)
}

func (s *liveSource) readStats() {
	for i, k := range s.socks {
		k.stats()
		s.ifaces[i].Received, s.ifaces[i].Dropped = k.recv, k.drop
	}
}

// Next returns the next frame; see OpenLive.
func (s *liveSource) Next(f *Frame) error {
	if s.err != nil {
		return s.err
	}
	if s.last != nil {
		s.last.advance()
		s.last = nil
	}
	for {
		if s.drainBy.IsZero() {
			select {
			case <-s.done:
				s.drainBy = time.Now().Add(liveDrainWait)
			default:
			}
		}
		best, bestT := -1, int64(math.MaxInt64)
		for i, k := range s.socks {
			if k.pending() {
				if t := k.time(); t < bestT {
					best, bestT = i, t
				}
			}
		}
		now := time.Now()
		if best >= 0 && !s.drainBy.IsZero() && !now.Before(s.drainBy) {
			best = -1
		}
		wait := pollInterval
		if best >= 0 && len(s.socks) > 1 {
			// Another interface may still hold an earlier frame in a block
			// the kernel has not handed over: wait until it must have.
			for _, k := range s.socks {
				if !k.inBlock || k.left == 0 {
					if d := time.Duration(bestT + int64(mergeWait) - now.UnixNano()); d > 0 {
						best, wait = -1, d
					}
					break
				}
			}
		}
		if best >= 0 {
			k := s.socks[best]
			k.frame(f)
			s.n++
			f.Iface = best
			f.LinkType = s.ifaces[best].LinkType
			f.Number = s.n
			f.Offset = -1
			s.last = k
			return nil
		}
		if !s.drainBy.IsZero() {
			if d := s.drainBy.Sub(now); d < wait {
				wait = d
			}
			if wait <= 0 {
				s.readStats()
				s.err = io.EOF
				return io.EOF
			}
		}
		if err := s.poll(wait); err != nil {
			s.readStats()
			s.err = &Error{File: s.name, Frame: s.n + 1, Offset: -1, Err: err}
			return s.err
		}
	}
}

// poll waits until a socket has a block for us, an error, or wait passes.
func (s *liveSource) poll(wait time.Duration) error {
	ms := int(wait / time.Millisecond)
	if ms < 1 {
		ms = 1
	}
	for i := range s.pfds {
		s.pfds[i].Revents = 0
	}
	_, err := unix.Poll(s.pfds, ms)
	if err != nil && err != unix.EINTR {
		return fmt.Errorf("poll: %w", err)
	}
	for i, p := range s.pfds {
		if p.Revents&(unix.POLLERR|unix.POLLNVAL) != 0 {
			k := s.socks[i]
			serr, gerr := unix.GetsockoptInt(k.fd, unix.SOL_SOCKET, unix.SO_ERROR)
			if gerr == nil && serr == 0 {
				continue
			}
			if errors.Is(unix.Errno(serr), unix.ENETDOWN) {
				return fmt.Errorf("interface %s went down or was removed: %w", k.name, unix.Errno(serr))
			}
			return fmt.Errorf("interface %s: socket error: %w", k.name, unix.Errno(serr))
		}
	}
	return nil
}

// Close releases the sockets and rings.
func (s *liveSource) Close() error {
	if s.closed {
		return nil
	}
	if s.err == nil {
		s.readStats()
		s.err = &Error{File: s.name, Frame: s.n + 1, Offset: -1, Err: errors.New("source is closed")}
	}
	s.closed = true
	for _, k := range s.socks {
		k.close()
	}
	return nil
}
