package lab

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// captureStartTimeout bounds how long Capture waits for the capture tool to
// report that it is listening.
const captureStartTimeout = 15 * time.Second

// Capture is a running tcpdump (or dumpcap) inside a lab namespace.
type Capture struct {
	Host   string
	Ifaces []string
	File   string

	proc   *Proc
	settle time.Duration
	mu     sync.Mutex
	done   bool
	err    error
	stats  CaptureStats
}

// CaptureStats are the numbers a capture reports once stopped.
type CaptureStats struct {
	Packets  int // frames in the file, counted by reading it back
	Captured int // what the tool said it wrote
	Dropped  int // dropped by the kernel, as the tool reported
}

// Capture starts tcpdump -i iface -w file -U --immediate-mode in host's
// namespace (pcap, default snap length, optional BPF filter) and returns once
// tcpdump reports it is listening, so no packet sent afterwards is missed.
// ctx bounds only the start; the capture runs until Stop or Down.
func (t *Topology) Capture(ctx context.Context, host, iface, file, filter string) (*Capture, error) {
	argv := []string{"tcpdump", "-i", iface, "-w", file, "-U", "--immediate-mode", "-n", "-Z", "root"}
	if filter != "" {
		argv = append(argv, filter)
	}
	return t.startCapture(ctx, host, []string{iface}, file, argv, "listening on")
}

// CaptureNG starts dumpcap on several interfaces of host at once, writing one
// pcapng file whose interface blocks carry the interface names. Like
// Capture, it returns once dumpcap is capturing.
func (t *Topology) CaptureNG(ctx context.Context, host string, ifaces []string, file, filter string) (*Capture, error) {
	argv := []string{"dumpcap", "-q", "-w", file}
	for _, i := range ifaces {
		argv = append(argv, "-i", i)
		if filter != "" {
			argv = append(argv, "-f", filter)
		}
	}
	// dumpcap prints "File: NAME" once it has opened every interface, set
	// the filters and created the output file.
	return t.startCapture(ctx, host, ifaces, file, argv, "File: ")
}

func (t *Topology) startCapture(ctx context.Context, host string, ifaces []string, file string, argv []string, ready string) (*Capture, error) {
	p, err := t.Start(context.WithoutCancel(ctx), host, argv...)
	if err != nil {
		return nil, fmt.Errorf("capture on %s: %w", host, err)
	}
	c := &Capture{Host: host, Ifaces: ifaces, File: file, proc: p, settle: 150 * time.Millisecond}
	if argv[0] == "dumpcap" {
		c.settle = 600 * time.Millisecond // no immediate mode: allow for its buffer timeout
	}
	wctx, cancel := context.WithTimeout(ctx, captureStartTimeout)
	defer cancel()
	if err := p.WaitFor(wctx, ready); err != nil {
		_ = p.Stop()
		return nil, fmt.Errorf("capture on %s:%s: %w", host, strings.Join(ifaces, ","), err)
	}
	t.mu.Lock()
	t.caps = append(t.caps, c)
	t.mu.Unlock()
	return c, nil
}

// Stop waits briefly for packets still in flight, ends the capture cleanly
// (SIGINT, then wait), then reads the file back
// and checks that it parses and holds as many frames as the tool said it
// wrote. Calling Stop again returns the first result.
func (c *Capture) Stop() error { return c.stop(true) }

func (c *Capture) stop(wait bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		if !wait {
			return nil
		}
		return c.err
	}
	c.done = true
	if wait {
		time.Sleep(c.settle)
	}
	c.err = c.finish()
	return c.err
}

var (
	capturedRe = regexp.MustCompile(`(?m)^(\d+) packets? captured`)
	droppedRe  = regexp.MustCompile(`(?m)^(\d+) packets? dropped by kernel`)
	ngCountRe  = regexp.MustCompile(`(?m)^Packets(?: captured)?: (\d+)`)
	ngDropRe   = regexp.MustCompile(`dropped on interface '[^']*': \d+/(\d+)`)
)

func (c *Capture) finish() error {
	where := fmt.Sprintf("capture %s on %s:%s", c.File, c.Host, strings.Join(c.Ifaces, ","))
	if err := c.proc.Signal(syscall.SIGINT); err != nil {
		return fmt.Errorf("%s: the capture tool had exited: %v: %s", where, c.proc.exitErr(), tail(c.proc.Stderr(), 300))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.proc.Wait(ctx); err != nil {
		_ = c.proc.Stop()
		return fmt.Errorf("%s: %w", where, err)
	}
	stderr := c.proc.Stderr()
	if m := capturedRe.FindStringSubmatch(stderr); m != nil {
		c.stats.Captured, _ = strconv.Atoi(m[1])
	} else if m := ngCountRe.FindStringSubmatch(stderr); m != nil {
		c.stats.Captured, _ = strconv.Atoi(m[1])
	} else {
		c.stats.Captured = -1
	}
	if m := droppedRe.FindStringSubmatch(stderr); m != nil {
		c.stats.Dropped, _ = strconv.Atoi(m[1])
	}
	for _, m := range ngDropRe.FindAllStringSubmatch(stderr, -1) {
		n, _ := strconv.Atoi(m[1])
		c.stats.Dropped += n
	}
	n, err := CountPackets(c.File)
	if err != nil {
		return fmt.Errorf("%s: file does not parse: %w", where, err)
	}
	c.stats.Packets = n
	if c.stats.Captured >= 0 && n != c.stats.Captured {
		return fmt.Errorf("%s: file holds %d frames but the tool reported %d captured", where, n, c.stats.Captured)
	}
	return nil
}

// Stats returns the capture's numbers; valid after Stop.
func (c *Capture) Stats() CaptureStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}
