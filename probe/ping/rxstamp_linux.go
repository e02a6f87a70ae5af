package ping

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// rxStamps times echo replies by the kernel's receive timestamp, as iputils
// ping does. pro-bing takes the receive time in user space after its reader
// goroutine has handed the reply to its main loop, which adds tens of
// microseconds (more on a loaded machine) to every round trip. rxStamps is
// a second raw ICMP socket with SO_TIMESTAMPNS: the kernel delivers it a
// copy of every echo reply, and the round trip is the kernel's receive time
// minus the send time pro-bing wrote into the payload just before sending.
type rxStamps struct {
	conn *net.IPConn
	ip   net.IP
	id   int
	v6   bool

	mu     sync.Mutex
	stamps map[uint16]stamp // by sequence number: at most 65536 entries
	notify chan struct{}    // closed and replaced on every new entry
	done   chan struct{}
}

// stamp is one echo reply seen by the kernel.
type stamp struct {
	sent time.Time // pro-bing's send time from the payload
	rtt  time.Duration
}

// openRxStamps opens the timestamping socket in the calling thread's
// network namespace and starts reading replies from ip with ICMP id id.
func openRxStamps(ip net.IP, id int) (*rxStamps, error) {
	v6 := ip.To4() == nil
	family, proto := unix.AF_INET, unix.IPPROTO_ICMP
	if v6 {
		family, proto = unix.AF_INET6, unix.IPPROTO_ICMPV6
	}
	fd, err := unix.Socket(family, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, proto)
	if err != nil {
		return nil, fmt.Errorf("timestamp socket: %w", err)
	}
	if err := setupStampSocket(fd, v6); err != nil {
		unix.Close(fd)
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "icmp-rxstamps")
	pc, err := net.FilePacketConn(f)
	f.Close() // FilePacketConn holds its own descriptor
	if err != nil {
		return nil, fmt.Errorf("timestamp socket: %w", err)
	}
	conn, ok := pc.(*net.IPConn)
	if !ok {
		pc.Close()
		return nil, fmt.Errorf("timestamp socket: got %T, want *net.IPConn", pc)
	}
	s := &rxStamps{conn: conn, ip: ip, id: id & 0xffff, v6: v6,
		stamps: make(map[uint16]stamp), notify: make(chan struct{}), done: make(chan struct{})}
	go s.read()
	return s, nil
}

// setupStampSocket asks for nanosecond receive timestamps and lets only
// echo replies through.
func setupStampSocket(fd int, v6 bool) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		return fmt.Errorf("timestamp socket: SO_TIMESTAMPNS: %w", err)
	}
	if v6 {
		var filter unix.ICMPv6Filter
		for i := range filter.Data {
			filter.Data[i] = 0xffffffff // block every type...
		}
		filter.Data[129>>5] &^= 1 << (129 & 31) // ...but echo reply
		if err := unix.SetsockoptICMPv6Filter(fd, unix.IPPROTO_ICMPV6, unix.ICMPV6_FILTER, &filter); err != nil {
			return fmt.Errorf("timestamp socket: ICMPV6_FILTER: %w", err)
		}
		return nil
	}
	const icmpFilter = 1 // ICMP_FILTER on SOL_RAW: a bit set blocks that type
	if err := unix.SetsockoptInt(fd, unix.SOL_RAW, icmpFilter, ^1); err != nil {
		return fmt.Errorf("timestamp socket: ICMP_FILTER: %w", err)
	}
	return nil
}

func (s *rxStamps) read() {
	defer close(s.done)
	buf := make([]byte, 65536)
	oob := make([]byte, 128)
	for {
		n, oobn, _, from, err := s.conn.ReadMsgIP(buf, oob)
		if err != nil {
			// Closed, or an error that would repeat: stop stamping;
			// replies are then timed in user space.
			return
		}
		if from == nil || !from.IP.Equal(s.ip) {
			continue
		}
		at, ok := kernelTime(oob[:oobn])
		if !ok {
			continue
		}
		seq, sent, ok := s.parseReply(buf[:n])
		if !ok {
			continue
		}
		s.mu.Lock()
		// A duplicate carries the same send time and keeps the first
		// reply's stamp; another send time is a new echo that reuses the
		// sequence number after 65536 echoes.
		if old, seen := s.stamps[seq]; !seen || !old.sent.Equal(sent) {
			s.stamps[seq] = stamp{sent: sent, rtt: at.Sub(sent)}
			close(s.notify)
			s.notify = make(chan struct{})
		}
		s.mu.Unlock()
	}
}

// parseReply returns the sequence number and pro-bing's send time of an
// echo reply with our id.
func (s *rxStamps) parseReply(b []byte) (seq uint16, sent time.Time, ok bool) {
	reply := byte(0)
	if s.v6 {
		reply = 129
	} else { // raw IPv4 sockets deliver the IP header
		if len(b) < 20 {
			return 0, time.Time{}, false
		}
		ihl := int(b[0]&0x0f) * 4
		if ihl < 20 || len(b) < ihl {
			return 0, time.Time{}, false
		}
		b = b[ihl:]
	}
	if len(b) < 8+8 || b[0] != reply || b[1] != 0 || int(binary.BigEndian.Uint16(b[4:6])) != s.id {
		return 0, time.Time{}, false
	}
	ns := int64(binary.BigEndian.Uint64(b[8:16])) // pro-bing's timestamp
	return binary.BigEndian.Uint16(b[6:8]), time.Unix(0, ns), true
}

// kernelTime returns the SCM_TIMESTAMPNS time among control messages.
func kernelTime(oob []byte) (time.Time, bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return time.Time{}, false
	}
	for _, m := range msgs {
		if m.Header.Level != unix.SOL_SOCKET || m.Header.Type != unix.SCM_TIMESTAMPNS {
			continue
		}
		switch len(m.Data) { // struct timespec of 64- or 32-bit platforms
		case 16:
			return time.Unix(int64(binary.NativeEndian.Uint64(m.Data[0:8])), int64(binary.NativeEndian.Uint64(m.Data[8:16]))), true
		case 8:
			return time.Unix(int64(int32(binary.NativeEndian.Uint32(m.Data[0:4]))), int64(int32(binary.NativeEndian.Uint32(m.Data[4:8])))), true
		}
	}
	return time.Time{}, false
}

// take returns the kernel-timed round trip of the reply pro-bing reported
// with sequence number seq and user-space round trip userRTT, waiting up to
// wait for the timestamp socket to see it. The kernel saw the reply before
// pro-bing did, so a stamp is only taken if 0 < rtt <= userRTT, and only if
// it was sent within userRTT + 1 s (not an echo 65536 sequence numbers ago,
// at least 65 s at the shortest interval).
func (s *rxStamps) take(seq int, userRTT, wait time.Duration) (time.Duration, bool) {
	key := uint16(seq)
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		st, ok := s.stamps[key]
		ok = ok && st.rtt > 0 && st.rtt <= userRTT && st.sent.After(time.Now().Add(-userRTT-time.Second))
		if ok {
			delete(s.stamps, key)
		}
		ch := s.notify
		s.mu.Unlock()
		if ok {
			return st.rtt, true
		}
		select {
		case <-ch:
		case <-deadline.C:
			return 0, false
		case <-s.done:
			return 0, false
		}
	}
}

// Close stops reading and releases the socket.
func (s *rxStamps) Close() {
	s.conn.Close()
	<-s.done
}
