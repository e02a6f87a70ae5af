package capture

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// RingWriter writes a ring of pcapng files: path, then path-1, path-2, ...
// (the number goes before the extension: out.pcapng, out-1.pcapng, ...),
// starting the next file when the current one would grow past MaxSize and
// deleting the oldest so that at most Files remain. Every file is a
// complete pcapng with its own Section Header and Interface Description
// Blocks, and Interface Statistics Blocks counting what happened while it
// was the current file.
type RingWriter struct {
	path    string
	files   int
	maxSize int64
	ifaces  []Interface
	opts    WriterOptions
	stats   func() []Interface

	cur      *PcapngWriter
	seq      int
	kept     []string
	removed  int
	lastStat []Interface
	err      error
}

// RingSpec is a parsed --ring value.
type RingSpec struct {
	Files   int
	MaxSize int64
}

var ringRE = regexp.MustCompile(`^(\d+)x(\d+)([a-zA-Z]*)$`)

// ParseRing parses "NxSIZE": N files of at most SIZE each, SIZE in bytes
// with an optional unit k/kB, M/MB, G/GB (powers of 1000) or KiB, MiB, GiB
// (powers of 1024), e.g. "10x100MB".
func ParseRing(s string) (RingSpec, error) {
	m := ringRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return RingSpec{}, fmt.Errorf("ring %q: want NxSIZE, e.g. 10x100MB", s)
	}
	n, err := strconv.Atoi(m[1])
	if err != nil || n < 1 || n > 100000 {
		return RingSpec{}, fmt.Errorf("ring %q: the number of files must be 1..100000", s)
	}
	size, err := strconv.ParseInt(m[2], 10, 64)
	if err != nil {
		return RingSpec{}, fmt.Errorf("ring %q: bad size", s)
	}
	mult := map[string]int64{"": 1, "b": 1, "k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9,
		"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30}[strings.ToLower(m[3])]
	if mult == 0 {
		return RingSpec{}, fmt.Errorf("ring %q: unknown size unit %q (use kB, MB, GB, KiB, MiB or GiB)", s, m[3])
	}
	size *= mult
	if size < 4096 || size > 1<<50 {
		return RingSpec{}, fmt.Errorf("ring %q: file size must be at least 4096 bytes", s)
	}
	return RingSpec{Files: n, MaxSize: size}, nil
}

// RingName returns the name of the ring's k-th file (0-based).
func RingName(path string, k int) string {
	if k == 0 {
		return path
	}
	ext := filepath.Ext(path)
	return fmt.Sprintf("%s-%d%s", strings.TrimSuffix(path, ext), k, ext)
}

// NewRing creates the ring's first file. stats, if not nil, is asked for
// the interfaces' statistics whenever a file is completed (a live source's
// Interfaces).
func NewRing(path string, spec RingSpec, ifaces []Interface, opts WriterOptions, stats func() []Interface) (*RingWriter, error) {
	if spec.Files < 1 || spec.MaxSize <= 0 {
		return nil, fmt.Errorf("ring %s: bad ring size %dx%d", path, spec.Files, spec.MaxSize)
	}
	r := &RingWriter{path: path, files: spec.Files, maxSize: spec.MaxSize, ifaces: append([]Interface(nil), ifaces...), opts: opts, stats: stats}
	if err := r.open(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *RingWriter) open() error {
	name := RingName(r.path, r.seq)
	w, err := CreatePcapng(name, r.ifaces, r.opts)
	if err != nil {
		return err
	}
	w.base = r.lastStat
	r.cur = w
	r.kept = append(r.kept, name)
	for len(r.kept) > r.files {
		if err := os.Remove(r.kept[0]); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("ring: remove the oldest file: %w", err)
		}
		r.kept = r.kept[1:]
		r.removed++
	}
	return nil
}

// AddInterface declares another interface in the current and later files.
func (r *RingWriter) AddInterface(it Interface) error {
	if r.err != nil {
		return r.err
	}
	r.ifaces = append(r.ifaces, it)
	if err := r.cur.AddInterface(it); err != nil {
		r.err = err
	}
	return r.err
}

// WriteFrame writes f, first moving to the next file if f would make the
// current one larger than the ring's file size (a file always takes at
// least one frame).
func (r *RingWriter) WriteFrame(f *Frame) error {
	if r.err != nil {
		return r.err
	}
	if r.cur.Frames() > 0 && r.cur.Size()+epbSize(len(f.Data)) > r.maxSize {
		if err := r.rotate(); err != nil {
			r.err = err
			return err
		}
	}
	if err := r.cur.WriteFrame(f); err != nil {
		r.err = err
	}
	return r.err
}

func (r *RingWriter) rotate() error {
	var st []Interface
	if r.stats != nil {
		st = r.stats()
	}
	if err := r.cur.Finish(st); err != nil {
		return err
	}
	if st != nil {
		r.lastStat = st
	}
	r.seq++
	return r.open()
}

// Files returns the files the ring holds now, oldest first.
func (r *RingWriter) Files() []string { return append([]string(nil), r.kept...) }

// Removed returns how many older files the ring deleted.
func (r *RingWriter) Removed() int { return r.removed }

// Finish completes the current file with stats (see PcapngWriter.Finish).
func (r *RingWriter) Finish(stats []Interface) error {
	if r.cur == nil {
		return r.err
	}
	err := r.cur.Finish(stats)
	r.cur = nil
	if r.err == nil {
		r.err = err
	}
	res := r.err
	if r.err == nil {
		r.err = fmt.Errorf("ring %s: already finished", r.path)
	}
	return res
}
