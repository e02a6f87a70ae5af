package arp

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/vpndiag/vpndiag/analyze/analyzetest"
	"github.com/vpndiag/vpndiag/report"
	"github.com/vpndiag/vpndiag/testdata/lab"
)

// dupTopo: a client and two "gateways" on one switch, both configured with
// 198.18.60.1 (as two regions' gateways holding the same address).
const dupTopo = `
switch sw
host client
host gw1
host gw2
link client:eth0=198.18.60.10/24 sw:p1
link gw1:eth0=198.18.60.1/24 sw:p2
link gw2:eth0=198.18.60.1/24 sw:p3
`

// TestLabDuplicateGateway makes the client resolve 198.18.60.1 three times
// (flushing its neighbour cache in between); both namespaces answer every
// request. The capture at the client must give arp.duplicate-ip as an error
// (the address is gateway-like) naming exactly the two MACs tshark sees
// replying for it.
func TestLabDuplicateGateway(t *testing.T) {
	lab.Require(t, "tshark", "ping")
	topo := lab.New(t, dupTopo)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	file := filepath.Join(t.TempDir(), "client.pcap")
	c, err := topo.Capture(ctx, "client", "eth0", file, "arp")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := topo.Sh(ctx, "client", "ip neigh flush dev eth0; ping -c 1 -W 1 198.18.60.1 >/dev/null; sleep 0.3"); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, row := range analyzetest.Tshark(t, file, "arp.opcode==2 && arp.src.proto_ipv4==198.18.60.1", "arp.src.hw_mac") {
		if !slices.Contains(want, row[0]) {
			want = append(want, row[0])
		}
	}
	slices.Sort(want)
	if len(want) != 2 {
		t.Fatalf("tshark sees replies for 198.18.60.1 from %v, want two MACs", want)
	}
	r := analyzetest.Run(t, New(), file)
	d := analyzetest.Findings(r, IDDuplicateIP)
	if len(d) != 1 || d[0].Severity != report.SeverityError || d[0].Evidence["ip"] != "198.18.60.1" {
		t.Fatalf("findings %+v", r.Findings)
	}
	got := slices.Clone(d[0].Evidence["macs"].([]string))
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("MACs %v, tshark %v", got, want)
	}
	if n := d[0].Evidence["concurrent_claims"].(uint32); n < 3 {
		t.Errorf("concurrent claims %d, want one per resolution (3)", n)
	}
	t.Logf("%s", d[0].Summary)
}
