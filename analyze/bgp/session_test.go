package bgp

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/vpndiag/vpndiag/analyze/analyzetest"
)

type seenMsg struct {
	frame uint64
	typ   uint8
	from  netip.Addr
	m     *Message
}

func trackFile(t *testing.T, path string) (*Tracker, []seenMsg) {
	t.Helper()
	segs, end := readTCP(t, path)
	tr := NewTracker()
	var msgs []seenMsg
	tr.OnMessage = func(p *Pair, from netip.Addr, raw *RawMessage, m *Message, err error) {
		if err != nil {
			t.Errorf("frame %v: %v", raw.Frames, err)
			return
		}
		msgs = append(msgs, seenMsg{frame: raw.Frames[len(raw.Frames)-1], typ: m.Type, from: from, m: m})
	}
	for i := range segs {
		if segs[i].Src.Port() == 179 || segs[i].Dst.Port() == 179 {
			tr.Segment(&segs[i])
		}
	}
	tr.End = end
	tr.Finish()
	return tr, msgs
}

// tsharkBGP runs tshark on the capture: one row per frame with BGP, with the
// message types, announced and withdrawn prefixes, AS path numbers and next hop.
func tsharkBGP(t *testing.T, path string) [][]string {
	t.Helper()
	return analyzetest.Tshark(t, path, "bgp", "frame.number", "bgp.type", "bgp.nlri_prefix", "bgp.withdrawn_prefix",
		"bgp.update.path_attribute.as_path_segment.as2", "bgp.update.path_attribute.as_path_segment.as4",
		"bgp.update.path_attribute.next_hop", "bgp.open.myas", "bgp.notify.major_error")
}

func joinPrefixes(ps []Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.Prefix.Addr().String()
	}
	return strings.Join(s, ",")
}

// TestBGPCaptureMatchesTshark reassembles the BGP sessions of a real capture
// (4 sessions, 2-byte and 4-byte AS sessions, AS4_PATH, add-path capability,
// a NOTIFICATION and TCP resets) and compares every message with tshark.
func TestBGPCaptureMatchesTshark(t *testing.T) {
	path := analyzetest.Corpus(t, "the-tcpdump-group_tcpdump/bgp-4byte-asn.pcap")
	tr, msgs := trackFile(t, path)
	rows := tsharkBGP(t, path)
	byFrame := map[uint64][]seenMsg{}
	for _, m := range msgs {
		byFrame[m.frame] = append(byFrame[m.frame], m)
	}
	if len(byFrame) != len(rows) {
		t.Errorf("frames with BGP: got %d, tshark %d", len(byFrame), len(rows))
	}
	var updates, nlri, withdrawn int
	for _, r := range rows {
		var frame uint64
		fmt.Sscan(r[0], &frame)
		got := byFrame[frame]
		var types []string
		var ann, wd []string
		var as4, nh string
		for _, m := range got {
			types = append(types, fmt.Sprint(m.typ))
			if u := m.m.Update; u != nil {
				updates++
				nlri += len(u.Announced)
				withdrawn += len(u.Withdrawn)
				if s := joinPrefixes(u.Announced); s != "" {
					ann = append(ann, s)
				}
				if s := joinPrefixes(u.Withdrawn); s != "" {
					wd = append(wd, s)
				}
				as4 = strings.ReplaceAll(u.ASPathText, " ", ",")
				if u.NextHop.IsValid() {
					nh = u.NextHop.String()
				}
			}
		}
		if strings.Join(types, ",") != r[1] {
			t.Errorf("frame %d: types %v, tshark %s", frame, types, r[1])
		}
		if strings.Join(ann, ",") != r[2] || strings.Join(wd, ",") != r[3] {
			t.Errorf("frame %d: announced %v withdrawn %v, tshark %q %q", frame, ann, wd, r[2], r[3])
		}
		// tshark lists AS_PATH numbers (2-byte session: as2) and AS4_PATH
		// numbers (as4); the real path (RFC 6793) is the as2 numbers that
		// AS4_PATH does not cover, then AS4_PATH.
		if r[4] != "" || r[5] != "" {
			want := r[5]
			if r[4] != "" {
				as2 := strings.Split(r[4], ",")
				n4 := 0
				if r[5] != "" {
					n4 = len(strings.Split(r[5], ","))
				}
				want = strings.Join(append(as2[:len(as2)-n4:len(as2)-n4], strings.Split(r[5], ",")...), ",")
				want = strings.TrimSuffix(want, ",")
			}
			if as4 != want {
				t.Errorf("frame %d: AS path %s, tshark as2=%s as4=%s (want %s)", frame, as4, r[4], r[5], want)
			}
		}
		if nh != r[6] {
			t.Errorf("frame %d: next hop %s, tshark %s", frame, nh, r[6])
		}
	}
	// Numbers from tshark / tcpdump's bgp-4byte-asn.out.
	if updates != 10 || nlri != 35 || withdrawn != 15 {
		t.Errorf("updates %d, announced %d, withdrawn %d; want 10, 35, 15", updates, nlri, withdrawn)
	}
	pairs := tr.Pairs()
	if len(pairs) != 4 {
		t.Fatalf("%d peer pairs, want 4", len(pairs))
	}
	summary := map[string]string{}
	for _, p := range pairs {
		summary[p.A.String()] = fmt.Sprintf("est=%d down=%d failed=%d conns=%d", p.Established, p.Downs, p.Failed, p.Connections)
		for _, e := range p.Events {
			t.Logf("%s-%s frame %d %s %s: %s", p.A, p.B, e.At.Frame, e.Kind, e.From, e.Detail)
		}
	}
	want := map[string]string{
		"1.0.2.1": "est=1 down=0 failed=0 conns=1",
		"1.0.3.1": "est=1 down=0 failed=1 conns=2", // a second connection reset by 1.0.3.1
		"1.0.4.1": "est=1 down=0 failed=1 conns=2",
		"1.0.0.1": "est=1 down=1 failed=0 conns=1", // NOTIFICATION cease, then FIN
	}
	for k, v := range want {
		if summary[k] != v {
			t.Errorf("pair %s: %s, want %s", k, summary[k], v)
		}
	}
	// The 4-byte AS from the capability (tcpdump: "4 Byte AS 2764334674").
	p := pairs[0]
	if sp := p.Speaker(netip.MustParseAddr("1.0.2.2")); sp == nil || sp.AS != 2764334674 || sp.HoldTime != 180 ||
		sp.Open.AddPath["ipv4-unicast"] != "receive" {
		t.Errorf("1.0.2.2 OPEN: %+v", sp)
	}
}
