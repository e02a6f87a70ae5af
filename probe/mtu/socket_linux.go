//go:build linux

package mtu

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// echoSocket is a connected ICMP socket with DF probing and the error queue
// enabled. Raw sockets (privileged) see the IP header on receive and every
// echo reply of the namespace; datagram ("ping") sockets see only their own
// replies, without IP header, and the kernel sets the echo ID and checksum.
type echoSocket struct {
	fd  int
	raw bool
	v6  bool
	id  uint16
	seq uint16
	dst netip.Addr
	buf []byte
	oob []byte
}

// openEcho opens and connects an ICMP (IPv4) or ICMPv6 socket to dst.
func openEcho(dst netip.Addr, source string, privileged bool) (*echoSocket, error) {
	typ := unix.SOCK_DGRAM
	if privileged {
		typ = unix.SOCK_RAW
	}
	v6 := dst.Is6()
	domain, proto := unix.AF_INET, unix.IPPROTO_ICMP
	if v6 {
		domain, proto = unix.AF_INET6, unix.IPPROTO_ICMPV6
	}
	fd, err := unix.Socket(domain, typ|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, proto)
	if err != nil {
		return nil, fmt.Errorf("open ICMP socket: %w", err)
	}
	s := &echoSocket{fd: fd, raw: privileged, v6: v6, dst: dst, id: uint16(rand.N(1 << 16)), buf: make([]byte, MaxSize+64), oob: make([]byte, 512)}
	fail := func(what string, err error) (*echoSocket, error) {
		unix.Close(fd)
		return nil, fmt.Errorf("ICMP socket: %s: %w", what, err)
	}
	// PROBE: set DF (IPv6: never fragment locally), and size packets by the
	// interface MTU, not the path MTU the kernel cached from earlier errors.
	if v6 {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER, unix.IPV6_PMTUDISC_PROBE); err != nil {
			return fail("IPV6_MTU_DISCOVER", err)
		}
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVERR, 1); err != nil {
			return fail("IPV6_RECVERR", err)
		}
		if privileged {
			// ICMP6_FILTER: a bit set blocks that type; let only echo
			// replies (129) in.
			var f unix.ICMPv6Filter
			for i := range f.Data {
				f.Data[i] = ^uint32(0)
			}
			f.Data[129>>5] &^= 1 << (129 & 31)
			if err := unix.SetsockoptICMPv6Filter(fd, unix.IPPROTO_ICMPV6, unix.ICMPV6_FILTER, &f); err != nil {
				return fail("ICMP6_FILTER", err)
			}
		}
	} else {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_PROBE); err != nil {
			return fail("IP_MTU_DISCOVER", err)
		}
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_RECVERR, 1); err != nil {
			return fail("IP_RECVERR", err)
		}
		if privileged {
			// ICMP_FILTER: a bit set blocks that type; let only echo
			// replies in. Errors still reach the error queue.
			if err := unix.SetsockoptInt(fd, unix.SOL_RAW, 1, ^(1 << 0)); err != nil {
				return fail("ICMP_FILTER", err)
			}
		}
	}
	sockaddr := func(a netip.Addr) unix.Sockaddr {
		if v6 {
			return &unix.SockaddrInet6{Addr: a.As16()}
		}
		return &unix.SockaddrInet4{Addr: a.As4()}
	}
	if source != "" {
		a := netip.MustParseAddr(source)
		if a.Is6() != v6 {
			return fail("bind "+source, errors.New("source and target address families differ"))
		}
		if err := unix.Bind(fd, sockaddr(a)); err != nil {
			return fail("bind "+source, err)
		}
	}
	if err := unix.Connect(fd, sockaddr(dst)); err != nil {
		return fail("connect "+dst.String(), err)
	}
	if !privileged {
		if sa, err := unix.Getsockname(fd); err == nil {
			switch in := sa.(type) {
			case *unix.SockaddrInet4:
				s.id = uint16(in.Port)
			case *unix.SockaddrInet6:
				s.id = uint16(in.Port)
			}
		}
	}
	return s, nil
}

func (s *echoSocket) Close() error { return unix.Close(s.fd) }

// checksum is the Internet checksum of b.
func checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// probe sends one echo of an IP packet of size bytes and waits up to
// timeout for its reply or an ICMP error about it.
func (s *echoSocket) probe(ctx context.Context, size int, timeout time.Duration) Probe {
	s.seq++
	seq := s.seq
	pkt := make([]byte, size-headerBytes(s.v6)+8)
	pkt[0] = 8 // echo request
	if s.v6 {
		pkt[0] = 128
	}
	binary.BigEndian.PutUint16(pkt[4:], s.id)
	binary.BigEndian.PutUint16(pkt[6:], seq)
	for i := 8; i < len(pkt); i++ {
		pkt[i] = byte(i)
	}
	if !s.v6 {
		// The kernel computes ICMPv6 checksums (it needs the pseudo-header).
		binary.BigEndian.PutUint16(pkt[2:], checksum(pkt))
	}
	s.drainErrors()
	start := time.Now()
	if _, err := unix.Write(s.fd, pkt); err != nil {
		if errors.Is(err, unix.EMSGSIZE) {
			mtu, _ := unix.GetsockoptInt(s.fd, unix.IPPROTO_IP, unix.IP_MTU)
			if s.v6 {
				mtu, _ = unix.GetsockoptInt(s.fd, unix.IPPROTO_IPV6, unix.IPV6_MTU)
			}
			s.drainErrors()
			return Probe{Outcome: LocalTooBig, MTU: mtu}
		}
		return Probe{Outcome: Unreachable, From: "local: " + err.Error()}
	}
	deadline := start.Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 || ctx.Err() != nil {
			return Probe{Outcome: Timeout}
		}
		fds := []unix.PollFd{{Fd: int32(s.fd), Events: unix.POLLIN}}
		wait := min(left, 50*time.Millisecond)
		n, err := unix.Poll(fds, int(wait/time.Millisecond)+1)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return Probe{Outcome: Unreachable, From: "local: poll: " + err.Error()}
		}
		if n == 0 {
			continue
		}
		if fds[0].Revents&unix.POLLERR != 0 {
			if p, ok := s.readError(seq); ok {
				p.RTT = time.Since(start)
				return p
			}
		}
		if fds[0].Revents&unix.POLLIN != 0 && s.readReply(seq) {
			return Probe{Outcome: Reply, RTT: time.Since(start)}
		}
	}
}

// readReply reads queued packets and reports whether the reply to seq was
// among them.
func (s *echoSocket) readReply(seq uint16) bool {
	found := false
	for {
		n, err := unix.Read(s.fd, s.buf)
		if err != nil || n <= 0 {
			return found
		}
		b := s.buf[:n]
		reply := byte(0)
		if s.v6 {
			reply = 129
		}
		if s.raw && !s.v6 { // IPv4 raw sockets receive the IP header
			if len(b) < 20 {
				continue
			}
			ihl := int(b[0]&0x0f) * 4
			if len(b) < ihl+8 {
				continue
			}
			b = b[ihl:]
		}
		if len(b) < 8 || b[0] != reply {
			continue
		}
		if s.raw && binary.BigEndian.Uint16(b[4:]) != s.id {
			continue
		}
		if binary.BigEndian.Uint16(b[6:]) == seq {
			found = true
		}
	}
}

// readError reads the error queue; it returns the outcome for an error
// about the echo with seq.
func (s *echoSocket) readError(seq uint16) (Probe, bool) {
	var out Probe
	found := false
	for {
		n, oobn, _, _, err := unix.Recvmsg(s.fd, s.buf, s.oob, unix.MSG_ERRQUEUE)
		if err != nil {
			return out, found
		}
		p, matchSeq, ok := parseError(s.buf[:n], s.oob[:oobn])
		if !ok || found {
			continue
		}
		// The error carries the start of our echo: match ID (raw) and seq.
		if matchSeq.seq == seq && (!s.raw || matchSeq.id == s.id) {
			out, found = p, true
		}
	}
}

// drainErrors discards stale error-queue entries.
func (s *echoSocket) drainErrors() {
	for i := 0; i < 64; i++ {
		if _, _, _, _, err := unix.Recvmsg(s.fd, s.buf, s.oob, unix.MSG_ERRQUEUE); err != nil {
			return
		}
	}
}

type echoID struct{ id, seq uint16 }

// parseError decodes one error-queue message: the IP_RECVERR or
// IPV6_RECVERR control message (struct sock_extended_err followed by the
// offender's address) and the data, which starts at the ICMP header of the
// probe it concerns.
func parseError(data, oob []byte) (Probe, echoID, bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return Probe{}, echoID{}, false
	}
	var e echoID
	if len(data) >= 8 {
		e = echoID{binary.BigEndian.Uint16(data[4:]), binary.BigEndian.Uint16(data[6:])}
	}
	for _, m := range msgs {
		v4 := m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_RECVERR
		v6 := m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_RECVERR
		if !v4 && !v6 {
			continue
		}
		const eeSize = int(unsafe.Sizeof(unix.SockExtendedErr{}))
		if len(m.Data) < eeSize {
			continue
		}
		ee := (*unix.SockExtendedErr)(unsafe.Pointer(&m.Data[0]))
		if ee.Origin != unix.SO_EE_ORIGIN_ICMP && ee.Origin != unix.SO_EE_ORIGIN_ICMP6 {
			return Probe{}, e, false // a local error: handled at send
		}
		p := Probe{ICMPType: int(ee.Type), ICMPCode: int(ee.Code)}
		off := m.Data[eeSize:]
		switch {
		case len(off) >= 8 && binary.NativeEndian.Uint16(off) == unix.AF_INET:
			p.From = netip.AddrFrom4([4]byte(off[4:8])).String()
		case len(off) >= 24 && binary.NativeEndian.Uint16(off) == unix.AF_INET6:
			p.From = netip.AddrFrom16([16]byte(off[8:24])).String()
		}
		tooBig := (ee.Origin == unix.SO_EE_ORIGIN_ICMP && ee.Type == 3 && ee.Code == 4) ||
			(ee.Origin == unix.SO_EE_ORIGIN_ICMP6 && ee.Type == 2)
		if tooBig {
			p.Outcome, p.MTU = FragNeeded, int(ee.Info)
		} else {
			p.Outcome = Unreachable
		}
		return p, e, len(data) >= 8
	}
	return Probe{}, e, false
}
