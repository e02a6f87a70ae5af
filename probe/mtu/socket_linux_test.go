//go:build linux

package mtu

import "testing"

func TestChecksum(t *testing.T) {
	// An echo request whose checksum field is filled sums to zero.
	b := []byte{8, 0, 0, 0, 0x12, 0x34, 0, 1, 'a', 'b', 'c'}
	c := checksum(b)
	b[2], b[3] = byte(c>>8), byte(c)
	if checksum(b) != 0 {
		t.Fatalf("checksum %04x does not verify", c)
	}
}
