package analyze

import (
	"net/netip"
	"testing"
)

// The example of the Community ID specification's README (seed 0), in both
// directions. tshark 4.0 has no Community ID field to use as an oracle here.
func TestCommunityIDSpecVectors(t *testing.T) {
	a := netip.MustParseAddr
	cases := []struct {
		proto        uint8
		src, dst     string
		sport, dport uint16
		want         string
	}{
		{6, "128.232.110.120", "66.35.250.204", 34855, 80, "1:LQU9qZlK+B5F3KDmev6m5PMibrg="},
		{6, "66.35.250.204", "128.232.110.120", 80, 34855, "1:LQU9qZlK+B5F3KDmev6m5PMibrg="},
	}
	for _, c := range cases {
		got := CommunityID(c.proto, a(c.src), a(c.dst), c.sport, c.dport)
		if got != c.want {
			t.Errorf("CommunityID(%d %s:%d -> %s:%d) = %s, want %s", c.proto, c.src, c.sport, c.dst, c.dport, got, c.want)
		}
	}
}

// ICMP echo request and reply, and ICMPv6 neighbour solicitation and
// advertisement, belong to the same flow; a one-way ICMP type does not pair.
func TestCommunityIDICMPPairs(t *testing.T) {
	a, b := netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2")
	if CommunityID(1, a, b, 8, 0) != CommunityID(1, b, a, 0, 0) {
		t.Error("echo request and reply hash differently")
	}
	if CommunityID(1, a, b, 3, 4) == CommunityID(1, b, a, 3, 4) {
		t.Error("one-way ICMP unreachable should keep its direction")
	}
	c, d := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
	if CommunityID(58, c, d, 135, 0) != CommunityID(58, d, c, 136, 0) {
		t.Error("ICMPv6 NS and NA hash differently")
	}
}
