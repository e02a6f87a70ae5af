package ping

import (
	"encoding/binary"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestParseReply: the timestamp socket takes only echo replies with our id,
// reads the sequence number and pro-bing's send time, and survives short
// or foreign packets.
func TestParseReply(t *testing.T) {
	sent := time.Unix(1700000000, 123456789)
	echo := func(typ byte, id, seq uint16, payload int) []byte {
		b := make([]byte, 8+payload)
		b[0] = typ
		binary.BigEndian.PutUint16(b[4:], id)
		binary.BigEndian.PutUint16(b[6:], seq)
		if payload >= 8 {
			binary.BigEndian.PutUint64(b[8:], uint64(sent.UnixNano()))
		}
		return b
	}
	ipv4 := func(icmp []byte, ihl int) []byte {
		h := make([]byte, ihl)
		h[0] = 0x40 | byte(ihl/4)
		return append(h, icmp...)
	}
	for _, tc := range []struct {
		name    string
		v6      bool
		pkt     []byte
		wantOK  bool
		wantSeq uint16
	}{
		{"v4 reply", false, ipv4(echo(0, 0x1234, 7, 16), 20), true, 7},
		{"v4 reply with IP options", false, ipv4(echo(0, 0x1234, 65535, 16), 24), true, 65535},
		{"v4 other id", false, ipv4(echo(0, 0x4321, 7, 16), 20), false, 0},
		{"v4 echo request", false, ipv4(echo(8, 0x1234, 7, 16), 20), false, 0},
		{"v4 payload too short for the timestamp", false, ipv4(echo(0, 0x1234, 7, 4), 20), false, 0},
		{"v4 truncated header", false, []byte{0x45, 0, 0}, false, 0},
		{"v4 header length beyond packet", false, []byte{0x4f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, false, 0},
		{"v6 reply", true, echo(129, 0x1234, 9, 16), true, 9},
		{"v6 v4-type reply", true, echo(0, 0x1234, 9, 16), false, 0},
		{"empty", true, nil, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &rxStamps{id: 0x1234, v6: tc.v6}
			seq, at, ok := s.parseReply(tc.pkt)
			if ok != tc.wantOK || (ok && (seq != tc.wantSeq || !at.Equal(sent))) {
				t.Errorf("parseReply = %d %v %v, want %d %v %v", seq, at, ok, tc.wantSeq, sent, tc.wantOK)
			}
		})
	}
}

// TestKernelTime reads SCM_TIMESTAMPNS from a control message and ignores
// others.
func TestKernelTime(t *testing.T) {
	ts := unix.Timespec{Sec: 1700000000, Nsec: 42}
	b := make([]byte, 16)
	binary.NativeEndian.PutUint64(b[0:], uint64(ts.Sec))
	binary.NativeEndian.PutUint64(b[8:], uint64(ts.Nsec))
	oob := unix.UnixRights(3) // an SCM_RIGHTS message first: skipped
	h := make([]byte, unix.CmsgSpace(16))
	cm := (*unix.Cmsghdr)(unsafe.Pointer(&h[0]))
	cm.Level, cm.Type = unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS
	cm.SetLen(unix.CmsgLen(16))
	copy(h[unix.CmsgLen(0):], b)
	at, ok := kernelTime(append(oob, h...))
	if !ok || !at.Equal(time.Unix(1700000000, 42)) {
		t.Errorf("kernelTime = %v %v, want %v", at, ok, time.Unix(1700000000, 42))
	}
	if _, ok := kernelTime(oob); ok {
		t.Error("kernelTime found a timestamp in SCM_RIGHTS only")
	}
	if _, ok := kernelTime([]byte{1, 2, 3}); ok {
		t.Error("kernelTime accepted 3 garbage bytes")
	}
}

// FuzzParseReply: any bytes from the raw socket, as IPv4 or IPv6, give an
// answer or a refusal, never a panic; an accepted reply has our id.
func FuzzParseReply(f *testing.F) {
	f.Add([]byte{0x45, 0, 0, 36, 0, 0, 0, 0, 64, 1, 0, 0, 198, 18, 7, 2, 198, 18, 7, 1,
		0, 0, 0, 0, 0x12, 0x34, 0, 7, 0x17, 0x9a, 0, 0, 0, 0, 0, 0}, false)
	f.Add([]byte{129, 0, 0, 0, 0x12, 0x34, 0, 9, 0x17, 0x9a, 0, 0, 0, 0, 0, 0}, true)
	f.Fuzz(func(t *testing.T, b []byte, v6 bool) {
		s := &rxStamps{id: 0x1234, v6: v6}
		if _, _, ok := s.parseReply(b); ok {
			icmp := b
			if !v6 {
				icmp = b[int(b[0]&0x0f)*4:]
			}
			if binary.BigEndian.Uint16(icmp[4:6]) != 0x1234 {
				t.Errorf("accepted a reply with id %#x", binary.BigEndian.Uint16(icmp[4:6]))
			}
		}
	})
}
