package bgp

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/vpndiag/vpndiag/analyze/analyzetest"
)

// bgpdumpLines renders BGP4MP records the way `bgpdump -m` does (the fields
// the golden file has: type, time, A/W/STATE, peer, peer AS, prefix, AS path,
// origin, next hop).
func bgpdumpLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mr, err := NewMRTReader(f, path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	var rec MRTRecord
	for {
		err := mr.Next(&rec)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("record %d: %v", rec.Index, err)
		}
		ts := rec.Time.Unix()
		switch {
		case rec.State != nil:
			out = append(out, fmt.Sprintf("BGP4MP|%d|STATE|%s|%d|%d|%d", ts, rec.Peer.Addr, rec.Peer.AS, rec.State[0], rec.State[1]))
		case rec.Message != nil && rec.Message.Update != nil:
			u := rec.Message.Update
			for _, w := range u.Withdrawn {
				out = append(out, fmt.Sprintf("BGP4MP|%d|W|%s|%d|%s", ts, rec.Peer.Addr, rec.Peer.AS, w.Prefix))
			}
			for _, a := range u.Announced {
				out = append(out, fmt.Sprintf("BGP4MP|%d|A|%s|%d|%s|%s|%s|%s", ts, rec.Peer.Addr, rec.Peer.AS, a.Prefix, u.ASPathText, u.Origin, u.NextHop))
			}
		}
	}
	return out
}

func goldenLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	sc := bufio.NewScanner(zr)
	for sc.Scan() {
		fs := strings.Split(sc.Text(), "|")
		switch fs[2] {
		case "A":
			out = append(out, strings.Join(fs[:9], "|"))
		default:
			out = append(out, sc.Text())
		}
	}
	return out
}

// TestMRTMatchesBgpdump compares every announcement, withdrawal and state
// change of a real RIS updates file with bgpdump's own golden output.
func TestMRTMatchesBgpdump(t *testing.T) {
	got := bgpdumpLines(t, analyzetest.Corpus(t, "RIPE-NCC_bgpdump/updates.20020722.2238.gz"))
	want := goldenLines(t, analyzetest.Corpus(t, "RIPE-NCC_bgpdump/updates.20020722.2238.gz.bgp.gz"))
	count := func(lines []string, kind string) int {
		n := 0
		for _, l := range lines {
			if strings.Split(l, "|")[2] == kind {
				n++
			}
		}
		return n
	}
	for _, c := range []struct {
		kind string
		n    int
	}{{"A", 825}, {"W", 2419}, {"STATE", 93}} {
		if g, w := count(got, c.kind), count(want, c.kind); g != c.n || w != c.n {
			t.Errorf("%s lines: got %d, bgpdump %d, want %d", c.kind, g, w, c.n)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("got %d lines, bgpdump has %d", len(got), len(want))
	}
	diffs := 0
	for i := range want {
		if got[i] != want[i] {
			if diffs < 5 {
				t.Errorf("line %d:\n got %s\nwant %s", i+1, got[i], want[i])
			}
			diffs++
		}
	}
	if diffs > 0 {
		t.Errorf("%d of %d lines differ from bgpdump", diffs, len(want))
	}
}

// TestMRTPerPeer checks the per-peer aggregation against counts taken from
// bgpdump's output.
func TestMRTPerPeer(t *testing.T) {
	d, err := ReadMRT(context.Background(), analyzetest.Corpus(t, "RIPE-NCC_bgpdump/updates.20020722.2238.gz"))
	if err != nil {
		t.Fatal(err)
	}
	// 1121 MRT records yield bgpdump's 3337 lines.
	if d.Records != 1121 || d.Bad != 0 {
		t.Errorf("records %d bad %d, want 1121 and 0", d.Records, d.Bad)
	}
	// Lines per peer in the golden file (A+W+STATE).
	want := map[string]uint64{"193.203.0.1": 937, "193.203.0.81": 1974, "193.203.0.6": 333, "193.203.0.4": 28}
	for _, pr := range d.Peers {
		if w, ok := want[pr.Peer.Addr.String()]; ok {
			if got := pr.Announcements + pr.Withdrawals + pr.States; got != w {
				t.Errorf("peer %s: %d announcements+withdrawals+states, bgpdump has %d", pr.Peer.Addr, got, w)
			}
			delete(want, pr.Peer.Addr.String())
		}
	}
	if len(want) > 0 {
		t.Errorf("peers missing: %v", want)
	}
	p := d.byAddr[netip.MustParseAddr("193.203.0.1")]
	r := p.Routes[netip.MustParsePrefix("65.209.117.0/24")]
	// bgpdump: announced 4 times, last with 1853 1239 16631 174 22024.
	if r == nil || r.ASPath != "1853 1239 16631 174 22024" || r.Announced != 4 || r.First.Frame == 0 || r.First == r.Last {
		t.Errorf("65.209.117.0/24 from 193.203.0.1: %+v", r)
	}
}

// TestMRTTableDumpV2 reads a BIRD TABLE_DUMP_V2 RIB that holds a default route.
func TestMRTTableDumpV2(t *testing.T) {
	d, err := ReadMRT(context.Background(), analyzetest.Corpus(t, "t2mune_mrtparse/bird-mrtdump_rib"))
	if err != nil {
		t.Fatal(err)
	}
	var defaults, entries int
	for _, pr := range d.Peers {
		entries += int(pr.RIBEntries)
		for p := range pr.Routes {
			if p.Bits() == 0 {
				defaults++
				t.Logf("default route %s from peer %s AS %d path %q", p, pr.Peer.Addr, pr.Peer.AS, pr.Routes[p].ASPath)
			}
		}
	}
	t.Logf("%d records, %d peers, %d RIB entries", d.Records, len(d.Peers), entries)
	if defaults != 1 || d.Records != 14 || len(d.Peers) != 2 || entries != 18 {
		t.Errorf("got %d default routes, %d records, %d peers, %d RIB entries; want 1, 14, 2, 18",
			defaults, d.Records, len(d.Peers), entries)
	}
}

// TestMRTQuaggaBGP4MP reads Quagga BGP4MP messages with 4-byte AS numbers.
func TestMRTQuaggaBGP4MP(t *testing.T) {
	d, err := ReadMRT(context.Background(), analyzetest.Corpus(t, "t2mune_mrtparse/quagga_bgp"))
	if err != nil {
		t.Fatal(err)
	}
	var ann, wd uint64
	for _, pr := range d.Peers {
		ann += pr.Announcements
		wd += pr.Withdrawals
		t.Logf("peer %s AS %d: %d announced, %d withdrawn, %d states", pr.Peer.Addr, pr.Peer.AS, pr.Announcements, pr.Withdrawals, pr.States)
	}
	t.Logf("%d records, messages %v", d.Records, d.Messages)
	// 12 IPv4 prefixes from 192.168.0.10 and 6 IPv6 (MP_REACH) from fd02::10.
	if d.Records != 67 || ann != 18 || d.Messages[MsgUpdate] != 24 || d.Messages[MsgOpen] != 4 {
		t.Errorf("records %d announcements %d messages %v", d.Records, ann, d.Messages)
	}
	v6 := d.byAddr[netip.MustParseAddr("fd02::10")]
	if v6 == nil || v6.Announcements != 6 || v6.Peer.AS != 65000 {
		t.Errorf("fd02::10: %+v", v6)
	}
}

// TestMRTDamaged truncates and corrupts a real file: errors name the record
// and offset, nothing panics, and what came before the damage is kept.
func TestMRTDamaged(t *testing.T) {
	raw := readGunzip(t, analyzetest.Corpus(t, "RIPE-NCC_bgpdump/updates.20020722.2238.gz"))
	// Truncated in the middle of record 100.
	off := recordOffset(t, raw, 100)
	d := NewDump("cut.mrt")
	err := d.ReadFrom(context.Background(), bytes.NewReader(raw[:off+20]))
	var me *MRTError
	if !errors.As(err, &me) || me.Index != 100 || me.Offset != int64(off) {
		t.Fatalf("truncated: err %v, want MRT record 100 at offset %d", err, off)
	}
	if d.Records != 100 {
		t.Errorf("kept %d records before the damage, want 100", d.Records)
	}
	if !strings.Contains(err.Error(), "cut.mrt: MRT record 100 at byte offset") {
		t.Errorf("message %q", err)
	}
	// A corrupt BGP marker inside record 5: that record is bad, the rest is read.
	bad := append([]byte(nil), raw...)
	o5 := recordOffset(t, bad, 5)
	for i := o5 + 12; i < o5+12+40; i++ {
		if bad[i] == 0xff {
			bad[i] = 0
			break
		}
	}
	d = NewDump("bad.mrt")
	err = d.ReadFrom(context.Background(), bytes.NewReader(bad))
	if !errors.As(err, &me) || me.Index != 5 {
		t.Fatalf("corrupt: err %v, want record 5", err)
	}
	if d.Records != 1120 || d.Bad != 1 {
		t.Errorf("corrupt: %d records, %d bad; want 1120 and 1", d.Records, d.Bad)
	}
	// An absurd length field.
	huge := append([]byte(nil), raw[:64]...)
	huge[8], huge[9] = 0x7f, 0xff
	err = NewDump("huge.mrt").ReadFrom(context.Background(), bytes.NewReader(huge))
	if !errors.As(err, &me) || me.Index != 0 || !strings.Contains(err.Error(), "exceeds") {
		t.Errorf("huge: %v", err)
	}
}

func readGunzip(t testing.TB, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func recordOffset(t *testing.T, b []byte, index int) int {
	off := 0
	for i := 0; i < index; i++ {
		if off+12 > len(b) {
			t.Fatalf("file has fewer than %d records", index)
		}
		off += 12 + int(uint32(b[off+8])<<24|uint32(b[off+9])<<16|uint32(b[off+10])<<8|uint32(b[off+11]))
	}
	return off
}

// FuzzMRT feeds arbitrary bytes, seeded with the corpus files, to the MRT
// reader: it must return errors, never panic.
func FuzzMRT(f *testing.F) {
	for _, p := range []string{"t2mune_mrtparse/bird-mrtdump_rib", "t2mune_mrtparse/quagga_bgp"} {
		b, err := os.ReadFile(analyzetest.Corpus(f, p))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	raw := readGunzip(f, analyzetest.Corpus(f, "RIPE-NCC_bgpdump/updates.20020722.2238.gz"))
	f.Add(raw[:4096])
	f.Fuzz(func(t *testing.T, b []byte) {
		d := NewDump("fuzz")
		_ = d.ReadFrom(context.Background(), bytes.NewReader(b))
	})
}
