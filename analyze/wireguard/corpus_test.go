package wireguard

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/vpndiag/vpndiag/analyze/analyzetest"
	"github.com/vpndiag/vpndiag/report"
)

// tsharkSession is tshark's view of one receiver index.
type tsharkSession struct {
	packets, distinct, keepalives uint64
	min, max                      uint64
}

// wgOracle is what tshark shows of a capture's WireGuard traffic.
type wgOracle struct {
	sessions              map[string]*tsharkSession
	initiations, answered uint64
	missing, dups         uint64
	unansweredInitFrames  []string
}

func oracle(t *testing.T, file string) wgOracle {
	o := wgOracle{sessions: map[string]*tsharkSession{}}
	seen := map[string]bool{}
	inits := map[string]string{} // sender -> frame
	answered := map[string]bool{}
	for _, r := range analyzetest.Tshark(t, file, "wg", "frame.number", "wg.type", "wg.sender", "wg.receiver", "wg.counter", "udp.length") {
		typ, _ := strconv.Atoi(r[1])
		switch typ {
		case 1:
			o.initiations++
			inits[r[2]] = r[0]
		case 2:
			if _, ok := inits[r[3]]; ok && !answered[r[3]] {
				answered[r[3]] = true
				o.answered++
			}
		case 4:
			c, _ := strconv.ParseUint(r[4], 10, 64)
			s := o.sessions[r[3]]
			if s == nil {
				s = &tsharkSession{min: c, max: c}
				o.sessions[r[3]] = s
			}
			s.packets++
			s.min, s.max = min(s.min, c), max(s.max, c)
			if !seen[r[3]+" "+r[4]] {
				seen[r[3]+" "+r[4]] = true
				s.distinct++
			}
			if r[5] == "40" { // UDP header + 32-byte empty transport message
				s.keepalives++
			}
		}
	}
	for sender, frame := range inits {
		if !answered[sender] {
			o.unansweredInitFrames = append(o.unansweredInitFrames, frame)
		}
	}
	for _, s := range o.sessions {
		o.missing += s.max - s.min + 1 - s.distinct
		o.dups += s.packets - s.distinct
	}
	return o
}

// checkSessions compares the wireguard-sessions table with tshark per
// receiver index: packets, counter range, missing, duplicates, keepalives.
func checkSessions(t *testing.T, rep *report.Report, o wgOracle) {
	t.Helper()
	rows := analyzetest.MustTable(t, rep, "wireguard-sessions").Rows
	if len(rows) != len(o.sessions) {
		t.Errorf("%d sessions, tshark shows %d", len(rows), len(o.sessions))
	}
	for _, row := range rows {
		w := o.sessions[row[0].(string)]
		if w == nil {
			t.Errorf("session %v not in tshark's output", row[0])
			continue
		}
		if analyzetest.Num(row[3]) != w.packets || row[4] != fmt.Sprintf("%d-%d", w.min, w.max) || analyzetest.Num(row[5]) != w.max-w.min+1-w.distinct ||
			analyzetest.Num(row[8]) != w.packets-w.distinct || analyzetest.Num(row[9]) != w.keepalives {
			t.Errorf("session %v: packets %v counters %v missing %v dups %v keepalives %v; tshark: %d %d-%d %d %d %d", row[0], row[3], row[4], row[5], row[8], row[9],
				w.packets, w.min, w.max, w.max-w.min+1-w.distinct, w.packets-w.distinct, w.keepalives)
		}
	}
}

// TestCorpusMatchesTshark checks handshakes, sessions, counters and
// keepalives of two real WireGuard captures against tshark, and that these
// clean captures produce no findings at all.
func TestCorpusMatchesTshark(t *testing.T) {
	for _, tc := range []struct {
		file     string
		sessions int
		inits    uint64
	}{
		{"ntop_nDPI/wireguard.pcap", 6, 2},
		{"corelight_zeek-spicy-wireguard/wireguard.pcap", 2, 1},
	} {
		t.Run(tc.file, func(t *testing.T) {
			path := analyzetest.Corpus(t, tc.file)
			o := oracle(t, path)
			if len(o.sessions) != tc.sessions || o.initiations != tc.inits || o.answered != tc.inits || o.missing != 0 {
				t.Fatalf("tshark oracle: %d sessions, %d initiations, %d answered, %d missing; want %d, %d, %d, 0",
					len(o.sessions), o.initiations, o.answered, o.missing, tc.sessions, tc.inits, tc.inits)
			}
			rep := analyzetest.Run(t, New(), path)
			checkSessions(t, rep, o)
			var inits, hs uint64
			for _, row := range analyzetest.MustTable(t, rep, "wireguard-peers").Rows {
				inits += analyzetest.Num(row[1])
				hs += analyzetest.Num(row[3])
			}
			if inits != o.initiations || hs != o.answered {
				t.Errorf("initiations %d, handshakes %d; tshark: %d and %d", inits, hs, o.initiations, o.answered)
			}
			if len(rep.Findings) != 0 {
				t.Errorf("findings on a clean capture: %+v", rep.Findings)
			}
		})
	}
}

// TestCounterGaps removes four transport messages (frames 20-22 and 30) of
// one session from the corelight capture: tshark then shows the missing
// counters, and the analyzer reports exactly as many.
func TestCounterGaps(t *testing.T) {
	path := analyzetest.Editcap(t, analyzetest.Corpus(t, "corelight_zeek-spicy-wireguard/wireguard.pcap"), nil, "20-22", "30")
	o := oracle(t, path)
	if o.missing != 4 || o.dups != 0 {
		t.Fatalf("tshark oracle: %d missing, %d duplicates; want 4 and 0", o.missing, o.dups)
	}
	rep := analyzetest.Run(t, New(), path)
	checkSessions(t, rep, o)
	fs := analyzetest.Findings(rep, "wireguard.counter-gaps")
	var missing uint64
	for _, f := range fs {
		missing += analyzetest.Num(f.Evidence["missing"])
		if f.Severity != report.SeverityWarning || len(f.Frames) == 0 {
			t.Errorf("finding %+v: want a warning (loss under 5%%) with frames", f)
		}
	}
	if missing != o.missing {
		t.Errorf("findings report %d missing counters, tshark shows %d: %+v", missing, o.missing, fs)
	}
}

// TestHandshakeUnanswered removes the handshake response (frame 4) from the
// corelight capture: the initiation is then unanswered for 36 s, which
// tshark confirms.
func TestHandshakeUnanswered(t *testing.T) {
	path := analyzetest.Editcap(t, analyzetest.Corpus(t, "corelight_zeek-spicy-wireguard/wireguard.pcap"), nil, "4")
	o := oracle(t, path)
	if o.initiations != 1 || o.answered != 0 || len(o.unansweredInitFrames) != 1 {
		t.Fatalf("tshark oracle: %d initiations, %d answered; want 1 and 0", o.initiations, o.answered)
	}
	rep := analyzetest.Run(t, New(), path)
	fs := analyzetest.Findings(rep, "wireguard.handshake-unanswered")
	if len(fs) != 1 || analyzetest.Num(fs[0].Evidence["unanswered"]) != 1 || fs[0].Severity != report.SeverityWarning ||
		len(fs[0].Frames) != 1 || strconv.FormatUint(fs[0].Frames[0].Frame, 10) != o.unansweredInitFrames[0] {
		t.Fatalf("want one warning with 1 unanswered initiation at frame %v, got %+v", o.unansweredInitFrames, fs)
	}
	if !strings.Contains(fs[0].Summary, "no handshake completed") {
		t.Errorf("summary %q", fs[0].Summary)
	}
}
