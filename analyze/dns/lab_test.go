package dns

import (
	"context"
	"encoding/json"
	"net/netip"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/vpndiag/vpndiag/analyze/analyzetest"
	"github.com/vpndiag/vpndiag/report"
	"github.com/vpndiag/vpndiag/testdata/lab"
)

// dropTopo: a client and a DNS server (dnsmasq) whose input chain drops 30%
// of the queries to port 53 (nftables numgen).
const dropTopo = `
host client
host ns
link client:eth0=198.18.53.2/24 ns:eth0=198.18.53.1/24
loss ns input udp dport 53 30%
`

// TestLabDroppedQueries sends 200 queries from fresh ports to a dnsmasq that
// drops 30% of them, captures at the client, and checks that
// dns.unanswered counts exactly the queries the client saw time out, which
// is also what nftables dropped and what tshark finds unanswered in the
// capture.
func TestLabDroppedQueries(t *testing.T) {
	lab.Require(t, "dnsmasq", "tshark", "ping")
	topo := lab.New(t, dropTopo)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	srv := netip.MustParseAddr("198.18.53.1")
	p, err := topo.StartDNS(ctx, "ns", srv, "lab.test", netip.MustParseAddr("198.18.53.99"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	file := filepath.Join(t.TempDir(), "client.pcap")
	c, err := topo.Capture(ctx, "client", "eth0", file, "")
	if err != nil {
		t.Fatal(err)
	}
	out, err := topo.Exec(ctx, "client", lab.Tool(t), "dns", "-to", "198.18.53.1:53", "-count", "200", "-rate", "200", "-timeout", "1s")
	if err != nil {
		t.Fatal(err)
	}
	var got dnsResultJSON
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("labtool output %q: %v", out, err)
	}
	// Something after the grace period, so no query is within EndGrace of the end.
	time.Sleep(EndGrace + 500*time.Millisecond)
	if _, err := topo.Exec(ctx, "client", "ping", "-c", "1", "-W", "2", "198.18.53.1"); err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	rs, err := topo.Exec(ctx, "ns", "nft", "list", "table", "inet", lab.NFTTable)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`counter packets (\d+)`).FindSubmatch(rs)
	if m == nil {
		t.Fatalf("no counter in:\n%s", rs)
	}
	dropped, _ := strconv.Atoi(string(m[1]))
	tsharkUnanswered := len(analyzetest.TsharkWith(t, tsharkDNS, file, "dns.flags.response==0 && !dns.response_in && !dns.retransmission"))

	r := analyzetest.Run(t, New(), file)
	res := r.Data["dns"].(Result)
	t.Logf("labtool %+v; nft dropped %d; tshark unanswered %d; vpndiag %+v", got, dropped, tsharkUnanswered, res.Servers)
	if got.Sent != 200 || got.Errors != 0 || got.Timeouts != dropped || tsharkUnanswered != dropped || dropped < 30 || dropped > 90 {
		t.Fatalf("lab ground truth inconsistent: labtool %+v, nft %d, tshark %d", got, dropped, tsharkUnanswered)
	}
	if len(res.Servers) != 1 {
		t.Fatalf("servers %+v", res.Servers)
	}
	s := res.Servers[0]
	if s.Server != "198.18.53.1" || s.Queries != 200 || s.Unanswered != uint64(dropped) || s.Answered != uint64(got.Answered) ||
		s.Pending != 0 || s.Retransmitted != 0 {
		t.Errorf("server %+v, want 200 queries, %d unanswered, %d answered", s, dropped, got.Answered)
	}
	f := analyzetest.Findings(r, IDUnanswered)
	if len(f) != 1 || f[0].Severity != report.SeverityWarning || f[0].Evidence["unanswered"] != uint64(dropped) {
		t.Errorf("finding %+v", f)
	}
}

type dnsResultJSON struct {
	Sent, Answered, Timeouts, Errors int
}
