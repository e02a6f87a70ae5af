package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"
)

type udpSendResult struct {
	Sent    int     `json:"sent"`
	Errors  int     `json:"errors"`
	Seconds float64 `json:"seconds"`
}

// udpSend sends count datagrams of size bytes, each starting with its
// 8-byte big-endian sequence number, from one socket or (-fresh) from a new
// socket, hence a new source port, per datagram.
func udpSend(args []string) (any, error) {
	fs := flags("udp-send")
	to := fs.String("to", "", "destination ADDR:PORT")
	count := fs.Int("count", 100, "datagrams to send (max 10000000)")
	size := fs.Int("size", 64, "payload bytes (8..65000)")
	rate := fs.Float64("rate", 1000, "datagrams per second (0 = as fast as possible)")
	fresh := fs.Bool("fresh", false, "new socket (source port) per datagram")
	dur := fs.Duration("duration", time.Minute, "stop after this long")
	_ = fs.Parse(args)
	if *to == "" || *count < 1 || *count > 10_000_000 || *size < 8 || *size > 65000 {
		return nil, errors.New("need -to, -count 1..10000000 and -size 8..65000")
	}
	raddr, err := net.ResolveUDPAddr("udp", *to)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(bound(*dur))
	buf := make([]byte, *size)
	var conn *net.UDPConn
	res := udpSendResult{}
	p := newPacer(*rate)
	for i := 0; i < *count && time.Now().Before(deadline); i++ {
		p.wait(i)
		if conn == nil || *fresh {
			if conn != nil {
				conn.Close()
			}
			if conn, err = net.DialUDP("udp", nil, raddr); err != nil {
				return nil, err
			}
		}
		binary.BigEndian.PutUint64(buf, uint64(i))
		_, err := conn.Write(buf)
		if errors.Is(err, syscall.ECONNREFUSED) {
			// An ICMP port unreachable for an earlier datagram is reported
			// on this write; the datagram itself was not sent: send again.
			_, err = conn.Write(buf)
		}
		if err != nil {
			res.Errors++
			continue
		}
		res.Sent++
	}
	if conn != nil {
		conn.Close()
	}
	res.Seconds = time.Since(p.start).Seconds()
	return res, nil
}

type udpSinkResult struct {
	Received int   `json:"received"`
	Bytes    int64 `json:"bytes"`
	Distinct int   `json:"distinct"` // distinct sequence numbers
}

// udpSink counts datagrams until -count, -duration, or -idle after the first.
func udpSink(args []string) (any, error) {
	fs := flags("udp-sink")
	listen := fs.String("listen", "", "ADDR:PORT to bind")
	count := fs.Int("count", 0, "stop after this many datagrams (0 = no limit)")
	dur := fs.Duration("duration", time.Minute, "stop after this long")
	idle := fs.Duration("idle", 0, "stop when nothing arrived for this long after the first datagram (0 = off)")
	_ = fs.Parse(args)
	laddr, err := net.ResolveUDPAddr("udp", *listen)
	if err != nil {
		return nil, fmt.Errorf("-listen: %w", err)
	}
	conn, err := net.ListenUDP("udp", laddr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	_ = conn.SetReadBuffer(8 << 20)
	fmt.Fprintln(os.Stderr, "listening on", conn.LocalAddr())
	deadline := time.Now().Add(bound(*dur))
	res := udpSinkResult{}
	seen := map[uint64]bool{}
	buf := make([]byte, 65536)
	for *count == 0 || res.Received < *count {
		dl := deadline
		if *idle > 0 && res.Received > 0 {
			if d := time.Now().Add(*idle); d.Before(dl) {
				dl = d
			}
		}
		_ = conn.SetReadDeadline(dl)
		n, err := conn.Read(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				break
			}
			return nil, err
		}
		res.Received++
		res.Bytes += int64(n)
		if n >= 8 {
			seen[binary.BigEndian.Uint64(buf)] = true
		}
	}
	res.Distinct = len(seen)
	return res, nil
}
