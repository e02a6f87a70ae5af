package iperf

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

type served struct {
	res *Result
	err error
}

// startServer runs our Server on a loopback port and returns the port and
// the channel its results arrive on.
func startServer(t *testing.T) (int, <-chan served) {
	t.Helper()
	port := freePort(t)
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan served, 4)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	srv := &Server{OnResult: func(r *Result, err error) { ch <- served{r, err} }}
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("Serve did not return after cancel")
		}
	})
	return port, ch
}

func waitServed(t *testing.T, ch <-chan served) *Result {
	t.Helper()
	select {
	case s := <-ch:
		if s.err != nil {
			t.Fatalf("server: %v", s.err)
		}
		return s.res
	case <-time.After(20 * time.Second):
		t.Fatal("server reported no result")
	}
	return nil
}

// TestIperf3ClientAgainstServer runs Debian's `iperf3 -c -J` against our
// server and compares iperf3's own numbers with what our server measured.
func TestIperf3ClientAgainstServer(t *testing.T) {
	cases := []struct {
		name     string
		args     []string
		streams  int
		udp, rev bool
	}{
		{"tcp", nil, 1, false, false},
		{"tcp-P4", []string{"-P", "4"}, 4, false, false},
		{"tcp-R", []string{"-R"}, 1, false, true},
		{"tcp-R-P2-b", []string{"-R", "-P", "2", "-b", "200M"}, 2, false, true},
		{"udp-100M", []string{"-u", "-b", "100M", "-l", "1400"}, 1, true, false},
		{"udp-R-100M", []string{"-u", "-b", "100M", "-R", "--udp-counters-64bit"}, 1, true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			port, ch := startServer(t)
			js, err := runIperf3Client(t, port, append([]string{"-t", "2"}, tc.args...)...)
			if err != nil {
				t.Fatalf("iperf3 -c: %v", err)
			}
			res := waitServed(t, ch)
			if len(res.Streams) != tc.streams || !res.Complete || res.Reverse != tc.rev || (res.Protocol == "udp") != tc.udp {
				t.Fatalf("server result: %d streams complete=%v reverse=%v proto=%s", len(res.Streams), res.Complete, res.Reverse, res.Protocol)
			}
			for i, s := range res.Streams {
				if s.ID != streamID(i) || s.SentBytes == 0 || s.ReceivedBytes == 0 {
					t.Errorf("stream %d: id %d sent %d received %d", i, s.ID, s.SentBytes, s.ReceivedBytes)
				}
			}
			switch {
			case !tc.udp && !tc.rev:
				// iperf3 counted what it sent; we counted what arrived.
				within(t, "server received vs iperf3 sent", float64(res.Sum.ReceivedBytes), jnum(t, js, "end", "sum_sent", "bytes"), 0.10)
				within(t, "server bits/s vs iperf3 sender bits/s", res.Sum.ReceivedBitsPerSecond, jnum(t, js, "end", "sum_sent", "bits_per_second"), 0.10)
			case !tc.udp && tc.rev:
				within(t, "server sent vs iperf3 received", float64(res.Sum.SentBytes), jnum(t, js, "end", "sum_received", "bytes"), 0.10)
				within(t, "server bits/s vs iperf3 receiver bits/s", res.Sum.SentBitsPerSecond, jnum(t, js, "end", "sum_received", "bits_per_second"), 0.10)
				if strings.Contains(tc.name, "-b") {
					within(t, "paced server sender vs -b 200M x 2", res.Sum.SentBitsPerSecond, 400e6, 0.10)
				}
			case tc.udp && !tc.rev:
				within(t, "server's highest counter vs iperf3 packets sent", float64(res.Sum.Packets), jnum(t, js, "end", "sum", "packets"), 0.10)
				within(t, "server bytes received vs iperf3 report", float64(res.Sum.ReceivedBytes), jnum(t, js, "end", "sum_received", "bytes"), 0.10)
			case tc.udp && tc.rev:
				within(t, "server sent bits/s vs -b 100M", res.Sum.SentBitsPerSecond, 100e6, 0.10)
				within(t, "server sent packets vs iperf3 count", float64(res.Sum.Packets), jnum(t, js, "end", "sum", "packets"), 0.10)
				within(t, "iperf3 received bytes vs server sent", jnum(t, js, "end", "sum_received", "bytes"), float64(res.Sum.SentBytes), 0.10)
			}
			if sum := jnum(t, js, "end", "sum_received", "bits_per_second"); sum <= 0 {
				t.Errorf("iperf3 sum_received bits/s = %v", sum)
			}
			t.Logf("%s: server sent %d B (%.0f Mbit/s) received %d B (%.0f Mbit/s) packets %d lost %d",
				tc.name, res.Sum.SentBytes, res.Sum.SentBitsPerSecond/1e6, res.Sum.ReceivedBytes, res.Sum.ReceivedBitsPerSecond/1e6, res.Sum.Packets, res.Sum.Lost)
		})
	}
}
