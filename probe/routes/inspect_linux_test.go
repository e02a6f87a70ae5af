//go:build linux

package routes

import (
	"context"
	"fmt"
	"math/rand"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vpndiag/vpndiag/report"
)

func sh(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// twoNamespaces builds near (vxlan tunnel vx0 to 198.18.2.2 over veth va,
// underlay default via 198.18.0.2) and far (198.18.2.2 on lo).
func twoNamespaces(t *testing.T) (near string) {
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatal("needs ip: apt-get install -y iproute2")
	}
	id := fmt.Sprintf("vd%06x", rand.Intn(1<<24))
	near, far := id+"-rn", id+"-rf"
	t.Cleanup(func() {
		exec.Command("ip", "netns", "del", near).Run()
		exec.Command("ip", "netns", "del", far).Run()
	})
	sh(t, "ip", "netns", "add", near)
	sh(t, "ip", "netns", "add", far)
	sh(t, "ip", "-n", near, "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", far)
	sh(t, "ip", "-n", near, "addr", "add", "198.18.0.1/30", "dev", "va")
	sh(t, "ip", "-n", far, "addr", "add", "198.18.0.2/30", "dev", "vb")
	sh(t, "ip", "-n", far, "addr", "add", "198.18.2.2/32", "dev", "lo")
	for _, ns := range []string{near, far} {
		sh(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	sh(t, "ip", "-n", near, "link", "set", "va", "up")
	sh(t, "ip", "-n", far, "link", "set", "vb", "up")
	sh(t, "ip", "-n", near, "route", "add", "default", "via", "198.18.0.2", "metric", "100")
	sh(t, "ip", "-n", near, "link", "add", "vx0", "type", "vxlan", "id", "42", "remote", "198.18.2.2", "local", "198.18.0.1", "dstport", "4789", "dev", "va")
	sh(t, "ip", "-n", near, "addr", "add", "198.18.1.1/30", "dev", "vx0")
	sh(t, "ip", "-n", near, "link", "set", "vx0", "up")
	return near
}

func inspect(t *testing.T, ns string) *report.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := Inspect(ctx, Options{NetNS: ns})
	if err != nil {
		t.Fatal(err)
	}
	r := report.New("routecheck", "test", time.Now())
	Check(r, s)
	return r
}

func ids(r *report.Report) map[string]int {
	m := map[string]int{}
	for _, f := range r.Findings {
		if strings.HasPrefix(f.ID, "route.") && f.ID != "route.inspect-incomplete" {
			m[f.ID+"/"+f.Severity.String()]++
		}
	}
	return m
}

// TestInspectLive builds a VXLAN tunnel in namespaces and checks the three
// routing states: a default route learned into the tunnel (recursion: error),
// the same with a static host route to the endpoint (nothing), and the tunnel
// as a backup default with a higher metric (warning, failover table).
func TestInspectLive(t *testing.T) {
	near := twoNamespaces(t)

	// Nothing wrong yet.
	if got := ids(inspect(t, near)); len(got) != 0 {
		t.Fatalf("clean host: %v", got)
	}
	// A default route via the tunnel wins over the underlay default.
	sh(t, "ip", "-n", near, "route", "add", "default", "via", "198.18.1.2", "dev", "vx0", "metric", "10")
	r := inspect(t, near)
	if got := ids(r); got["route.endpoint-recursion/error"] != 1 || len(got) != 1 {
		t.Fatalf("default via tunnel: %v", got)
	}
	f := r.Findings[0]
	if f.Evidence["endpoint"] != "198.18.2.2" || f.Evidence["route_device"] != "vx0" || f.Evidence["tunnel_device"] != "vx0" {
		t.Errorf("finding %+v", f)
	}
	// Pin the endpoint to the underlay: nothing may be raised.
	sh(t, "ip", "-n", near, "route", "add", "198.18.2.2/32", "via", "198.18.0.2", "dev", "va")
	if got := ids(inspect(t, near)); len(got) != 0 {
		t.Fatalf("with static endpoint route: %v", got)
	}
	// Tunnel as backup default (higher metric), no host route: warning, and
	// the failover table shows the underlay default active.
	sh(t, "ip", "-n", near, "route", "del", "198.18.2.2/32")
	sh(t, "ip", "-n", near, "route", "del", "default", "via", "198.18.1.2", "dev", "vx0", "metric", "10")
	sh(t, "ip", "-n", near, "route", "add", "default", "via", "198.18.1.2", "dev", "vx0", "metric", "200")
	r = inspect(t, near)
	if got := ids(r); got["route.default-over-tunnel/warning"] != 1 || len(got) != 1 {
		t.Fatalf("backup default via tunnel: %v", got)
	}
	var fo *report.Table
	for i := range r.Tables {
		if r.Tables[i].Name == "tunnel_failover" {
			fo = &r.Tables[i]
		}
	}
	if fo == nil || len(fo.Rows) != 2 || fo.Rows[0][1] != "va" || fo.Rows[0][3] != 100 || fo.Rows[0][6] != true || fo.Rows[1][1] != "vx0" || fo.Rows[1][6] != false {
		t.Fatalf("failover table %+v", fo)
	}
}
