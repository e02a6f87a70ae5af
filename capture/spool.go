package capture

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// SpoolHop is one live capture point to record: a hop name, its source
// specification (iface:NAME, later ssh:...), and the pcapng file to write.
type SpoolHop struct {
	Name string
	Spec string
	Path string // "" = DIR/NAME.pcapng, DIR given to Spool
}

// SpoolResult is what Spool recorded for one hop.
type SpoolResult struct {
	Name       string
	Spec       string
	Path       string      // the complete pcapng file
	Frames     uint64      // frames written
	Interfaces []Interface // with the kernel's final statistics
	Err        error       // a read or write error that ended this hop early
}

// Spool opens every hop (so open errors come before anything is captured),
// then drains each into DIR/HOP.pcapng until ctx ends. It is OpenSpool
// followed by Run.
func Spool(ctx context.Context, dir string, hops []SpoolHop, opts SpecOptions) ([]SpoolResult, error) {
	sp, err := OpenSpool(ctx, dir, hops, opts)
	if err != nil {
		return nil, err
	}
	return sp.Run(), nil
}

// Spooler holds live hops that OpenSpool opened: their sockets already
// receive, so a caller can tell the user capture has started before Run.
type Spooler struct {
	runs []spoolRun
	res  []SpoolResult
}

type spoolRun struct {
	tee  Source
	w    *PcapngWriter
	path string
}

// OpenSpool opens every live hop and its pcapng file. On error nothing stays
// open and no file is left behind.
func OpenSpool(ctx context.Context, dir string, hops []SpoolHop, opts SpecOptions) (*Spooler, error) {
	if dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("spool: %w", err)
		}
	}
	sp := &Spooler{res: make([]SpoolResult, len(hops))}
	fail := func(err error) (*Spooler, error) {
		for _, r := range sp.runs {
			r.tee.Close()
			os.Remove(r.path) // nothing was captured into it
		}
		return nil, err
	}
	for i, h := range hops {
		o := opts
		o.Hop = h.Name
		spec, err := ParseSpec(h.Spec)
		if err != nil {
			return fail(fmt.Errorf("hop %s: %w", h.Name, err))
		}
		if !spec.Live() {
			return fail(fmt.Errorf("hop %s: %s is a file, not a live source", h.Name, h.Spec))
		}
		src, err := spec.Open(ctx, o)
		if err != nil {
			return fail(fmt.Errorf("hop %s: %w", h.Name, err))
		}
		path := h.Path
		if path == "" {
			path = filepath.Join(dir, h.Name+".pcapng")
		}
		w, err := CreatePcapng(path, src.Interfaces(), WriterOptions{Comment: "vpndiag hop " + h.Name + " (" + h.Spec + ")"})
		if err != nil {
			src.Close()
			return fail(fmt.Errorf("hop %s: %w", h.Name, err))
		}
		sp.runs = append(sp.runs, spoolRun{tee: Tee(src, w), w: w, path: path})
		sp.res[i] = SpoolResult{Name: h.Name, Spec: h.Spec, Path: path}
	}
	return sp, nil
}

// Run drains every hop, one goroutine each, until the context given to
// OpenSpool ends, closes the files (with the kernel's statistics) and
// returns what each hop captured.
func (sp *Spooler) Run() []SpoolResult {
	var wg sync.WaitGroup
	for i, r := range sp.runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var f Frame
			var err error
			for err == nil {
				err = r.tee.Next(&f)
			}
			if !errors.Is(err, io.EOF) {
				sp.res[i].Err = err
			}
			sp.res[i].Interfaces = r.tee.Interfaces()
			sp.res[i].Frames = r.w.Frames()
			if cerr := r.tee.Close(); cerr != nil && sp.res[i].Err == nil {
				sp.res[i].Err = cerr
			}
		}()
	}
	wg.Wait()
	return sp.res
}
