package hostcheck

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// TCP socket states in /proc/net/tcp; unconnected UDP sockets show 07.
const (
	stateListen = "0A"
	stateClose  = "07"
)

// ParseProcNet reads /proc/net/{udp,udp6,tcp,tcp6} content: bound,
// unconnected UDP sockets and listening TCP sockets. proto is "udp" or
// "tcp"; the address family follows from the address length.
func ParseProcNet(r io.Reader, proto string) ([]Listener, error) {
	want := stateClose
	if proto == "tcp" {
		want = stateListen
	}
	var out []Listener
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		f := strings.Fields(sc.Text())
		if line == 1 || len(f) < 4 {
			continue // header
		}
		if f[3] != want {
			continue
		}
		if proto == "udp" && !strings.HasSuffix(f[2], ":0000") {
			continue // connected UDP socket
		}
		host, port, ok := strings.Cut(f[1], ":")
		if !ok {
			return nil, fmt.Errorf("line %d: local address %q: want ADDR:PORT", line, f[1])
		}
		p, err := strconv.ParseUint(port, 16, 16)
		if err != nil {
			return nil, fmt.Errorf("line %d: port %q: %w", line, port, err)
		}
		a, err := procAddr(host)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		out = append(out, Listener{Proto: proto, Addr: a, Port: uint16(p)})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	return out, nil
}

// littleEndian is true on little-endian machines, where /proc/net prints
// each 32-bit word of an address byte-swapped.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// procAddr decodes a /proc/net address: 32-bit words printed in host byte
// order.
func procAddr(s string) (netip.Addr, error) {
	b, err := hex.DecodeString(s)
	if err != nil || (len(b) != 4 && len(b) != 16) {
		return netip.Addr{}, fmt.Errorf("address %q: not 8 or 32 hex digits", s)
	}
	if littleEndian {
		for i := 0; i < len(b); i += 4 {
			b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a.Unmap(), nil
}
