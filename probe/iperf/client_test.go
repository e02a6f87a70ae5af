package iperf

import (
	"context"
	"testing"
	"time"
)

// TestClientAgainstIperf3 runs our client against Debian's `iperf3 -s` and
// compares our totals with the server's own JSON report.
func TestClientAgainstIperf3(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
	}{
		{"tcp-P1", Config{Parallel: 1}},
		{"tcp-P4", Config{Parallel: 4}},
		{"tcp-R", Config{Parallel: 2, Reverse: true}},
		{"udp-100M", Config{UDP: true, Bitrate: 100_000_000}},
		{"udp-R-100M-64bit", Config{UDP: true, Reverse: true, Bitrate: 100_000_000, Counters64: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			port := freePort(t)
			srv := startIperf3Server(t, port)
			cfg := tc.cfg
			cfg.Server, cfg.Port, cfg.Duration = "127.0.0.1", port, 2*time.Second
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			res, err := Run(ctx, cfg)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			js := srv.wait(t)
			checkClientResult(t, cfg, res)
			switch {
			case !cfg.UDP && !cfg.Reverse:
				within(t, "bytes we sent vs iperf3 server received", float64(res.Sum.SentBytes), jnum(t, js, "end", "sum_received", "bytes"), 0.10)
			case !cfg.UDP && cfg.Reverse:
				within(t, "bytes we received vs iperf3 server sent", float64(res.Sum.ReceivedBytes), jnum(t, js, "end", "sum_sent", "bytes"), 0.10)
			case cfg.UDP && !cfg.Reverse:
				// iperf3's receiver drops datagrams on this busy machine
				// (iperf3 to iperf3 loses as much), so compare counters.
				within(t, "packets we sent vs iperf3 server's highest counter", float64(res.Sum.Packets), jnum(t, js, "end", "sum_received", "packets"), 0.10)
				within(t, "received bytes in our result vs iperf3 server JSON", float64(res.Sum.ReceivedBytes), jnum(t, js, "end", "sum_received", "bytes"), 0.10)
				if got, want := float64(res.Sum.Lost), jnum(t, js, "end", "sum_received", "lost_packets"); got != want {
					t.Errorf("lost = %v, iperf3 server says %v", got, want)
				}
			case cfg.UDP && cfg.Reverse:
				within(t, "bytes we received vs iperf3 server sent", float64(res.Sum.ReceivedBytes), jnum(t, js, "end", "sum_sent", "bytes"), 0.10)
				within(t, "packets we counted vs iperf3 server sent", float64(res.Sum.Packets), jnum(t, js, "end", "sum_sent", "packets"), 0.10)
			}
			if cfg.UDP {
				within(t, "sent bits/s vs -b", res.Sum.SentBitsPerSecond, float64(cfg.Bitrate), 0.10)
				if res.Sum.Lost > res.Sum.Packets-int64(res.Sum.ReceivedBytes)/int64(res.Length)+int64(res.Parallel) {
					t.Errorf("lost %d > packets %d - received %d", res.Sum.Lost, res.Sum.Packets, res.Sum.ReceivedBytes/uint64(res.Length))
				}
			}
			t.Logf("%s: sent %d B (%.0f Mbit/s), received %d B (%.0f Mbit/s), packets %d lost %d jitter %.3f ms, %d intervals",
				tc.name, res.Sum.SentBytes, res.Sum.SentBitsPerSecond/1e6, res.Sum.ReceivedBytes, res.Sum.ReceivedBitsPerSecond/1e6,
				res.Sum.Packets, res.Sum.Lost, res.Sum.JitterMs, len(res.Intervals))
		})
	}
}

// checkClientResult asserts the shape and internal consistency of a result.
func checkClientResult(t *testing.T, cfg Config, res *Result) {
	t.Helper()
	p := cfg.Parallel
	if p == 0 {
		p = 1
	}
	if !res.Complete {
		t.Error("result not complete")
	}
	if len(res.Streams) != p {
		t.Fatalf("streams = %d, want %d", len(res.Streams), p)
	}
	var sent, recv uint64
	for i, s := range res.Streams {
		if want := streamID(i); s.ID != want {
			t.Errorf("stream %d id = %d, want %d", i, s.ID, want)
		}
		if s.SentBytes == 0 || s.ReceivedBytes == 0 {
			t.Errorf("stream %d: sent %d received %d bytes, want > 0", s.ID, s.SentBytes, s.ReceivedBytes)
		}
		sent += s.SentBytes
		recv += s.ReceivedBytes
	}
	if sent != res.Sum.SentBytes || recv != res.Sum.ReceivedBytes {
		t.Errorf("sum %d/%d != stream totals %d/%d", res.Sum.SentBytes, res.Sum.ReceivedBytes, sent, recv)
	}
	// Two 1 s intervals plus a short last one.
	if n := len(res.Intervals); n < 2 || n > 3 {
		t.Errorf("intervals = %d, want 2..3", n)
	}
	var ivBytes uint64
	for _, iv := range res.Intervals {
		if len(iv.Streams) != p {
			t.Errorf("interval %.1f-%.1f has %d streams, want %d", iv.Start, iv.End, len(iv.Streams), p)
		}
		ivBytes += iv.Sum.Bytes
	}
	local := res.Sum.SentBytes
	if !res.LocalSends {
		local = res.Sum.ReceivedBytes
	}
	if ivBytes != local {
		t.Errorf("interval bytes %d != local total %d", ivBytes, local)
	}
}
