// Package iperf speaks the iperf3 wire protocol, as a client (Run) and as a
// server (Server.Serve), without cgo. It interoperates with Debian's iperf3
// 3.x: TCP with parallel streams, reverse mode, bitrate pacing and block
// length, and UDP with loss, jitter and out-of-order counts.
//
// The protocol: a control TCP connection carries a 37-byte cookie, then
// one-byte state changes and JSON documents framed by a 4-byte big-endian
// length. Every data stream is a TCP connection that sends the same cookie
// first, or a UDP socket announced by a 4-byte datagram that the server
// echoes. UDP datagrams start with the send time (seconds, microseconds)
// and a packet counter, all big-endian.
package iperf

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// DefaultPort is the TCP and UDP port iperf3 servers listen on.
const DefaultPort = 5201

// CookieSize is the length of the test cookie: 36 characters and a NUL.
const CookieSize = 37

// State is a one-byte control message.
type State int8

// Control states, as numbered by iperf3.
const (
	TestStart       State = 1
	TestRunning     State = 2
	TestEnd         State = 4
	ParamExchange   State = 9
	CreateStreams   State = 10
	ServerTerminate State = 11
	ClientTerminate State = 12
	ExchangeResults State = 13
	DisplayResults  State = 14
	IperfStart      State = 15
	IperfDone       State = 16
	AccessDenied    State = -1
	ServerError     State = -2
)

var stateNames = map[State]string{
	TestStart: "TEST_START", TestRunning: "TEST_RUNNING", TestEnd: "TEST_END",
	ParamExchange: "PARAM_EXCHANGE", CreateStreams: "CREATE_STREAMS",
	ServerTerminate: "SERVER_TERMINATE", ClientTerminate: "CLIENT_TERMINATE",
	ExchangeResults: "EXCHANGE_RESULTS", DisplayResults: "DISPLAY_RESULTS",
	IperfStart: "IPERF_START", IperfDone: "IPERF_DONE",
	AccessDenied: "ACCESS_DENIED", ServerError: "SERVER_ERROR",
}

// String returns the iperf3 name of the state.
func (s State) String() string {
	if n, ok := stateNames[s]; ok {
		return n
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// UDP stream announcement values. The client's datagram content is not
// checked by servers; iperf3 3.13+ clients check the reply against both
// values, older ones accept anything. Both are sent in host (little-endian)
// byte order by iperf3 on x86, so we do the same.
const (
	udpConnectMsg         uint32 = 0x36373839
	udpConnectReply       uint32 = 0x39383736
	legacyUDPConnectReply uint32 = 987654321
)

// maxJSON bounds a JSON document read from a peer.
const maxJSON = 1 << 20

// ErrBusy is returned by Run when the server is running another test.
var ErrBusy = errors.New("iperf3 server is busy running a test (ACCESS_DENIED); try again later")

// ErrNotReady is matched (errors.Is) by Run's error when the server refused
// or dropped the control connection before it sent its first control
// message: nothing listens, or iperf3 -s is between two tests. After each
// test iperf3 -s closes its listening socket and opens a new one; a client
// that connects in that moment is refused, or reset when the old socket
// closes with the connection still in its backlog.
var ErrNotReady = errors.New("iperf3 server refused or dropped the connection before the test began")

// notReady keeps err's message and lets errors.Is match both err and
// ErrNotReady.
type notReady struct{ err error }

func (e notReady) Error() string   { return e.err.Error() }
func (e notReady) Unwrap() []error { return []error{e.err, ErrNotReady} }

// dropped reports whether err means the peer refused, reset or closed the
// connection (as opposed to a timeout or a local failure).
func dropped(err error) bool {
	for _, e := range peerDropErrnos {
		if errors.Is(err, e) {
			return true
		}
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// newCookie returns a random cookie: 36 characters from iperf3's alphabet
// and a terminating NUL.
func newCookie() ([CookieSize]byte, error) {
	const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
	var c [CookieSize]byte
	if _, err := rand.Read(c[:CookieSize-1]); err != nil {
		return c, fmt.Errorf("make cookie: %w", err)
	}
	for i := 0; i < CookieSize-1; i++ {
		c[i] = alphabet[int(c[i])%len(alphabet)]
	}
	c[CookieSize-1] = 0
	return c, nil
}

// writeState sends one state byte with a deadline.
func writeState(c net.Conn, s State, timeout time.Duration) error {
	_ = c.SetWriteDeadline(time.Now().Add(timeout))
	defer c.SetWriteDeadline(time.Time{})
	if _, err := c.Write([]byte{s.wire()}); err != nil {
		return fmt.Errorf("send %s: %w", s, err)
	}
	return nil
}

// readState reads one state byte, waiting at most timeout.
func readState(c net.Conn, timeout time.Duration) (State, error) {
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	defer c.SetReadDeadline(time.Time{})
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return 0, err
	}
	return State(int8(b[0])), nil
}

// writeJSON sends v as a length-prefixed JSON document.
func writeJSON(c net.Conn, v any, timeout time.Duration) error {
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode json: %w", err)
	}
	buf := make([]byte, 4+len(body))
	binary.BigEndian.PutUint32(buf, uint32(len(body)))
	copy(buf[4:], body)
	_ = c.SetWriteDeadline(time.Now().Add(timeout))
	defer c.SetWriteDeadline(time.Time{})
	if _, err := c.Write(buf); err != nil {
		return fmt.Errorf("send json: %w", err)
	}
	return nil
}

// readJSON reads a length-prefixed JSON document into v.
func readJSON(c net.Conn, v any, timeout time.Duration) error {
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	defer c.SetReadDeadline(time.Time{})
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return fmt.Errorf("read json length: %w", err)
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxJSON {
		return fmt.Errorf("read json: length %d exceeds %d bytes", n, maxJSON)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(c, body); err != nil {
		return fmt.Errorf("read json body (%d bytes): %w", n, err)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("decode json %.80q: %w", body, err)
	}
	return nil
}

// readServerError reads the two 32-bit big-endian codes (iperf3's i_errno
// and errno) that follow SERVER_ERROR.
func readServerError(c net.Conn, timeout time.Duration) error {
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	defer c.SetReadDeadline(time.Time{})
	var b [8]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return fmt.Errorf("iperf3 server reported an error (codes unreadable: %v)", err)
	}
	ie := int32(binary.BigEndian.Uint32(b[:4]))
	en := int32(binary.BigEndian.Uint32(b[4:]))
	return fmt.Errorf("iperf3 server reported an error (i_errno %d, errno %d)", ie, en)
}

// streamID returns iperf3's id for the n-th stream (0-based): 1, 3, 4, 5...
// (iperf3 skips 2, and both sides must agree when results are exchanged).
func streamID(n int) int {
	if n == 0 {
		return 1
	}
	return n + 2
}

// wire returns the state's byte on the wire (two's complement).
func (s State) wire() byte { return byte(s) }
