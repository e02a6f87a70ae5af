package arp

import (
	"net/netip"
	"testing"
	"time"

	"github.com/vpndiag/vpndiag/analyze"
	"github.com/vpndiag/vpndiag/analyze/analyzetest"
	"github.com/vpndiag/vpndiag/analyze/decode"
	"github.com/vpndiag/vpndiag/report"
)

// TestCorpusAgainstTshark compares per-capture ARP counts with tshark's:
// ARP packets, replies, gratuitous ARPs (arp.isgratuitous), and for every
// requested address the requests without a reply. Only linuxsll-arp.pcap,
// where 10.1.10.100 asks for 10.1.10.1 ten times without an answer, has a
// problem (arp.unanswered, warning); the others must give no warning.
func TestCorpusAgainstTshark(t *testing.T) {
	for _, c := range []struct {
		file       string
		unanswered string // address with an arp.unanswered warning
	}{
		{"zeek_zeek/linuxsll-arp.pcap", "10.1.10.1"},
		{"corelight_zeek-spicy-wireguard/wireguard.pcap", ""},
		{"the-tcpdump-group_tcpdump/bgp-4byte-asn.pcap", ""},
		{"the-tcpdump-group_tcpdump/isakmp4500.pcap", ""},
		{"the-tcpdump-group_tcpdump/vxlan.pcap", ""},
	} {
		t.Run(c.file, func(t *testing.T) {
			file := analyzetest.Corpus(t, c.file)
			all := analyzetest.Tshark(t, file, "arp", "arp.opcode", "arp.src.proto_ipv4", "arp.dst.proto_ipv4")
			replies := len(analyzetest.Tshark(t, file, "arp.opcode==2"))
			grat := len(analyzetest.Tshark(t, file, "arp.isgratuitous"))
			// Requests per target, and whether the target ever replied.
			reqs, replied := map[string]int{}, map[string]bool{}
			for _, row := range all {
				if row[0] == "1" && row[1] != row[2] {
					reqs[row[2]]++
				}
				if row[0] == "2" {
					replied[row[1]] = true
				}
			}
			r := analyzetest.Run(t, New(), file)
			res := r.Data["arp"].(Result)
			if len(res.Inputs) != 1 || res.Inputs[0].ARP != uint64(len(all)) || res.Inputs[0].Replies != uint64(replies) ||
				res.Inputs[0].Gratuitous != uint64(grat) {
				t.Errorf("inputs %+v; tshark %d ARP, %d replies, %d gratuitous", res.Inputs, len(all), replies, grat)
			}
			for _, ad := range res.Addresses {
				want := 0
				if !replied[ad.IP] {
					want = reqs[ad.IP]
				}
				if int(ad.Unanswered+ad.Pending) != want || int(ad.Requests) != reqs[ad.IP] {
					t.Errorf("%s: %d requests, %d unanswered + %d pending; tshark %d requests, %d without reply",
						ad.IP, ad.Requests, ad.Unanswered, ad.Pending, reqs[ad.IP], want)
				}
				if len(ad.MACs) > 1 {
					t.Errorf("%s claimed by %v", ad.IP, ad.MACs)
				}
			}
			u := analyzetest.Findings(r, IDUnanswered)
			if c.unanswered == "" {
				analyzetest.NoWarnings(t, r, c.file)
				return
			}
			if len(u) != 1 || u[0].Evidence["ip"] != c.unanswered || u[0].Severity != report.SeverityWarning ||
				u[0].Evidence["gateway_like"] != true || u[0].Frames[0].Frame != 2 {
				t.Errorf("unanswered %+v", u)
			}
		})
	}
}

var (
	t0    = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	macA  = [6]byte{2, 0, 0, 0, 0, 0xa}
	macB  = [6]byte{2, 0, 0, 0, 0, 0xb}
	macC  = [6]byte{2, 0, 0, 0, 0, 0xc}
	gw    = netip.MustParseAddr("198.18.60.1")
	host  = netip.MustParseAddr("198.18.60.77")
	asker = netip.MustParseAddr("198.18.60.10")
)

type feeder struct {
	a     *Analyzer
	frame uint64
}

func (f *feeder) arp(t int64, op uint16, smac [6]byte, sip, tip netip.Addr, vlan uint16) uint64 {
	f.frame++
	rec := decode.Record{Frame: f.frame, Time: t, SrcMAC: smac}
	if vlan != 0 {
		rec.VLANs[0], rec.NumVLANs = vlan, 1
	}
	rec.ARP = decode.ARP{Valid: true, Op: op, SenderMAC: smac, SenderIP: sip, TargetIP: tip}
	f.a.Packet(&rec)
	return f.frame
}

func finish(a *Analyzer) *report.Report {
	r := report.New("analyze", "test", time.Now())
	a.Finish(r, []analyze.InputInfo{{Name: "lan.pcap"}})
	return r
}

func sec(s float64) int64 { return t0 + int64(s*float64(time.Second)) }

// TestScenarios drives the analyzer with synthetic ARP and checks each
// finding's severity, numbers and frames.
func TestScenarios(t *testing.T) {
	t.Run("duplicate-gateway", func(t *testing.T) {
		f := &feeder{a: New()}
		for i := 0; i < 3; i++ {
			f.arp(sec(float64(10*i)), 1, macC, asker, gw, 0)
			f.arp(sec(float64(10*i)+0.001), 2, macA, gw, asker, 0)
			f.arp(sec(float64(10*i)+0.002), 2, macB, gw, asker, 0)
		}
		r := finish(f.a)
		d := analyzetest.Findings(r, IDDuplicateIP)
		if len(d) != 1 || d[0].Severity != report.SeverityError || d[0].Evidence["concurrent_claims"] != uint32(3) ||
			len(d[0].Evidence["macs"].([]string)) != 2 || d[0].Frames[0].Frame != 2 || d[0].Frames[1].Frame != 3 {
			t.Fatalf("duplicate %+v", d)
		}
		if len(analyzetest.Findings(r, IDMACFlap)) != 0 {
			t.Error("a duplicate is not also reported as a flap")
		}
	})
	t.Run("duplicate-host", func(t *testing.T) {
		f := &feeder{a: New()}
		f.arp(sec(0), 2, macA, host, asker, 0)
		f.arp(sec(0.5), 2, macB, host, asker, 0)
		if d := analyzetest.Findings(finish(f.a), IDDuplicateIP); len(d) != 1 || d[0].Severity != report.SeverityWarning {
			t.Fatalf("duplicate %+v", d)
		}
	})
	t.Run("flap", func(t *testing.T) {
		f := &feeder{a: New()}
		for i, m := range [][6]byte{macA, macB, macA, macB} {
			f.arp(sec(float64(5*i)), 1, m, host, asker, 0) // gratuitous-free claims 5 s apart
		}
		r := finish(f.a)
		fl := analyzetest.Findings(r, IDMACFlap)
		if len(fl) != 1 || fl[0].Severity != report.SeverityWarning || fl[0].Evidence["mac_changes"] != uint32(3) ||
			fl[0].Frames[0].Frame != 2 || len(analyzetest.Findings(r, IDDuplicateIP)) != 0 {
			t.Fatalf("flap %+v", r.Findings)
		}
	})
	t.Run("failover", func(t *testing.T) {
		f := &feeder{a: New()}
		f.arp(sec(0), 2, macA, gw, asker, 0)
		f.arp(sec(30), 1, macB, gw, gw, 0) // new master announces itself
		fl := analyzetest.Findings(finish(f.a), IDMACFlap)
		if len(fl) != 1 || fl[0].Severity != report.SeverityInfo {
			t.Fatalf("failover %+v", fl)
		}
	})
	t.Run("vlans", func(t *testing.T) {
		f := &feeder{a: New()}
		f.arp(sec(0), 2, macA, gw, asker, 10)
		f.arp(sec(0.1), 2, macB, gw, asker, 20)
		r := finish(f.a)
		if len(r.Findings) != 0 {
			t.Fatalf("same address in two VLANs: %+v", r.Findings)
		}
		if res := r.Data["arp"].(Result); len(res.Addresses) != 2 || res.Addresses[1].Domain != "vlan 20" {
			t.Errorf("addresses %+v", res.Addresses)
		}
	})
	t.Run("storm", func(t *testing.T) {
		for _, c := range []struct {
			n, perSec int
			want      bool
		}{{40, 40, true}, {40, 10, false}, {19, 100, false}} {
			f := &feeder{a: New()}
			for i := 0; i < c.n; i++ {
				f.arp(t0+int64(i)*int64(time.Second)/int64(c.perSec), 1, macA, host, host, 0)
			}
			r := finish(f.a)
			s := analyzetest.Findings(r, IDGratuitousStorm)
			if got := len(s) == 1; got != c.want {
				t.Errorf("%d at %d/s: storm %v, want %v (%+v)", c.n, c.perSec, got, c.want, r.Findings)
			}
			if c.want && (s[0].Evidence["gratuitous"] != uint64(c.n) || s[0].Frames[0].Frame != StormCount) {
				t.Errorf("storm %+v", s[0])
			}
		}
	})
	t.Run("unanswered", func(t *testing.T) {
		f := &feeder{a: New()}
		for i := 0; i < 5; i++ {
			f.arp(sec(float64(i)*1.02), 1, macC, asker, host, 0)
		}
		f.arp(sec(10), 1, macC, asker, gw, 0) // answered
		f.arp(sec(10.001), 2, macA, gw, asker, 0)
		f.arp(sec(10.002), 1, macC, asker, netip.MustParseAddr("0.0.0.0"), 0)
		f.arp(sec(12), 1, macC, netip.MustParseAddr("0.0.0.0"), host, 0) // probe: ignored
		r := finish(f.a)
		u := analyzetest.Findings(r, IDUnanswered)
		if len(u) != 1 || u[0].Evidence["ip"] != host.String() || u[0].Evidence["unanswered"] != uint32(5) || u[0].Frames[0].Frame != 1 {
			t.Fatalf("unanswered %+v", r.Findings)
		}
	})
}

// TestPacketAllocs proves ARP about known addresses, and other packets,
// allocate nothing.
func TestPacketAllocs(t *testing.T) {
	if avg := analyzetest.PacketAllocs(New(), analyzetest.BenchRecords(t)); avg != 0 {
		t.Errorf("Packet allocates %.2f times per packet in steady state", avg)
	}
}

// BenchmarkPacket measures the analyzer over the decoded corpus mix.
func BenchmarkPacket(b *testing.B) {
	analyzetest.BenchPackets(b, New(), analyzetest.BenchRecords(b))
}
