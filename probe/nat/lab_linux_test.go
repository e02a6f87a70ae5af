//go:build linux

package nat

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The lab: client -> gw (nft masquerade) -> server, in namespaces this test
// creates. Roles (sender, responder) run as this test binary re-executed
// inside a namespace; TestMain dispatches on VDNAT_ROLE.

const (
	labClient   = "198.18.10.2"
	labGwIn     = "198.18.10.1"
	labGwOut    = "198.18.66.1"
	labServer   = "198.18.66.53"
	labDstPort  = 53
	labSrcPort0 = 30000
)

func TestMain(m *testing.M) {
	switch os.Getenv("VDNAT_ROLE") {
	case "sender":
		os.Exit(roleSender())
	case "responder":
		os.Exit(roleResponder())
	case "collect":
		os.Exit(roleCollect())
	}
	os.Exit(m.Run())
}

// roleSender sends one datagram from each of VDNAT_N fresh source ports
// starting at VDNAT_PORT0 to VDNAT_DST: one new UDP flow per port.
func roleSender() int {
	n, _ := strconv.Atoi(os.Getenv("VDNAT_N"))
	port0, _ := strconv.Atoi(os.Getenv("VDNAT_PORT0"))
	dst, err := net.ResolveUDPAddr("udp4", os.Getenv("VDNAT_DST"))
	if err != nil || n <= 0 || n > 20000 || port0 <= 0 {
		fmt.Fprintln(os.Stderr, "sender: bad VDNAT_N/VDNAT_PORT0/VDNAT_DST", err)
		return 2
	}
	payload := make([]byte, 32)
	for i := 0; i < n; i++ {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{Port: port0 + i})
		if err != nil {
			fmt.Fprintln(os.Stderr, "sender:", err)
			return 1
		}
		copy(payload, fmt.Sprintf("flow %06d", i))
		if _, err := c.WriteToUDP(payload, dst); err != nil {
			fmt.Fprintln(os.Stderr, "sender:", err)
			c.Close()
			return 1
		}
		c.Close()
		if i%50 == 49 {
			time.Sleep(2 * time.Millisecond)
		}
	}
	return 0
}

// roleResponder echoes UDP datagrams on VDNAT_LISTEN for at most 60 s.
func roleResponder() int {
	c, err := net.ListenPacket("udp4", os.Getenv("VDNAT_LISTEN"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "responder:", err)
		return 1
	}
	deadline := time.Now().Add(60 * time.Second)
	_ = c.SetDeadline(deadline)
	buf := make([]byte, 2048)
	for time.Now().Before(deadline) {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return 0
		}
		_, _ = c.WriteTo(buf[:n], from)
	}
	return 0
}

// natLab is a three-namespace NAT topology.
type natLab struct {
	t                  *testing.T
	client, gw, server string
	procs              []*exec.Cmd
}

func sh(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func needTool(t *testing.T, tool, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		t.Fatalf("%s not found: apt-get install %s", tool, pkg)
	}
}

// newNATLab builds client -> gw -> server with nftRule in gw's srcnat chain.
func newNATLab(t *testing.T, nftRule string) *natLab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the NAT lab needs root (network namespaces, nftables)")
	}
	needTool(t, "ip", "iproute2")
	needTool(t, "nft", "nftables")
	needTool(t, "ethtool", "ethtool")
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	id := "vdn" + hex.EncodeToString(b)
	l := &natLab{t: t, client: id + "-c", gw: id + "-g", server: id + "-s"}
	t.Cleanup(l.down)
	for _, ns := range []string{l.client, l.gw, l.server} {
		sh(t, "ip", "netns", "add", ns)
	}
	sh(t, "ip", "link", "add", "c0", "netns", l.client, "type", "veth", "peer", "name", "g0", "netns", l.gw)
	sh(t, "ip", "link", "add", "g1", "netns", l.gw, "type", "veth", "peer", "name", "s0", "netns", l.server)
	cfg := []struct{ ns, dev, addr string }{
		{l.client, "c0", labClient + "/24"}, {l.gw, "g0", labGwIn + "/24"},
		{l.gw, "g1", labGwOut + "/24"}, {l.server, "s0", labServer + "/24"},
	}
	for _, c := range cfg {
		sh(t, "ip", "-n", c.ns, "addr", "add", c.addr, "dev", c.dev)
		sh(t, "ip", "-n", c.ns, "link", "set", c.dev, "up")
		sh(t, "ip", "netns", "exec", c.ns, "ethtool", "-K", c.dev, "gro", "off", "gso", "off", "tso", "off")
	}
	for _, ns := range []string{l.client, l.gw, l.server} {
		sh(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	sh(t, "ip", "-n", l.client, "route", "add", "default", "via", labGwIn)
	sh(t, "ip", "-n", l.server, "route", "add", "default", "via", labGwOut)
	sh(t, "ip", "netns", "exec", l.gw, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	if strings.HasPrefix(nftRule, "iptables ") {
		needTool(t, "iptables", "iptables")
		sh(t, append([]string{"ip", "netns", "exec", l.gw}, strings.Fields(nftRule)...)...)
		return l
	}
	ruleset := fmt.Sprintf("table inet vdnat {\n\tchain post {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n\t\t%s\n\t}\n}\n", nftRule)
	cmd := exec.Command("ip", "netns", "exec", l.gw, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft -f in %s: %v\n%s\n%s", l.gw, err, out, ruleset)
	}
	return l
}

// start runs this test binary in role inside ns, in the background.
func (l *natLab) start(ns, role string, env ...string) *exec.Cmd {
	l.t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{"VDNAT_ROLE=" + role}, env...)...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		l.t.Fatalf("start %s in %s: %v", role, ns, err)
	}
	l.procs = append(l.procs, cmd)
	return cmd
}

// run runs this test binary in role inside ns and waits (at most 60 s).
func (l *natLab) run(ns, role string, env ...string) {
	l.t.Helper()
	cmd := l.start(ns, role, env...)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			l.t.Fatalf("%s in %s: %v", role, ns, err)
		}
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		l.t.Fatalf("%s in %s: still running after 60 s", role, ns)
	}
}

func (l *natLab) down() {
	for _, p := range l.procs {
		if p.ProcessState == nil && p.Process != nil {
			_ = p.Process.Kill()
			_, _ = p.Process.Wait()
		}
	}
	for _, ns := range []string{l.client, l.gw, l.server} {
		_ = exec.Command("ip", "netns", "del", ns).Run()
	}
}

// flood sends n new UDP flows from the client to the server's port 53.
func (l *natLab) flood(n int) {
	l.run(l.client, "sender", fmt.Sprintf("VDNAT_N=%d", n), fmt.Sprintf("VDNAT_PORT0=%d", labSrcPort0),
		fmt.Sprintf("VDNAT_DST=%s:%d", labServer, labDstPort))
}

// roleCollect runs Collect and prints its error; used as an unprivileged user.
func roleCollect() int {
	_, err := Collect(context.Background(), Options{NoRules: true})
	if err != nil {
		fmt.Println(err)
		if _, ok := err.(*PermissionError); ok {
			return 3
		}
		return 1
	}
	return 0
}
