package analyzetest

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ToolTimeout bounds every run of a Wireshark command-line tool.
const ToolTimeout = time.Minute

// Tool runs a Wireshark command-line tool (tshark, editcap, mergecap,
// capinfos) with args and returns its standard output. It fails the test,
// naming the apt package, when the tool is missing, and with the command line
// and the tool's standard error when it fails or runs longer than ToolTimeout.
func Tool(tb testing.TB, name string, args ...string) string {
	tb.Helper()
	if _, err := exec.LookPath(name); err != nil {
		tb.Fatalf("%s not found: apt-get install tshark (it brings %s)", name, name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), ToolTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = 5 * time.Second
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		tb.Fatalf("%s %s: timed out after %v: %s", name, strings.Join(args, " "), ToolTimeout, stderr.String())
	}
	if err != nil {
		tb.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// Tshark runs tshark -r file -Y filter -T fields -e fields... and returns one
// row per matching frame, the fields of a row split (frame.number when no
// field is given). A field with several occurrences keeps tshark's comma
// aggregation inside its cell.
func Tshark(tb testing.TB, file, filter string, fields ...string) [][]string {
	tb.Helper()
	return TsharkWith(tb, nil, file, filter, fields...)
}

// TsharkWith is Tshark with extra options (e.g. -2, -o pref:value, -q -z
// conv,udp) placed first. Name resolution is off (-n) and fields are
// tab-separated, tshark's default: no field value the tests read contains a
// tab, while "|" and "," appear in some (e.g. Info, aggregated occurrences).
func TsharkWith(tb testing.TB, opts []string, file, filter string, fields ...string) [][]string {
	tb.Helper()
	if len(fields) == 0 {
		fields = []string{"frame.number"}
	}
	args := append(append([]string{}, opts...), "-r", file, "-n",
		// The corelight WireGuard capture in the corpus runs WireGuard on UDP
		// port 51194, not 51820, and tshark dissects WireGuard on another
		// port only when told. Decoding 51194 as wg for every test keeps one
		// oracle for all analyzers: no other corpus capture has UDP port
		// 51194, and should a lab capture's ephemeral port be 51194, tshark
		// still tries the lower (service) port's dissector first.
		"-d", "udp.port==51194,wg",
		"-Y", filter, "-T", "fields")
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	var rows [][]string
	for _, line := range strings.Split(strings.TrimRight(Tool(tb, "tshark", args...), "\n"), "\n") {
		if line != "" {
			rows = append(rows, strings.Split(line, "\t"))
		}
	}
	return rows
}

// Editcap runs editcap -F pcap opts... in out frames... and returns the new
// capture, written in a fresh temporary directory of the test.
func Editcap(tb testing.TB, in string, opts []string, frames ...string) string {
	tb.Helper()
	out := filepath.Join(tb.TempDir(), "edited.pcap")
	args := append(append([]string{"-F", "pcap"}, opts...), in, out)
	Tool(tb, "editcap", append(args, frames...)...)
	return out
}

// Concat concatenates captures in order (mergecap -a) into a new pcap in a
// fresh temporary directory of the test and returns its path.
func Concat(tb testing.TB, files ...string) string {
	tb.Helper()
	out := filepath.Join(tb.TempDir(), "merged.pcap")
	Tool(tb, "mergecap", append([]string{"-a", "-F", "pcap", "-w", out}, files...)...)
	return out
}
