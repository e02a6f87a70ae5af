package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// runCLI runs vpndiag in-process and returns exit code, stdout, stderr.
func runCLI(t *testing.T, ctx context.Context, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(ctx, args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type jsonReport struct {
	Command  string `json:"command"`
	Findings []struct {
		ID string `json:"id"`
	} `json:"findings"`
	Tables []struct {
		Name string  `json:"name"`
		Rows [][]any `json:"rows"`
	} `json:"tables"`
	Data map[string]json.RawMessage `json:"data"`
}

func decodeReport(t *testing.T, s string) jsonReport {
	t.Helper()
	var r jsonReport
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		t.Fatalf("report JSON: %v\n%s", err, s)
	}
	return r
}

func (r jsonReport) table(t *testing.T, name string) [][]any {
	t.Helper()
	for _, tb := range r.Tables {
		if tb.Name == name {
			return tb.Rows
		}
	}
	t.Fatalf("no table %q", name)
	return nil
}

// TestServeAndThroughputCLI: `vpndiag serve --one-off` answers
// `vpndiag probe throughput -P 2`, and iperf3 -c too.
func TestServeAndThroughputCLI(t *testing.T) {
	if _, err := exec.LookPath("iperf3"); err != nil {
		t.Fatal("iperf3 missing: apt-get install iperf3")
	}
	for _, client := range []string{"vpndiag", "iperf3"} {
		t.Run(client, func(t *testing.T) {
			port := strconv.Itoa(freeTCPPort(t))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			type result struct {
				code     int
				out, err string
			}
			served := make(chan result, 1)
			go func() {
				c, o, e := runCLI(t, ctx, "serve", "-B", "127.0.0.1", "-p", port, "--one-off", "--format", "json")
				served <- result{c, o, e}
			}()
			time.Sleep(300 * time.Millisecond)
			if client == "vpndiag" {
				code, out, errOut := runCLI(t, ctx, "probe", "throughput", "-p", port, "-t", "1", "-P", "2", "--format", "json", "127.0.0.1")
				if code != 0 {
					t.Fatalf("probe throughput exit %d: %s", code, errOut)
				}
				r := decodeReport(t, out)
				if rows := r.table(t, "throughput-streams"); len(rows) != 3 || rows[2][0] != "sum" {
					t.Errorf("streams table %v", rows)
				}
				if rows := r.table(t, "throughput-intervals"); len(rows) < 3 {
					t.Errorf("intervals table %v", rows)
				}
				if _, ok := r.Data["throughput"]; !ok || r.Command != "probe throughput" {
					t.Errorf("report %+v", r)
				}
			} else {
				out, err := exec.CommandContext(ctx, "iperf3", "-c", "127.0.0.1", "-p", port, "-t", "1", "-u", "-b", "50M").CombinedOutput()
				if err != nil {
					t.Fatalf("iperf3 -c: %v\n%s", err, out)
				}
			}
			s := <-served
			if s.code != 0 {
				t.Fatalf("serve exit %d: %s", s.code, s.err)
			}
			r := decodeReport(t, s.out)
			rows := r.table(t, "tests")
			if len(rows) != 1 || rows[0][8] != "" {
				t.Fatalf("tests table %v", rows)
			}
			if !strings.Contains(s.err, "test from 127.0.0.1") {
				t.Errorf("serve stderr %q", s.err)
			}
		})
	}
}

// TestProbeCLIErrors: bad usage exits 2, an unreachable server exits 3.
func TestProbeCLIErrors(t *testing.T) {
	ctx := context.Background()
	for _, args := range [][]string{
		{"probe", "throughput"},
		{"probe", "throughput", "-t", "x", "127.0.0.1"},
		{"probe", "throughput", "-P", "0", "127.0.0.1"},
		{"probe", "ping", "-s", "8", "127.0.0.1"},
		{"probe", "ping", "--privileged", "--unprivileged", "127.0.0.1"},
		{"probe", "watch"},
		{"probe", "watch", "-i", "0", "127.0.0.1"},
		{"serve", "-p", "0"},
	} {
		if code, _, errOut := runCLI(t, ctx, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, errOut)
		}
	}
	port := strconv.Itoa(freeTCPPort(t))
	code, _, errOut := runCLI(t, ctx, "probe", "throughput", "-p", port, "-t", "1", "127.0.0.1")
	if code != exitRuntime || !strings.Contains(errOut, "connection refused") {
		t.Errorf("refused: exit %d, %q", code, errOut)
	}
}

// TestProbePingWatchCLI pings and watches loopback.
func TestProbePingWatchCLI(t *testing.T) {
	ctx := context.Background()
	code, out, errOut := runCLI(t, ctx, "probe", "ping", "-c", "5", "-i", "0.01", "--format", "json", "127.0.0.1")
	if code != 0 {
		t.Fatalf("ping exit %d: %s", code, errOut)
	}
	rows := decodeReport(t, out).table(t, "ping")
	// As root the replies are timed by the kernel's receive timestamp (one
	// may miss the 5 ms wait on a loaded machine).
	if len(rows) != 1 || rows[0][1] != float64(5) || rows[0][2] != float64(5) || rows[0][13].(float64) < 4 {
		t.Errorf("ping table %v, want 5 sent, 5 received, at least 4 kernel-timed", rows)
	}
	code, out, errOut = runCLI(t, ctx, "probe", "watch", "--duration", "1s", "-i", "20ms", "--format", "json", "127.0.0.1")
	if code != 0 {
		t.Fatalf("watch exit %d: %s", code, errOut)
	}
	r := decodeReport(t, out)
	rows = r.table(t, "watch-targets")
	if len(rows) != 1 || rows[0][3] != float64(100) || len(r.Findings) != 0 {
		t.Errorf("watch targets %v findings %v", rows, r.Findings)
	}
	if sent := rows[0][1].(float64); sent < 35 || sent > 52 {
		t.Errorf("sent %v probes in 1 s at 20 ms", sent)
	}
}
