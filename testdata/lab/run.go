package lab

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// cmdTimeout bounds every setup command that has no deadline of its own.
const cmdTimeout = 30 * time.Second

// run executes argv and returns its stdout; a failure carries argv and stderr.
func run(ctx context.Context, argv ...string) ([]byte, error) {
	return runInput(ctx, "", argv...)
}

// runInput is run with stdin fed from input.
func runInput(ctx context.Context, input string, argv ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.WaitDelay = 2 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if input != "" {
		cmd.Stdin = strings.NewReader(input)
	}
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = strings.TrimSpace(stdout.String())
		}
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", err, ctx.Err())
		}
		return stdout.Bytes(), fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, msg)
	}
	return stdout.Bytes(), nil
}

// Exec runs argv inside host's namespace (ip netns exec) and returns its
// standard output. A failure names the command and carries its stderr.
func (t *Topology) Exec(ctx context.Context, host string, argv ...string) ([]byte, error) {
	ns, err := t.liveNS(host)
	if err != nil {
		return nil, err
	}
	if len(argv) == 0 {
		return nil, fmt.Errorf("exec on %s: empty command", host)
	}
	return run(ctx, append([]string{"ip", "netns", "exec", ns}, argv...)...)
}

// Sh runs a shell command line (sh -c) inside host's namespace.
func (t *Topology) Sh(ctx context.Context, host, script string) ([]byte, error) {
	return t.Exec(ctx, host, "sh", "-c", script)
}

// liveNS returns host's namespace, or an error if the topology is not up.
func (t *Topology) liveNS(host string) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	h := t.hostByName[host]
	switch {
	case h == nil:
		return "", fmt.Errorf("unknown host %q", host)
	case h.ns == "" || t.down:
		return "", fmt.Errorf("host %q: topology is not up", host)
	}
	return h.ns, nil
}
