package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vpndiag/vpndiag/capture"
	"github.com/vpndiag/vpndiag/probe/netns"
	"github.com/vpndiag/vpndiag/testdata/lab"
)

// TestCaptureUsage: bad flags and a missing interface exit 2 with a message
// naming the flag or the interface, before anything is captured.
func TestCaptureUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"capture"}, "-i"},
		{[]string{"capture", "-i", "vdnope0"}, "vdnope0: no such network interface"},
		{[]string{"capture", "-i", "lo", "--ring", "3"}, "--ring"},
		{[]string{"capture", "-i", "lo", "--ring", "0x10MB"}, "--ring"},
		{[]string{"capture", "-i", "lo", "--snaplen", "10"}, "--snaplen 10"},
		{[]string{"capture", "-i", "lo", "--buffer", "0"}, "--buffer"},
		{[]string{"capture", "-i", "lo", "-f", "port eighty"}, "eighty"},
		{[]string{"capture", "-i", "lo", "-f", "port eighty", "--native-filter"}, "eighty"},
		{[]string{"capture", "-i", "lo", "--format", "xml"}, "--format"},
		{[]string{"capture", "-i", "lo", "extra"}, "unknown command"},
	} {
		_, stderr, code := vpndiag(t, tc.args...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 mentioning %q", tc.args, code, stderr, tc.want)
		}
	}
}

var (
	capBinOnce sync.Once
	capBin     string
	capBinErr  error
)

// captureBinary builds vpndiag once per test process into
// $TMPDIR/vdcap-bin-PID, a directory every user may enter (the permission
// test runs it as nobody). Directories of test processes that are gone are
// removed first.
func captureBinary(t testing.TB) string {
	t.Helper()
	capBinOnce.Do(func() {
		old, _ := filepath.Glob(filepath.Join(os.TempDir(), "vdcap-bin-*"))
		for _, d := range old {
			if pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(d), "vdcap-bin-")); err == nil {
				if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
					os.RemoveAll(d)
				}
			}
		}
		dir := filepath.Join(os.TempDir(), fmt.Sprintf("vdcap-bin-%d", os.Getpid()))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			capBinErr = err
			return
		}
		if err := os.Chmod(dir, 0o755); err != nil {
			capBinErr = err
			return
		}
		capBin = filepath.Join(dir, "vpndiag")
		cmd := exec.Command("go", "build", "-o", capBin, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			capBinErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if capBinErr != nil {
		t.Fatal(capBinErr)
	}
	return capBin
}

// publicDir is a temporary directory anyone may write to.
func publicDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "vdcap-out-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o777)
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// startCapture runs vpndiag capture inside host and waits for its banner.
func startCapture(t *testing.T, topo *lab.Topology, host string, args ...string) *lab.Proc {
	t.Helper()
	argv := append([]string{captureBinary(t), "capture"}, args...)
	p, err := topo.Start(t.Context(), host, argv...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	if err := p.WaitFor(ctx, "capturing on"); err != nil {
		t.Fatal(err)
	}
	return p
}

// endCapture sends SIGINT and returns the exit code.
func endCapture(t *testing.T, p *lab.Proc) int {
	t.Helper()
	time.Sleep(50 * time.Millisecond) // frames in flight
	if err := p.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	return waitCode(t, p)
}

func waitCode(t *testing.T, p *lab.Proc) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	err := p.Wait(ctx)
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	t.Fatalf("capture did not exit: %v", err)
	return -1
}

// captureReport is the part of the JSON report the tests read.
type captureReport struct {
	Title  string `json:"title"`
	Inputs []struct {
		Name    string  `json:"name"`
		Source  string  `json:"source"`
		Format  string  `json:"format"`
		Packets uint64  `json:"packets"`
		Bytes   uint64  `json:"bytes"`
		Drops   *uint64 `json:"capture_drops"`
	} `json:"inputs"`
	Findings []struct {
		ID string `json:"id"`
	} `json:"findings"`
	Data struct {
		Files      []string `json:"files"`
		Interfaces []struct {
			Name     string `json:"name"`
			Hop      string `json:"hop"`
			Captured uint64 `json:"captured"`
			Received uint64 `json:"kernel_received"`
			Dropped  uint64 `json:"kernel_dropped"`
		} `json:"interfaces"`
	} `json:"data"`
}

func readCaptureReport(t testing.TB, path string) captureReport {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r captureReport
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("report %s: %v", path, err)
	}
	return r
}

// readCapture reads a pcapng completely with capture.Open (any damage
// fails the test) and returns the frames' wire lengths and interfaces, and
// the interfaces.
func readCapture(t *testing.T, path string) ([]capture.Frame, []capture.Interface) {
	t.Helper()
	src, err := capture.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var frames []capture.Frame
	var f capture.Frame
	for {
		err := src.Next(&f)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read %s: %v", path, err)
		}
		g := f
		g.Data = append([]byte(nil), f.Data...)
		frames = append(frames, g)
	}
	return frames, src.Interfaces()
}

// tsharkRows runs tshark -T fields on a capture; tshark must read it
// without complaint.
func tsharkRows(t *testing.T, path string, fields ...string) [][]string {
	t.Helper()
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Fatal("tshark is this test's oracle: apt-get install tshark")
	}
	args := []string{"-n", "-r", path, "-T", "fields", "-E", "separator=|"}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	cmd := exec.Command("tshark", args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	msg := strings.TrimSpace(strings.ReplaceAll(stderr.String(), `Running as user "root" and group "root". This could be dangerous.`, ""))
	if err != nil || msg != "" {
		t.Fatalf("tshark -r %s: %v: %s", path, err, msg)
	}
	var rows [][]string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" {
			rows = append(rows, strings.Split(l, "|"))
		}
	}
	return rows
}

// statEntries returns capinfos' "Number of stat entries" per interface.
func statEntries(t *testing.T, path string) []string {
	t.Helper()
	out, err := exec.Command("capinfos", "-M", path).CombinedOutput()
	if err != nil {
		t.Fatalf("capinfos %s (apt-get install wireshark-common): %v: %s", path, err, out)
	}
	var n []string
	for _, l := range strings.Split(string(out), "\n") {
		if _, v, ok := strings.Cut(l, "Number of stat entries = "); ok {
			n = append(n, strings.TrimSpace(v))
		}
	}
	return n
}

const capLab = `
host a
host b
link a:eth0=198.18.1.1/24 b:eth0=198.18.1.2/24
`

// TestCaptureExactUDP: 100 UDP datagrams of 64 payload bytes to port 5001
// and 50 to port 5002 with the filter "udp dst port 5001" make a pcapng of
// exactly 100 frames of 106 bytes, read identically by capture.Open and
// tshark, with a statistics block (received 100, dropped 0); the JSON
// report says 100 packets, 10600 bytes, 0 drops; the exit code is 0.
func TestCaptureExactUDP(t *testing.T) {
	lab.Require(t, "tshark", "capinfos")
	topo := lab.New(t, capLab)
	tool := lab.Tool(t)
	dir := publicDir(t)
	file, rep := filepath.Join(dir, "b.pcapng"), filepath.Join(dir, "b.json")
	p := startCapture(t, topo, "b", "-i", "eth0", "-f", "udp dst port 5001", "-w", file, "--hop", "server", "--format", "json", "-o", rep)
	for _, c := range []struct{ port, n string }{{"5001", "100"}, {"5002", "50"}} {
		if out, err := topo.Exec(t.Context(), "a", tool, "udp-send", "-to", "198.18.1.2:"+c.port, "-count", c.n, "-size", "64", "-rate", "5000"); err != nil {
			t.Fatalf("udp-send: %v: %s", err, out)
		}
	}
	if code := endCapture(t, p); code != 0 {
		t.Fatalf("exit %d: %s", code, p.Stderr())
	}
	frames, its := readCapture(t, file)
	if len(frames) != 100 {
		t.Fatalf("%d frames in the file, want 100", len(frames))
	}
	for i, f := range frames {
		if f.WireLen != 106 || len(f.Data) != 106 || binary.BigEndian.Uint16(f.Data[36:]) != 5001 || binary.BigEndian.Uint64(f.Data[42:]) != uint64(i) {
			t.Fatalf("frame %d: %d/%d bytes, port %d", i+1, len(f.Data), f.WireLen, binary.BigEndian.Uint16(f.Data[36:]))
		}
	}
	if len(its) != 1 || its[0].Name != "eth0" || its[0].Description != "server" || its[0].Filter != "udp dst port 5001" ||
		!its[0].HasStats || its[0].Received != 100 || its[0].Dropped != 0 {
		t.Errorf("interfaces %+v", its)
	}
	rows := tsharkRows(t, file, "frame.interface_name", "frame.interface_description", "frame.len", "udp.dstport")
	if len(rows) != 100 {
		t.Fatalf("tshark reads %d frames", len(rows))
	}
	for i, r := range rows {
		if r[0] != "eth0" || r[1] != "server" || r[2] != "106" || r[3] != "5001" {
			t.Fatalf("tshark frame %d: %v", i+1, r)
		}
	}
	if n := statEntries(t, file); len(n) != 1 || n[0] != "1" {
		t.Errorf("capinfos stat entries %v, want [1]", n)
	}
	r := readCaptureReport(t, rep)
	if len(r.Inputs) != 1 || r.Inputs[0].Packets != 100 || r.Inputs[0].Bytes != 10600 || r.Inputs[0].Drops == nil || *r.Inputs[0].Drops != 0 ||
		r.Inputs[0].Source != "iface:eth0" || r.Inputs[0].Format != "live" || len(r.Findings) != 0 {
		t.Errorf("report %+v", r)
	}
	if len(r.Data.Interfaces) != 1 || r.Data.Interfaces[0].Received != 100 || r.Data.Interfaces[0].Hop != "server" || len(r.Data.Files) != 1 || r.Data.Files[0] != file {
		t.Errorf("report data %+v", r.Data)
	}
}

// TestCaptureTwoInterfaces captures on a gateway's Ethernet interface and a
// tun device (raw IP) into one file with --hop gw: tshark names both
// interfaces with the description gw, the Ethernet frames decode as eth,
// the tun frames as raw IP, and the link types read back are 1 and 101.
func TestCaptureTwoInterfaces(t *testing.T) {
	lab.Require(t, "tshark")
	topo := lab.New(t, `
host a
host gw forward
host b
link a:eth0=198.18.1.2/24 gw:eth0=198.18.1.1/24
link gw:eth1=198.18.2.1/24 b:eth0=198.18.2.2/24
route a default via 198.18.1.1
route b default via 198.18.2.1
`)
	tun := openTun(t, topo.NS("gw"), "vdtun7")
	for _, args := range [][]string{{"ip", "link", "set", "vdtun7", "up"}, {"ip", "addr", "add", "198.18.7.1/24", "dev", "vdtun7"}} {
		if out, err := topo.Exec(t.Context(), "gw", args...); err != nil {
			t.Fatalf("%v: %v: %s", args, err, out)
		}
	}
	dir := publicDir(t)
	file := filepath.Join(dir, "gw.pcapng")
	p := startCapture(t, topo, "gw", "-i", "eth0,vdtun7", "--hop", "gw", "-f", "icmp or udp", "-w", file, "--format", "json", "-o", filepath.Join(dir, "r.json"))
	if out, err := topo.Exec(t.Context(), "a", "ping", "-n", "-q", "-c", "3", "-i", "0.01", "198.18.2.2"); err != nil {
		t.Fatalf("ping: %v: %s", err, out)
	}
	for i := 0; i < 4; i++ {
		if _, err := unix.Write(tun, udpPacket([4]byte{198, 18, 7, 2}, [4]byte{198, 18, 7, 1}, 12)); err != nil {
			t.Fatal(err)
		}
	}
	if code := endCapture(t, p); code != 0 {
		t.Fatalf("exit %d: %s", code, p.Stderr())
	}
	rows := tsharkRows(t, file, "frame.interface_name", "frame.interface_description", "frame.protocols")
	count := map[string]int{}
	for _, r := range rows {
		count[r[0]]++
		if r[1] != "gw" {
			t.Errorf("frame on %s described %q, want gw", r[0], r[1])
		}
		if r[0] == "eth0" && !strings.HasPrefix(r[2], "eth:") || r[0] == "vdtun7" && !strings.HasPrefix(r[2], "raw:ip") {
			t.Errorf("frame on %s decodes as %s", r[0], r[2])
		}
	}
	// The tun carries the 4 datagrams in and 4 ICMP port unreachables out
	// (nothing listens on the port).
	if count["eth0"] != 6 || count["vdtun7"] != 8 || len(rows) != 14 {
		t.Errorf("frames per interface %v, want eth0 6 (3 echo + 3 reply), vdtun7 8", count)
	}
	_, its := readCapture(t, file)
	if len(its) != 2 || its[0].LinkType != 1 || its[1].LinkType != 101 || its[0].Received != 6 || its[1].Received != 8 {
		t.Errorf("interfaces %+v", its)
	}
}

// openTun creates a tun device in a namespace; the test holds its fd.
func openTun(t *testing.T, ns, name string) int {
	t.Helper()
	var fd int
	err := netns.Do(ns, func() error {
		var err error
		if fd, err = unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0); err != nil {
			return err
		}
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			return err
		}
		ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
		return unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr)
	})
	if err != nil {
		t.Fatalf("tun: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// udpPacket is an IPv4/UDP packet with n payload bytes (checksum 0).
func udpPacket(src, dst [4]byte, n int) []byte {
	b := make([]byte, 28+n)
	b[0], b[8], b[9] = 0x45, 64, 17
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	copy(b[12:], src[:])
	copy(b[16:], dst[:])
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(b[10:], ^uint16(sum))
	binary.BigEndian.PutUint16(b[20:], 4000)
	binary.BigEndian.PutUint16(b[22:], 4001)
	binary.BigEndian.PutUint16(b[24:], uint16(8+n))
	return b
}

// TestCaptureDropsRecorded stops the capture process (SIGSTOP) while 20000
// datagrams arrive at a 1 MiB ring, so the kernel must drop; after SIGCONT
// and SIGINT the file holds what fit, its statistics block counts the drops
// (captured + dropped = received = 20000), and the report has a
// capture.drops warning (exit 0: below --fail-on error).
func TestCaptureDropsRecorded(t *testing.T) {
	topo := lab.New(t, capLab)
	tool := lab.Tool(t)
	dir := publicDir(t)
	file, rep := filepath.Join(dir, "d.pcapng"), filepath.Join(dir, "d.json")
	p := startCapture(t, topo, "b", "-i", "eth0", "-f", "udp port 5001", "--buffer", "1", "-w", file, "--format", "json", "-o", rep)
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	if out, err := topo.Exec(t.Context(), "a", tool, "udp-send", "-to", "198.18.1.2:5001", "-count", "20000", "-size", "200", "-rate", "0"); err != nil {
		t.Fatalf("udp-send: %v: %s", err, out)
	}
	if err := p.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if code := endCapture(t, p); code != 0 {
		t.Fatalf("exit %d: %s", code, p.Stderr())
	}
	frames, its := readCapture(t, file)
	it := its[0]
	t.Logf("captured %d, kernel received %d, dropped %d", len(frames), it.Received, it.Dropped)
	if !it.HasStats || it.Dropped == 0 || it.Received != 20000 || uint64(len(frames))+it.Dropped != 20000 {
		t.Errorf("file: %d frames, statistics %+v; want frames + dropped = received = 20000, dropped > 0", len(frames), it)
	}
	r := readCaptureReport(t, rep)
	if len(r.Findings) != 1 || r.Findings[0].ID != "capture.drops" || r.Data.Interfaces[0].Dropped != it.Dropped {
		t.Errorf("report findings %+v data %+v", r.Findings, r.Data)
	}
}

// TestCaptureRing: 1000 datagrams of 1000 bytes (about 1 MB of pcapng)
// into --ring 3x100kB give 11 files of which the last 3 are kept (out-8,
// out-9, out-10), each complete for tshark and capture.Open with a
// statistics block, holding consecutive datagrams ending with the last one.
func TestCaptureRing(t *testing.T) {
	lab.Require(t, "tshark", "capinfos")
	topo := lab.New(t, capLab)
	tool := lab.Tool(t)
	dir := publicDir(t)
	file := filepath.Join(dir, "out.pcapng")
	p := startCapture(t, topo, "b", "-i", "eth0", "-f", "udp port 5001", "--ring", "3x100kB", "-w", file, "--format", "json", "-o", filepath.Join(dir, "r.json"))
	if out, err := topo.Exec(t.Context(), "a", tool, "udp-send", "-to", "198.18.1.2:5001", "-count", "1000", "-size", "958", "-rate", "5000"); err != nil {
		t.Fatalf("udp-send: %v: %s", err, out)
	}
	if code := endCapture(t, p); code != 0 {
		t.Fatalf("exit %d: %s", code, p.Stderr())
	}
	// 1000-byte frames take 1032-byte blocks: 96 per 100 kB file, 11 files.
	var names []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".pcapng") {
			names = append(names, e.Name())
		}
	}
	want := []string{"out-10.pcapng", "out-8.pcapng", "out-9.pcapng"}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Fatalf("ring files %v, want %v", names, want)
	}
	r := readCaptureReport(t, filepath.Join(dir, "r.json"))
	if len(r.Data.Files) != 3 || filepath.Base(r.Data.Files[2]) != "out-10.pcapng" {
		t.Errorf("report files %v", r.Data.Files)
	}
	next := uint64(1000 - 96*2 - 1000%96) // the first datagram of out-8
	for _, name := range []string{"out-8.pcapng", "out-9.pcapng", "out-10.pcapng"} {
		path := filepath.Join(dir, name)
		frames, its := readCapture(t, path)
		if st, _ := os.Stat(path); st.Size() > 100_000 {
			t.Errorf("%s: %d bytes", name, st.Size())
		}
		if len(tsharkRows(t, path, "frame.number")) != len(frames) {
			t.Errorf("%s: tshark and capture.Open disagree", name)
		}
		if n := statEntries(t, path); len(n) != 1 || n[0] != "1" || !its[0].HasStats {
			t.Errorf("%s: stat entries %v", name, n)
		}
		for _, f := range frames {
			if seq := binary.BigEndian.Uint64(f.Data[42:]); seq != next {
				t.Fatalf("%s: datagram %d where %d was expected", name, seq, next)
			}
			next++
		}
	}
	if next != 1000 {
		t.Errorf("the ring ends with datagram %d, want 999", next-1)
	}
}

// TestCaptureSIGINTMidStream sends SIGINT while 20000 datagrams are being
// sent: the file must still be complete — capture.Open reads every frame
// without error and finds the statistics block, tshark reads the same
// number of frames, and the report's packet count equals the file's.
func TestCaptureSIGINTMidStream(t *testing.T) {
	lab.Require(t, "tshark", "capinfos")
	topo := lab.New(t, capLab)
	tool := lab.Tool(t)
	dir := publicDir(t)
	file, rep := filepath.Join(dir, "s.pcapng"), filepath.Join(dir, "s.json")
	p := startCapture(t, topo, "b", "-i", "eth0", "-f", "udp", "-w", file, "--format", "json", "-o", rep)
	sender, err := topo.Start(t.Context(), "a", tool, "udp-send", "-to", "198.18.1.2:5001", "-count", "20000", "-size", "500", "-rate", "20000")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if err := p.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	code := waitCode(t, p)
	sender.Stop()
	if code != 0 {
		t.Fatalf("exit %d: %s", code, p.Stderr())
	}
	frames, its := readCapture(t, file)
	if len(frames) < 1000 || len(frames) >= 20000 {
		t.Errorf("%d frames: SIGINT did not land mid-stream", len(frames))
	}
	if !its[0].HasStats {
		t.Error("no statistics block after SIGINT")
	}
	if n := len(tsharkRows(t, file, "frame.number")); n != len(frames) {
		t.Errorf("tshark reads %d frames, capture.Open %d", n, len(frames))
	}
	if n := statEntries(t, file); len(n) != 1 || n[0] != "1" {
		t.Errorf("capinfos stat entries %v", n)
	}
	if r := readCaptureReport(t, rep); r.Inputs[0].Packets != uint64(len(frames)) {
		t.Errorf("report says %d packets, the file holds %d", r.Inputs[0].Packets, len(frames))
	}
}

// TestCaptureStops: --count 5 stops after exactly 5 frames, --duration
// stops by itself; both exit 0 with complete files.
func TestCaptureStops(t *testing.T) {
	topo := lab.New(t, capLab)
	dir := publicDir(t)
	pinger, err := topo.Start(t.Context(), "a", "ping", "-n", "-q", "-c", "200", "-i", "0.01", "198.18.1.2")
	if err != nil {
		t.Fatal(err)
	}
	defer pinger.Stop()
	c := filepath.Join(dir, "c.pcapng")
	p := startCapture(t, topo, "b", "-i", "eth0", "-f", "icmp", "--count", "5", "-w", c, "--format", "json", "-o", filepath.Join(dir, "c.json"))
	if code := waitCode(t, p); code != 0 {
		t.Fatalf("--count: exit %d: %s", code, p.Stderr())
	}
	if frames, _ := readCapture(t, c); len(frames) != 5 {
		t.Errorf("--count 5 wrote %d frames", len(frames))
	}
	d := filepath.Join(dir, "d.pcapng")
	start := time.Now()
	p = startCapture(t, topo, "b", "-i", "eth0", "--duration", "700ms", "-w", d, "--format", "json", "-o", filepath.Join(dir, "d.json"))
	if code := waitCode(t, p); code != 0 {
		t.Fatalf("--duration: exit %d: %s", code, p.Stderr())
	}
	if el := time.Since(start); el < 700*time.Millisecond || el > 5*time.Second {
		t.Errorf("--duration 700ms ran %v", el)
	}
	if frames, _ := readCapture(t, d); len(frames) < 20 {
		t.Errorf("--duration: %d frames while pinging every 10 ms", len(frames))
	}
}

// TestCaptureNoPermission runs the binary as user nobody without
// capabilities: exit 3, and the message names CAP_NET_RAW, sudo and the
// setcap command.
func TestCaptureNoPermission(t *testing.T) {
	lab.Require(t, "setpriv")
	topo := lab.New(t, "host a\n")
	dir := publicDir(t)
	_, err := topo.Exec(t.Context(), "a", "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
		captureBinary(t), "capture", "-i", "lo", "-w", filepath.Join(dir, "x.pcapng"))
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("exit %v, want 3", err)
	}
	for _, want := range []string{"CAP_NET_RAW", "sudo", "setcap cap_net_raw,cap_net_admin+ep", "capture on lo"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q does not mention %q", err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "x.pcapng")); err == nil {
		t.Error("a capture file was created without permission to capture")
	}
}

// BenchmarkCaptureVsTcpdump sends 1-second UDP bursts of 64-byte datagrams
// at increasing rates (the last one as fast as the sender can) over a veth
// while vpndiag capture and tcpdump -w capture the same interface at the
// same time with the same kernel buffer (2 MiB, tcpdump's default, and
// 1 MiB; vpndiag's default is 32 MiB). It logs per rate the datagrams sent
// and each tool's kernel drop counter, and reports as metrics the highest
// rate at which each tool's kernel counter shows no drop. Run it with
//
//	go test ./cmd/vpndiag -run '^$' -bench CaptureVsTcpdump -benchtime 1x -v
func BenchmarkCaptureVsTcpdump(b *testing.B) {
	for _, mib := range []int{2, 1} {
		b.Run(fmt.Sprintf("buffer=%dMiB", mib), func(b *testing.B) { captureRateSweep(b, mib) })
	}
}

func captureRateSweep(b *testing.B, mib int) {
	topo := lab.New(b, capLab)
	tool := lab.Tool(b)
	bin := captureBinary(b)
	dir := b.TempDir()
	rates := []int{25000, 50000, 100000, 150000, 200000, 0}
	for b.Loop() {
		bestV, bestT := 0.0, 0.0
		for i, rate := range rates {
			vfile, tfile := filepath.Join(dir, fmt.Sprintf("v%d.pcapng", i)), filepath.Join(dir, fmt.Sprintf("t%d.pcap", i))
			vrep := filepath.Join(dir, fmt.Sprintf("v%d.json", i))
			v, err := topo.Start(b.Context(), "b", bin, "capture", "-i", "eth0", "-f", "udp port 5001", "--buffer", strconv.Itoa(mib), "-w", vfile, "--format", "json", "-o", vrep)
			if err != nil {
				b.Fatal(err)
			}
			td, err := topo.Start(b.Context(), "b", "tcpdump", "-i", "eth0", "-n", "-B", strconv.Itoa(mib<<10), "-w", tfile, "udp port 5001")
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(b.Context(), 15*time.Second)
			if err := v.WaitFor(ctx, "capturing on"); err != nil {
				b.Fatal(err)
			}
			if err := td.WaitFor(ctx, "listening on"); err != nil {
				b.Fatal(err)
			}
			cancel()
			count := rate
			if rate == 0 {
				count = 400000
			}
			out, err := topo.Exec(b.Context(), "a", tool, "udp-send", "-to", "198.18.1.2:5001", "-count", strconv.Itoa(count), "-size", "64", "-rate", strconv.Itoa(rate), "-duration", "3s")
			if err != nil {
				b.Fatalf("udp-send: %v", err)
			}
			var sent struct {
				Sent    int     `json:"sent"`
				Seconds float64 `json:"seconds"`
			}
			json.Unmarshal(out, &sent)
			// tcpdump's ring hands over blocks up to 1 s late; let both finish.
			time.Sleep(1200 * time.Millisecond)
			v.Signal(syscall.SIGINT)
			td.Signal(syscall.SIGINT)
			ctx, cancel = context.WithTimeout(b.Context(), 20*time.Second)
			v.Wait(ctx)
			td.Wait(ctx)
			cancel()
			r := readCaptureReport(b, vrep)
			vdrop, vcap := r.Data.Interfaces[0].Dropped, r.Data.Interfaces[0].Captured
			tdrop, tcap := tcpdumpStat(td.Stderr(), "packets dropped by kernel"), tcpdumpStat(td.Stderr(), "packets captured")
			pps := float64(sent.Sent) / sent.Seconds
			b.Logf("%d MiB: %7.0f pps (asked %d, sent %d): vpndiag captured %d, kernel dropped %d | tcpdump captured %d, kernel dropped %d",
				mib, pps, rate, sent.Sent, vcap, vdrop, tcap, tdrop)
			if vdrop == 0 && pps > bestV {
				bestV = pps
			}
			if tdrop == 0 && pps > bestT {
				bestT = pps
			}
			os.Remove(vfile)
			os.Remove(tfile)
		}
		b.ReportMetric(bestV, "vpndiag-lossless-pps")
		b.ReportMetric(bestT, "tcpdump-lossless-pps")
	}
}

// tcpdumpStat reads "N <what>" from tcpdump's exit summary (-1 if absent).
func tcpdumpStat(stderr, what string) int {
	for _, l := range strings.Split(stderr, "\n") {
		if n, ok := strings.CutSuffix(strings.TrimSpace(l), " "+what); ok {
			v, err := strconv.Atoi(n)
			if err == nil {
				return v
			}
		}
	}
	return -1
}
