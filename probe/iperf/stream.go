package iperf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// udpHeaderLen returns the size of the UDP datagram header: seconds,
// microseconds and a 32- or 64-bit packet counter.
func udpHeaderLen(counters64 bool) int {
	if counters64 {
		return 16
	}
	return 12
}

// putUDPHeader writes the send time and packet counter at the start of b.
func putUDPHeader(b []byte, now time.Time, count uint64, counters64 bool) {
	us := now.UnixMicro()
	binary.BigEndian.PutUint32(b[0:4], uint32(us/1e6))
	binary.BigEndian.PutUint32(b[4:8], uint32(us%1e6))
	if counters64 {
		binary.BigEndian.PutUint64(b[8:16], count)
	} else {
		binary.BigEndian.PutUint32(b[8:12], uint32(count))
	}
}

// udpRx is the receiver's bookkeeping for one UDP stream, as iperf3 does
// it: the highest counter seen, gaps counted as loss, a counter going
// backwards counted as out of order (and taken back from the loss), and
// RFC 1889 interarrival jitter.
type udpRx struct {
	mu          sync.Mutex
	highest     int64
	lost        int64
	outOfOrder  int64
	jitter      float64 // seconds
	prevTransit float64
	started     bool
}

// packet accounts for one datagram received at now. It does not allocate.
func (u *udpRx) packet(b []byte, now time.Time, counters64 bool) bool {
	if len(b) < udpHeaderLen(counters64) {
		return false
	}
	sec := binary.BigEndian.Uint32(b[0:4])
	usec := binary.BigEndian.Uint32(b[4:8])
	var count int64
	if counters64 {
		count = int64(binary.BigEndian.Uint64(b[8:16]))
	} else {
		count = int64(binary.BigEndian.Uint32(b[8:12]))
	}
	sent := float64(sec) + float64(usec)/1e6
	transit := float64(now.UnixMicro())/1e6 - sent
	u.mu.Lock()
	if count >= u.highest+1 {
		if count > u.highest+1 {
			u.lost += count - 1 - u.highest
		}
		u.highest = count
	} else {
		u.outOfOrder++
		if u.lost > 0 {
			u.lost--
		}
	}
	if !u.started {
		u.prevTransit = transit
		u.started = true
	}
	d := transit - u.prevTransit
	if d < 0 {
		d = -d
	}
	u.prevTransit = transit
	u.jitter += (d - u.jitter) / 16
	u.mu.Unlock()
	return true
}

// snapshot returns the counters under the lock.
func (u *udpRx) snapshot() (highest, lost, ooo int64, jitter float64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.highest, u.lost, u.outOfOrder, u.jitter
}

// stream is one data stream of a test, on either side.
type stream struct {
	id     int
	sender bool // this side sends on it
	udp    bool

	conn    net.Conn     // TCP stream, or connected UDP socket (client side)
	udpConn *net.UDPConn // shared unconnected UDP socket (server side)
	peer    netip.AddrPort

	bytes   atomic.Uint64 // bytes sent or received while the test ran
	packets atomic.Int64  // UDP datagrams sent (sender side)
	rx      udpRx         // UDP receiver bookkeeping

	stop    atomic.Bool
	done    chan struct{}
	errMu   sync.Mutex
	err     error
	started time.Time
	ended   time.Time
}

func newStream(id int, sender, udp bool) *stream {
	return &stream{id: id, sender: sender, udp: udp, done: make(chan struct{})}
}

func (s *stream) setErr(err error) {
	s.errMu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.errMu.Unlock()
}

// Err returns the first error the stream's loop hit, if any.
func (s *stream) Err() error {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.err
}

// pacer holds a sender to a bit rate averaged since the start, like
// iperf3's throttle, sleeping in steps of at least a millisecond.
type pacer struct {
	rate  uint64 // bits per second; 0 is unlimited
	start time.Time
}

// wait blocks until sending more than sent bytes keeps the average at or
// under the rate, or until stop is set.
func (p *pacer) wait(sent uint64, stop *atomic.Bool) {
	if p.rate == 0 {
		return
	}
	for !stop.Load() {
		due := p.start.Add(time.Duration(float64(sent*8) / float64(p.rate) * float64(time.Second)))
		ahead := time.Until(due)
		if ahead <= 0 {
			return
		}
		if ahead > 100*time.Millisecond {
			ahead = 100 * time.Millisecond
		}
		if ahead < time.Millisecond && ahead > 0 {
			ahead = time.Millisecond
		}
		time.Sleep(ahead)
	}
}

// isStopErr tells errors caused by our own shutdown (deadline set to now,
// socket closed) from real failures.
func (s *stream) isStopErr(err error) bool {
	return s.stop.Load() && (errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF))
}

// runTCP sends or receives on a TCP stream until stopped or failed.
func (s *stream) runTCP(length int, rate uint64) {
	defer close(s.done)
	buf := make([]byte, length)
	s.started = time.Now()
	defer func() { s.ended = time.Now() }()
	if s.sender {
		fillPayload(buf)
		p := pacer{rate: rate, start: s.started}
		for !s.stop.Load() {
			p.wait(s.bytes.Load(), &s.stop)
			n, err := s.conn.Write(buf)
			s.bytes.Add(uint64(n))
			if err != nil {
				if !s.isStopErr(err) {
					s.setErr(fmt.Errorf("stream %d: send: %w", s.id, err))
				}
				return
			}
		}
		return
	}
	for {
		n, err := s.conn.Read(buf)
		if !s.stop.Load() {
			s.bytes.Add(uint64(n))
		}
		if err != nil {
			if !s.isStopErr(err) {
				if errors.Is(err, io.EOF) {
					err = io.ErrUnexpectedEOF
				}
				s.setErr(fmt.Errorf("stream %d: receive: %w", s.id, err))
			}
			return
		}
	}
}

// runUDPSend sends paced datagrams until stopped or failed.
func (s *stream) runUDPSend(length int, rate uint64, counters64 bool) {
	defer close(s.done)
	buf := make([]byte, length)
	fillPayload(buf)
	s.started = time.Now()
	defer func() { s.ended = time.Now() }()
	p := pacer{rate: rate, start: s.started}
	var count uint64
	for !s.stop.Load() {
		p.wait(s.bytes.Load(), &s.stop)
		if s.stop.Load() {
			return
		}
		count++
		putUDPHeader(buf, time.Now(), count, counters64)
		var n int
		var err error
		if s.udpConn != nil {
			n, err = s.udpConn.WriteToUDPAddrPort(buf, s.peer)
		} else {
			n, err = s.conn.Write(buf)
		}
		if err != nil {
			count--
			if errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.EAGAIN) {
				time.Sleep(100 * time.Microsecond)
				continue
			}
			if !s.isStopErr(err) {
				s.setErr(fmt.Errorf("stream %d: send: %w", s.id, err))
			}
			return
		}
		s.bytes.Add(uint64(n))
		s.packets.Store(int64(count))
	}
}

// runUDPRecv receives datagrams on a connected UDP socket until stopped.
func (s *stream) runUDPRecv(length int, counters64 bool) {
	defer close(s.done)
	buf := make([]byte, max(length, 65536))
	s.started = time.Now()
	defer func() { s.ended = time.Now() }()
	for {
		n, err := s.conn.Read(buf)
		if err != nil {
			if !s.isStopErr(err) {
				s.setErr(fmt.Errorf("stream %d: receive: %w", s.id, err))
			}
			return
		}
		s.udpDatagram(buf[:n], time.Now(), counters64)
	}
}

// udpDatagram accounts for one received datagram while the test runs.
func (s *stream) udpDatagram(b []byte, now time.Time, counters64 bool) {
	if s.stop.Load() {
		return
	}
	if s.rx.packet(b, now, counters64) {
		s.bytes.Add(uint64(len(b)))
	}
}

// beginHalt stops the stream's counting and loop. A TCP receiver given
// drain > 0 keeps reading (without counting) until the peer closes or drain
// passes, so a sender blocked on a full pipe still sees the end of the
// test; everything else stops at once.
func (s *stream) beginHalt(drain time.Duration) {
	s.stop.Store(true)
	if s.conn != nil {
		if !s.sender && !s.udp && drain > 0 {
			_ = s.conn.SetDeadline(time.Now().Add(drain))
		} else {
			_ = s.conn.SetDeadline(time.Now())
		}
	}
}

// waitDone waits for the stream's loop to end, at most timeout, then
// closes the connection to force it.
func (s *stream) waitDone(timeout time.Duration) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-s.done:
	case <-t.C:
		if s.conn != nil {
			s.conn.Close()
		}
		<-s.done
	}
}

// fillPayload fills a send buffer with a repeating non-zero pattern.
func fillPayload(b []byte) {
	const pat = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	for i := range b {
		b[i] = pat[i%len(pat)]
	}
}
