package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// stopGrace is how long Stop waits after SIGTERM before SIGKILL.
const stopGrace = 3 * time.Second

// Proc is a background process running inside a lab namespace.
type Proc struct {
	Host string   // lab host it runs on
	Argv []string // command as given to Start

	cmd    *exec.Cmd
	stdout syncBuffer
	stderr syncBuffer
	done   chan struct{}
	err    error // exit status, valid after done is closed
}

// syncBuffer is a bytes.Buffer safe for one writer and many readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Start runs argv in the background inside host's namespace, in its own
// process group. The process is killed when ctx is done, when Stop is called,
// or at Down, whichever comes first. Its output is kept in memory (Stdout,
// Stderr), so it should not be chatty.
func (t *Topology) Start(ctx context.Context, host string, argv ...string) (*Proc, error) {
	ns, err := t.liveNS(host)
	if err != nil {
		return nil, err
	}
	if len(argv) == 0 {
		return nil, fmt.Errorf("start on %s: empty command", host)
	}
	p := &Proc{Host: host, Argv: argv, done: make(chan struct{})}
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, argv...)...)
	cmd.Stdout, cmd.Stderr = &p.stdout, &p.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	p.cmd = cmd
	t.mu.Lock()
	if t.down {
		t.mu.Unlock()
		return nil, fmt.Errorf("start on %s: topology is down", host)
	}
	if err := cmd.Start(); err != nil {
		t.mu.Unlock()
		return nil, fmt.Errorf("start %s on %s: %w", strings.Join(argv, " "), host, err)
	}
	t.procs = append(t.procs, p)
	t.mu.Unlock()
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// PID returns the process id (of the command itself: ip netns exec execs it).
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Stdout returns what the process wrote to standard output so far.
func (p *Proc) Stdout() string { return p.stdout.String() }

// Stderr returns what the process wrote to standard error so far.
func (p *Proc) Stderr() string { return p.stderr.String() }

// Wait waits for the process to exit by itself, at most until ctx is done,
// and returns its exit error.
func (p *Proc) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.exitErr()
	case <-ctx.Done():
		return fmt.Errorf("wait for %s on %s: %w", p.Argv[0], p.Host, ctx.Err())
	}
}

func (p *Proc) exitErr() error {
	if p.err != nil {
		return fmt.Errorf("%s on %s: %w: %s", strings.Join(p.Argv, " "), p.Host, p.err, tail(p.Stderr(), 500))
	}
	return nil
}

// WaitFor waits until the process's stdout or stderr contains substr (for
// example a "listening on" banner). It fails if the process exits first or
// ctx is done.
func (p *Proc) WaitFor(ctx context.Context, substr string) error {
	return p.WaitForN(ctx, substr, 1)
}

// WaitForN is WaitFor for the n-th occurrence of substr in stdout or
// stderr (for example a server's banner printed again after each test).
func (p *Proc) WaitForN(ctx context.Context, substr string, n int) error {
	seen := func() bool {
		return strings.Count(p.Stderr(), substr)+strings.Count(p.Stdout(), substr) >= n
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if seen() {
			return nil
		}
		select {
		case <-p.done:
			if seen() {
				return nil
			}
			return fmt.Errorf("%s on %s exited before printing %q %d times: %v: %s", p.Argv[0], p.Host, substr, n, p.err, tail(p.Stderr(), 500))
		case <-ctx.Done():
			return fmt.Errorf("%s on %s did not print %q %d times: %w; stderr: %s", p.Argv[0], p.Host, substr, n, ctx.Err(), tail(p.Stderr(), 500))
		case <-tick.C:
		}
	}
}

// Signal sends sig to the process.
func (p *Proc) Signal(sig syscall.Signal) error {
	select {
	case <-p.done:
		return errStopped
	default:
	}
	return p.cmd.Process.Signal(sig)
}

var errStopped = errors.New("process already exited")

// Stop ends the process: SIGTERM to its process group, then SIGKILL after
// a grace period. It returns nil if the process had exited by itself
// successfully or ended on the signal; calling it again is harmless.
func (p *Proc) Stop() error {
	select {
	case <-p.done:
		return p.exitErr()
	default:
	}
	pid := p.cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopGrace):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		select {
		case <-p.done:
		case <-time.After(stopGrace):
			return fmt.Errorf("stop %s on %s: still running after SIGKILL", p.Argv[0], p.Host)
		}
	}
	return nil
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
