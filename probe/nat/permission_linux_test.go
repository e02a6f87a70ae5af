//go:build linux

package nat

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCollectUnprivileged runs Collect as user nobody: the kernel refuses the
// conntrack read and the error names CAP_NET_ADMIN.
func TestCollectUnprivileged(t *testing.T) {
	needTool(t, "setpriv", "util-linux")
	if os.Geteuid() != 0 {
		t.Fatal("this test switches to user nobody and needs root to do so")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "nat.test")
	data, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", bin, "-test.run=^$")
	cmd.Env = append(os.Environ(), "VDNAT_ROLE=collect")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("exit %v, want 3 (PermissionError); output:\n%s", err, out)
	}
	if !strings.Contains(string(out), "CAP_NET_ADMIN") {
		t.Errorf("message does not name CAP_NET_ADMIN: %s", out)
	}
	t.Logf("%s", out)
}
