package main

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/vpndiag/vpndiag/testdata/lab"
)

const mtuTopo = `
host a
host r forward
host b
link a:eth0=198.18.22.1/24 r:eth0=198.18.22.254/24
link r:eth1=198.18.23.254/24 b:eth0=198.18.23.2/24 mtu 1400
route a default via 198.18.22.254
route b default via 198.18.23.254
`

// TestProbeMTUCLI: probe mtu in the lab finds 1400 and the router (exit 0,
// info finding); with the router's ICMP errors dropped it reports a black
// hole (exit 1, probe.pmtu-blackhole).
func TestProbeMTUCLI(t *testing.T) {
	topo := lab.New(t, mtuTopo)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	type mtuData struct {
		PathMTU    int  `json:"path_mtu"`
		BlackHole  bool `json:"black_hole"`
		FragNeeded []struct {
			From string `json:"from"`
			MTU  int    `json:"mtu"`
		} `json:"frag_needed"`
	}
	probe := func(wantCode int) (jsonReport, mtuData) {
		code, out, errOut := runCLI(t, ctx, "probe", "mtu", "--netns", topo.NS("a"), "--timeout", "0.3", "--format", "json", "198.18.23.2")
		if code != wantCode {
			t.Fatalf("exit %d, want %d: %s\n%s", code, wantCode, errOut, out)
		}
		r := decodeReport(t, out)
		var d mtuData
		if err := json.Unmarshal(r.Data["mtu"], &d); err != nil {
			t.Fatal(err)
		}
		return r, d
	}
	r, d := probe(0)
	if d.PathMTU != 1400 || d.BlackHole || len(d.FragNeeded) != 1 || d.FragNeeded[0].From != "198.18.22.254" || d.FragNeeded[0].MTU != 1400 {
		t.Errorf("data %+v", d)
	}
	if rows := r.table(t, "mtu"); len(rows) != 1 || rows[0][4] != float64(1400) || rows[0][5] != float64(1401) || rows[0][6] != "frag-needed" {
		t.Errorf("mtu table %v", rows)
	}
	if len(r.Findings) != 1 || r.Findings[0].ID != "probe.path-mtu" {
		t.Errorf("findings %v", r.Findings)
	}
	if out, err := topo.Sh(ctx, "r", "nft add table ip vdbh && nft 'add chain ip vdbh o { type filter hook output priority 0; }' && nft add rule ip vdbh o icmp type destination-unreachable drop"); err != nil {
		t.Fatalf("nft: %v\n%s", err, out)
	}
	r, d = probe(1)
	if d.PathMTU != 1400 || !d.BlackHole || len(d.FragNeeded) != 0 {
		t.Errorf("black hole data %+v", d)
	}
	if len(r.Findings) != 2 || r.Findings[0].ID != "probe.pmtu-blackhole" || r.Findings[1].ID != "probe.path-mtu" {
		t.Errorf("findings %v", r.Findings)
	}
}

// TestProbeMTUCLIErrors: bad flags exit 2; an unreachable target exits 3
// with the partial report.
func TestProbeMTUCLIErrors(t *testing.T) {
	ctx := context.Background()
	for _, args := range [][]string{
		{"probe", "mtu"},
		{"probe", "mtu", "--min", "10", "127.0.0.1"},
		{"probe", "mtu", "--max", "50", "127.0.0.1"},
		{"probe", "mtu", "--min", "1000", "--max", "900", "127.0.0.1"},
		{"probe", "mtu", "--retries", "0", "127.0.0.1"},
		{"probe", "mtu", "--timeout", "x", "127.0.0.1"},
		{"probe", "mtu", "--privileged", "--unprivileged", "127.0.0.1"},
		{"probe", "mtu", "-I", "nonsense", "127.0.0.1"},
	} {
		if code, _, errOut := runCLI(t, ctx, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, errOut)
		}
	}
	topo := lab.New(t, mtuTopo)
	code, out, errOut := runCLI(t, ctx, "probe", "mtu", "--netns", topo.NS("a"), "--timeout", "0.2", "--retries", "1", "--format", "json", "198.18.23.99")
	if code != exitRuntime {
		t.Fatalf("unreachable: exit %d: %s", code, errOut)
	}
	if r := decodeReport(t, out); len(r.Findings) != 1 || r.Findings[0].ID != "probe.unreachable" {
		t.Errorf("findings %v", r.Findings)
	}
}
