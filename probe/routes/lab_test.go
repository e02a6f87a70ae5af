//go:build linux

package routes

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vpndiag/vpndiag/testdata/lab"
)

// wireguardBinary finds userspace WireGuard in PATH or $(go env GOPATH)/bin.
func wireguardBinary(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("wireguard"); err == nil {
		return p
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, d := range filepath.SplitList(strings.TrimSpace(string(out))) {
			if p := filepath.Join(d, "bin", "wireguard"); fileExists(p) {
				return p
			}
		}
	}
	t.Fatal("needs userspace WireGuard: GOFLAGS= go install golang.zx2c4.com/wireguard@latest")
	return ""
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// TestInspectWireGuardLab: a userspace WireGuard device in a lab namespace
// is found by name (peer endpoint included), while a stale control socket of
// another namespace in the shared /var/run/wireguard neither hides it nor
// makes the inspection incomplete; a default route through the device makes
// the endpoint recurse.
func TestInspectWireGuardLab(t *testing.T) {
	wg := wireguardBinary(t)
	if _, err := exec.LookPath("wg"); err != nil {
		t.Fatal("needs wg: apt-get install -y wireguard-tools")
	}
	topo := lab.New(t, `
host n
host f
link n:eth0=198.18.1.1/24 f:eth0=198.18.1.2/24
`)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// A stale socket: bound, then its listener closed without unlinking
	// (what a killed wireguard-go leaves behind).
	if err := os.MkdirAll("/var/run/wireguard", 0o700); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join("/var/run/wireguard", "ws"+topo.ID()+".sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	t.Cleanup(func() { os.Remove(stale) })

	dev := "wn" + topo.ID()
	p, err := topo.Start(ctx, "n", wg, "-f", dev)
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join("/var/run/wireguard", dev+".sock")
	t.Cleanup(func() { os.Remove(sock) }) // wireguard-go leaves it behind when killed
	for deadline := time.Now().Add(10 * time.Second); !fileExists(sock); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("wireguard-go: no control socket after 10 s: %s", p.Stderr())
		}
	}
	key, err := exec.Command("wg", "genkey").Output()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	peer := "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="
	for _, argv := range [][]string{
		{"wg", "set", dev, "private-key", keyFile, "peer", peer, "allowed-ips", "198.18.100.0/24", "endpoint", "198.18.2.2:51820"},
		{"ip", "addr", "add", "198.18.100.1/24", "dev", dev},
		{"ip", "link", "set", dev, "up"},
		{"ip", "route", "add", "default", "via", "198.18.1.2", "metric", "100"},
	} {
		if _, err := topo.Exec(ctx, "n", argv...); err != nil {
			t.Fatal(err)
		}
	}
	s, err := Inspect(ctx, Options{NetNS: topo.NS("n")})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Warnings) != 0 {
		t.Errorf("warnings %q", s.Warnings)
	}
	if len(s.Tunnels) != 1 || s.Tunnels[0].Kind != "wireguard" || s.Tunnels[0].Device != dev || s.Tunnels[0].Remote.String() != "198.18.2.2" {
		t.Fatalf("tunnels %+v, want the one WireGuard peer at 198.18.2.2 on %s", s.Tunnels, dev)
	}
	if l := s.Lookups[0]; l.Device != "eth0" || l.ViaTunnel {
		t.Errorf("lookup %+v, want via eth0", l)
	}
	// A default through the WireGuard device that wins: the endpoint recurses.
	if _, err := topo.Exec(ctx, "n", "ip", "route", "add", "default", "via", "198.18.100.2", "dev", dev, "metric", "10"); err != nil {
		t.Fatal(err)
	}
	s, err = Inspect(ctx, Options{NetNS: topo.NS("n")})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Lookups) != 1 || s.Lookups[0].Device != dev || !s.Lookups[0].ViaTunnel || s.Lookups[0].Gateway.String() != "198.18.100.2" {
		t.Errorf("lookups %+v, want 198.18.2.2 via %s (198.18.100.2)", s.Lookups, dev)
	}
}
