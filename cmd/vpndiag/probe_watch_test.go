package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestProbeWatchMetricsCLI: watch of loopback with --textfile and --listen
// exports vpndiag_probe_* metrics (scraped while it runs, and the file
// after), and prints live status rows before the text report.
func TestProbeWatchMetricsCLI(t *testing.T) {
	dir := t.TempDir()
	port := freeTCPPort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	type result struct {
		code     int
		out, err string
	}
	done := make(chan result, 1)
	go func() {
		c, o, e := runCLI(t, ctx, "probe", "watch", "--duration", "2s", "-i", "20ms", "--rows-every", "500ms",
			"--textfile", dir, "--listen", fmt.Sprintf("127.0.0.1:%d", port), "127.0.0.1")
		done <- result{c, o, e}
	}()
	var scraped string
	for i := 0; i < 30 && !strings.Contains(scraped, `vpndiag_probe_sent_total{target="127.0.0.1"}`); i++ {
		time.Sleep(100 * time.Millisecond)
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		scraped = string(b)
	}
	for _, want := range []string{`vpndiag_probe_up{target="127.0.0.1"} 1`, `vpndiag_probe_lost_total{target="127.0.0.1"} 0`, `vpndiag_probe_rtt_seconds_bucket`} {
		if !strings.Contains(scraped, want) {
			t.Errorf("scrape lacks %q:\n%s", want, scraped)
		}
	}
	r := <-done
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "vpndiag_probe.prom"))
	if err != nil {
		t.Fatal(err)
	}
	var sent float64
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, `vpndiag_probe_sent_total{target="127.0.0.1"} `) {
			fmt.Sscan(strings.Fields(line)[1], &sent)
		}
	}
	// The final write holds the whole run: about 100 probes in 2 s.
	if sent < 70 || sent > 102 || !strings.Contains(string(b), `vpndiag_probe_outages_total{target="127.0.0.1"} 0`) {
		t.Errorf("textfile: sent %v\n%s", sent, b)
	}
	header := strings.Index(r.out, "TARGET")
	report := strings.Index(r.out, "Per target")
	if header < 0 || report < header || strings.Count(r.out, "│ ok ") < 2 {
		t.Errorf("live rows missing or after the report:\n%s", r.out)
	}
	if !strings.Contains(r.err, "serving metrics on http://127.0.0.1:") {
		t.Errorf("stderr %q", r.err)
	}
}

// TestProbeWatchMetricsCLIErrors: a missing textfile directory and a busy
// listen address are usage errors, before probing starts.
func TestProbeWatchMetricsCLIErrors(t *testing.T) {
	ctx := context.Background()
	code, _, errOut := runCLI(t, ctx, "probe", "watch", "--duration", "1s", "--textfile", filepath.Join(t.TempDir(), "missing"), "127.0.0.1")
	if code != exitUsage || !strings.Contains(errOut, "--textfile") {
		t.Errorf("textfile: exit %d %q", code, errOut)
	}
	code, _, errOut = runCLI(t, ctx, "probe", "watch", "--duration", "1s", "--listen", "256.0.0.1:1", "127.0.0.1")
	if code != exitUsage || !strings.Contains(errOut, "--listen") {
		t.Errorf("listen: exit %d %q", code, errOut)
	}
	code, _, errOut = runCLI(t, ctx, "probe", "watch", "--duration", "1s", "--rows-every", "x", "127.0.0.1")
	if code != exitUsage {
		t.Errorf("rows-every: exit %d %q", code, errOut)
	}
}
