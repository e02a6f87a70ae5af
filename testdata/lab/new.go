package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// needMsg is the message for a machine that cannot run lab tests.
const needMsg = "lab tests need root and: apt-get install iproute2 nftables ethtool tcpdump"

// aptPackage names the Debian package of each tool the lab or its tests use.
var aptPackage = map[string]string{
	"ip": "iproute2", "nft": "nftables", "ethtool": "ethtool", "tcpdump": "tcpdump",
	"tshark": "tshark", "dumpcap": "wireshark-common", "mergecap": "wireshark-common",
	"capinfos": "wireshark-common", "conntrack": "conntrack", "dnsmasq": "dnsmasq-base",
	"iperf3": "iperf3", "ping": "iputils-ping", "sysctl": "procps", "go": "golang (Go toolchain)",
}

// upTimeout bounds New's Up.
const upTimeout = 2 * time.Minute

// Require fails tb unless the process is root and the base lab tools (ip,
// nft, ethtool, tcpdump, sysctl) plus the extra tools named are installed;
// the message names the apt packages to install.
func Require(tb testing.TB, tools ...string) {
	tb.Helper()
	if err := check(tools...); err != nil {
		tb.Fatal(err)
	}
}

func check(tools ...string) error {
	var missing []string
	pkgs := map[string]bool{}
	for _, tool := range append([]string{"ip", "nft", "ethtool", "tcpdump", "sysctl"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
			if p := aptPackage[tool]; p != "" {
				pkgs[p] = true
			} else {
				pkgs[tool] = true
			}
		}
	}
	root := os.Geteuid() == 0
	if root && len(missing) == 0 {
		return nil
	}
	var why []string
	if !root {
		why = append(why, "not running as root")
	}
	if len(missing) > 0 {
		var p []string
		for k := range pkgs {
			p = append(p, k)
		}
		sort.Strings(p)
		why = append(why, fmt.Sprintf("missing %s (apt-get install %s)", strings.Join(missing, ", "), strings.Join(p, " ")))
	}
	return fmt.Errorf("%s; here: %s", needMsg, strings.Join(why, "; "))
}

// New parses text, brings the topology up and registers Down with
// tb.Cleanup, so the namespaces go away also when the test fails. It calls
// tb.Fatal when not root, when ip/nft/ethtool/tcpdump are missing, or when
// the description or the setup fails.
func New(tb testing.TB, text string) *Topology {
	tb.Helper()
	Require(tb)
	t, err := Parse(text)
	if err != nil {
		tb.Fatalf("lab description: %v", err)
	}
	tb.Cleanup(func() {
		if err := t.Down(); err != nil {
			tb.Errorf("lab: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), upTimeout)
	defer cancel()
	if err := t.Up(ctx); err != nil {
		tb.Fatalf("%v", err)
	}
	tb.Logf("lab up: %s", t)
	return t
}

var (
	toolOnce sync.Once
	toolPath string
	toolErr  error
)

// toolDirPrefix names the per-process directory of the labtool binary.
const toolDirPrefix = "vpndiag-labtool-"

// Tool builds the labtool traffic generator (testdata/lab/labtool) once per
// test process and returns the path of the binary. Run it inside a lab host
// with Exec or Start. It fails tb if the build fails.
func Tool(tb testing.TB) string {
	tb.Helper()
	toolOnce.Do(func() { toolPath, toolErr = buildTool() })
	if toolErr != nil {
		tb.Fatal(toolErr)
	}
	return toolPath
}

// BuildTool builds labtool into dir and returns the binary's path.
func BuildTool(dir string) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("build labtool: the go command is not in PATH")
	}
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("build labtool: cannot locate the lab package sources")
	}
	out := filepath.Join(dir, "labtool")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", out, "./labtool")
	cmd.Dir = filepath.Dir(self)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build labtool: %w: %s", err, b)
	}
	return out, nil
}

func buildTool() (string, error) {
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("%s%d", toolDirPrefix, os.Getpid()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("build labtool: %w", err)
	}
	return BuildTool(dir)
}
