package nat

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMetricsTextfile(t *testing.T) {
	s := synth(1976, 20000, "198.18.66.53:53", rule1976)
	s.Conntrack.PerCPU = []CPUStats{{CPU: 0, InsertFailed: 1000, Insert: 900}, {CPU: 1, InsertFailed: 2024, Insert: 1076}}
	s.Sysctls.UDPTimeout = 30
	s.Sysctls.LocalPortMin, s.Sysctls.LocalPortMax = 32768, 60999
	m := NewMetrics()
	dir := t.TempDir()
	// Before the first Update nothing is exported but the file is valid.
	if err := m.WriteTextfile(dir); err != nil {
		t.Fatal(err)
	}
	m.Update(s, Analyze(s, 0))
	if err := m.WriteTextfile(dir); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, TextfileName))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`vpndiag_nat_pool_ports_in_use{destination="198.18.66.53:53",nat_address="198.18.66.1",protocol="udp"} 1976`,
		`vpndiag_nat_pool_ports{destination="198.18.66.53:53",nat_address="198.18.66.1",protocol="udp"} 1976`,
		`vpndiag_nat_pool_utilization_ratio{destination="198.18.66.53:53",nat_address="198.18.66.1",protocol="udp"} 1`,
		`vpndiag_nat_conntrack_insert_failed_total{cpu="1"} 2024`,
		`# TYPE vpndiag_nat_conntrack_insert_failed_total counter`,
		`vpndiag_nat_rule_ports{kind="masquerade",rule="inet t/post handle 3",source="nftables"} 1976`,
		`vpndiag_nat_udp_timeout_seconds 30`,
		`vpndiag_nat_local_port_range_ports 28232`,
		`vpndiag_nat_snat_mappings 1976`,
		`vpndiag_nat_conntrack_max_entries 262144`,
	} {
		if !strings.Contains(string(data), want+"\n") {
			t.Errorf("textfile lacks %q", want)
		}
	}
	// No temporary file is left behind.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d files, want 1", len(entries))
	}
	problems, err := testutil.GatherAndLint(m.Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	if err := m.WriteTextfile(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing directory accepted")
	}
}

func TestRowWriter(t *testing.T) {
	prev := synth(1000, 20000, "198.18.66.53:53", rule1976)
	cur := synth(1976, 20000, "198.18.66.53:53", rule1976)
	cur.Time = prev.Time.Add(5 * time.Second)
	cur.Conntrack.Total.InsertFailed = 500
	pa, ca := Analyze(prev, 0), Analyze(cur, 0)
	var buf bytes.Buffer
	rw := NewRowWriter(&buf)
	if err := rw.Write(Sample{Snapshot: prev, Analysis: pa}); err != nil {
		t.Fatal(err)
	}
	first := buf.Len()
	if first == 0 {
		t.Fatal("first row not printed before the next sample")
	}
	if err := rw.Write(Sample{Snapshot: cur, Analysis: ca, Delta: Diff(prev, cur, pa, ca)}); err != nil {
		t.Fatal(err)
	}
	if err := rw.Close(); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	t.Logf("\n%s", out)
	for _, want := range []string{"INSFAIL", "udp 198.18.66.1>198.18.66.53:53", "20000-21975", "100.0", "100.0", "now", "1976"} {
		if !strings.Contains(strings.ToUpper(out), strings.ToUpper(want)) {
			t.Errorf("table lacks %q", want)
		}
	}
	row := Row(Sample{Snapshot: cur, Analysis: ca, Delta: Diff(prev, cur, pa, ca)})
	if row[8] != "100.0" || row[11] != "now" || row[5] != "1976" {
		t.Errorf("row %q", row)
	}
}
