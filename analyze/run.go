package analyze

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sort"
	"time"

	"github.com/vpndiag/vpndiag/analyze/decode"
	"github.com/vpndiag/vpndiag/capture"
	"github.com/vpndiag/vpndiag/report"
)

// ProgressFunc is told how many bytes of all inputs have been read so far and
// the total (0 when unknown). It is called every few thousand frames.
type ProgressFunc func(read, total int64)

// Opener opens one input; capture.Open for files.
type Opener func(path string) (capture.Source, error)

// Pass is one streaming pass of decoder and analyzers over several inputs.
//
// With more than one analyzer and more than one CPU, the first analyzer (the
// summary, for analyze) runs on the goroutine that reads and decodes, and
// the others on a second goroutine fed with batches of decoded records, so
// the two halves of the work overlap. Each analyzer sees the same records in
// the same order either way, on one goroutine, and the report is the same.
type Pass struct {
	Analyzers []Analyzer
	Progress  ProgressFunc
	Open      Opener // nil means capture.Open
	// Sequential runs every analyzer on the reading goroutine.
	Sequential bool
	// Sizes of all inputs, summed, for Progress; filled by Run when zero.
	totalBytes int64
}

// InputError is an input that could not be read completely. The report keeps
// what was read before the damage.
type InputError struct {
	Input string
	Err   error
}

func (e *InputError) Error() string { return e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

// progressEvery is how many frames pass between progress and cancellation checks.
const progressEvery = 8192

// Run reads every input in order, decodes each frame once and shows it to
// every analyzer, then lets the analyzers report into rep. It returns the
// first *InputError (after reading and reporting all inputs), or the
// context's error when cancelled.
func (p *Pass) Run(ctx context.Context, inputs []InputInfo, rep *report.Report) error {
	open := p.Open
	if open == nil {
		open = capture.Open
	}
	sources := make([]capture.Source, len(inputs))
	p.totalBytes = 0
	var firstErr error
	defer func() {
		for _, s := range sources {
			if s != nil {
				s.Close()
			}
		}
	}()
	for i, in := range inputs {
		src, err := open(in.Source)
		if err != nil {
			return &InputError{Input: in.Source, Err: err}
		}
		sources[i] = src
		if err := checkLinkTypes(src); err != nil {
			return &InputError{Input: in.Source, Err: err}
		}
		_, total := src.Progress()
		p.totalBytes += total
	}
	inline, rest := p.Analyzers, []Analyzer(nil)
	if !p.Sequential && len(p.Analyzers) > 1 && runtime.GOMAXPROCS(0) > 1 {
		inline, rest = p.Analyzers[:1], p.Analyzers[1:]
	}
	r := reader{inline: newDispatcher(inline)}
	r.selective = r.inline.selective()
	if len(rest) > 0 {
		d := newDispatcher(rest)
		r.selective = r.selective || d.selective()
		r.pipe = startPipeline(d)
		defer r.pipe.wait()
	}
	var done int64
	ends := make([]inputEnd, len(sources))
	for i, src := range sources {
		st := inputStats{}
		// One decoder per input: it remembers per-stream state (WireGuard
		// session indexes) and counts undecoded frames per input.
		var dec decode.Decoder
		err := p.readAll(ctx, src, i, &dec, &r, &st, done)
		read, _ := src.Progress()
		done += read
		ends[i] = inputEnd{st.packets > 0, st.last}
		ri := st.reportInput(inputs[i], src, &dec.Reasons)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			ri.Error = err.Error()
			if firstErr == nil {
				firstErr = &InputError{Input: inputs[i].Source, Err: err}
			}
		}
		rep.Inputs = append(rep.Inputs, ri)
	}
	if r.pipe != nil {
		r.pipe.wait()
	}
	for _, a := range p.Analyzers {
		if s, ok := a.(Selective); ok {
			for i, e := range ends {
				if e.seen {
					s.InputEnd(i, e.last)
				}
			}
		}
	}
	for _, a := range p.Analyzers {
		a.Finish(rep, inputs)
	}
	rep.Sort()
	return firstErr
}

// reader is where readAll puts decoded records: the inline analyzers, and
// the pipeline to the others when there is one.
type reader struct {
	inline    *dispatcher
	pipe      *pipeline
	selective bool // some analyzer wants only some records: compute InterestOf
	rec       decode.Record
	frame     capture.Frame
}

func (p *Pass) readAll(ctx context.Context, src capture.Source, input int, dec *decode.Decoder,
	r *reader, st *inputStats, done int64) error {
	frame := &r.frame
	for n := 0; ; n++ {
		if n%progressEvery == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
			if p.Progress != nil {
				read, _ := src.Progress()
				p.Progress(done+read, p.totalBytes)
			}
		}
		err := src.Next(frame)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		rec, data := &r.rec, frame.Data
		if r.pipe != nil {
			rec, data = r.pipe.slot(frame.Data)
		}
		rec.Frame = frame.Number
		rec.Input = input
		rec.Iface = frame.Iface
		rec.Time = frame.Time
		rec.CapLen = len(frame.Data)
		rec.WireLen = frame.WireLen
		dec.Decode(decode.LinkType(frame.LinkType), data, rec)
		st.add(frame)
		in := WantAll
		if r.selective {
			in = InterestOf(rec)
		}
		r.inline.packet(rec, in)
		if r.pipe != nil {
			r.pipe.commit(in)
		}
	}
}

// inputEnd is whether an input had frames and the latest of their times.
type inputEnd struct {
	seen bool
	last int64
}

// checkLinkTypes refuses an input none of whose interfaces has a link type the
// decoder understands. Frames of an unsupported interface in a pcapng that
// also has supported ones are counted as undecoded instead.
func checkLinkTypes(src capture.Source) error {
	itfs := src.Interfaces()
	for _, itf := range itfs {
		if decode.Supported(decode.LinkType(itf.LinkType)) {
			return nil
		}
	}
	if len(itfs) == 0 {
		return nil
	}
	return &capture.Error{File: src.Name(), Offset: -1,
		Err: fmt.Errorf("link type %s is not supported (supported: %s)", decode.LinkType(itfs[0].LinkType), supportedList())}
}

func supportedList() string {
	var s string
	for _, l := range []decode.LinkType{decode.LinkEthernet, decode.LinkLinuxSLL, decode.LinkSLL2, decode.LinkRaw,
		decode.LinkIPv4, decode.LinkIPv6, decode.LinkNull, decode.LinkLoop, decode.LinkPPP, decode.LinkPPPHDLC} {
		if s != "" {
			s += ", "
		}
		s += l.String()
	}
	return s
}

// inputStats are the per-input counters kept on the hot path.
type inputStats struct {
	packets, bytes uint64
	first, last    int64
	links          [8]uint16
	nlinks         int
}

func (s *inputStats) add(f *capture.Frame) {
	if s.packets == 0 || f.Time < s.first {
		s.first = f.Time
	}
	if f.Time > s.last {
		s.last = f.Time
	}
	s.packets++
	s.bytes += uint64(f.WireLen)
	for i := 0; i < s.nlinks; i++ {
		if s.links[i] == f.LinkType {
			return
		}
	}
	if s.nlinks < len(s.links) {
		s.links[s.nlinks] = f.LinkType
		s.nlinks++
	}
}

func (s *inputStats) reportInput(in InputInfo, src capture.Source, reasons *[decode.NumReasons]uint64) report.Input {
	ri := report.Input{Name: in.Name, Source: in.Source, Format: src.Format(), Packets: s.packets, Bytes: s.bytes}
	for i := 0; i < s.nlinks; i++ {
		ri.LinkTypes = append(ri.LinkTypes, decode.LinkType(s.links[i]).String())
	}
	sort.Strings(ri.LinkTypes)
	if s.packets > 0 {
		f, l := time.Unix(0, s.first).UTC(), time.Unix(0, s.last).UTC()
		ri.First, ri.Last = &f, &l
	}
	var drops uint64
	hasStats := false
	for _, itf := range src.Interfaces() {
		if itf.HasStats {
			hasStats = true
			drops += itf.Dropped
		}
	}
	if hasStats {
		ri.Drops = &drops
	}
	for r := 1; r < decode.NumReasons; r++ {
		if n := reasons[r]; n > 0 {
			if ri.Undecoded == nil {
				ri.Undecoded = map[string]int64{}
			}
			ri.Undecoded[decode.Reason(r).String()] = int64(n)
		}
	}
	return ri
}

// IsInputError reports whether err is about unreadable or damaged input
// (exit code 2) rather than a runtime failure.
func IsInputError(err error) bool {
	var ie *InputError
	var ce *capture.Error
	return errors.As(err, &ie) || errors.As(err, &ce)
}
