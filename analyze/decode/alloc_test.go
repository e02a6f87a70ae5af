package decode

import (
	"testing"
)

// corpusAll returns every frame of every corpus capture.
func corpusAll(t testing.TB) []corpusFrame {
	var all []corpusFrame
	for _, path := range corpusCaptures(t) {
		all = append(all, readCapture(t, path)...)
	}
	return all
}

// TestZeroAllocs proves Decode does not allocate, over every corpus frame and
// every hand-built test frame (all link types and tunnel kinds).
func TestZeroAllocs(t *testing.T) {
	frames := corpusAll(t)
	for _, c := range decodeCases(t) {
		frames = append(frames, corpusFrame{link: c.link, data: c.data})
	}
	var d Decoder
	var rec Record
	allocs := testing.AllocsPerRun(20, func() {
		for i := range frames {
			d.Decode(frames[i].link, frames[i].data, &rec)
		}
	})
	if allocs != 0 {
		t.Fatalf("Decode allocated %.1f times per pass over %d frames, want 0", allocs, len(frames))
	}
	t.Logf("0 allocations over %d frames", len(frames))
}

// TestStrings checks the report names of link types, tunnel kinds and
// reasons.
func TestStrings(t *testing.T) {
	for l, want := range map[LinkType]string{LinkEthernet: "EN10MB", LinkLinuxSLL: "LINUX_SLL", LinkSLL2: "LINUX_SLL2",
		LinkRaw: "RAW", LinkRaw12: "RAW", LinkRaw14: "RAW", LinkNull: "NULL", LinkLoop: "LOOP", LinkPPP: "PPP",
		LinkPPPHDLC: "PPP_HDLC", LinkIPv4: "IPV4", LinkIPv6: "IPV6", 147: "LINKTYPE_147"} {
		eq(t, "name", l.String(), want)
		eq(t, "supported "+want, Supported(l), l != 147)
	}
	seen := map[string]bool{}
	for r := Reason(1); int(r) < NumReasons; r++ {
		s := r.String()
		if s == "" || s == "unknown" || seen[s] {
			t.Errorf("reason %d has name %q", r, s)
		}
		seen[s] = true
	}
	eq(t, "reason none", ReasonNone.String(), "")
	for k := TunnelKind(0); int(k) < NumTunnelKinds; k++ {
		if s := k.String(); s == "unknown" || seen[s] {
			t.Errorf("tunnel kind %d has name %q", k, s)
		} else {
			seen[s] = true
		}
	}
	eq(t, "l2tpv2", TunnelL2TPv2.String(), "l2tpv2")
}
