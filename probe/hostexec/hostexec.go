// Package hostexec runs the host's own inspection tools (nft,
// iptables-save, ...) for the live probes that read what netlink does not
// give: bounded in time, with an install hint when a tool is missing and
// the tool's stderr in the error.
package hostexec

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// Timeout bounds one tool run.
const Timeout = 10 * time.Second

// packages names the Debian package of tools whose package is named
// otherwise.
var packages = map[string]string{"nft": "nftables"}

// Run runs name with args and returns its standard output. A tool not on
// PATH is an error naming the package to install; a failing run is an
// error with the command line and the tool's stderr.
func Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	if _, err := exec.LookPath(name); err != nil {
		pkg := name
		if p, ok := packages[name]; ok {
			pkg = p
		}
		return nil, fmt.Errorf("%s not installed (apt-get install %s)", name, pkg)
	}
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}
