package iperf

import (
	"context"
	"math"
	"testing"
	"time"
)

// TestSelfPerStream runs our client against our server with several
// streams and checks that each stream's sent and received bytes match,
// which fails if the two sides number their streams differently.
func TestSelfPerStream(t *testing.T) {
	for _, cfg := range []Config{{Parallel: 4}, {Parallel: 3, Reverse: true}, {Parallel: 3, UDP: true, Bitrate: 20e6}} {
		port, ch := startServer(t)
		cfg.Server, cfg.Port, cfg.Duration = "127.0.0.1", port, 1500*time.Millisecond
		res, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatalf("%+v: %v", cfg, err)
		}
		srv := waitServed(t, ch)
		for i, s := range res.Streams {
			if s.SentBytes == 0 || math.Abs(float64(s.SentBytes)-float64(s.ReceivedBytes)) > 0.10*float64(s.SentBytes) {
				t.Errorf("%+v stream %d: sent %d received %d", cfg, s.ID, s.SentBytes, s.ReceivedBytes)
			}
			ss := srv.Streams[i]
			if ss.ID != s.ID || ss.SentBytes != s.SentBytes || ss.ReceivedBytes != s.ReceivedBytes {
				t.Errorf("stream %d: client %+v, server %+v", s.ID, s, ss)
			}
		}
	}
}
