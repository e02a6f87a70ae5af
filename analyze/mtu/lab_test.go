package mtu

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/vpndiag/vpndiag/analyze/analyzetest"
	"github.com/vpndiag/vpndiag/report"
	"github.com/vpndiag/vpndiag/testdata/lab"
)

// pmtuTopo: client - r1 - r2 - server, where the r1-r2 link has MTU 1280
// and everything else 1500. The black-hole variant drops every ICMP r1
// itself sends (its frag-needed messages).
const pmtuTopo = `
host client
host r1 forward
host r2 forward
host server
link client:eth0=198.18.1.2/24 r1:eth0=198.18.1.1/24
link r1:eth1=198.18.2.1/24 r2:eth1=198.18.2.2/24 mtu 1280
link r2:eth0=198.18.3.1/24 server:eth0=198.18.3.2/24
route client default via 198.18.1.1
route server default via 198.18.3.1
route r1 198.18.3.0/24 via 198.18.2.2
route r2 198.18.1.0/24 via 198.18.2.1
`

// pmtuRun sends 300 kB from the client to the server over TCP in writes of
// the given size and returns the capture at the client and what the server
// received.
func pmtuRun(t *testing.T, topo *lab.Topology, sendFor time.Duration, write int) (string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	sink, err := topo.Start(ctx, "server", lab.Tool(t), "tcp-sink", "-listen", "198.18.3.2:5201", "-duration", "20s", "-conns", "1")
	if err != nil {
		t.Fatal(err)
	}
	if err := sink.WaitFor(ctx, "listening"); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "client.pcap")
	c, err := topo.Capture(ctx, "client", "eth0", file, "tcp or icmp")
	if err != nil {
		t.Fatal(err)
	}
	// In the black hole the sender stalls until its deadline; that error is expected.
	_, _ = topo.Exec(ctx, "client", lab.Tool(t), "tcp-send", "-to", "198.18.3.2:5201", "-bytes", "300000", "-write", strconv.Itoa(write),
		"-duration", sendFor.String())
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	_ = sink.Stop()
	return file, sink.Stdout()
}

// TestLabPMTUWithICMP: r1 answers the client's 1500-byte packets with ICMP
// fragmentation-needed (MTU 1280) and the transfer completes. vpndiag must
// report r1 and MTU 1280 with tshark's message count, the server's MSS as
// too large for that path, and no black hole.
func TestLabPMTUWithICMP(t *testing.T) {
	lab.Require(t, "tshark")
	topo := lab.New(t, pmtuTopo)
	file, sink := pmtuRun(t, topo, 15*time.Second, 65536)
	rows := analyzetest.Tshark(t, file, "icmp.type==3 && icmp.code==4", "ip.src", "icmp.mtu")
	if len(rows) == 0 || rows[0][1] != "1280" {
		t.Fatalf("tshark: frag-needed %v; want MTU 1280 messages (server got %s)", rows, sink)
	}
	r := analyzetest.Run(t, New(), file)
	fn := analyzetest.Findings(r, IDFragNeeded)
	if len(fn) != 1 || fn[0].Evidence["sender"] != "198.18.1.1" || fn[0].Evidence["mtu"] != uint32(1280) ||
		fn[0].Evidence["count"] != uint64(len(rows)) || fn[0].Severity != report.SeverityInfo {
		t.Errorf("frag-needed %+v; tshark %d messages from %s", fn, len(rows), rows[0][0])
	}
	ms := analyzetest.Findings(r, IDMSSTooLarge)
	if len(ms) != 1 || ms[0].Evidence["host"] != "198.18.3.2" || ms[0].Evidence["clamp_to"] != uint32(1240) {
		t.Errorf("mss-too-large %+v", ms)
	}
	if h := analyzetest.Findings(r, IDBlackhole); len(h) != 0 {
		t.Errorf("black hole reported although PMTUD worked: %+v", h)
	}
	t.Logf("server: %s; %s", sink, fn[0].Summary)
}

// TestLabPMTUBlackhole: the same path with r1's ICMP dropped. The client's
// full-size segments vanish and are retransmitted until the sender gives up,
// while its SYN was answered. vpndiag must report mtu.pmtu-blackhole for the client's flow with the size
// and transmission count tshark shows for the first lost segment.
func TestLabPMTUBlackhole(t *testing.T) {
	lab.Require(t, "tshark")
	topo := lab.New(t, pmtuTopo+"loss r1 output icmp 100%\n")
	file, _ := pmtuRun(t, topo, 6*time.Second, 65536)
	if n := len(analyzetest.Tshark(t, file, "icmp")); n != 0 {
		t.Fatalf("%d ICMP messages reached the client; the black hole needs none", n)
	}
	r := analyzetest.Run(t, New(), file)
	h := analyzetest.Findings(r, IDBlackhole)
	if len(h) != 1 || h[0].Severity != report.SeverityWarning {
		t.Fatalf("findings %+v", r.Findings)
	}
	ev := h[0].Evidence
	first := strconv.FormatUint(h[0].Frames[0].Frame, 10)
	seq := analyzetest.Tshark(t, file, "frame.number=="+first, "tcp.seq_raw", "ip.len")
	sends := analyzetest.Tshark(t, file, "ip.src==198.18.1.2 && tcp.seq_raw=="+seq[0][0]+" && tcp.len>0", "frame.number")
	if ev["src"] == nil || ev["size"] != uint16(atoi(t, seq[0][1])) || int(ev["sends"].(uint8)) != len(sends) || atoi(t, seq[0][1]) <= 1280 {
		t.Errorf("evidence %v; tshark: segment %v sent %d times", ev, seq, len(sends))
	}
	acked := analyzetest.Tshark(t, file, "ip.src==198.18.3.2 && tcp.ack_raw > "+seq[0][0], "frame.number")
	if len(acked) != 0 {
		t.Errorf("tshark: the server acknowledged the segment in frames %v", acked)
	}
	t.Logf("%s", h[0].Summary)
}
