package ipsec

import (
	"net/netip"
	"testing"
	"time"

	"github.com/vpndiag/vpndiag/analyze"
	"github.com/vpndiag/vpndiag/analyze/analyzetest"
	"github.com/vpndiag/vpndiag/analyze/decode"
	"github.com/vpndiag/vpndiag/report"
)

var (
	peerA = netip.MustParseAddr("198.18.0.1")
	peerB = netip.MustParseAddr("198.18.0.2")
	t0    = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano()
)

// ikeRec fills rec with an IKEv2 message from src to dst.
func ikeRec(rec *decode.Record, frame uint64, at time.Duration, src, dst netip.Addr, exch, flags uint8, ispi, rspi uint64, msgID uint32, payload []byte) {
	*rec = decode.Record{Frame: frame, Time: t0 + int64(at), NumLevels: 1, WireLen: 100}
	l := &rec.Levels[0]
	l.IP = decode.IP{Version: 4, Proto: 17, Src: src, Dst: dst}
	l.L4 = decode.Transport{Proto: 17, SrcPort: 500, DstPort: 500, Payload: payload, PayloadLen: len(payload)}
	rec.IKE = decode.IKE{Valid: true, Version: 2, Exchange: exch, Flags: flags, InitiatorSPI: ispi, ResponderSPI: rspi, MessageID: msgID}
}

// espRec fills rec with an ESP packet.
func espRec(rec *decode.Record, frame uint64, at time.Duration, src, dst netip.Addr, spi, seq uint32) {
	*rec = decode.Record{Frame: frame, Time: t0 + int64(at), NumLevels: 1, NumTunnel: 1, WireLen: 100}
	rec.Levels[0].IP = decode.IP{Version: 4, Proto: 50, Src: src, Dst: dst}
	rec.Tunnels[0] = decode.Tunnel{Kind: decode.TunnelESP, ID: spi, Seq: seq}
}

// negotiate runs one complete IKEv2 set-up (SA_INIT and AUTH) at time at.
func negotiate(a analyze.Analyzer, frame *uint64, at time.Duration, ispi uint64) {
	var rec decode.Record
	p := []byte{byte(ispi), 1}
	steps := []struct {
		src, dst netip.Addr
		exch     uint8
		flags    uint8
		rspi     uint64
		id       uint32
	}{{peerA, peerB, 34, 0x08, 0, 0}, {peerB, peerA, 34, 0x20, 7, 0}, {peerA, peerB, 35, 0x08, 7, 1}, {peerB, peerA, 35, 0x20, 7, 1}}
	for i, s := range steps {
		*frame++
		p[1] = byte(i)
		ikeRec(&rec, *frame, at+time.Duration(i)*time.Millisecond, s.src, s.dst, s.exch, s.flags, ispi, s.rspi, s.id, p)
		a.Packet(&rec)
	}
}

func runSynthetic(a *Analyzer) *report.Report {
	rep := report.New("analyze", "test", time.Now())
	a.Finish(rep, []analyze.InputInfo{{Name: "synthetic.pcap"}})
	return rep
}

// TestChurn: four complete IKE SA set-ups two minutes apart, each followed
// by a new ESP SPI, are flapping; the same four set-ups two hours apart are
// not.
func TestChurn(t *testing.T) {
	for _, tc := range []struct {
		every time.Duration
		churn bool
	}{{2 * time.Minute, true}, {2 * time.Hour, false}} {
		a := New()
		var frame uint64
		var rec decode.Record
		for i := 0; i < 4; i++ {
			at := time.Duration(i) * tc.every
			negotiate(a, &frame, at, uint64(100+i))
			for s := uint32(1); s <= 3; s++ {
				frame++
				espRec(&rec, frame, at+time.Second+time.Duration(s)*time.Millisecond, peerA, peerB, uint32(0xc000+i), s)
				a.Packet(&rec)
			}
		}
		rep := runSynthetic(a)
		fs := analyzetest.Findings(rep, "ipsec.sa-churn")
		if !tc.churn {
			if len(fs) != 0 {
				t.Errorf("set-ups every %s: unexpected churn %+v", tc.every, fs)
			}
			continue
		}
		if len(fs) != 1 || analyzetest.Num(fs[0].Evidence["ike_sa_setups"]) != 4 || analyzetest.Num(fs[0].Evidence["new_spis_198.18.0.1_to_198.18.0.2"]) != 3 ||
			fs[0].Evidence["ike_sa_setups_median_interval_seconds"] != 120.0 {
			t.Errorf("set-ups every %s: want churn with 4 set-ups (median 120 s) and 3 new SPIs, got %+v", tc.every, fs)
		}
		if n := len(analyzetest.Findings(rep, "ipsec.negotiation-incomplete")); n != 0 {
			t.Errorf("complete negotiations reported incomplete (%d)", n)
		}
	}
}

// TestExtendedSequenceNumbers: an ESP SA whose 32-bit sequence wraps keeps
// counting in 64 bits: one number missing across the wrap, no replay.
func TestExtendedSequenceNumbers(t *testing.T) {
	a := New()
	var rec decode.Record
	frame := uint64(0)
	for s := uint64(0xfffffff0); s < 0x100000010; s++ {
		if s == 0x100000002 {
			continue
		}
		frame++
		espRec(&rec, frame, time.Duration(frame)*time.Millisecond, peerA, peerB, 0xabc, uint32(s))
		a.Packet(&rec)
	}
	rep := runSynthetic(a)
	gaps := analyzetest.Findings(rep, "ipsec.esp-gaps")
	if len(gaps) != 1 || analyzetest.Num(gaps[0].Evidence["missing"]) != 1 || analyzetest.Num(gaps[0].Evidence["expected"]) != 32 || len(analyzetest.Findings(rep, "ipsec.esp-replay")) != 0 {
		t.Fatalf("want one gap of 1 in 32 and no replay across the wrap, got %+v", rep.Findings)
	}
}

// corpusRecords are the decoded frames of the IKE and ESP corpus captures.
func corpusRecords(t testing.TB) []decode.Record {
	var files []string
	for _, f := range []string{"the-tcpdump-group_tcpdump/ikev2four.pcap", "the-tcpdump-group_tcpdump/isakmp4500.pcap",
		"the-tcpdump-group_tcpdump/ISAKMP_sa_setup.pcap", "the-tcpdump-group_tcpdump/espudp1.pcap",
		"the-tcpdump-group_tcpdump/02-sunrise-sunset-esp.pcap", "ntop_nDPI/esp.pcapng", "zeek_zeek/ip6_esp.pcap"} {
		files = append(files, analyzetest.Corpus(t, f))
	}
	return analyzetest.Records(t, files...)
}

// TestPacketAllocs proves Packet does not allocate once the peers, SAs and
// exchanges of the traffic are known (a second pass over the same records).
func TestPacketAllocs(t *testing.T) {
	recs := corpusRecords(t)
	if n := analyzetest.PassAllocs(New(), recs, 1); n != 0 {
		t.Fatalf("Packet allocated %.1f times per pass over %d records", n, len(recs))
	}
}

// BenchmarkPacket measures the analyzer over the decoded IKE/ESP corpus.
func BenchmarkPacket(b *testing.B) {
	analyzetest.BenchPasses(b, New(), corpusRecords(b))
}
