package analyze

import (
	"net/netip"

	"github.com/vpndiag/vpndiag/analyze/decode"
)

// flowSlots is how many flows each level remembers (a power of two).
const flowSlots = 16

// flowIDs gives every record its decode.Record.FlowID. It remembers a few
// recent flows in a table indexed by a hash of the ports that is the same in
// both directions; a flow not found in its slot replaces the slot's flow and
// gets a new number. Numbers are never reused, so an analyzer that
// remembered a number knows the flow is the same when the number comes
// again.
type flowIDs struct {
	next  uint64
	input int
	slots [flowSlots]flowSlot
}

// flowSlot is one remembered flow in the direction it was first seen.
type flowSlot struct {
	id       uint64 // 0: empty
	ports    uint32 // source<<16 | destination
	proto    uint8
	src, dst netip.Addr
}

// mark sets rec.FlowID and rec.FlowRev.
func (f *flowIDs) mark(rec *decode.Record) {
	rec.FlowID, rec.FlowRev = 0, false
	n := int(rec.NumLevels)
	if n == 0 || n > decode.MaxLevels {
		return
	}
	l := &rec.Levels[n-1]
	if !memoable(l) {
		return
	}
	if rec.Input != f.input {
		f.slots = [flowSlots]flowSlot{}
		f.input = rec.Input
	}
	ip, t := &l.IP, &l.L4
	x := uint32(t.SrcPort ^ t.DstPort)
	s := &f.slots[(x*0x9e3779b1)>>(32-4)&(flowSlots-1)]
	ports := uint32(t.SrcPort)<<16 | uint32(t.DstPort)
	if s.proto == t.Proto && s.id != 0 {
		if s.ports == ports && s.src == ip.Src && s.dst == ip.Dst {
			rec.FlowID = s.id
			return
		}
		if s.ports == ports>>16|ports<<16 && s.src == ip.Dst && s.dst == ip.Src {
			rec.FlowID, rec.FlowRev = s.id, true
			return
		}
	}
	f.next++
	*s = flowSlot{id: f.next, ports: ports, proto: t.Proto, src: ip.Src, dst: ip.Dst}
	rec.FlowID = f.next
}

// FlowNumbered is an Analyzer that reads decode.Record.FlowID (through a
// FlowMemo). Numbering costs about what one memo saves, so a Pass numbers
// flows only when at least two analyzers read the numbers; otherwise
// FlowID is 0 and memos compare addresses and ports.
type FlowNumbered interface {
	Analyzer
	// ReadsFlowID is a marker; it does nothing.
	ReadsFlowID()
}

// numberFlows reports whether at least two of as read FlowID.
func numberFlows(as []Analyzer) bool {
	n := 0
	for _, a := range as {
		if _, ok := a.(FlowNumbered); ok {
			n++
		}
	}
	return n >= 2
}
