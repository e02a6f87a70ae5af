package analyze

import (
	"fmt"

	"github.com/vpndiag/vpndiag/report"
)

// MaxExamples is how many example frames Examples keeps.
const MaxExamples = 5

// FrameID is one frame of one input, kept compactly until Finish.
type FrameID struct {
	Input int
	Frame uint64
}

// Examples keeps the first MaxExamples frames of something an analyzer
// counts (a lost query, a duplicate ARP claim), without allocating, so a
// finding can point at them.
type Examples struct {
	n   uint8
	ids [MaxExamples]FrameID
}

// Add records a frame unless MaxExamples are kept already.
func (e *Examples) Add(input int, frame uint64) {
	if int(e.n) < MaxExamples {
		e.ids[e.n] = FrameID{input, frame}
		e.n++
	}
}

// Len returns how many frames are kept.
func (e *Examples) Len() int { return int(e.n) }

// FrameRefs returns at most max of the kept frames (all when max <= 0) as
// report frame references named after their inputs.
func (e *Examples) FrameRefs(inputs []InputInfo, max int) []report.FrameRef {
	n := int(e.n)
	if max > 0 && max < n {
		n = max
	}
	out := make([]report.FrameRef, 0, n)
	for _, id := range e.ids[:n] {
		out = append(out, report.FrameRef{File: InputName(inputs, id.Input), Frame: id.Frame})
	}
	return out
}

// InputName is the name of input i for messages and frame references.
func InputName(inputs []InputInfo, i int) string {
	if i >= 0 && i < len(inputs) {
		return inputs[i].Name
	}
	return fmt.Sprintf("input %d", i)
}

// IDs returns the kept frames.
func (e *Examples) IDs() []FrameID { return e.ids[:e.n] }
