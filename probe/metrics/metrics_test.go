package metrics

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func registry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "vpndiag_test_events_total", Help: "Test events."})
	c.Add(3)
	r.MustRegister(c)
	return r
}

func TestWriteTextfile(t *testing.T) {
	dir := t.TempDir()
	if err := WriteTextfile(dir, "x.prom", registry()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "x.prom"))
	if err != nil || !strings.Contains(string(b), "vpndiag_test_events_total 3\n") {
		t.Fatalf("%v: %q", err, b)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("%d files left in the directory, want 1", len(entries))
	}
	if err := WriteTextfile(filepath.Join(dir, "missing"), "x.prom", registry()); err == nil {
		t.Error("missing directory accepted")
	}
	if err := WriteTextfile(filepath.Join(dir, "x.prom"), "y.prom", registry()); err == nil {
		t.Error("file as directory accepted")
	}
}

func TestListen(t *testing.T) {
	s, err := Listen("127.0.0.1:0", registry())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+s.Addr().String()+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(b), "vpndiag_test_events_total 3") {
		t.Fatalf("%d %q", resp.StatusCode, b)
	}
	if _, err := Listen(s.Addr().String(), registry()); err == nil {
		t.Error("busy address accepted")
	}
}
