package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type tcpConnectResult struct {
	Attempted int     `json:"attempted"`
	Connected int     `json:"connected"`
	Failed    int     `json:"failed"`
	Seconds   float64 `json:"seconds"`
}

// tcpConnect opens count connections at rate per second and closes each
// once established.
func tcpConnect(args []string) (any, error) {
	fs := flags("tcp-connect")
	to := fs.String("to", "", "server ADDR:PORT")
	count := fs.Int("count", 100, "connections (max 1000000)")
	rate := fs.Float64("rate", 100, "connections per second (0 = as fast as possible)")
	timeout := fs.Duration("timeout", 2*time.Second, "connect timeout")
	dur := fs.Duration("duration", time.Minute, "stop starting connections after this long")
	_ = fs.Parse(args)
	if *to == "" || *count < 1 || *count > 1_000_000 || *timeout <= 0 || *timeout > time.Minute {
		return nil, errors.New("need -to, -count 1..1000000, -timeout up to 1m")
	}
	deadline := time.Now().Add(bound(*dur))
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	res := tcpConnectResult{}
	p := newPacer(*rate)
	for i := 0; i < *count && time.Now().Before(deadline); i++ {
		p.wait(i)
		res.Attempted++
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", *to, *timeout)
			if err != nil {
				failed.Add(1)
				return
			}
			ok.Add(1)
			c.Close()
		}()
	}
	wg.Wait()
	res.Connected, res.Failed = int(ok.Load()), int(failed.Load())
	res.Seconds = time.Since(p.start).Seconds()
	return res, nil
}

type tcpSinkResult struct {
	Conns int   `json:"conns"`
	Bytes int64 `json:"bytes"`
}

// tcpSink accepts connections and discards what they send, until -duration
// or until -conns connections have been served.
func tcpSink(args []string) (any, error) {
	fs := flags("tcp-sink")
	listen := fs.String("listen", "", "ADDR:PORT to bind")
	dur := fs.Duration("duration", time.Minute, "stop after this long")
	conns := fs.Int("conns", 0, "stop after this many connections ended (0 = no limit)")
	_ = fs.Parse(args)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return nil, err
	}
	fmt.Fprintln(os.Stderr, "listening on", ln.Addr())
	deadline := time.Now().Add(bound(*dur))
	_ = ln.(*net.TCPListener).SetDeadline(deadline)
	var bytes atomic.Int64
	var served atomic.Int64
	finished := make(chan struct{}, 1)
	var wg sync.WaitGroup
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_ = c.SetDeadline(deadline)
				n, _ := io.Copy(io.Discard, c)
				bytes.Add(n)
				if int(served.Add(1)) == *conns {
					finished <- struct{}{}
				}
			}()
		}
	}()
	select {
	case <-finished:
	case <-time.After(time.Until(deadline)):
	}
	ln.Close()
	wg.Wait()
	return tcpSinkResult{Conns: int(served.Load()), Bytes: bytes.Load()}, nil
}

type tcpSendResult struct {
	Bytes   int64   `json:"bytes"`
	Writes  int     `json:"writes"`
	Seconds float64 `json:"seconds"`
}

// tcpSend writes -bytes over one connection in -write sized writes, with
// TCP_NODELAY and optionally a small MSS, so it makes many packets.
func tcpSend(args []string) (any, error) {
	fs := flags("tcp-send")
	to := fs.String("to", "", "server ADDR:PORT")
	total := fs.Int64("bytes", 1<<20, "bytes to send (max 16 GiB)")
	write := fs.Int("write", 1024, "bytes per write (1..1048576)")
	mss := fs.Int("mss", 0, "TCP_MAXSEG before connecting (0 = default)")
	dur := fs.Duration("duration", time.Minute, "stop after this long")
	_ = fs.Parse(args)
	if *to == "" || *total < 1 || *total > 16<<30 || *write < 1 || *write > 1<<20 {
		return nil, errors.New("need -to, -bytes 1..16GiB, -write 1..1048576")
	}
	d := net.Dialer{Timeout: 5 * time.Second}
	if *mss > 0 {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_MAXSEG, *mss)
			})
			if err != nil {
				return err
			}
			return serr
		}
	}
	c, err := d.Dial("tcp", *to)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.(*net.TCPConn).SetNoDelay(true)
	start := time.Now()
	_ = c.SetWriteDeadline(start.Add(bound(*dur)))
	buf := make([]byte, *write)
	res := tcpSendResult{}
	for res.Bytes < *total {
		n := int64(len(buf))
		if rest := *total - res.Bytes; rest < n {
			n = rest
		}
		w, err := c.Write(buf[:n])
		res.Bytes += int64(w)
		res.Writes++
		if err != nil {
			return nil, fmt.Errorf("after %d bytes: %w", res.Bytes, err)
		}
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return nil, err
	}
	_ = c.SetReadDeadline(start.Add(bound(*dur)))
	_, _ = io.Copy(io.Discard, c) // wait for the peer to close
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}
