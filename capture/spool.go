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
// specification (iface:NAME, ssh://HOST/IFACE), and the pcapng file to write.
type SpoolHop struct {
	Name string
	Spec string
	Path string // "" = DIR/NAME.pcapng, DIR given to Spool
	// Optional hops may fail to open (a remote host unreachable, auth
	// refused, tcpdump missing) without failing OpenSpool: the hop is left
	// out, and its SpoolResult has Failed set and Err saying why.
	Optional bool
}

// SpoolResult is what Spool recorded for one hop.
type SpoolResult struct {
	Name       string
	Spec       string
	Path       string      // the complete pcapng file
	Frames     uint64      // frames written
	Interfaces []Interface // with the kernel's final statistics
	Err        error       // a read or write error that ended this hop early, or why it could not be opened
	Failed     bool        // an Optional hop that could not be opened: nothing was captured, Path does not exist
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
	idx  int // index into res (and the hops given to OpenSpool)
	tee  Source
	w    *PcapngWriter
	path string
}

// OpenSpool opens every live hop and its pcapng file. Remote hops are
// opened at the same time (one goroutine each, while the local ones open),
// so hops that take a connection and a login to open all start capturing
// within a short window. On error nothing stays open and no file is left behind; an
// Optional hop that fails is recorded in its result (Failed, Err) instead.
func OpenSpool(ctx context.Context, dir string, hops []SpoolHop, opts SpecOptions) (*Spooler, error) {
	specs := make([]Spec, len(hops))
	for i, h := range hops {
		spec, err := ParseSpec(h.Spec)
		if err != nil {
			return nil, fmt.Errorf("hop %s: %w", h.Name, err)
		}
		if !spec.Live() {
			return nil, fmt.Errorf("hop %s: %s is a file, not a live source", h.Name, h.Spec)
		}
		specs[i] = spec
	}
	if dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("spool: %w", err)
		}
	}
	srcs := make([]Source, len(hops))
	errs := make([]error, len(hops))
	open := func(i int) {
		o := opts
		o.Hop = hops[i].Name
		srcs[i], errs[i] = specs[i].Open(ctx, o)
	}
	// Remote hops open in goroutines; local interfaces in the calling
	// goroutine, whose thread's network namespace their sockets belong to
	// (a caller may have entered one with netns.Do).
	var wg sync.WaitGroup
	for i := range hops {
		if specs[i].Kind == SpecSSH {
			wg.Add(1)
			go func() {
				defer wg.Done()
				open(i)
			}()
		}
	}
	for i := range hops {
		if specs[i].Kind != SpecSSH {
			open(i)
		}
	}
	wg.Wait()
	sp := &Spooler{res: make([]SpoolResult, len(hops))}
	fail := func(err error) (*Spooler, error) {
		for _, r := range sp.runs {
			r.tee.Close()
			os.Remove(r.path) // nothing was captured into it
		}
		for i, src := range srcs {
			if src != nil && errs[i] == nil {
				src.Close()
			}
		}
		return nil, err
	}
	for i, h := range hops {
		if errs[i] != nil && !h.Optional {
			return fail(fmt.Errorf("hop %s: %w", h.Name, errs[i]))
		}
	}
	for i, h := range hops {
		sp.res[i] = SpoolResult{Name: h.Name, Spec: h.Spec}
		if errs[i] != nil {
			sp.res[i].Failed, sp.res[i].Err = true, errs[i]
			continue
		}
		src := srcs[i]
		srcs[i] = nil
		path := h.Path
		if path == "" {
			path = filepath.Join(dir, h.Name+".pcapng")
		}
		w, err := CreatePcapng(path, src.Interfaces(), WriterOptions{Comment: "vpndiag hop " + h.Name + " (" + h.Spec + ")"})
		if err != nil {
			src.Close()
			return fail(fmt.Errorf("hop %s: %w", h.Name, err))
		}
		sp.runs = append(sp.runs, spoolRun{idx: i, tee: Tee(src, w), w: w, path: path})
		sp.res[i].Path = path
	}
	return sp, nil
}

// Failures returns the Optional hops that could not be opened (Failed
// set, Err the reason), in the order given.
func (sp *Spooler) Failures() []SpoolResult {
	var f []SpoolResult
	for _, r := range sp.res {
		if r.Failed {
			f = append(f, r)
		}
	}
	return f
}

// Abort closes every open hop and removes its file, instead of Run.
func (sp *Spooler) Abort() {
	for _, r := range sp.runs {
		r.tee.Close()
		os.Remove(r.path)
	}
	sp.runs = nil
}

// Run drains every hop, one goroutine each, until the context given to
// OpenSpool ends, closes the files (with the kernel's statistics) and
// returns what each hop captured (and, for Optional hops that could not be
// opened, why), in the order the hops were given.
func (sp *Spooler) Run() []SpoolResult { return sp.RunNotify(nil) }

// RunNotify is Run that also calls ended (when not nil) as soon as a hop
// has ended with an error (a remote host lost, say) while the others may
// still capture: its result is final then (Frames, Interfaces, Err), and
// its file complete. ended is called from the hop's goroutine, so calls
// for different hops may overlap.
func (sp *Spooler) RunNotify(ended func(SpoolResult)) []SpoolResult {
	var wg sync.WaitGroup
	for _, r := range sp.runs {
		i := r.idx
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
			if sp.res[i].Err != nil && ended != nil {
				ended(sp.res[i])
			}
		}()
	}
	wg.Wait()
	return sp.res
}
