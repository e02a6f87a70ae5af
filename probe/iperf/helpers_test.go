package iperf

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// requireIperf3 fails the test when Debian's iperf3 is missing.
func requireIperf3(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("iperf3"); err != nil {
		t.Fatal("iperf3 not found: apt-get install iperf3")
	}
}

// freePort returns a loopback port free for both TCP and UDP.
func freePort(t testing.TB) int {
	t.Helper()
	for i := 0; i < 20; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// listening reports whether a TCP socket listens on port (from /proc).
func listening(port int) bool {
	want := fmt.Sprintf(":%04X ", port)
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			fs := strings.Fields(line)
			if len(fs) > 3 && strings.HasSuffix(fs[1], want[:len(want)-1]) && fs[3] == "0A" {
				return true
			}
		}
	}
	return false
}

// iperf3Server is a running `iperf3 -s -1 -J`.
type iperf3Server struct {
	cmd    *exec.Cmd
	out    bytes.Buffer
	errOut bytes.Buffer
	done   chan error
}

// startIperf3Server starts iperf3 as a one-off JSON server on 127.0.0.1.
func startIperf3Server(t testing.TB, port int) *iperf3Server {
	t.Helper()
	requireIperf3(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	s := &iperf3Server{done: make(chan error, 1)}
	s.cmd = exec.CommandContext(ctx, "iperf3", "-s", "-1", "-J", "-B", "127.0.0.1", "-p", fmt.Sprint(port))
	s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.errOut
	s.cmd.WaitDelay = 2 * time.Second
	if err := s.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start iperf3 -s: %v", err)
	}
	go func() { s.done <- s.cmd.Wait(); cancel() }()
	t.Cleanup(func() {
		_ = s.cmd.Process.Kill()
		<-time.After(0)
	})
	for i := 0; i < 100 && !listening(port); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	if !listening(port) {
		t.Fatalf("iperf3 -s did not listen on %d: %s", port, s.errOut.String())
	}
	return s
}

// wait returns the server's JSON report.
func (s *iperf3Server) wait(t testing.TB) map[string]any {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		t.Fatal("iperf3 -s did not exit after the test")
	}
	var m map[string]any
	if err := json.Unmarshal(s.out.Bytes(), &m); err != nil {
		t.Fatalf("iperf3 -s JSON: %v\n%s\n%s", err, s.out.String(), s.errOut.String())
	}
	if e, ok := m["error"]; ok {
		t.Fatalf("iperf3 -s reported error: %v", e)
	}
	return m
}

// jnum digs a number out of iperf3's JSON by path.
func jnum(t testing.TB, m map[string]any, path ...string) float64 {
	t.Helper()
	var cur any = m
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			t.Fatalf("iperf3 JSON: %s is not an object", strings.Join(path, "."))
		}
		cur = mm[p]
	}
	f, ok := cur.(float64)
	if !ok {
		t.Fatalf("iperf3 JSON: %s = %v, not a number", strings.Join(path, "."), cur)
	}
	return f
}

// within asserts |got-want| <= frac*want.
func within(t testing.TB, what string, got, want, frac float64) {
	t.Helper()
	if want <= 0 || math.Abs(got-want) > frac*want {
		t.Errorf("%s: got %.0f, want %.0f within %.0f%%", what, got, want, frac*100)
	}
}

// runIperf3Client runs `iperf3 -c ... -J` and returns its JSON.
func runIperf3Client(t testing.TB, port int, args ...string) (map[string]any, error) {
	t.Helper()
	requireIperf3(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	argv := append([]string{"-c", "127.0.0.1", "-p", fmt.Sprint(port), "-J"}, args...)
	cmd := exec.CommandContext(ctx, "iperf3", argv...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	runErr := cmd.Run()
	var m map[string]any
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		return nil, fmt.Errorf("iperf3 %v: %v (json: %v) %s %s", argv, runErr, err, out.String(), errOut.String())
	}
	if e, ok := m["error"]; ok {
		return m, fmt.Errorf("iperf3 %v: %v", argv, e)
	}
	return m, runErr
}
