package dns

import (
	"errors"
	"io"
	"net/netip"
	"testing"

	"github.com/vpndiag/vpndiag/analyze/analyzetest"
	"github.com/vpndiag/vpndiag/analyze/decode"
	"github.com/vpndiag/vpndiag/capture"
)

func TestParse(t *testing.T) {
	q := msg(0x1234, false, 0, false, "WWW.Example.COM", 28)
	ans := msg(0x1234, true, 0, false, "www.example.com", 28, web6)
	cases := []struct {
		name  string
		b     []byte
		ok    bool
		resp  bool
		qtype uint16
	}{
		{"query", q, true, false, 28},
		{"answer", ans, true, true, 28},
		{"short", q[:11], false, false, 0},
		{"cut-name", q[:16], false, false, 0},
		{"no-type", q[:len(q)-3], false, false, 0},
		{"two-questions", func() []byte { b := append([]byte{}, q...); b[5] = 2; return b }(), false, false, 0},
		{"opcode-update", func() []byte { b := append([]byte{}, q...); b[2] |= 0x28; return b }(), false, false, 0},
		{"pointer-loop", append(append([]byte{}, q[:12]...), 0xc0, 12, 0, 1, 0, 1), false, false, 0},
		{"bad-label", append(append([]byte{}, q[:12]...), 0x80, 0, 0, 1, 0, 1), false, false, 0},
	}
	for _, c := range cases {
		var m message
		ok := parse(c.b, &m)
		if ok != c.ok || (ok && (m.response() != c.resp || m.qtype != c.qtype || m.id != 0x1234)) {
			t.Errorf("%s: ok %v resp %v type %d", c.name, ok, m.response(), m.qtype)
		}
	}
	var m1, m2 message
	parse(q, &m1)
	parse(ans, &m2)
	if m1.qhash != m2.qhash {
		t.Error("question hash is case-sensitive")
	}
	if got := string(nameText(nil, q, 12)); got != "www.example.com." {
		t.Errorf("name %q", got)
	}
	var out [8]netip.Addr
	if n := aaaaAnswers(ans, &m2, out[:]); n != 1 || out[0] != web6 {
		t.Errorf("aaaa %d %v", n, out[0])
	}
	if n := aaaaAnswers(ans[:len(ans)-1], &m2, out[:]); n != 0 {
		t.Errorf("cut answer gave %d records", n)
	}
	for a, want := range map[string]bool{"2a03:2880::1": true, "fd00::1": false, "2001:db8::1": false, "fe80::1": false,
		"2001:2::1": false, "::ffff:1.2.3.4": false, "1.2.3.4": false, "3fff::1": true, "ff02::1": false} {
		if globalV6(netip.MustParseAddr(a)) != want {
			t.Errorf("globalV6(%s) != %v", a, want)
		}
	}
}

// FuzzParse feeds arbitrary bytes, seeded with the DNS payloads of the
// corpus, to the parser and the answer walker: they must never panic nor
// read past the input.
func FuzzParse(f *testing.F) {
	for _, file := range []string{"ntop_nDPI/dns_fragmented.pcap", "ntop_nDPI/vxlan.pcap", "zeek_zeek/smtp.pcap"} {
		src, err := capture.Open(analyzetest.Corpus(f, file))
		if err != nil {
			f.Fatal(err)
		}
		var fr capture.Frame
		var dec decode.Decoder
		var rec decode.Record
		for {
			if err := src.Next(&fr); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				f.Fatal(err)
			}
			dec.Decode(decode.LinkType(fr.LinkType), fr.Data, &rec)
			if l := rec.Inner(); l != nil && (l.L4.SrcPort == 53 || l.L4.DstPort == 53) && len(l.L4.Payload) > 0 {
				f.Add(append([]byte(nil), l.L4.Payload...))
			}
		}
		src.Close()
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var m message
		if parse(b, &m) {
			var out [8]netip.Addr
			aaaaAnswers(b, &m, out[:])
			if n := nameText(nil, b, m.nameOff); len(n) > 256 {
				t.Fatalf("name of %d bytes", len(n))
			}
		}
		a := New()
		var rec decode.Record
		rec.NumLevels = 1
		rec.Levels[0].IP = decode.IP{Version: 4, Proto: 6}
		rec.Levels[0].L4 = decode.Transport{Proto: 6, SrcPort: 53, DstPort: 999, Payload: b, PayloadLen: len(b)}
		a.Packet(&rec)
		rec.Levels[0].L4.Proto = 17
		a.Packet(&rec)
	})
}
