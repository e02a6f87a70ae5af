//go:build linux

package capture

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vpndiag/vpndiag/probe/netns"
	"github.com/vpndiag/vpndiag/testdata/lab"
)

const gwLab = `
host a
host gw forward
host b
link a:eth0=198.18.1.2/24 gw:eth0=198.18.1.1/24
link gw:eth1=198.18.2.1/24 b:eth0=198.18.2.2/24
route a default via 198.18.1.1
route b default via 198.18.2.1
`

// TestSpoolTwoHops records two live hops of a gateway (lan=iface:eth0,
// wan=iface:eth1) at once while 6 pings cross it, and checks each file:
// exactly 12 ICMP frames, the interface named and described by the hop,
// statistics blocks with received 12 and dropped 0.
func TestSpoolTwoHops(t *testing.T) {
	topo := lab.New(t, gwLab)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	type out struct {
		res []SpoolResult
		err error
	}
	done := make(chan out, 1)
	started := make(chan struct{})
	go func() {
		var o out
		// Spool opens the sockets in the calling thread: in gw's namespace.
		o.err = netns.Do(topo.NS("gw"), func() error {
			sctx, scancel := context.WithCancel(ctx)
			defer scancel()
			go func() { <-started; <-ctx.Done(); scancel() }()
			var err error
			close(started)
			o.res, err = Spool(sctx, dir, []SpoolHop{{Name: "lan", Spec: "iface:eth0"}, {Name: "wan", Spec: "iface:eth1"}}, SpecOptions{Filter: "icmp"})
			return err
		})
		done <- o
	}()
	<-started
	time.Sleep(200 * time.Millisecond) // sockets open
	if b, err := topo.Exec(t.Context(), "a", "ping", "-n", "-q", "-c", "6", "-i", "0.01", "198.18.2.2"); err != nil {
		t.Fatalf("ping: %v: %s", err, b)
	}
	time.Sleep(50 * time.Millisecond)
	cancel()
	var o out
	select {
	case o = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Spool did not return within 5s of the cancellation")
	}
	if o.err != nil {
		t.Fatal(o.err)
	}
	for i, hop := range []string{"lan", "wan"} {
		r := o.res[i]
		if r.Err != nil || r.Name != hop || r.Path != filepath.Join(dir, hop+".pcapng") || r.Frames != 12 {
			t.Errorf("hop %s: %+v", hop, r)
		}
		frames, its := readBack(t, r.Path)
		if len(frames) != 12 || len(its) != 1 || its[0].Description != hop || its[0].Filter != "icmp" ||
			!its[0].HasStats || its[0].Received != 12 || its[0].Dropped != 0 {
			t.Errorf("%s: %d frames, interfaces %+v", r.Path, len(frames), its)
		}
	}
}

// TestSpoolOpenErrors: an interface that does not exist fails Spool before
// anything is captured, and no file is left behind (not even for the hop
// that opened).
func TestSpoolOpenErrors(t *testing.T) {
	topo := lab.New(t, "host a\n")
	dir := t.TempDir()
	err := netns.Do(topo.NS("a"), func() error {
		_, err := Spool(t.Context(), dir, []SpoolHop{{Name: "ok", Spec: "iface:lo"}, {Name: "bad", Spec: "iface:vdnope9"}}, SpecOptions{})
		return err
	})
	if !errors.Is(err, ErrNoInterface) {
		t.Fatalf("error %v, want ErrNoInterface", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("files left behind: %v", entries)
	}
}
