package iperf

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// BenchmarkClientVsIperf3 measures our client's TCP throughput against
// `iperf3 -s` and, in the same run on the same path, iperf3's own client,
// alternating so both see the same load; it reports the ratio.
//
//	go test -run '^$' -bench ClientVsIperf3 -benchtime 2x ./probe/iperf
func BenchmarkClientVsIperf3(b *testing.B) {
	requireIperf3(b)
	var ours, theirs float64
	for i := 0; i < b.N; i++ {
		for _, p := range []int{1, 4} {
			ours += benchOurs(b, p)
			theirs += benchTheirs(b, p)
		}
	}
	b.ReportMetric(ours/float64(2*b.N)/1e9, "ours_Gbit/s")
	b.ReportMetric(theirs/float64(2*b.N)/1e9, "iperf3_Gbit/s")
	b.ReportMetric(ours/theirs, "ratio")
}

const benchDuration = 3 * time.Second

func benchOurs(b *testing.B, parallel int) float64 {
	port := freePort(b)
	srv := startIperf3Server(b, port)
	res, err := Run(context.Background(), Config{Server: "127.0.0.1", Port: port, Duration: benchDuration, Parallel: parallel})
	if err != nil {
		b.Fatalf("our client: %v", err)
	}
	srv.wait(b)
	return res.Sum.ReceivedBitsPerSecond
}

func benchTheirs(b *testing.B, parallel int) float64 {
	port := freePort(b)
	srv := startIperf3Server(b, port)
	js, err := runIperf3Client(b, port, "-t", "3", "-P", strconv.Itoa(parallel))
	if err != nil {
		b.Fatalf("iperf3 client: %v", err)
	}
	srv.wait(b)
	return jnum(b, js, "end", "sum_received", "bits_per_second")
}
