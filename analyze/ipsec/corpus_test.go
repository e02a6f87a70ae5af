package ipsec

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vpndiag/vpndiag/analyze/analyzetest"
	"github.com/vpndiag/vpndiag/report"
)

// ikeMsg is one IKE message as tshark decodes it.
type ikeMsg struct {
	frame          int
	t              float64
	src, payload   string
	version        int
	exch           int
	ispi, msgid    string
	resp, fromInit bool
}

func tsharkIKE(t *testing.T, file string) []ikeMsg {
	var out []ikeMsg
	for _, r := range analyzetest.Tshark(t, file, "isakmp", "frame.number", "frame.time_relative", "ip.src", "isakmp.version",
		"isakmp.exchangetype", "isakmp.ispi", "isakmp.flags", "isakmp.messageid", "udp.payload") {
		fr, _ := strconv.Atoi(r[0])
		tm, _ := strconv.ParseFloat(r[1], 64)
		ver, _ := strconv.ParseUint(strings.TrimPrefix(r[3], "0x"), 16, 8)
		ex, _ := strconv.Atoi(r[4])
		fl, _ := strconv.ParseUint(strings.TrimPrefix(r[6], "0x"), 16, 8)
		out = append(out, ikeMsg{frame: fr, t: tm, src: r[2], payload: r[8], version: int(ver >> 4), exch: ex, ispi: r[5], msgid: r[7],
			resp: int(ver>>4) == 2 && fl&0x20 != 0, fromInit: fl&0x08 != 0})
	}
	return out
}

// expectedExchanges pairs requests and responses from tshark's fields,
// independently of the analyzer: per exchange name, requests (first
// transmissions), answered requests and retransmissions (a message whose
// sender and UDP payload repeat an earlier one).
func expectedExchanges(msgs []ikeMsg) map[string][3]uint64 {
	want := map[string][3]uint64{}
	seen := map[string]bool{}
	type xstate struct {
		requester string
		answered  bool
		name      string
	}
	xs := map[string]*xstate{}
	for _, m := range msgs {
		name := exNames[exKind(uint8(m.version), uint8(m.exch))]
		c := want[name]
		if seen[m.src+m.payload] {
			c[2]++
			want[name] = c
			continue
		}
		seen[m.src+m.payload] = true
		if m.version == 2 {
			key := fmt.Sprint(m.ispi, m.msgid, m.fromInit != m.resp)
			x := xs[key]
			if !m.resp {
				xs[key] = &xstate{name: name}
				c[0]++
			} else if x != nil && !x.answered {
				x.answered = true
				c[1]++
			}
		} else {
			key := m.ispi + m.msgid
			x := xs[key]
			if x == nil {
				xs[key] = &xstate{requester: m.src, name: name}
				c[0]++
			} else if m.src != x.requester && !x.answered && m.exch != 5 {
				x.answered = true
				c[1]++
			}
		}
		want[name] = c
	}
	return want
}

// TestIKEExchangesMatchTshark pairs the IKE messages of three real captures
// and compares requests, answered requests and retransmissions per exchange
// type with the pairing computed from tshark's fields in the same run.
func TestIKEExchangesMatchTshark(t *testing.T) {
	for _, tc := range []struct {
		file       string
		totalMsgs  int // tshark's isakmp message count, checked so the oracle is not empty
		clean      bool
		retransmit uint64
	}{
		{"the-tcpdump-group_tcpdump/ikev2four.pcap", 21, true, 0},
		{"the-tcpdump-group_tcpdump/ISAKMP_sa_setup.pcap", 9, true, 0},
		{"the-tcpdump-group_tcpdump/isakmp4500.pcap", 15, false, 5},
	} {
		t.Run(tc.file, func(t *testing.T) {
			path := analyzetest.Corpus(t, tc.file)
			msgs := tsharkIKE(t, path)
			if len(msgs) != tc.totalMsgs {
				t.Fatalf("tshark sees %d IKE messages, want %d", len(msgs), tc.totalMsgs)
			}
			want := expectedExchanges(msgs)
			rep := analyzetest.Run(t, New(), path)
			got := map[string][3]uint64{}
			for _, row := range analyzetest.MustTable(t, rep, "ipsec-exchanges").Rows {
				got[row[1].(string)] = [3]uint64{analyzetest.Num(row[2]), analyzetest.Num(row[3]), analyzetest.Num(row[6])}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("exchanges (requests, answered, retransmitted):\n got %v\nwant %v (from tshark)", got, want)
			}
			var retrans uint64
			for _, c := range want {
				retrans += c[2]
			}
			if retrans != tc.retransmit {
				t.Errorf("tshark shows %d retransmissions, want %d", retrans, tc.retransmit)
			}
			peers := analyzetest.MustTable(t, rep, "ipsec-peers")
			if len(peers.Rows) != 1 || analyzetest.Num(peers.Rows[0][4]) != 1 || analyzetest.Num(peers.Rows[0][5]) != 0 {
				t.Errorf("peer table %v: want one peer pair with 1 completed, 0 incomplete negotiations", peers.Rows)
			}
			if tc.clean {
				analyzetest.NoWarnings(t, rep, tc.file)
				if n := len(rep.Findings); n != 0 {
					t.Errorf("%d findings on a clean capture: %+v", n, rep.Findings)
				}
			} else {
				fs := analyzetest.Findings(rep, "ipsec.ike-retransmissions")
				if len(fs) != 1 || analyzetest.Num(fs[0].Evidence["retransmissions"]) != retrans || len(fs[0].Frames) != int(retrans) {
					t.Fatalf("want one ipsec.ike-retransmissions with %d retransmissions and frames, got %+v", retrans, fs)
				}
			}
		})
	}
}

// TestNATTraversal checks NAT-T detection on isakmp4500.pcap: IKE on 4500,
// ESP in UDP, and the NAT'd peer as the sender of the NAT keepalives tshark
// shows.
func TestNATTraversal(t *testing.T) {
	path := analyzetest.Corpus(t, "the-tcpdump-group_tcpdump/isakmp4500.pcap")
	ka := analyzetest.Tshark(t, path, "udp.port == 4500 && udp.length == 9", "ip.src")
	nattIKE := analyzetest.Tshark(t, path, "isakmp && udp.port == 4500", "frame.number")
	if len(ka) == 0 || len(nattIKE) == 0 {
		t.Fatalf("tshark: %d keepalives, %d IKE messages on 4500; the capture should have both", len(ka), len(nattIKE))
	}
	rep := analyzetest.Run(t, New(), path)
	fs := analyzetest.Findings(rep, "ipsec.nat-t")
	if len(fs) != 1 {
		t.Fatalf("want one ipsec.nat-t finding, got %+v", rep.Findings)
	}
	f := fs[0]
	behind := f.Evidence["natted_peers"].([]string)
	if f.Severity != report.SeverityInfo || len(behind) != 1 || behind[0] != ka[0][0] ||
		analyzetest.Num(f.Evidence["keepalives"]) != uint64(len(ka)) || f.Evidence["ike_on_4500"] != true || f.Evidence["esp_in_udp"] != true {
		t.Errorf("nat-t finding %+v: want info, NAT'd peer %s with %d keepalives (tshark)", f, ka[0][0], len(ka))
	}
	if !strings.Contains(f.Summary, ka[0][0]+" sends NAT keepalives") {
		t.Errorf("summary %q does not name the NAT'd peer %s", f.Summary, ka[0][0])
	}
}

// espSA is tshark's view of one ESP SA.
type tsharkSA struct {
	packets, distinct uint64
	min, max          uint64
}

func tsharkESP(t *testing.T, file string) map[string]*tsharkSA {
	sas := map[string]*tsharkSA{}
	seen := map[string]bool{}
	for _, r := range analyzetest.Tshark(t, file, "esp", "ip.src", "ipv6.src", "ip.dst", "ipv6.dst", "esp.spi", "esp.sequence") {
		src, dst := r[0]+r[1], r[2]+r[3]
		spi, _ := strconv.ParseUint(strings.TrimPrefix(r[4], "0x"), 16, 32)
		seq, _ := strconv.ParseUint(r[5], 10, 64)
		k := fmt.Sprintf("%s %s 0x%08x", src, dst, spi)
		s := sas[k]
		if s == nil {
			s = &tsharkSA{min: seq, max: seq}
			sas[k] = s
		}
		s.packets++
		s.min, s.max = min(s.min, seq), max(s.max, seq)
		if !seen[k+" "+r[5]] {
			seen[k+" "+r[5]] = true
			s.distinct++
		}
	}
	return sas
}

// checkESP compares the esp-sas table with tshark: packets, sequence range,
// missing (range minus distinct numbers) and duplicates per SA.
func checkESP(t *testing.T, rep *report.Report, want map[string]*tsharkSA) (missing, dups uint64) {
	t.Helper()
	rows := analyzetest.MustTable(t, rep, "esp-sas").Rows
	if len(rows) != len(want) {
		t.Errorf("%d ESP SAs, tshark shows %d", len(rows), len(want))
	}
	for _, row := range rows {
		k := fmt.Sprintf("%s %s %s", row[0], row[1], row[2])
		w := want[k]
		if w == nil {
			t.Errorf("SA %s not in tshark's output", k)
			continue
		}
		wm, wd := w.max-w.min+1-w.distinct, w.packets-w.distinct
		missing += wm
		dups += wd
		if analyzetest.Num(row[4]) != w.packets || row[6] != fmt.Sprintf("%d-%d", w.min, w.max) || analyzetest.Num(row[7]) != wm || analyzetest.Num(row[10]) != wd {
			t.Errorf("SA %s: packets %v seq %v missing %v dups %v; tshark: %d, %d-%d, %d, %d", k, row[4], row[6], row[7], row[10],
				w.packets, w.min, w.max, wm, wd)
		}
	}
	return missing, dups
}

// TestESPMatchesTshark checks every ESP SA of five real captures (ESP,
// ESP-in-UDP, ESP over IPv6) against tshark, and that captures without
// gaps or duplicates produce no warnings.
func TestESPMatchesTshark(t *testing.T) {
	for _, tc := range []struct {
		file string
		sas  int
	}{
		{"the-tcpdump-group_tcpdump/espudp1.pcap", 1},
		{"the-tcpdump-group_tcpdump/02-sunrise-sunset-esp.pcap", 1},
		{"the-tcpdump-group_tcpdump/isakmp4500.pcap", 1},
		{"ntop_nDPI/esp.pcapng", 2},
		{"zeek_zeek/ip6_esp.pcap", 12},
	} {
		t.Run(tc.file, func(t *testing.T) {
			path := analyzetest.Corpus(t, tc.file)
			want := tsharkESP(t, path)
			if len(want) != tc.sas {
				t.Fatalf("tshark shows %d ESP SAs, want %d", len(want), tc.sas)
			}
			rep := analyzetest.Run(t, New(), path)
			missing, dups := checkESP(t, rep, want)
			if missing == 0 && dups == 0 {
				if n := len(analyzetest.Findings(rep, "ipsec.esp-gaps")) + len(analyzetest.Findings(rep, "ipsec.esp-replay")); n != 0 {
					t.Errorf("%d ESP findings on a capture tshark shows without gaps or duplicates", n)
				}
				if tc.file != "the-tcpdump-group_tcpdump/isakmp4500.pcap" { // it has real IKE retransmissions
					analyzetest.NoWarnings(t, rep, tc.file)
				}
			}
		})
	}
}

// TestESPGapsAndReplay removes frames 3 and 5 from a real ESP capture and
// appends frame 7 again: tshark then shows 2 missing sequence numbers and 1
// duplicate, and the analyzer must report exactly those.
func TestESPGapsAndReplay(t *testing.T) {
	orig := analyzetest.Corpus(t, "the-tcpdump-group_tcpdump/02-sunrise-sunset-esp.pcap")
	path := analyzetest.Concat(t, analyzetest.Editcap(t, orig, nil, "3", "5"), analyzetest.Editcap(t, orig, []string{"-r"}, "7"))
	want := tsharkESP(t, path)
	rep := analyzetest.Run(t, New(), path)
	missing, dups := checkESP(t, rep, want)
	if missing != 2 || dups != 1 {
		t.Fatalf("tshark oracle: %d missing, %d duplicates; want 2 and 1", missing, dups)
	}
	gaps := analyzetest.Findings(rep, "ipsec.esp-gaps")
	if len(gaps) != 1 || analyzetest.Num(gaps[0].Evidence["missing"]) != missing || gaps[0].Severity != report.SeverityError {
		t.Errorf("want one error ipsec.esp-gaps with %d missing (25%% loss), got %+v", missing, gaps)
	}
	if len(gaps) == 1 && (len(gaps[0].Frames) != 2 || gaps[0].Frames[0].Frame != 3 || gaps[0].Frames[1].Frame != 4) {
		t.Errorf("gap frames %v, want frames 3 and 4 (seq 4 and 6, after each hole)", gaps[0].Frames)
	}
	rp := analyzetest.Findings(rep, "ipsec.esp-replay")
	if len(rp) != 1 || analyzetest.Num(rp[0].Evidence["replays"]) != dups || rp[0].Frames[0].Frame != 7 {
		t.Errorf("want one ipsec.esp-replay with %d replays at frame 7, got %+v", dups, rp)
	}
}

// TestIKEv2AuthUnanswered keeps IKE_SA_INIT and the IKE_AUTH request of
// ikev2four.pcap (frames 1-5) plus the last frame: the AUTH request is then
// unanswered, as tshark confirms, and the negotiation never completes.
func TestIKEv2AuthUnanswered(t *testing.T) {
	path := analyzetest.Editcap(t, analyzetest.Corpus(t, "the-tcpdump-group_tcpdump/ikev2four.pcap"), []string{"-r"}, "1-5", "21")
	msgs := tsharkIKE(t, path)
	cfg := DefaultConfig()
	cfg.Grace = 10 * time.Millisecond // the capture spans 131 ms
	end := msgs[len(msgs)-1].t
	var unanswered uint64
	want := expectedExchanges(msgs)
	for _, m := range msgs {
		if m.version == 2 && !m.resp && m.t < end-cfg.Grace.Seconds() {
			answered := false
			for _, r := range msgs {
				if r.resp && r.ispi == m.ispi && r.msgid == m.msgid && r.frame > m.frame {
					answered = true
				}
			}
			if !answered {
				unanswered++
			}
		}
	}
	if unanswered != 1 || want["IKE_AUTH"][0] != 1 || want["IKE_AUTH"][1] != 0 {
		t.Fatalf("tshark oracle: %d unanswered requests, IKE_AUTH %v; want 1 and 1 request, 0 answered", unanswered, want["IKE_AUTH"])
	}
	rep := analyzetest.Run(t, NewConfig(cfg), path)
	fs := analyzetest.Findings(rep, "ipsec.negotiation-incomplete")
	if len(fs) != 1 {
		t.Fatalf("want one ipsec.negotiation-incomplete, got %+v", rep.Findings)
	}
	f := fs[0]
	if f.Severity != report.SeverityError || analyzetest.Num(f.Evidence["unanswered"]) != unanswered || analyzetest.Num(f.Evidence["incomplete"]) != 1 ||
		analyzetest.Num(f.Evidence["completed"]) != 0 || !strings.Contains(f.Summary, "IKE fragments") {
		t.Errorf("finding %+v: want error, 1 unanswered (IKE_AUTH), 1 incomplete, 0 completed, fragment hint", f)
	}
	if len(f.Frames) != 2 || f.Frames[0].Frame != 1 || f.Frames[1].Frame != 5 {
		t.Errorf("frames %v, want 1 (the set-up) and 5 (the unanswered IKE_AUTH)", f.Frames)
	}
}

// TestIKEv1Unanswered sends the first main mode message of
// ISAKMP_sa_setup.pcap four times (at 0, 4, 12 and 30 s, as a retrying
// initiator would) and never an answer.
func TestIKEv1Unanswered(t *testing.T) {
	one := analyzetest.Editcap(t, analyzetest.Corpus(t, "the-tcpdump-group_tcpdump/ISAKMP_sa_setup.pcap"), []string{"-r"}, "1")
	path := analyzetest.Concat(t, one, analyzetest.Editcap(t, one, []string{"-t", "4"}), analyzetest.Editcap(t, one, []string{"-t", "12"}), analyzetest.Editcap(t, one, []string{"-t", "30"}))
	msgs := tsharkIKE(t, path)
	want := expectedExchanges(msgs)
	if len(msgs) != 4 || want["Main Mode"] != [3]uint64{1, 0, 3} {
		t.Fatalf("tshark oracle: %d messages, main mode %v; want 4 and [1 0 3]", len(msgs), want["Main Mode"])
	}
	rep := analyzetest.Run(t, New(), path)
	fs := analyzetest.Findings(rep, "ipsec.negotiation-incomplete")
	if len(fs) != 1 || fs[0].Severity != report.SeverityError || analyzetest.Num(fs[0].Evidence["retransmissions"]) != want["Main Mode"][2] ||
		analyzetest.Num(fs[0].Evidence["unanswered"]) != 1 || analyzetest.Num(fs[0].Evidence["incomplete"]) != 1 {
		t.Fatalf("want one error ipsec.negotiation-incomplete with 3 retransmissions, 1 unanswered, 1 incomplete; got %+v", rep.Findings)
	}
	if n := len(analyzetest.Findings(rep, "ipsec.ike-retransmissions")); n != 0 {
		t.Errorf("retransmissions of an unanswered negotiation are reported once, in negotiation-incomplete; got %d extra", n)
	}
}
