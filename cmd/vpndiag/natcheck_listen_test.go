package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vpndiag/vpndiag/testdata/lab"
)

// lockedBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var servingRE = regexp.MustCompile(`serving metrics on (http://\S+/metrics)`)

// TestNatcheckListen runs `natcheck --listen 127.0.0.1:0` on a lab gateway
// whose masquerade (ports 20000-20099) holds 40 UDP mappings, scrapes
// /metrics over HTTP, checks names, types and values against conntrack, and
// stops the command by cancelling its context: it returns 0 with a report
// and the listener is closed.
func TestNatcheckListen(t *testing.T) {
	lab.Require(t, "conntrack")
	topo := lab.New(t, natcheckTopo+"nat gw masquerade oif eth1 ports 20000-20099\n")
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if out, err := topo.Exec(ctx, "client", "env", "VDNAT_FLOOD=udp", "VDNAT_N=40", "VDNAT_PORT0=30000", "VDNAT_DST=198.18.66.53:53",
		os.Args[0], "-test.run=^TestNatcheckFloodHelper$"); err != nil {
		t.Fatalf("flood: %v: %s", err, out)
	}
	cnt, err := topo.Exec(ctx, "gw", "conntrack", "-C")
	if err != nil {
		t.Fatal(err)
	}
	entries, _ := strconv.Atoi(strings.TrimSpace(string(cnt)))

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var stdout, stderr lockedBuffer
	exit := make(chan int, 1)
	go func() {
		exit <- run(runCtx, []string{"natcheck", "--netns", topo.NS("gw"), "--listen", "127.0.0.1:0", "--interval", "100ms", "--format", "json"}, &stdout, &stderr)
	}()
	var url string
	for deadline := time.Now().Add(10 * time.Second); url == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := servingRE.FindStringSubmatch(stderr.String()); m != nil {
			url = m[1]
		}
	}
	if url == "" {
		stop()
		t.Fatalf("no \"serving metrics on\" line; stderr:\n%s", stderr.String())
	}
	// The first sample may not be exported yet: wait for the snapshot gauge.
	var body string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		body = scrape(t, url)
		if strings.Contains(body, "vpndiag_nat_snapshot_timestamp_seconds ") {
			break
		}
	}
	pool := `{destination="198.18.66.53:53",nat_address="198.18.66.1",protocol="udp"}`
	for _, want := range []struct {
		series string
		value  float64
	}{
		{"vpndiag_nat_pool_ports_in_use" + pool, 40},
		{"vpndiag_nat_pool_ports" + pool, 100},
		{"vpndiag_nat_pool_utilization_ratio" + pool, 0.4},
		{`vpndiag_nat_address_mappings{nat_address="198.18.66.1",protocol="udp"}`, 40},
		{"vpndiag_nat_snat_mappings", 40},
		{"vpndiag_nat_conntrack_entries", float64(entries)},
	} {
		if v, ok := metricValue(body, want.series); !ok || v != want.value {
			t.Errorf("%s = %v (present %v), want %v", want.series, v, ok, want.value)
		}
	}
	if v, ok := metricValue(body, "vpndiag_nat_conntrack_max_entries"); !ok || v <= 0 {
		t.Errorf("vpndiag_nat_conntrack_max_entries = %v, %v", v, ok)
	}
	for _, want := range []string{
		"# TYPE vpndiag_nat_conntrack_insert_failed_total counter",
		"# TYPE vpndiag_nat_conntrack_drop_total counter",
		"# TYPE vpndiag_nat_pool_ports_in_use gauge",
		`vpndiag_nat_conntrack_insert_failed_total{cpu="0"} 0`,
		`vpndiag_nat_rule_ports{kind="masquerade",rule=`,
		"vpndiag_nat_udp_timeout_seconds 30",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	for _, line := range strings.Split(body, "\n") {
		if name, ok := strings.CutPrefix(line, "# TYPE "); ok && strings.HasSuffix(name, " counter") && !strings.HasSuffix(strings.Fields(name)[0], "_total") {
			t.Errorf("counter without _total: %s", line)
		}
	}

	stop()
	select {
	case code := <-exit:
		if code != exitOK {
			t.Errorf("exit %d after cancel; stderr:\n%s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("natcheck --listen did not stop within 10 s of its context ending")
	}
	r := natDecodeReport(t, stdout.String())
	if r.Command != "natcheck" || len(r.Inputs) != 1 || r.Inputs[0].Packets != 40 {
		t.Errorf("report after cancel: %+v", r.Inputs)
	}
	host := strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/metrics")
	if c, err := net.DialTimeout("tcp", host, time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after natcheck returned", host)
	}
}

// scrape fetches url and returns the body.
func scrape(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return string(b)
}

// metricValue returns the value of the sample line starting with series.
func metricValue(body, series string) (float64, bool) {
	for _, line := range strings.Split(body, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return v, err == nil
		}
	}
	return 0, false
}
