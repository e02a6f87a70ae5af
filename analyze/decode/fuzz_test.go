package decode

import "testing"

// FuzzDecode decodes arbitrary bytes under arbitrary link types, seeded with
// every corpus frame and every hand-built test frame: Decode must not panic
// and the record invariants must hold.
func FuzzDecode(f *testing.F) {
	for _, fr := range corpusAll(f) {
		f.Add(uint16(fr.link), fr.data)
	}
	for _, c := range decodeCases(f) {
		f.Add(uint16(c.link), c.data)
	}
	var d Decoder
	var rec Record
	f.Fuzz(func(t *testing.T, link uint16, data []byte) {
		d.Decode(LinkType(link), data, &rec)
		checkInvariants(t, data, &rec)
		// Decoding again into the same record gives the same result.
		before := rec
		d.Decode(LinkType(link), data, &rec)
		if before.Reason != rec.Reason || before.NumLevels != rec.NumLevels || before.NumTunnel != rec.NumTunnel ||
			before.Tunnels != rec.Tunnels || before.ARP != rec.ARP || before.IKE != rec.IKE {
			t.Fatalf("decode not repeatable: %+v then %+v", before, rec)
		}
	})
}
