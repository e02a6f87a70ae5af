package watch

import (
	"context"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/vpndiag/vpndiag/probe/ping"
	"github.com/vpndiag/vpndiag/testdata/lab"
)

var txPackets = regexp.MustCompile(`TX:[^\n]*\n\s*\d+\s+(\d+)`)

// txCount returns an interface's transmitted packets (ip -s link).
func txCount(t *testing.T, l *lab.Topology, host, iface string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := l.Exec(ctx, host, "ip", "-s", "link", "show", iface)
	if err != nil {
		t.Fatal(err)
	}
	m := txPackets.FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("no TX counter in:\n%s", out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// TestLabFailoverRouteChange: a reaches b's service address 198.18.42.1
// over one of two links; the route is deleted, and 800 ms later a route
// over the other link is added (a failover with a gap). watch measures the
// interruption to within two probe intervals of the true gap, which lies
// between the end of the delete and the start of the add (shortest) and
// the start of the delete and the end of the add (longest). Afterwards the
// probes really use the second link.
func TestLabFailoverRouteChange(t *testing.T) {
	l := lab.New(t, `
host a
host b
link a:eth0=198.18.40.1/24 b:eth0=198.18.40.2/24
link a:eth1=198.18.41.1/24 b:eth1=198.18.41.2/24
addr b:eth0 198.18.42.1/32
route a 198.18.42.1/32 via 198.18.40.2
`)
	const interval = 50 * time.Millisecond
	const gap = 800 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w := startWatch(ctx, Config{
		Targets: []string{"198.18.42.1"}, Interval: interval, Duration: 4 * time.Second,
		Timeout: 4 * interval, Mode: ping.Privileged, Netns: l.NS("a"),
	})
	time.Sleep(1200 * time.Millisecond)
	tx1 := txCount(t, l, "a", "eth1")
	delStart := time.Now()
	if _, err := l.Exec(ctx, "a", "ip", "route", "del", "198.18.42.1/32"); err != nil {
		t.Fatal(err)
	}
	delEnd := time.Now()
	time.Sleep(gap)
	addStart := time.Now()
	if _, err := l.Exec(ctx, "a", "ip", "route", "add", "198.18.42.1/32", "via", "198.18.41.2"); err != nil {
		t.Fatal(err)
	}
	addEnd := time.Now()
	shortest, longest := addStart.Sub(delEnd), addEnd.Sub(delStart)
	res, downs, ups, err := w.wait()
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	tr := res.Targets[0]
	if tr.Error != "" || len(tr.Outages) != 1 {
		t.Fatalf("target result %+v", tr)
	}
	o := tr.Outages[0]
	var off time.Duration
	switch {
	case o.Duration < shortest:
		off = shortest - o.Duration
	case o.Duration > longest:
		off = o.Duration - longest
	}
	t.Logf("route gap %v..%v; measured outage %v (%d probes lost), off by %v; availability %.1f%% of %d",
		shortest.Round(time.Millisecond), longest.Round(time.Millisecond), o.Duration.Round(time.Millisecond), o.Lost, off, tr.Availability, tr.Sent)
	if off > 2*interval {
		t.Errorf("outage %v outside %v..%v by %v (> 2 intervals)", o.Duration, shortest, longest, off)
	}
	if o.Ongoing || downs != 1 || ups != 1 || o.Lost < int(shortest/interval)/2 {
		t.Errorf("outage %+v, events down=%d up=%d", o, downs, ups)
	}
	// After the failover the probes left through eth1 (about 2 s of them).
	if sent := txCount(t, l, "a", "eth1") - tx1; sent < 20 {
		t.Errorf("only %d packets left through eth1 after the failover", sent)
	}
}
