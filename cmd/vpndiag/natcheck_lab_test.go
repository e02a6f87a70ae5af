package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vpndiag/vpndiag/report"
	"github.com/vpndiag/vpndiag/testdata/lab"
)

// TestNatcheckFloodHelper is not a test: the lab tests run this test binary
// inside a lab namespace with VDNAT_FLOOD set, and it floods.
//
//	VDNAT_FLOOD=udp: one datagram from each of VDNAT_N fresh source ports
//	(VDNAT_PORT0, +1, ...) to VDNAT_DST, 2500 per second: a new flow per port.
//	VDNAT_FLOOD=tcp: a connection from each of VDNAT_N fresh source ports to
//	VDNAT_DST, 64 at a time, each given 500 ms (less than the 1 s initial
//	retransmission timeout, so a dropped flow sends exactly one SYN); the
//	connections that succeed are held open, without keepalives (so the
//	captures see only the handshakes).
//	VDNAT_FLOOD=sink: accept TCP connections on VDNAT_DST and hold them,
//	without keepalives; prints "listening" once bound.
//
// It prints "flooded connected=C failed=F" once done and then holds its
// connections until SIGTERM or SIGINT (lab.Proc.Stop), or for VDNAT_HOLD
// (a duration, default 0: exit at once; at most 60 s).
func TestNatcheckFloodHelper(t *testing.T) {
	kind := os.Getenv("VDNAT_FLOOD")
	if kind == "" {
		return
	}
	if kind == "sink" {
		os.Exit(holdSink(os.Getenv("VDNAT_DST")))
	}
	n, _ := strconv.Atoi(os.Getenv("VDNAT_N"))
	port0, _ := strconv.Atoi(os.Getenv("VDNAT_PORT0"))
	dst := os.Getenv("VDNAT_DST")
	if n <= 0 || n > 10000 || port0 < 1024 || port0+n > 65535 || dst == "" {
		fmt.Fprintln(os.Stderr, "flood: bad VDNAT_N/VDNAT_PORT0/VDNAT_DST")
		os.Exit(2)
	}
	var connected, failed atomic.Int64
	var conns []net.Conn
	switch kind {
	case "udp":
		to, err := net.ResolveUDPAddr("udp4", dst)
		if err != nil {
			fmt.Fprintln(os.Stderr, "flood:", err)
			os.Exit(2)
		}
		payload := make([]byte, 32)
		start := time.Now()
		for i := 0; i < n; i++ {
			if d := time.Until(start.Add(time.Duration(i) * time.Second / 2500)); d > 0 {
				time.Sleep(d)
			}
			c, err := net.ListenUDP("udp4", &net.UDPAddr{Port: port0 + i})
			if err != nil {
				fmt.Fprintln(os.Stderr, "flood:", err)
				os.Exit(1)
			}
			copy(payload, fmt.Sprintf("query %06d", i))
			_, err = c.WriteToUDP(payload, to)
			c.Close()
			if err != nil {
				fmt.Fprintln(os.Stderr, "flood:", err)
				os.Exit(1)
			}
			connected.Add(1)
		}
	case "tcp":
		var mu sync.Mutex
		var wg sync.WaitGroup
		next := atomic.Int64{}
		for w := 0; w < 64; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1)) - 1
					if i >= n {
						return
					}
					d := net.Dialer{Timeout: 500 * time.Millisecond, KeepAlive: -1, LocalAddr: &net.TCPAddr{Port: port0 + i}}
					c, err := d.Dial("tcp4", dst)
					if err != nil {
						failed.Add(1)
						continue
					}
					connected.Add(1)
					mu.Lock()
					conns = append(conns, c)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
	default:
		fmt.Fprintln(os.Stderr, "flood: VDNAT_FLOOD must be udp or tcp")
		os.Exit(2)
	}
	fmt.Printf("flooded connected=%d failed=%d\n", connected.Load(), failed.Load())
	hold, _ := time.ParseDuration(os.Getenv("VDNAT_HOLD"))
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-sig:
	case <-time.After(min(hold, time.Minute)):
	}
	for _, c := range conns {
		c.Close()
	}
	os.Exit(0)
}

// holdSink accepts connections on addr and holds them until SIGTERM or 2
// minutes; it returns the exit status.
func holdSink(addr string) int {
	lc := net.ListenConfig{KeepAlive: -1}
	ln, err := lc.Listen(context.Background(), "tcp4", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sink:", err)
		return 1
	}
	fmt.Println("listening on", ln.Addr())
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-sig:
	case <-time.After(2 * time.Minute):
	}
	ln.Close()
	mu.Lock()
	for _, c := range conns {
		c.Close()
	}
	mu.Unlock()
	return 0
}

// natLabTopo has a NAT'd path (client -> gw eth1 -> server) and a control
// path without NAT (client -> gw eth2 -> ctl); the nat line is added per case.
const natLabTopo = `
host client
host gw forward
host server
host ctl
link client:eth0=198.18.10.2/24 gw:eth0=198.18.10.1/24
link gw:eth1=198.18.66.1/24 server:eth0=198.18.66.53/24
link gw:eth2=198.18.77.1/24 ctl:eth0=198.18.77.53/24
route client default via 198.18.10.1
route server default via 198.18.66.1
route ctl default via 198.18.77.1
`

// conntrackCount counts `conntrack -L` lines of proto towards dst:port in
// host's namespace, and how many of them were source-NAT'd.
func conntrackCount(t *testing.T, ctx context.Context, topo *lab.Topology, proto, dst string, port int) (entries, natted int) {
	t.Helper()
	out, err := topo.Exec(ctx, "gw", "conntrack", "-L", "-p", proto, "-d", dst, "--dport", strconv.Itoa(port))
	if err != nil {
		t.Fatalf("conntrack -L: %v", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(line, proto+" ") {
			continue
		}
		entries++
		// The reply tuple's destination is the NAT address when translated.
		if strings.Count(line, "dst=198.18.66.1 ") == 1 {
			natted++
		}
	}
	return entries, natted
}

func conntrackStat(t *testing.T, ctx context.Context, topo *lab.Topology, key string) int {
	t.Helper()
	st, err := topo.Exec(ctx, "gw", "conntrack", "-S")
	if err != nil {
		t.Fatal(err)
	}
	sum := 0
	for _, f := range strings.Fields(string(st)) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			n, _ := strconv.Atoi(v)
			sum += n
		}
	}
	return sum
}

// dropsRow returns the nat-drops table row of destination dst.
func dropsRow(r *report.Report, dst string) []any {
	for _, tb := range r.Tables {
		if tb.Name != "nat-drops" {
			continue
		}
		for _, row := range tb.Rows {
			if row[1] == dst {
				return row
			}
		}
	}
	return nil
}

// TestNatcheckLabTCPAndControl is the lab: a UDP (DNS) flood from
// fresh source ports and a TCP connection flood, each through an nftables
// masquerade limited to 20000-21975 (and a wide one), with the same load on
// a second path without NAT as the control. Live mode and capture mode must
// both report exhaustion with the exact range for the NAT'd class only, and
// nothing with the wide range; the kernel's conntrack -S / -L are the oracle.
func TestNatcheckLabTCPAndControl(t *testing.T) {
	lab.Require(t, "conntrack")
	for _, tc := range []struct {
		proto   string
		port    int
		n       int
		limited bool
	}{
		{"udp", 53, 5000, true},
		{"tcp", 80, 3000, true},
		{"udp", 53, 5000, false},
		{"tcp", 80, 3000, false},
	} {
		name := tc.proto + "-range-1976"
		natLine := "nat gw masquerade oif eth1 ports 20000-21975\n"
		if !tc.limited {
			name, natLine = tc.proto+"-wide", "nat gw masquerade oif eth1\n"
		}
		t.Run(name, func(t *testing.T) {
			topo := lab.New(t, natLabTopo+natLine)
			ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
			defer cancel()
			natDst := fmt.Sprintf("198.18.66.53:%d", tc.port)
			ctlDst := fmt.Sprintf("198.18.77.53:%d", tc.port)
			if tc.proto == "tcp" {
				for _, h := range []struct{ host, addr string }{{"server", natDst}, {"ctl", ctlDst}} {
					p, err := topo.Start(ctx, h.host, "env", "VDNAT_FLOOD=sink", "VDNAT_DST="+h.addr, os.Args[0], "-test.run=^TestNatcheckFloodHelper$")
					if err != nil {
						t.Fatal(err)
					}
					if err := p.WaitFor(ctx, "listening"); err != nil {
						t.Fatal(err)
					}
				}
			}
			dir := t.TempDir()
			filter := fmt.Sprintf("%s port %d", tc.proto, tc.port)
			var caps []*lab.Capture
			for _, c := range []struct{ iface, file string }{{"eth0", "gw-inside.pcap"}, {"eth1", "gw-outside.pcap"}, {"eth2", "gw-control.pcap"}} {
				capt, err := topo.Capture(ctx, "gw", c.iface, filepath.Join(dir, c.file), filter)
				if err != nil {
					t.Fatal(err)
				}
				caps = append(caps, capt)
			}
			in, out, ctl := caps[0], caps[1], caps[2]

			// The same load on both paths, from distinct fresh ports.
			var floods []*lab.Proc
			for _, f := range []struct {
				dst   string
				port0 int
			}{{natDst, 30000}, {ctlDst, 40000}} {
				p, err := topo.Start(ctx, "client", "env", "VDNAT_FLOOD="+tc.proto, fmt.Sprintf("VDNAT_N=%d", tc.n), "VDNAT_HOLD=1m",
					fmt.Sprintf("VDNAT_PORT0=%d", f.port0), "VDNAT_DST="+f.dst, os.Args[0], "-test.run=^TestNatcheckFloodHelper$")
				if err != nil {
					t.Fatal(err)
				}
				if err := p.WaitFor(ctx, "flooded"); err != nil {
					t.Fatal(err)
				}
				floods = append(floods, p)
				t.Logf("flood to %s: %s", f.dst, strings.TrimSpace(p.Stdout()))
			}
			time.Sleep(300 * time.Millisecond)
			for _, c := range caps {
				if err := c.Stop(); err != nil {
					t.Fatal(err)
				}
				if s := c.Stats(); s.Dropped != 0 {
					t.Errorf("capture %s dropped %d packets (%+v)", c.File, s.Dropped, s)
				}
			}

			// The oracle, while the TCP connections are still held.
			insertFailed := conntrackStat(t, ctx, topo, "insert_failed")
			natEntries, natted := conntrackCount(t, ctx, topo, tc.proto, "198.18.66.53", tc.port)
			ctlEntries, ctlNatted := conntrackCount(t, ctx, topo, tc.proto, "198.18.77.53", tc.port)
			t.Logf("conntrack: insert_failed %d, NAT'd path %d entries (%d translated), control %d entries (%d translated)",
				insertFailed, natEntries, natted, ctlEntries, ctlNatted)
			wantMapped := tc.n
			if tc.limited {
				wantMapped = 1976
			}
			if natEntries != wantMapped || natted != wantMapped || insertFailed != tc.n-wantMapped {
				t.Fatalf("the lab did not do what it should: %d NAT'd entries (%d translated), insert_failed %d; want %d, %d",
					natEntries, natted, insertFailed, wantMapped, tc.n-wantMapped)
			}
			if ctlEntries != tc.n || ctlNatted != 0 {
				t.Fatalf("control path: %d entries, %d translated; want %d, 0", ctlEntries, ctlNatted, tc.n)
			}
			if tc.proto == "tcp" && !strings.Contains(floods[0].Stdout(), fmt.Sprintf("connected=%d failed=%d", wantMapped, tc.n-wantMapped)) {
				t.Errorf("TCP flood through the NAT: %s", floods[0].Stdout())
			}

			// Live mode in the gateway's namespace.
			stdout, stderr, code := vpndiag(t, "natcheck", "--netns", topo.NS("gw"), "--format", "json", "--interval", "200ms")
			r := natDecodeReport(t, stdout)
			cnt, err := topo.Exec(ctx, "gw", "conntrack", "-C")
			if err != nil {
				t.Fatal(err)
			}
			entries, _ := strconv.Atoi(strings.TrimSpace(string(cnt)))
			for _, f := range r.Findings {
				t.Logf("live %s %s: %s", f.ID, f.Severity, f.Summary)
				if strings.Contains(f.Summary, "198.18.77.53") || f.Where != nil && strings.Contains(f.Where.Class, "198.18.77.53") {
					t.Errorf("live finding on the control path: %s", f.Summary)
				}
			}
			f := natExhaustion(r)
			if tc.limited {
				if code != exitFindings || f == nil || f.Severity != report.SeverityError {
					t.Fatalf("live: exit %d (%s), finding %+v", code, stderr, f)
				}
				ev := f.Evidence
				if ev["protocol"] != tc.proto || ev["destination"] != natDst || ev["range_min"] != 20000.0 || ev["range_max"] != 21975.0 ||
					ev["distinct_ports"] != 1976.0 || ev["port_min"] != 20000.0 || ev["port_max"] != 21975.0 ||
					ev["dropped_flows"] != float64(insertFailed) || ev["conntrack_entries"] != float64(entries) {
					t.Errorf("live evidence %v (insert_failed %d, entries %d)", ev, insertFailed, entries)
				}
			} else if code != exitOK || f != nil {
				t.Fatalf("live with a wide range: exit %d, finding %+v", code, f)
			}

			// Capture mode: the NAT'd path.
			stdout, _, code = vpndiag(t, "natcheck", "--outside", out.File, "--inside", in.File, "--format", "json")
			r = natDecodeReport(t, stdout)
			f = natExhaustion(r)
			row := dropsRow(r, natDst)
			t.Logf("captures, NAT'd path: exit %d, drops row %v", code, row)
			if tc.limited {
				if code != exitFindings || f == nil || f.Severity != report.SeverityError {
					t.Fatalf("captures: exit %d, finding %+v", code, f)
				}
				want := fmt.Sprintf("%d of %d new %s flows to %s were dropped inside the NAT while 1976 mappings (ports 20000-21975) were live",
					insertFailed, tc.n, strings.ToUpper(tc.proto), natDst)
				if !strings.HasPrefix(f.Summary, want) {
					t.Errorf("summary %q\nwant    %q", f.Summary, want)
				}
				ev := f.Evidence
				if ev["protocol"] != tc.proto || ev["nat_address"] != "198.18.66.1" || ev["port_min"] != 20000.0 || ev["port_max"] != 21975.0 ||
					ev["distinct_ports"] != 1976.0 || ev["peak_mappings"] != 1976.0 || ev["dropped_flows"] != float64(insertFailed) ||
					ev["new_flows"] != float64(tc.n) {
					t.Errorf("capture evidence %v", ev)
				}
				if len(f.Frames) == 0 || f.Frames[0].File != "gw-inside.pcap" {
					t.Errorf("frames %v", f.Frames)
				}
				if row == nil || row[9] != "exhausted" {
					t.Errorf("NAT'd class row %v", row)
				}
				// The outside capture alone shows the ceiling with the exact range.
				stdout, _, _ = vpndiag(t, "natcheck", "--outside", out.File, "--format", "json")
				f = natExhaustion(natDecodeReport(t, stdout))
				if f == nil || f.Severity != report.SeverityWarning || f.Evidence["port_min"] != 20000.0 || f.Evidence["port_max"] != 21975.0 ||
					f.Evidence["distinct_ports"] != 1976.0 || f.Evidence["protocol"] != tc.proto {
					t.Errorf("outside only: %+v", f)
				}
			} else {
				if code != exitOK || f != nil || row == nil || row[9] != "clean" || row[5] != 0.0 || row[4] != float64(tc.n) {
					t.Fatalf("captures with a wide range: exit %d, finding %+v, row %v", code, f, row)
				}
			}

			// Capture mode: the control path, same inside capture.
			stdout, _, code = vpndiag(t, "natcheck", "--outside", ctl.File, "--inside", in.File, "--format", "json")
			r = natDecodeReport(t, stdout)
			row = dropsRow(r, ctlDst)
			t.Logf("captures, control path: exit %d, drops row %v", code, row)
			if code != exitOK || len(r.Findings) != 0 || row == nil || row[9] != "clean" || row[3] != float64(tc.n) ||
				row[4] != float64(tc.n) || row[5] != 0.0 {
				b, _ := json.Marshal(r.Findings)
				t.Errorf("control path: exit %d, findings %s, row %v", code, b, row)
			}
		})
	}
}
