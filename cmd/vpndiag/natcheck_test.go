package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vpndiag/vpndiag/report"
	"github.com/vpndiag/vpndiag/testdata/lab"
)

func TestNatcheckUsage(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"natcheck", "--inside", "x.pcap"}, "--inside needs --outside"},
		{[]string{"natcheck", "--outside", "x.pcap", "--watch", "5s"}, "--watch is for live mode"},
		{[]string{"natcheck", "--outside", "x.pcap", "--listen", ":9789"}, "--listen is for live mode"},
		{[]string{"natcheck", "--interval", "0s"}, "--interval 0s: must be positive"},
		{[]string{"natcheck", "--watch", "-1s"}, "--watch -1s: must be positive"},
		{[]string{"natcheck", "--format", "xml"}, "--format"},
		{[]string{"natcheck", "extra"}, "unknown command"},
		{[]string{"natcheck", "--outside", "/nonexistent/gw-outside.pcap"}, "/nonexistent/gw-outside.pcap"},
		{[]string{"natcheck", "--outside", "x.pcap", "--max-flows", "0"}, "--max-flows at least 1"},
		{[]string{"natcheck", "--outside", "x.pcap", "--udp-timeout", "0s"}, "--udp-timeout"},
	}
	for _, tc := range cases {
		_, stderr, code := vpndiag(t, tc.args...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 naming %q", tc.args, code, stderr, tc.want)
		}
	}
}

// TestNatcheckHelperProcess is not a test: TestNatcheckNonRoot runs this test
// binary as user nobody with VDNAT_NATCHECK_ARGS set, and it runs vpndiag.
func TestNatcheckHelperProcess(t *testing.T) {
	args := os.Getenv("VDNAT_NATCHECK_ARGS")
	if args == "" {
		return
	}
	os.Exit(run(context.Background(), strings.Fields(args), os.Stdout, os.Stderr))
}

// TestNatcheckNonRoot: live mode without privileges fails with exit 3 and a
// message naming CAP_NET_ADMIN.
func TestNatcheckNonRoot(t *testing.T) {
	cmd := asNobody(t, "TestNatcheckHelperProcess")
	cmd.Env = append(os.Environ(), "VDNAT_NATCHECK_ARGS=natcheck --interval 10ms")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitRuntime {
		t.Fatalf("exit %v, want 3; output:\n%s", err, out)
	}
	if !strings.Contains(string(out), "CAP_NET_ADMIN") || !strings.Contains(string(out), "vpndiag: ") {
		t.Errorf("message does not name CAP_NET_ADMIN: %s", out)
	}
}

const natcheckTopo = `
host client
host gw forward
host server
link client:eth0=198.18.10.2/24 gw:eth0=198.18.10.1/24
link gw:eth1=198.18.66.1/24 server:eth0=198.18.66.53/24
route client default via 198.18.10.1
route server default via 198.18.66.1
`

func natDecodeReport(t *testing.T, s string) *report.Report {
	t.Helper()
	var r report.Report
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		t.Fatalf("report JSON: %v\n%s", err, s)
	}
	return &r
}

func natExhaustion(r *report.Report) *report.Finding {
	for i := range r.Findings {
		if r.Findings[i].ID == "nat.port-exhaustion" {
			return &r.Findings[i]
		}
	}
	return nil
}

// TestNatcheckLab floods new UDP flows through an nftables masquerade
// limited to 20000-21975 (and, as the control, an unlimited one) and runs
// natcheck live inside the gateway's namespace and over tcpdump captures of
// both sides; the kernel's conntrack counters are the oracle.
func TestNatcheckLab(t *testing.T) {
	lab.Require(t, "conntrack")
	for _, tc := range []struct {
		name    string
		nat     string
		limited bool
	}{
		{"range-1976", "nat gw masquerade oif eth1 ports 20000-21975", true},
		{"wide", "nat gw masquerade oif eth1", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topo := lab.New(t, natcheckTopo+tc.nat+"\n")
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			dir := t.TempDir()
			in, err := topo.Capture(ctx, "gw", "eth0", filepath.Join(dir, "gw-inside.pcap"), "udp port 53")
			if err != nil {
				t.Fatal(err)
			}
			out, err := topo.Capture(ctx, "gw", "eth1", filepath.Join(dir, "gw-outside.pcap"), "udp port 53")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := topo.Exec(ctx, "client", lab.Tool(t), "udp-send", "-to", "198.18.66.53:53", "-count", "5000", "-fresh", "-rate", "2500"); err != nil {
				t.Fatal(err)
			}
			time.Sleep(300 * time.Millisecond)
			for _, c := range []*lab.Capture{in, out} {
				if err := c.Stop(); err != nil {
					t.Fatal(err)
				}
			}
			st, err := topo.Exec(ctx, "gw", "conntrack", "-S")
			if err != nil {
				t.Fatal(err)
			}
			insertFailed := 0
			for _, f := range strings.Fields(string(st)) {
				if v, ok := strings.CutPrefix(f, "insert_failed="); ok {
					n, _ := strconv.Atoi(v)
					insertFailed += n
				}
			}
			cnt, err := topo.Exec(ctx, "gw", "conntrack", "-C")
			if err != nil {
				t.Fatal(err)
			}
			entries, _ := strconv.Atoi(strings.TrimSpace(string(cnt)))

			// Live, inside the gateway's namespace, with the textfile.
			prom := t.TempDir()
			stdout, stderr, code := vpndiag(t, "natcheck", "--netns", topo.NS("gw"), "--format", "json", "--interval", "200ms", "--textfile", prom)
			r := natDecodeReport(t, stdout)
			f := natExhaustion(r)
			t.Logf("live: exit %d, conntrack -C %d, insert_failed %d, stderr %q", code, entries, insertFailed, stderr)
			metrics, err := os.ReadFile(filepath.Join(prom, "vpndiag_nat.prom"))
			if err != nil {
				t.Fatal(err)
			}
			if tc.limited {
				if code != exitFindings || f == nil || f.Severity != report.SeverityError {
					t.Fatalf("live: exit %d, finding %+v", code, f)
				}
				ev := f.Evidence
				if ev["range_min"] != 20000.0 || ev["range_max"] != 21975.0 || ev["distinct_ports"] != 1976.0 ||
					ev["port_min"] != 20000.0 || ev["port_max"] != 21975.0 || ev["dropped_flows"] != float64(insertFailed) ||
					ev["conntrack_entries"] != float64(entries) {
					t.Errorf("live evidence %v (insert_failed %d, entries %d)", ev, insertFailed, entries)
				}
				want := `vpndiag_nat_pool_ports_in_use{destination="198.18.66.53:53",nat_address="198.18.66.1",protocol="udp"} 1976`
				if !strings.Contains(string(metrics), want) {
					t.Errorf("textfile lacks %s", want)
				}
			} else if code != exitOK || f != nil || insertFailed != 0 {
				t.Fatalf("live with a wide range: exit %d, finding %+v, insert_failed %d", code, f, insertFailed)
			}

			// Capture mode over both sides.
			stdout, _, code = vpndiag(t, "natcheck", "--outside", out.File, "--inside", in.File, "--format", "json")
			r = natDecodeReport(t, stdout)
			f = natExhaustion(r)
			if !tc.limited {
				if code != exitOK || f != nil {
					t.Fatalf("captures with a wide range: exit %d, finding %+v", code, f)
				}
				return
			}
			if code != exitFindings || f == nil {
				t.Fatalf("captures: exit %d, no finding", code)
			}
			t.Logf("captures: %s", f.Summary)
			// labtool sends from ephemeral ports and may reuse one: the
			// kernel counts every refused attempt (insert_failed), the
			// capture every distinct flow. The exact proof, with distinct
			// ports, is analyze/nat's TestLabCaptures.
			newFlows := int(f.Evidence["new_flows"].(float64))
			dropped := int(f.Evidence["dropped_flows"].(float64))
			want := fmt.Sprintf("%d of %d new UDP flows to 198.18.66.53:53 were dropped inside the NAT while 1976 mappings (ports 20000-21975) were live", dropped, newFlows)
			if !strings.HasPrefix(f.Summary, want) || newFlows > 5000 || newFlows < 4000 || dropped > insertFailed || dropped < insertFailed*8/10 ||
				newFlows-dropped != 1976 {
				t.Errorf("summary %q (insert_failed %d)", f.Summary, insertFailed)
			}
			if len(f.Frames) == 0 || f.Frames[0].File != "gw-inside.pcap" {
				t.Errorf("frames %v", f.Frames)
			}
		})
	}
}

// TestNatcheckWatch prints streaming rows and writes the textfile at every
// sample.
func TestNatcheckWatch(t *testing.T) {
	lab.Require(t, "conntrack")
	topo := lab.New(t, natcheckTopo+"nat gw masquerade oif eth1 ports 20000-20099\n")
	prom := t.TempDir()
	stdout, stderr, code := vpndiag(t, "natcheck", "--netns", topo.NS("gw"), "--watch", "100ms", "--count", "3", "--textfile", prom, "--format", "json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	natDecodeReport(t, stdout) // stdout stays valid JSON: the rows go to stderr
	if n := strings.Count(stderr, "│ 1") + strings.Count(stderr, "│ 0"); n < 3 {
		t.Errorf("want 3 rows on stderr, got:\n%s", stderr)
	}
	if !strings.Contains(strings.ToUpper(stderr), "BUSIEST POOL") {
		t.Errorf("no header:\n%s", stderr)
	}
	if _, err := os.Stat(filepath.Join(prom, "vpndiag_nat.prom")); err != nil {
		t.Error(err)
	}
}

// asNobody returns a command that runs this test binary's helper test
// helperTest as user nobody (uid 65534, no groups, no capabilities): a copy
// of the binary in a directory nobody can read, started by setpriv.
func asNobody(t *testing.T, helperTest string) *exec.Cmd {
	t.Helper()
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Fatal("setpriv not found: apt-get install util-linux")
	}
	if os.Geteuid() != 0 {
		t.Fatal("this test switches to user nobody and needs root to do so")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "vpndiag.test")
	data, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", bin, "-test.run=^"+helperTest+"$")
}
