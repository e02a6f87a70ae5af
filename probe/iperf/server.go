package iperf

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Server answers iperf3 clients, one test at a time; a client that
// connects while a test runs gets ACCESS_DENIED ("the server is busy"),
// as from iperf3 itself.
type Server struct {
	// OnResult, if set, is called after every test with what was measured
	// (nil if no stream ran) and the error that ended it, if any.
	OnResult func(*Result, error)
	// OnInterval, if set, is called with every interval of a running test.
	OnInterval func(Interval)
	// Timeout bounds every control-channel wait outside the measurement and
	// stream set-up; default 10 s.
	Timeout time.Duration
	// Interval is the reporting interval; default 1 s.
	Interval time.Duration

	mu  sync.Mutex
	cur *serverTest
}

// Serve runs a default Server on ln until ctx ends.
func Serve(ctx context.Context, ln net.Listener) error {
	return (&Server{}).Serve(ctx, ln)
}

// Serve accepts control and stream connections on ln until ctx ends, then
// closes ln and returns nil. UDP tests use the same port number over UDP.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.Timeout <= 0 {
		s.Timeout = 10 * time.Second
	}
	if s.Interval == 0 {
		s.Interval = time.Second
	}
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for seq := uint64(0); ; seq++ {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("iperf3 server: accept on %s: %w", ln.Addr(), err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.handle(ctx, ln, acceptedConn{conn, seq})
		}()
	}
}

// handle reads a new connection's cookie and makes it a test's control
// connection, one of its streams, or turns it away as busy.
func (s *Server) handle(ctx context.Context, ln net.Listener, ac acceptedConn) {
	conn := ac.Conn
	var cookie [CookieSize]byte
	_ = conn.SetReadDeadline(time.Now().Add(s.Timeout))
	if _, err := readFull(conn, cookie[:]); err != nil {
		conn.Close()
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	s.mu.Lock()
	cur := s.cur
	if cur == nil {
		t := &serverTest{srv: s, ctrl: conn, cookie: cookie, streamCh: make(chan acceptedConn, 128)}
		s.cur = t
		s.mu.Unlock()
		res, err := t.run(ctx, ln)
		s.mu.Lock()
		s.cur = nil
		s.mu.Unlock()
		if s.OnResult != nil {
			s.OnResult(res, err)
		}
		return
	}
	s.mu.Unlock()
	if cur.cookie == cookie {
		select {
		case cur.streamCh <- ac:
			return
		default:
		}
	}
	_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = conn.Write([]byte{AccessDenied.wire()})
	conn.Close()
}

// acceptedConn is a connection with its accept order. Stream ids follow
// the order in which the client connected its streams (it connects them
// one after the other), not the order in which their cookies were read.
type acceptedConn struct {
	net.Conn
	seq uint64
}

// serverTest is the server side of one test.
type serverTest struct {
	srv      *Server
	ctrl     net.Conn
	cookie   [CookieSize]byte
	streamCh chan acceptedConn
	p        params
	se       *session
	udp      *net.UDPConn
}

// Codes sent after SERVER_ERROR: iperf3's i_errno for "bad parameter"
// style failures, and errno 0.
const (
	ieParams = 19 // IEPARAMS
	ieListen = 10 // IESTREAMLISTEN
)

func (t *serverTest) fail(code int32, err error) error {
	var b [9]byte
	b[0] = ServerError.wire()
	binary.BigEndian.PutUint32(b[1:5], uint32(code))
	_ = t.ctrl.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = t.ctrl.Write(b[:])
	return err
}

func (t *serverTest) run(ctx context.Context, ln net.Listener) (*Result, error) {
	defer t.ctrl.Close()
	to := t.srv.Timeout
	peer := remoteAddr(t.ctrl)
	stopWatch := context.AfterFunc(ctx, func() { t.ctrl.SetDeadline(time.Now()) })
	defer stopWatch()
	if err := writeState(t.ctrl, ParamExchange, to); err != nil {
		return nil, fmt.Errorf("client %s: %w", peer, err)
	}
	if err := readJSON(t.ctrl, &t.p, to); err != nil {
		return nil, fmt.Errorf("client %s: parameters: %w", peer, err)
	}
	if err := t.checkParams(); err != nil {
		return nil, t.fail(ieParams, fmt.Errorf("client %s: %w", peer, err))
	}
	t.se = &session{
		udp:        t.p.UDP,
		sending:    t.p.Reverse,
		reverse:    t.p.Reverse,
		length:     t.p.Len,
		rate:       t.p.Bandwidth,
		counters64: t.p.UDPCounters64Bit != 0,
		interval:   t.srv.Interval,
		remote:     peer,
		onInterval: t.srv.OnInterval,
	}
	defer t.se.close()
	if t.p.UDP {
		la, _ := ln.Addr().(*net.TCPAddr)
		if la == nil {
			return nil, t.fail(ieListen, fmt.Errorf("client %s: UDP needs a TCP listener", peer))
		}
		u, err := net.ListenUDP("udp", &net.UDPAddr{IP: la.IP, Port: la.Port, Zone: la.Zone})
		if err != nil {
			return nil, t.fail(ieListen, fmt.Errorf("client %s: open UDP port %d: %w", peer, la.Port, err))
		}
		_ = u.SetReadBuffer(4 << 20)
		_ = u.SetWriteBuffer(4 << 20)
		t.udp = u
		defer u.Close()
	}
	if err := writeState(t.ctrl, CreateStreams, to); err != nil {
		return nil, fmt.Errorf("client %s: %w", peer, err)
	}
	if err := t.acceptStreams(ctx, to); err != nil {
		return nil, t.fail(ieListen, fmt.Errorf("client %s: %w", peer, err))
	}
	if err := writeState(t.ctrl, TestStart, to); err != nil {
		return nil, fmt.Errorf("client %s: %w", peer, err)
	}
	if err := writeState(t.ctrl, TestRunning, to); err != nil {
		return nil, fmt.Errorf("client %s: %w", peer, err)
	}
	t.se.run()
	var rxDone chan struct{}
	if t.p.UDP && !t.p.Reverse {
		rxDone = make(chan struct{})
		go t.udpReceive(rxDone)
	}
	ended, err := t.waitEnd(ctx)
	t.se.halt(0)
	if t.udp != nil {
		_ = t.udp.SetReadDeadline(time.Now())
		if rxDone != nil {
			<-rxDone
		}
	}
	t.se.wait(2 * time.Second)
	t.se.close()
	if err != nil {
		return t.se.result(nil), fmt.Errorf("client %s: %w", peer, err)
	}
	if !ended {
		_ = writeState(t.ctrl, ServerTerminate, time.Second)
		return t.se.result(nil), fmt.Errorf("client %s: test did not end within %v of its duration", peer, graceTime)
	}
	if err := writeState(t.ctrl, ExchangeResults, to); err != nil {
		return t.se.result(nil), fmt.Errorf("client %s: %w", peer, err)
	}
	var remote wireResults
	if err := readJSON(t.ctrl, &remote, to); err != nil {
		return t.se.result(nil), fmt.Errorf("client %s: client results: %w", peer, err)
	}
	if err := writeJSON(t.ctrl, t.se.localResults(), to); err != nil {
		return t.se.result(&remote), fmt.Errorf("client %s: send results: %w", peer, err)
	}
	if err := writeState(t.ctrl, DisplayResults, to); err != nil {
		return t.se.result(&remote), fmt.Errorf("client %s: %w", peer, err)
	}
	// The client answers IPERF_DONE; some close without it.
	if st, err := readState(t.ctrl, to); err == nil && st != IperfDone {
		return t.se.result(&remote), fmt.Errorf("client %s: expected IPERF_DONE, got %s", peer, st)
	}
	return t.se.result(&remote), nil
}

// graceTime is how long past its duration a test may run before the
// server gives up on the client.
const graceTime = 10 * time.Second

// waitEnd waits for TEST_END. It returns false without error when the
// test overran its duration by graceTime.
func (t *serverTest) waitEnd(ctx context.Context) (bool, error) {
	limit := time.Duration(t.p.Time+t.p.Omit)*time.Second + graceTime
	ch := make(chan stateMsg, 1)
	go func() {
		st, err := readState(t.ctrl, limit)
		ch <- stateMsg{st, err}
	}()
	select {
	case m := <-ch:
		switch {
		case m.err != nil && isTimeout(m.err) && ctx.Err() == nil:
			return false, nil
		case m.err != nil:
			if ctx.Err() != nil {
				return false, fmt.Errorf("server stopped: %w", ctx.Err())
			}
			return false, fmt.Errorf("control connection lost during the test: %w", m.err)
		case m.st == TestEnd:
			return true, nil
		case m.st == ClientTerminate:
			return false, errors.New("client terminated the test")
		default:
			return false, fmt.Errorf("unexpected control message %s during the test", m.st)
		}
	case err := <-t.se.errCh:
		return false, err
	case <-ctx.Done():
		return false, fmt.Errorf("server stopped: %w", ctx.Err())
	}
}

func (t *serverTest) checkParams() error {
	p := &t.p
	switch {
	case p.TCP == p.UDP:
		return errors.New("parameters name neither TCP nor UDP (only those are supported)")
	case p.Bidirectional:
		return errors.New("bidirectional tests are not supported")
	case p.Parallel == 0:
		p.Parallel = 1
	}
	if p.Parallel < 0 || p.Parallel > 128 {
		return fmt.Errorf("parallel %d out of range 1..128", p.Parallel)
	}
	if p.Len == 0 {
		p.Len = DefaultTCPLength
		if p.UDP {
			p.Len = DefaultUDPLength
		}
	}
	if p.Len < 0 || p.Len > 1<<24 || (p.UDP && (p.Len > maxUDPLength || p.Len < udpHeaderLen(p.UDPCounters64Bit != 0))) {
		return fmt.Errorf("length %d out of range", p.Len)
	}
	if p.Time < 0 || p.Time > 86400 || p.Omit < 0 || p.Omit > 3600 {
		return fmt.Errorf("duration %d s / omit %d s out of range", p.Time, p.Omit)
	}
	return nil
}

// acceptStreams collects the test's streams: TCP connections that sent
// our cookie, or UDP peers that sent the 4-byte announcement.
func (t *serverTest) acceptStreams(ctx context.Context, to time.Duration) error {
	if t.p.UDP {
		for i := 0; i < t.p.Parallel; i++ {
			s := newStream(streamID(i), t.p.Reverse, true)
			peer, err := t.udpAnnounce(to)
			if err != nil {
				return fmt.Errorf("stream %d: %w", s.id, err)
			}
			s.udpConn, s.peer = t.udp, peer
			t.se.addStream(s)
		}
		return nil
	}
	deadline := time.NewTimer(to)
	defer deadline.Stop()
	conns := make([]acceptedConn, 0, t.p.Parallel)
	for len(conns) < t.p.Parallel {
		select {
		case c := <-t.streamCh:
			conns = append(conns, c)
		case <-deadline.C:
			for _, c := range conns {
				c.Close()
			}
			return fmt.Errorf("only %d of %d streams connected within %v", len(conns), t.p.Parallel, to)
		case <-ctx.Done():
			for _, c := range conns {
				c.Close()
			}
			return ctx.Err()
		}
	}
	slices.SortFunc(conns, func(a, b acceptedConn) int { return cmp.Compare(a.seq, b.seq) })
	for i, c := range conns {
		s := newStream(streamID(i), t.p.Reverse, false)
		s.conn = c.Conn
		t.se.addStream(s)
	}
	return nil
}

// udpAnnounce waits for a new peer's 4-byte announcement and replies.
func (t *serverTest) udpAnnounce(to time.Duration) (netip.AddrPort, error) {
	buf := make([]byte, 64)
	end := time.Now().Add(to)
	for {
		_ = t.udp.SetReadDeadline(end)
		n, from, err := t.udp.ReadFromUDPAddrPort(buf)
		if err != nil {
			return from, fmt.Errorf("wait for UDP stream announcement: %w", err)
		}
		if n != 4 {
			continue
		}
		known := false
		for _, s := range t.se.streams {
			if s.peer == from {
				known = true
			}
		}
		t.replyUDP(from)
		if !known {
			_ = t.udp.SetReadDeadline(time.Time{})
			return from, nil
		}
	}
}

func (t *serverTest) replyUDP(to netip.AddrPort) {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], udpConnectReply)
	_, _ = t.udp.WriteToUDPAddrPort(b[:], to)
}

// udpReceive reads datagrams for every stream from the shared socket until
// its deadline is set to now.
func (t *serverTest) udpReceive(done chan struct{}) {
	defer close(done)
	byPeer := make(map[netip.AddrPort]*stream, len(t.se.streams))
	for _, s := range t.se.streams {
		byPeer[s.peer] = s
	}
	counters64 := t.se.counters64
	buf := make([]byte, 65536)
	for {
		n, from, err := t.udp.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		s := byPeer[from]
		if s == nil {
			continue
		}
		if n == 4 {
			t.replyUDP(from) // a repeated announcement
			continue
		}
		s.udpDatagram(buf[:n], time.Now(), counters64)
	}
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
