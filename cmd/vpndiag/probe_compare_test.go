package main

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vpndiag/vpndiag/testdata/lab"
)

// TestProbeCompareCLI: over a VXLAN tunnel whose underlay drops 20% of the
// encapsulated packets, compare reports probe.tunnel-loss (error, exit 1)
// and the underlay clean, with the side-by-side and overhead tables.
func TestProbeCompareCLI(t *testing.T) {
	topo := lab.New(t, `
host a
host b
link a:eth0=198.18.32.1/24 b:eth0=198.18.32.2/24
vxlan a:vx0 vni 7 local 198.18.32.1 remote 198.18.32.2 dev eth0 addr 198.18.33.1/24 neigh static
vxlan b:vx0 vni 7 local 198.18.32.2 remote 198.18.32.1 dev eth0 addr 198.18.33.2/24 neigh static
loss b input udp dport 4789 20%
`)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code, out, errOut := runCLI(t, ctx, "probe", "compare", "--netns", topo.NS("a"), "--tunnel", "198.18.33.2", "--underlay", "198.18.32.2",
		"-c", "300", "-i", "0.01", "--mtu", "--format", "json")
	if code != exitFindings {
		t.Fatalf("exit %d, want 1: %s\n%s", code, errOut, out)
	}
	r := decodeReport(t, out)
	ids := map[string]bool{}
	for _, f := range r.Findings {
		ids[f.ID] = true
	}
	if !ids["probe.tunnel-loss"] || !ids["probe.tunnel-overhead"] || r.Findings[0].ID != "probe.tunnel-loss" {
		t.Errorf("findings %v", r.Findings)
	}
	rows := r.table(t, "compare")
	byName := map[string][]any{}
	for _, row := range rows {
		byName[row[0].(string)] = row
	}
	loss := byName["loss %"]
	if loss == nil || loss[2] != float64(0) || loss[1].(float64) < 10 || loss[1].(float64) > 30 {
		t.Errorf("loss row %v", loss)
	}
	if m := byName["path mtu bytes"]; m == nil || m[1] != float64(1450) || m[2] != float64(1500) {
		t.Errorf("mtu row %v", m)
	}
	if ov := r.table(t, "overhead"); len(ov) != 1 || !strings.Contains(ov[0][6].(string), "bootstrap") {
		t.Errorf("overhead table %v", ov)
	}
	var d struct {
		Size   int `json:"size"`
		Tunnel struct {
			Ping struct {
				Sent int `json:"sent"`
			} `json:"ping"`
		} `json:"tunnel"`
	}
	if err := json.Unmarshal(r.Data["compare"], &d); err != nil || d.Size != 1272 || d.Tunnel.Ping.Sent != 300 {
		t.Errorf("data %+v %v", d, err)
	}
	if !strings.Contains(errOut, "compare: ping") || !strings.Contains(errOut, "compare: mtu tunnel") {
		t.Errorf("phases on stderr: %q", errOut)
	}
}

// TestProbeCompareCLIErrors: bad usage exits 2; a missing iperf3 server is
// a probe.error finding with the ping results kept.
func TestProbeCompareCLIErrors(t *testing.T) {
	ctx := context.Background()
	for _, args := range [][]string{
		{"probe", "compare"},
		{"probe", "compare", "--tunnel", "127.0.0.1"},
		{"probe", "compare", "--tunnel", "127.0.0.1", "--underlay", "127.0.0.1"},
		{"probe", "compare", "--tunnel", "127.0.0.2", "--underlay", "127.0.0.1", "-c", "1"},
		{"probe", "compare", "--tunnel", "127.0.0.2", "--underlay", "127.0.0.1", "-s", "8"},
		{"probe", "compare", "--tunnel", "127.0.0.2", "--underlay", "127.0.0.1", "--confidence", "1.5"},
		{"probe", "compare", "--tunnel", "127.0.0.2", "--underlay", "127.0.0.1", "-P", "0"},
		{"probe", "compare", "--tunnel", "127.0.0.2", "--underlay", "127.0.0.1", "extra"},
	} {
		if code, _, errOut := runCLI(t, ctx, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, errOut)
		}
	}
	port := freeTCPPort(t)
	code, out, errOut := runCLI(t, ctx, "probe", "compare", "--tunnel", "127.0.0.2", "--underlay", "127.0.0.1", "-c", "5", "-i", "0.01",
		"--throughput", "-t", "1", "-p", strconv.Itoa(port), "--connect-timeout", "2", "--format", "json")
	if code != exitFindings {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	r := decodeReport(t, out)
	n := 0
	for _, f := range r.Findings {
		if f.ID == "probe.error" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("findings %v, want probe.error for both paths", r.Findings)
	}
	if rows := r.table(t, "compare"); len(rows) < 5 {
		t.Errorf("ping rows lost: %v", rows)
	}
}
