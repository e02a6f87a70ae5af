package iperf

import (
	"context"
	"errors"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestClientPeerDiesMidTest kills iperf3 -s during a test: Run must return
// an error well before the test's duration, with the partial result.
func TestClientPeerDiesMidTest(t *testing.T) {
	for _, rev := range []bool{false, true} {
		t.Run("reverse="+strconv.FormatBool(rev), func(t *testing.T) {
			port := freePort(t)
			srv := startIperf3Server(t, port)
			go func() {
				time.Sleep(1 * time.Second)
				_ = srv.cmd.Process.Signal(syscall.SIGKILL)
			}()
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			res, err := Run(ctx, Config{Server: "127.0.0.1", Port: port, Duration: 8 * time.Second, Reverse: rev})
			took := time.Since(start)
			if err == nil {
				t.Fatal("Run succeeded although the server was killed")
			}
			if errors.Is(err, ErrNotReady) {
				t.Errorf("err %v is ErrNotReady, but the test had begun (a retry would repeat it)", err)
			}
			if took > 5*time.Second {
				t.Errorf("Run took %v to notice the dead server", took)
			}
			if res == nil || res.Complete {
				t.Fatalf("want a partial result, got %+v", res)
			}
			local := res.Sum.SentBytes + res.Sum.ReceivedBytes
			if local == 0 || len(res.Intervals) == 0 {
				t.Errorf("partial result lost the measurement: %d bytes, %d intervals", local, len(res.Intervals))
			}
			t.Logf("after %v: %v (partial: %d bytes, %d intervals)", took.Round(time.Millisecond), err, local, len(res.Intervals))
		})
	}
}

// TestClientRefused: nothing listening gives a clear error at once.
func TestClientRefused(t *testing.T) {
	port := freePort(t)
	start := time.Now()
	_, err := Run(context.Background(), Config{Server: "127.0.0.1", Port: port, Duration: time.Second})
	if err == nil || !strings.Contains(err.Error(), "connect to iperf3 server 127.0.0.1:"+strconv.Itoa(port)) || !errors.Is(err, syscall.ECONNREFUSED) || !errors.Is(err, ErrNotReady) {
		t.Fatalf("err = %v, want connection refused (ErrNotReady) naming the server", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("refusal took %v", time.Since(start))
	}
}

// TestNotReady: Run's error is ErrNotReady exactly when the server dropped
// the control connection before its first control message (the moment
// between two tests of iperf3 -s, when it closes and reopens its listening
// socket). iperf3 -s hits that moment only by chance, so the peers here
// are scripted on real loopback TCP sockets; each does one thing and
// closes: reset (SO_LINGER 0) before or after reading the cookie, close
// after the cookie, and the controls: PARAM_EXCHANGE then close (the test
// began: not ErrNotReady), ACCESS_DENIED (ErrBusy).
func TestNotReady(t *testing.T) {
	for _, tc := range []struct {
		name      string
		peer      func(c *net.TCPConn)
		notReady  bool
		wantBusy  bool
		wantInErr string
	}{
		{"reset-at-accept", func(c *net.TCPConn) { _ = c.SetLinger(0) }, true, false, "connection reset"},
		{"reset-after-cookie", func(c *net.TCPConn) { readCookie(c); _ = c.SetLinger(0) }, true, false, "connection reset"},
		{"close-after-cookie", func(c *net.TCPConn) { readCookie(c) }, true, false, "wait for server"},
		{"param-exchange-then-close", func(c *net.TCPConn) {
			readCookie(c)
			_, _ = c.Write([]byte{ParamExchange.wire()})
			_ = c.SetLinger(0)
		}, false, false, "iperf3 server 127.0.0.1"},
		{"access-denied", func(c *net.TCPConn) { readCookie(c); _, _ = c.Write([]byte{AccessDenied.wire()}) }, false, true, "busy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			served := make(chan struct{})
			go func() {
				defer close(served)
				c, err := ln.AcceptTCP()
				if err != nil {
					return
				}
				tc.peer(c)
				c.Close()
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res, err := Run(ctx, Config{Server: ln.Addr().String(), Duration: time.Second, ConnectTimeout: 3 * time.Second})
			<-served
			if err == nil || res != nil {
				t.Fatalf("Run = %+v, %v; want an error and no result", res, err)
			}
			if errors.Is(err, ErrNotReady) != tc.notReady || errors.Is(err, ErrBusy) != tc.wantBusy || !strings.Contains(err.Error(), tc.wantInErr) {
				t.Errorf("err = %v: ErrNotReady %v (want %v), ErrBusy %v (want %v), want %q in it",
					err, errors.Is(err, ErrNotReady), tc.notReady, errors.Is(err, ErrBusy), tc.wantBusy, tc.wantInErr)
			}
		})
	}
}

// readCookie reads the client's cookie (all 37 bytes, or until error).
func readCookie(c *net.TCPConn) {
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	var b [CookieSize]byte
	_, _ = io.ReadFull(c, b[:])
}

// TestBusy: a second client while a test runs gets ACCESS_DENIED, from
// iperf3 -s (our client) and from our server (our client and iperf3 -c);
// our server then still serves the next client.
func TestBusy(t *testing.T) {
	t.Run("iperf3-server", func(t *testing.T) {
		port := freePort(t)
		srv := startIperf3Server(t, port)
		first := make(chan error, 1)
		go func() {
			_, err := Run(context.Background(), Config{Server: "127.0.0.1", Port: port, Duration: 2 * time.Second})
			first <- err
		}()
		time.Sleep(500 * time.Millisecond)
		_, err := Run(context.Background(), Config{Server: "127.0.0.1", Port: port, Duration: time.Second})
		if !errors.Is(err, ErrBusy) {
			t.Errorf("second client: err = %v, want ErrBusy", err)
		}
		if err := <-first; err != nil {
			t.Errorf("first client: %v", err)
		}
		srv.wait(t)
	})
	t.Run("our-server", func(t *testing.T) {
		port, ch := startServer(t)
		first := make(chan error, 1)
		go func() {
			_, err := Run(context.Background(), Config{Server: "127.0.0.1", Port: port, Duration: 2 * time.Second, Parallel: 2})
			first <- err
		}()
		time.Sleep(500 * time.Millisecond)
		_, err := Run(context.Background(), Config{Server: "127.0.0.1", Port: port, Duration: time.Second})
		if !errors.Is(err, ErrBusy) {
			t.Errorf("our client: err = %v, want ErrBusy", err)
		}
		out, err := exec.Command("iperf3", "-c", "127.0.0.1", "-p", strconv.Itoa(port), "-t", "1").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "busy") {
			t.Errorf("iperf3 -c against busy server: err=%v output=%q, want 'busy'", err, out)
		}
		if err := <-first; err != nil {
			t.Errorf("first client: %v", err)
		}
		if r := waitServed(t, ch); len(r.Streams) != 2 {
			t.Errorf("first test: %d streams", len(r.Streams))
		}
		// The server is free again.
		res, err := Run(context.Background(), Config{Server: "127.0.0.1", Port: port, Duration: time.Second})
		if err != nil || res.Sum.ReceivedBytes == 0 {
			t.Fatalf("third client: %v", err)
		}
		waitServed(t, ch)
	})
}

// TestServerClientDiesMidTest kills iperf3 -c mid-test: the server reports
// an error with the partial result, quickly, and serves the next client.
func TestServerClientDiesMidTest(t *testing.T) {
	requireIperf3(t)
	port, ch := startServer(t)
	cmd := exec.Command("iperf3", "-c", "127.0.0.1", "-p", strconv.Itoa(port), "-t", "8")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	killed := time.Now()
	select {
	case s := <-ch:
		if s.err == nil {
			t.Fatal("server reported success for a killed client")
		}
		if s.res == nil || s.res.Sum.ReceivedBytes == 0 {
			t.Errorf("partial result missing: %+v", s.res)
		}
		if d := time.Since(killed); d > 3*time.Second {
			t.Errorf("server noticed after %v", d)
		}
		t.Logf("server: %v", s.err)
	case <-time.After(15 * time.Second):
		t.Fatal("server hung after the client died")
	}
	if _, err := runIperf3Client(t, port, "-t", "1"); err != nil {
		t.Fatalf("next client: %v", err)
	}
	waitServed(t, ch)
}

// TestContextCancel: cancelling ctx mid-test returns promptly with ctx's
// error and the partial result.
func TestContextCancel(t *testing.T) {
	port, ch := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 1200*time.Millisecond)
	defer cancel()
	start := time.Now()
	res, err := Run(ctx, Config{Server: "127.0.0.1", Port: port, Duration: 10 * time.Second, UDP: true, Bitrate: 10e6})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	if time.Since(start) > 4*time.Second || res == nil || res.Sum.Packets == 0 {
		t.Fatalf("took %v, result %+v", time.Since(start), res)
	}
	select {
	case s := <-ch:
		if s.err == nil || !strings.Contains(s.err.Error(), "terminated") {
			t.Errorf("server: err = %v, want client terminated", s.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("server did not end the test")
	}
}
