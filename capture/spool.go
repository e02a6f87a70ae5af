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

// Spool records live hops at the same time, each into its own pcapng file
// (interface description = hop name, statistics blocks with the kernel's
// drop counts), until ctx is done; a hop whose source or file fails stops
// alone, with the error in its result. All sources are opened
// first, synchronously in the calling goroutine (so a caller may switch
// network namespaces around the call), and any open error — ErrNoInterface,
// os.ErrPermission, *FilterError — is returned before anything is captured.
// Then one goroutine per hop drains its source through Tee. When ctx is
// done every hop gets the kernel's last frames, its file is finished
// (complete and readable), and Spool returns. Files are written to dir
// (created if needed) unless a hop names its Path.
//
// This is how trace takes live hops: spool them for --duration or until
// Ctrl-C, then correlate the files (with --save DIR they are kept).
func Spool(ctx context.Context, dir string, hops []SpoolHop, opts SpecOptions) ([]SpoolResult, error) {
	if dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("spool: %w", err)
		}
	}
	type running struct {
		tee  Source
		w    *PcapngWriter
		path string
	}
	res := make([]SpoolResult, len(hops))
	runs := make([]running, 0, len(hops))
	fail := func(err error) ([]SpoolResult, error) {
		for _, r := range runs {
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
		runs = append(runs, running{tee: Tee(src, w), w: w, path: path})
		res[i] = SpoolResult{Name: h.Name, Spec: h.Spec, Path: path}
	}
	var wg sync.WaitGroup
	for i, r := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var f Frame
			var err error
			for err == nil {
				err = r.tee.Next(&f)
			}
			if !errors.Is(err, io.EOF) {
				res[i].Err = err
			}
			res[i].Interfaces = r.tee.Interfaces()
			res[i].Frames = r.w.Frames()
			if cerr := r.tee.Close(); cerr != nil && res[i].Err == nil {
				res[i].Err = cerr
			}
		}()
	}
	wg.Wait()
	return res, nil
}
