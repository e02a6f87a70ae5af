package capture

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// Sink receives frames, e.g. to write them to a file. PcapngWriter and
// RingWriter are sinks.
type Sink interface {
	// AddInterface declares another interface; frames refer to interfaces
	// by their index in declaration order (Frame.Iface).
	AddInterface(it Interface) error
	// WriteFrame writes one frame (its Data is not kept).
	WriteFrame(f *Frame) error
	// Finish writes the interfaces' statistics (those with HasStats; stats
	// may be nil), flushes and closes the sink.
	Finish(stats []Interface) error
}

// WriterOptions are a pcapng file's section options.
type WriterOptions struct {
	Application string // shb_userappl (default "vpndiag")
	Comment     string // opt_comment of the section
}

// writeBufSize is the buffer between the pcapng encoder and the file.
const writeBufSize = 1 << 20

// PcapngWriter writes one pcapng section: a Section Header Block, an
// Interface Description Block per interface (if_name, if_description,
// if_filter, if_tsresol 9 = nanoseconds, link type, snap length),
// Enhanced Packet Blocks, and at Finish an Interface Statistics Block per
// interface with statistics (isb_starttime, isb_endtime, isb_ifrecv,
// isb_ifdrop). Blocks are encoded by gopacket's pcapgo.NgWriter, which
// writes every option needed here, and buffered.
type PcapngWriter struct {
	name   string
	ng     *pcapgo.NgWriter
	buf    *bufio.Writer
	count  *countingWriter
	closer io.Closer
	ifaces []Interface
	start  time.Time
	base   []Interface // statistics at start; Finish writes the difference
	frames uint64
	size   int64 // bytes written so far, buffered included
	err    error // sticky write error
}

// countingWriter counts bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// NewPcapngWriter starts a pcapng stream on w with the given interfaces (at
// least one). name is used in messages. Finish does not close w.
func NewPcapngWriter(name string, w io.Writer, ifaces []Interface, opts WriterOptions) (*PcapngWriter, error) {
	if len(ifaces) == 0 {
		return nil, fmt.Errorf("write %s: a pcapng file needs at least one interface", name)
	}
	pw := &PcapngWriter{name: name, count: &countingWriter{w: w}, start: time.Now()}
	pw.buf = bufio.NewWriterSize(pw.count, writeBufSize)
	app := opts.Application
	if app == "" {
		app = "vpndiag"
	}
	ng, err := pcapgo.NewNgWriterInterface(pw.buf, ngInterface(ifaces[0]), pcapgo.NgWriterOptions{
		SectionInfo: pcapgo.NgSectionInfo{Application: app, OS: runtime.GOOS, Hardware: runtime.GOARCH, Comment: opts.Comment},
	})
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", name, err)
	}
	pw.ng = ng
	pw.ifaces = append(pw.ifaces, ifaces[0])
	for _, it := range ifaces[1:] {
		if err := pw.AddInterface(it); err != nil {
			return nil, err
		}
	}
	if err := pw.flush(); err != nil {
		return nil, err
	}
	return pw, nil
}

// CreatePcapng creates (or truncates) the file path and starts a pcapng
// stream in it; Finish closes the file.
func CreatePcapng(path string, ifaces []Interface, opts WriterOptions) (*PcapngWriter, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create capture file: %w", err)
	}
	pw, err := NewPcapngWriter(path, f, ifaces, opts)
	if err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	pw.closer = f
	return pw, nil
}

func ngInterface(it Interface) pcapgo.NgInterface {
	return pcapgo.NgInterface{
		Name:                it.Name,
		Description:         it.Description,
		Filter:              it.Filter,
		OS:                  runtime.GOOS,
		LinkType:            layers.LinkType(it.LinkType),
		SnapLength:          it.SnapLen,
		TimestampResolution: 9,
	}
}

// AddInterface writes another Interface Description Block.
func (w *PcapngWriter) AddInterface(it Interface) error {
	if w.err != nil {
		return w.err
	}
	if _, err := w.ng.AddInterface(ngInterface(it)); err != nil {
		return w.fail(err)
	}
	w.ifaces = append(w.ifaces, it)
	return nil
}

func (w *PcapngWriter) fail(err error) error {
	if w.err == nil {
		w.err = fmt.Errorf("write %s: %w", w.name, err)
	}
	return w.err
}

// flush pushes everything to the underlying writer and updates size.
func (w *PcapngWriter) flush() error {
	if err := w.ng.Flush(); err != nil {
		return w.fail(err)
	}
	if err := w.buf.Flush(); err != nil {
		return w.fail(err)
	}
	w.size = w.count.n
	return nil
}

// epbSize is the size of the Enhanced Packet Block for n captured bytes.
func epbSize(n int) int64 { return 32 + int64((n+3)&^3) }

// WriteFrame writes f as an Enhanced Packet Block on interface f.Iface.
func (w *PcapngWriter) WriteFrame(f *Frame) error {
	if w.err != nil {
		return w.err
	}
	if f.Iface < 0 || f.Iface >= len(w.ifaces) {
		return w.fail(fmt.Errorf("frame %d refers to interface %d, but %d are declared", f.Number, f.Iface, len(w.ifaces)))
	}
	ci := gopacket.CaptureInfo{
		Timestamp:      time.Unix(0, f.Time),
		CaptureLength:  len(f.Data),
		Length:         max(f.WireLen, len(f.Data)),
		InterfaceIndex: f.Iface,
	}
	if err := w.ng.WritePacket(ci, f.Data); err != nil {
		return w.fail(err)
	}
	w.frames++
	w.size += epbSize(len(f.Data))
	return nil
}

// Size returns the bytes written so far (buffered ones included).
func (w *PcapngWriter) Size() int64 { return w.size }

// Frames returns the frames written so far.
func (w *PcapngWriter) Frames() uint64 { return w.frames }

// Name returns the file name or the name given to NewPcapngWriter.
func (w *PcapngWriter) Name() string { return w.name }

// Flush writes buffered blocks to the file, so that a reader sees complete
// blocks up to here.
func (w *PcapngWriter) Flush() error {
	if w.err != nil {
		return w.err
	}
	return w.flush()
}

// Finish writes an Interface Statistics Block for every interface whose
// stats entry has HasStats (counters relative to the writer's start when
// it is part of a ring), flushes, and closes the file CreatePcapng opened.
func (w *PcapngWriter) Finish(stats []Interface) error {
	if w.ng == nil {
		return w.err
	}
	now := time.Now()
	for i := range w.ifaces {
		if i >= len(stats) || !stats[i].HasStats || w.err != nil {
			continue
		}
		recv, drop := stats[i].Received, stats[i].Dropped
		if i < len(w.base) && w.base[i].HasStats {
			recv -= min(recv, w.base[i].Received)
			drop -= min(drop, w.base[i].Dropped)
		}
		err := w.ng.WriteInterfaceStats(i, pcapgo.NgInterfaceStatistics{
			LastUpdate:      now,
			StartTime:       w.start,
			EndTime:         now,
			PacketsReceived: recv,
			PacketsDropped:  drop,
		})
		if err != nil {
			w.fail(err)
		}
	}
	if w.err == nil {
		w.flush()
	}
	w.ng = nil
	if w.closer != nil {
		if err := w.closer.Close(); err != nil && w.err == nil {
			w.err = fmt.Errorf("close %s: %w", w.name, err)
		}
		w.closer = nil
	}
	err := w.err
	if w.err == nil {
		w.err = fmt.Errorf("write %s: already finished", w.name)
	}
	return err
}
