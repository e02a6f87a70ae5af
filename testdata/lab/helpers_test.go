package lab

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

func filepathDir(p string) string { return filepath.Dir(p) }

// pkt is the part of a captured UDP/ICMP packet the tests look at.
type pkt struct {
	n             int
	src, dst      netip.Addr
	proto         layers.IPProtocol
	sport, dport  uint16
	vni           uint32 // VXLAN, when the packet is UDP 4789
	hasVXLAN      bool
	innerSrc      netip.Addr
	innerProto    layers.IPProtocol
	innerICMPType uint8
	payload       []byte
}

// readPackets decodes every IPv4/IPv6 packet of a capture file.
func readPackets(t *testing.T, file string) []pkt {
	t.Helper()
	var out []pkt
	err := ForEachPacket(file, func(n int, _ gopacket.CaptureInfo, lt layers.LinkType, data []byte) error {
		p := gopacket.NewPacket(data, lt, gopacket.Default)
		var q pkt
		q.n = n
		found := false
		for _, l := range p.Layers() {
			switch l := l.(type) {
			case *layers.IPv4:
				if found {
					q.innerSrc, _ = netip.AddrFromSlice(l.SrcIP)
					q.innerProto = l.Protocol
					continue
				}
				found = true
				q.src, _ = netip.AddrFromSlice(l.SrcIP)
				q.dst, _ = netip.AddrFromSlice(l.DstIP)
				q.proto = l.Protocol
			case *layers.IPv6:
				if found {
					continue
				}
				found = true
				q.src, _ = netip.AddrFromSlice(l.SrcIP)
				q.dst, _ = netip.AddrFromSlice(l.DstIP)
				q.proto = l.NextHeader
			case *layers.UDP:
				if q.sport == 0 {
					q.sport, q.dport = uint16(l.SrcPort), uint16(l.DstPort)
					q.payload = append([]byte(nil), l.Payload...)
				}
			case *layers.TCP:
				if q.sport == 0 {
					q.sport, q.dport = uint16(l.SrcPort), uint16(l.DstPort)
				}
			case *layers.VXLAN:
				q.hasVXLAN, q.vni = true, l.VNI
			case *layers.ICMPv4:
				q.innerICMPType = l.TypeCode.Type()
			}
		}
		if found {
			out = append(out, q)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// toolJSON runs labtool inside host and decodes its JSON summary.
func toolJSON(t *testing.T, topo *Topology, host string, v any, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	out, err := topo.Exec(ctx, host, append([]string{Tool(t)}, args...)...)
	if err != nil {
		t.Fatalf("labtool %s on %s: %v", args[0], host, err)
	}
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatalf("labtool %s output %q: %v", args[0], out, err)
	}
}

// startSink starts a labtool sink (udp-sink, tcp-sink) and waits until it is bound.
func startSink(t *testing.T, topo *Topology, host string, args ...string) *Proc {
	t.Helper()
	p, err := topo.Start(t.Context(), host, append([]string{Tool(t)}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := p.WaitFor(ctx, "listening"); err != nil {
		t.Fatal(err)
	}
	return p
}

// procJSON waits for a started labtool to finish and decodes its summary.
func procJSON(t *testing.T, p *Proc, v any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if err := p.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(p.Stdout()), v); err != nil {
		t.Fatalf("%s output %q: %v", p.Argv[1], p.Stdout(), err)
	}
}

// capture starts a capture into the test's temp dir.
func capture(t *testing.T, topo *Topology, host, iface, filter string) *Capture {
	t.Helper()
	file := filepath.Join(t.TempDir(), host+"-"+iface+".pcap")
	c, err := topo.Capture(t.Context(), host, iface, file, filter)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func stop(t *testing.T, c *Capture) {
	t.Helper()
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if s := c.Stats(); s.Dropped != 0 {
		t.Errorf("capture %s:%s dropped %d packets in the kernel", c.Host, c.Ifaces[0], s.Dropped)
	}
}

// alive reports whether pid is a running (not zombie) process.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
