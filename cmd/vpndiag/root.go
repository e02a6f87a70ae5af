package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes, as documented in the README.
const (
	exitOK       = 0 // nothing at or above --fail-on
	exitFindings = 1 // findings at or above --fail-on
	exitUsage    = 2 // bad usage or unreadable input
	exitRuntime  = 3 // runtime failure: no permission to capture, peer unreachable
)

// commandFactories are the subcommands; each command file adds itself in init.
var commandFactories []func(*globalOptions) *cobra.Command

func register(f func(*globalOptions) *cobra.Command) { commandFactories = append(commandFactories, f) }

// newRootCmd builds the command tree with all registered subcommands.
func newRootCmd(g *globalOptions) *cobra.Command {
	root := &cobra.Command{
		Use:   "vpndiag",
		Short: "Diagnose VPN and network incidents from captures and live hosts",
		Long: `vpndiag answers, in minutes, the questions VPN incidents leave to days of manual work:
where along a path packets are lost (through NAT and tunnels), whether a NAT's port pool
is exhausted, what a tunnel costs over its underlay, and whether a bad route is breaking
a tunnel.

Every command prints a report (--format text|json|md, -o FILE). Exit codes: 0 nothing at
or above --fail-on, 1 findings at or above it, 2 bad usage or unreadable input, 3 a runtime
failure (no permission to capture, peer unreachable).`,
		Example: `  vpndiag analyze capture.pcapng
  vpndiag analyze --format json -o report.json captures/
  vpndiag version`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	g.bind(root)
	for _, f := range commandFactories {
		root.AddCommand(f(g))
	}
	return root
}

// run executes the command line and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	g := &globalOptions{stdout: stdout, stderr: stderr}
	root := newRootCmd(g)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintf(stderr, "vpndiag: %v\n", ee.err)
		}
		return ee.code
	}
	// Errors from cobra itself (unknown flag or command, bad arguments).
	msg := err.Error()
	fmt.Fprintf(stderr, "vpndiag: %s\n", msg)
	if !strings.Contains(msg, "--help") {
		fmt.Fprintf(stderr, "Run 'vpndiag --help' for usage.\n")
	}
	return exitUsage
}

// exitError carries an exit code up to run. A nil err prints nothing.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// usageErr is bad usage or unreadable input (exit 2).
func usageErr(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// runtimeErr is a failure at run time (exit 3).
func runtimeErr(err error) error { return &exitError{code: exitRuntime, err: err} }
