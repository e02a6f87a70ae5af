package capture

// teeSource passes frames through and writes each one to a sink.
type teeSource struct {
	Source
	sink   Sink
	ifaces int // interfaces declared to the sink
	err    error
	done   bool
}

// Tee returns a Source that reads src and writes every frame it returns to
// sink (a *PcapngWriter, a *RingWriter, ...), which must have been created
// with src.Interfaces(). Interfaces that src adds later (pcapng files may)
// are declared to the sink before their first frame. A write error is
// returned by Next as a *Error naming the sink's file. Close finishes the
// sink with src's final statistics (the kernel's drop counts for a live
// source: the pcapng gets its Interface Statistics Blocks) and then closes
// src. Next does not allocate.
//
// The typical use is trace's --save DIR: tee each live hop into
// DIR/HOP.pcapng while correlating.
func Tee(src Source, sink Sink) Source {
	return &teeSource{Source: src, sink: sink, ifaces: len(src.Interfaces())}
}

// Next reads a frame from the source and writes it to the sink.
func (t *teeSource) Next(f *Frame) error {
	if t.err != nil {
		return t.err
	}
	if err := t.Source.Next(f); err != nil {
		return err
	}
	if f.Iface >= t.ifaces {
		its := t.Source.Interfaces()
		for ; t.ifaces < len(its) && t.ifaces <= f.Iface; t.ifaces++ {
			if err := t.sink.AddInterface(its[t.ifaces]); err != nil {
				t.err = &Error{File: t.Source.Name(), Frame: f.Number, Offset: -1, Err: err}
				return t.err
			}
		}
	}
	if err := t.sink.WriteFrame(f); err != nil {
		t.err = &Error{File: t.Source.Name(), Frame: f.Number, Offset: -1, Err: err}
		return t.err
	}
	return nil
}

// Close finishes the sink with the source's statistics and closes the
// source; the first error wins.
func (t *teeSource) Close() error {
	if t.done {
		return nil
	}
	t.done = true
	err := t.sink.Finish(t.Source.Interfaces())
	if cerr := t.Source.Close(); err == nil {
		err = cerr
	}
	return err
}
