package iperf

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"
)

// Config describes a client test. Zero values take iperf3's defaults.
type Config struct {
	Server   string        // host name or address, optionally host:port
	Port     int           // server port when Server has none; default 5201
	UDP      bool          // UDP instead of TCP
	Reverse  bool          // -R: the server sends, the client receives
	Parallel int           // -P: number of streams; default 1
	Duration time.Duration // -t: default 10 s
	// Bitrate is -b, in bits/s per stream; 0 means unlimited for TCP and
	// 1 Mbit/s for UDP, as in iperf3.
	Bitrate  uint64
	Length   int           // -l: bytes per write; default 128 KiB TCP, 1460 UDP
	Interval time.Duration // reporting interval; default 1 s, negative disables
	// Counters64 asks for 64-bit UDP packet counters (--udp-counters-64bit).
	Counters64 bool
	// LocalAddr is the source address (-B) for every connection.
	LocalAddr string
	// ConnectTimeout bounds connecting and every control-channel wait
	// outside the measurement; default 10 s.
	ConnectTimeout time.Duration
	// OnInterval, if set, is called with every interval as it ends.
	OnInterval func(Interval)
}

// Defaults of iperf3.
const (
	DefaultTCPLength = 128 * 1024
	DefaultUDPLength = 1460
	DefaultUDPRate   = 1 << 20 // 1 Mbit/s, as iperf3 counts it
)

// UDP datagrams larger than this cannot be sent over IPv4.
const maxUDPLength = 65507

func (c *Config) withDefaults() (Config, error) {
	cfg := *c
	if cfg.Server == "" {
		return cfg, errors.New("no server given")
	}
	if cfg.Port == 0 {
		cfg.Port = DefaultPort
	}
	if cfg.Parallel == 0 {
		cfg.Parallel = 1
	}
	if cfg.Parallel < 0 || cfg.Parallel > 128 {
		return cfg, fmt.Errorf("parallel streams %d out of range 1..128", cfg.Parallel)
	}
	if cfg.Duration == 0 {
		cfg.Duration = 10 * time.Second
	}
	if cfg.Duration < 0 || cfg.Duration > 24*time.Hour {
		return cfg, fmt.Errorf("duration %v out of range", cfg.Duration)
	}
	if cfg.Length == 0 {
		cfg.Length = DefaultTCPLength
		if cfg.UDP {
			cfg.Length = DefaultUDPLength
		}
	}
	min := 1
	if cfg.UDP {
		min = udpHeaderLen(cfg.Counters64)
	}
	if cfg.Length < min || cfg.Length > 1<<24 || (cfg.UDP && cfg.Length > maxUDPLength) {
		return cfg, fmt.Errorf("length %d out of range", cfg.Length)
	}
	if cfg.UDP && cfg.Bitrate == 0 {
		cfg.Bitrate = DefaultUDPRate
	}
	if cfg.Interval == 0 {
		cfg.Interval = time.Second
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	return cfg, nil
}

// address returns host:port for the server.
func (c *Config) address() string {
	if _, _, err := net.SplitHostPort(c.Server); err == nil {
		return c.Server
	}
	return net.JoinHostPort(c.Server, strconv.Itoa(c.Port))
}

// Run performs one test against an iperf3-compatible server. On failure
// after the test started it returns the partial result with the error.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("iperf3 client: %w", err)
	}
	c := &client{cfg: cfg, addr: cfg.address()}
	return c.run(ctx)
}

type client struct {
	cfg    Config
	addr   string
	ctrl   net.Conn
	cookie [CookieSize]byte
	se     *session
	dialer net.Dialer
}

func (c *client) run(ctx context.Context) (*Result, error) {
	c.dialer = net.Dialer{Timeout: c.cfg.ConnectTimeout}
	if c.cfg.LocalAddr != "" {
		ip := net.ParseIP(c.cfg.LocalAddr)
		if ip == nil {
			return nil, fmt.Errorf("iperf3 client: bad source address %q", c.cfg.LocalAddr)
		}
		if c.cfg.UDP {
			c.dialer.LocalAddr = &net.UDPAddr{IP: ip}
		} else {
			c.dialer.LocalAddr = &net.TCPAddr{IP: ip}
		}
	}
	var err error
	if c.cookie, err = newCookie(); err != nil {
		return nil, err
	}
	ctrlDialer := c.dialer
	if c.cfg.LocalAddr != "" {
		ctrlDialer.LocalAddr = &net.TCPAddr{IP: net.ParseIP(c.cfg.LocalAddr)}
	}
	c.ctrl, err = ctrlDialer.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		err = fmt.Errorf("connect to iperf3 server %s: %w", c.addr, err)
		if dropped(err) {
			err = notReady{err}
		}
		return nil, err
	}
	defer c.ctrl.Close()
	// Closing the control connection unblocks every wait when ctx ends.
	stopWatch := context.AfterFunc(ctx, func() { c.ctrl.SetDeadline(time.Now()) })
	defer stopWatch()

	c.se = &session{
		udp:        c.cfg.UDP,
		sending:    !c.cfg.Reverse,
		reverse:    c.cfg.Reverse,
		length:     c.cfg.Length,
		rate:       c.cfg.Bitrate,
		counters64: c.cfg.Counters64,
		interval:   c.cfg.Interval,
		remote:     c.addr,
		onInterval: c.cfg.OnInterval,
	}
	defer c.se.close()

	_ = c.ctrl.SetWriteDeadline(time.Now().Add(c.cfg.ConnectTimeout))
	if _, err := c.ctrl.Write(c.cookie[:]); err != nil {
		err = c.wrap(ctx, "send cookie", err)
		if dropped(err) {
			err = notReady{err}
		}
		return nil, err
	}
	var remote *wireResults
	var pending *State
	for first := true; ; first = false {
		var st State
		if pending != nil {
			st, pending = *pending, nil
		} else {
			st, err = readState(c.ctrl, c.cfg.ConnectTimeout)
			if err != nil {
				err = c.wrap(ctx, "wait for server", err)
				if first && dropped(err) {
					err = notReady{err}
				}
				return c.partial(remote), err
			}
		}
		switch st {
		case ParamExchange:
			if err := writeJSON(c.ctrl, c.params(), c.cfg.ConnectTimeout); err != nil {
				return nil, c.wrap(ctx, "send parameters", err)
			}
		case CreateStreams:
			if err := c.createStreams(ctx); err != nil {
				return nil, c.wrap(ctx, "create streams", err)
			}
		case TestStart:
		case TestRunning:
			next, err := c.measure(ctx)
			if err != nil {
				return c.partial(nil), err
			}
			pending = &next
		case ExchangeResults:
			local := c.se.localResults()
			if err := writeJSON(c.ctrl, local, c.cfg.ConnectTimeout); err != nil {
				return c.partial(nil), c.wrap(ctx, "send results", err)
			}
			var w wireResults
			if err := readJSON(c.ctrl, &w, c.cfg.ConnectTimeout); err != nil {
				return c.partial(nil), c.wrap(ctx, "read server results", err)
			}
			remote = &w
		case DisplayResults:
			if err := writeState(c.ctrl, IperfDone, c.cfg.ConnectTimeout); err != nil {
				return c.partial(remote), c.wrap(ctx, "finish", err)
			}
			return c.partial(remote), nil
		case AccessDenied:
			return nil, fmt.Errorf("%s: %w", c.addr, ErrBusy)
		case ServerError:
			return c.partial(nil), fmt.Errorf("%s: %w", c.addr, readServerError(c.ctrl, c.cfg.ConnectTimeout))
		case ServerTerminate:
			return c.partial(nil), fmt.Errorf("iperf3 server %s terminated the test", c.addr)
		default:
			return c.partial(nil), fmt.Errorf("iperf3 server %s: unexpected control message %s", c.addr, st)
		}
	}
}

// partial returns what was measured so far; nil before any stream ran.
func (c *client) partial(remote *wireResults) *Result {
	if c.se == nil || c.se.start.IsZero() {
		return nil
	}
	return c.se.result(remote)
}

// wrap names the server and turns a deadline caused by ctx into ctx's error.
func (c *client) wrap(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("iperf3 server %s: %s: %w", c.addr, what, ctx.Err())
	}
	return fmt.Errorf("iperf3 server %s: %s: %w", c.addr, what, err)
}

func (c *client) params() params {
	p := params{
		TCP:           !c.cfg.UDP,
		UDP:           c.cfg.UDP,
		Time:          int((c.cfg.Duration + time.Second - 1) / time.Second),
		Parallel:      c.cfg.Parallel,
		Reverse:       c.cfg.Reverse,
		Len:           c.cfg.Length,
		Bandwidth:     c.cfg.Bitrate,
		PacingTimer:   1000,
		ClientVersion: "3.12",
	}
	if c.cfg.Counters64 {
		p.UDPCounters64Bit = 1
	}
	return p
}

// createStreams opens every data stream: TCP connections that send the
// cookie, or UDP sockets announced with a 4-byte datagram the server echoes.
func (c *client) createStreams(ctx context.Context) error {
	for i := 0; i < c.cfg.Parallel; i++ {
		s := newStream(streamID(i), !c.cfg.Reverse, c.cfg.UDP)
		if c.cfg.UDP {
			conn, err := c.dialUDP(ctx)
			if err != nil {
				return fmt.Errorf("stream %d: %w", s.id, err)
			}
			s.conn = conn
		} else {
			conn, err := c.dialer.DialContext(ctx, "tcp", c.addr)
			if err != nil {
				return fmt.Errorf("stream %d: connect: %w", s.id, err)
			}
			s.conn = conn
			_ = conn.SetWriteDeadline(time.Now().Add(c.cfg.ConnectTimeout))
			if _, err := conn.Write(c.cookie[:]); err != nil {
				return fmt.Errorf("stream %d: send cookie: %w", s.id, err)
			}
			_ = conn.SetWriteDeadline(time.Time{})
		}
		c.se.addStream(s)
	}
	return nil
}

// dialUDP connects a UDP socket to the server and waits for the reply to
// its announcement, resending it a few times in case it was lost.
func (c *client) dialUDP(ctx context.Context) (net.Conn, error) {
	conn, err := c.dialer.DialContext(ctx, "udp", c.addr)
	if err != nil {
		return nil, fmt.Errorf("udp connect: %w", err)
	}
	if u, ok := conn.(*net.UDPConn); ok {
		_ = u.SetReadBuffer(4 << 20)
		_ = u.SetWriteBuffer(4 << 20)
	}
	var msg [4]byte
	binary.LittleEndian.PutUint32(msg[:], udpConnectMsg)
	buf := make([]byte, 64)
	deadline := time.Now().Add(c.cfg.ConnectTimeout)
	for attempt := 0; time.Now().Before(deadline); attempt++ {
		if _, err := conn.Write(msg[:]); err != nil {
			conn.Close()
			return nil, fmt.Errorf("udp announce: %w", err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(time.Second))
		n, err := conn.Read(buf)
		if err == nil && n == 4 {
			_ = conn.SetReadDeadline(time.Time{})
			return conn, nil
		}
		if err != nil && !isTimeout(err) {
			conn.Close()
			return nil, fmt.Errorf("udp announce reply: %w", err)
		}
		if ctx.Err() != nil {
			conn.Close()
			return nil, ctx.Err()
		}
	}
	conn.Close()
	return nil, fmt.Errorf("udp announce: no reply from %s within %v", c.addr, c.cfg.ConnectTimeout)
}

// isTimeout reports whether err is a network timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

type stateMsg struct {
	st  State
	err error
}

// measure runs the streams for the configured duration, sends TEST_END
// and returns the next control message. A stream failure, a control
// message during the test, or ctx ending aborts the test with an error.
func (c *client) measure(ctx context.Context) (State, error) {
	c.se.run()
	ctrlCh := make(chan stateMsg, 1)
	go func() {
		st, err := readState(c.ctrl, c.cfg.Duration+c.cfg.ConnectTimeout+10*time.Second)
		ctrlCh <- stateMsg{st, err}
	}()
	timer := time.NewTimer(c.cfg.Duration)
	defer timer.Stop()
	abort := func(err error) (State, error) {
		c.se.halt(0)
		_ = writeState(c.ctrl, ClientTerminate, time.Second)
		c.se.close()
		c.se.wait(2 * time.Second)
		return 0, err
	}
	select {
	case <-timer.C:
	case <-ctx.Done():
		return abort(fmt.Errorf("iperf3 test with %s interrupted: %w", c.addr, ctx.Err()))
	case err := <-c.se.errCh:
		return abort(fmt.Errorf("iperf3 test with %s failed: %w", c.addr, err))
	case m := <-ctrlCh:
		switch {
		case m.err != nil:
			return abort(fmt.Errorf("iperf3 server %s: control connection lost during the test: %w", c.addr, m.err))
		case m.st == ServerError:
			return abort(fmt.Errorf("%s: %w", c.addr, readServerError(c.ctrl, time.Second)))
		default:
			return abort(fmt.Errorf("iperf3 server %s: ended the test early (%s)", c.addr, m.st))
		}
	}
	// Receivers keep draining until the server closes its side.
	c.se.halt(5 * time.Second)
	if err := writeState(c.ctrl, TestEnd, c.cfg.ConnectTimeout); err != nil {
		c.se.close()
		return 0, c.wrap(ctx, "send TEST_END", err)
	}
	c.se.wait(6 * time.Second)
	select {
	case m := <-ctrlCh:
		if m.err != nil {
			return 0, c.wrap(ctx, "wait for results", m.err)
		}
		return m.st, nil
	case <-ctx.Done():
		return 0, c.wrap(ctx, "wait for results", ctx.Err())
	}
}
