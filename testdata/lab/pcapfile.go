package lab

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// PacketFunc receives one frame of a capture file: its 1-based number, the
// capture info, the link type of the interface it was captured on, and the
// frame bytes (valid only during the call).
type PacketFunc func(n int, ci gopacket.CaptureInfo, lt layers.LinkType, data []byte) error

// ForEachPacket reads a pcap or pcapng file (told apart by its magic number)
// and calls fn for every frame. It stops at the first error from fn or from
// the file, naming the file and frame number.
func ForEachPacket(file string, fn PacketFunc) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<16)
	magic, err := br.Peek(4)
	if err != nil {
		return fmt.Errorf("%s: too short for a capture file: %w", file, err)
	}
	type reader interface {
		ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
	}
	var r reader
	linkOf := func(ci gopacket.CaptureInfo) layers.LinkType { return 0 }
	if bytes.Equal(magic, []byte{0x0a, 0x0d, 0x0d, 0x0a}) {
		ng, err := pcapgo.NewNgReader(br, pcapgo.NgReaderOptions{WantMixedLinkType: true})
		if err != nil {
			return fmt.Errorf("%s: pcapng: %w", file, err)
		}
		r = ng
		linkOf = func(ci gopacket.CaptureInfo) layers.LinkType {
			if intf, err := ng.Interface(ci.InterfaceIndex); err == nil {
				return intf.LinkType
			}
			return ng.LinkType()
		}
	} else {
		pr, err := pcapgo.NewReader(br)
		if err != nil {
			return fmt.Errorf("%s: pcap: %w", file, err)
		}
		r = pr
		lt := pr.LinkType()
		linkOf = func(gopacket.CaptureInfo) layers.LinkType { return lt }
	}
	for n := 1; ; n++ {
		data, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: frame %d: %w", file, n, err)
		}
		if err := fn(n, ci, linkOf(ci), data); err != nil {
			return fmt.Errorf("%s: frame %d: %w", file, n, err)
		}
	}
}

// CountPackets returns the number of frames in a pcap or pcapng file.
func CountPackets(file string) (int, error) {
	n := 0
	err := ForEachPacket(file, func(int, gopacket.CaptureInfo, layers.LinkType, []byte) error {
		n++
		return nil
	})
	return n, err
}
