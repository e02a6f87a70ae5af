package lab

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// childEnv makes TestCleanupOnFailNow play the failing child.
const childEnv = "VPNDIAG_LAB_CHILD"

// TestCleanup brings a topology up, starts a process with Start and one
// with an exec statement, and checks Down removes the namespaces, kills both
// processes and the state file, and can be called twice.
func TestCleanup(t *testing.T) {
	topo := New(t, `
host a
host b
link a:eth0=198.18.1.1/24 b:eth0=198.18.1.2/24
exec b sleep 300 >/dev/null 2>&1 & echo $! > /run/vpndiag-lab/exec-sleep.pid
`)
	defer os.Remove("/run/vpndiag-lab/exec-sleep.pid")
	nss := topo.Namespaces()
	if len(nss) != 2 {
		t.Fatalf("namespaces %v, want 2", nss)
	}
	for _, ns := range nss {
		if !strings.HasPrefix(ns, "vd"+topo.ID()+"-") || !NamespaceExists(ns) {
			t.Fatalf("namespace %s missing or misnamed (id %s)", ns, topo.ID())
		}
	}
	p, err := topo.Start(t.Context(), "a", "sleep", "300")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("/run/vpndiag-lab/exec-sleep.pid")
	if err != nil {
		t.Fatal(err)
	}
	execPID, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if !alive(p.PID()) || !alive(execPID) {
		t.Fatalf("processes not running: start %d, exec %d", p.PID(), execPID)
	}
	if _, err := os.Stat(statePath(topo.ID())); err != nil {
		t.Fatalf("state file: %v", err)
	}
	if err := topo.Down(); err != nil {
		t.Fatal(err)
	}
	for _, ns := range nss {
		if NamespaceExists(ns) {
			t.Errorf("namespace %s still exists after Down", ns)
		}
	}
	time.Sleep(100 * time.Millisecond)
	if alive(p.PID()) || alive(execPID) {
		t.Errorf("processes survived Down: start %d alive %v, exec %d alive %v", p.PID(), alive(p.PID()), execPID, alive(execPID))
	}
	if _, err := os.Stat(statePath(topo.ID())); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state file still there: %v", err)
	}
	if err := topo.Down(); err != nil {
		t.Errorf("second Down: %v", err)
	}
	if _, err := topo.Exec(t.Context(), "a", "true"); err == nil {
		t.Error("Exec after Down succeeded")
	}
}

// TestUpFailureCleansUp makes Up fail at its last step (an exec statement
// that fails) and checks it removed the namespaces it had made.
func TestUpFailureCleansUp(t *testing.T) {
	Require(t)
	topo, err := Parse("host a\nhost b\nlink a:eth0 b:eth0\nexec b exit 3")
	if err != nil {
		t.Fatal(err)
	}
	err = topo.Up(t.Context())
	if err == nil || !strings.Contains(err.Error(), "line 4") {
		topo.Down()
		t.Fatalf("Up error = %v, want a failure naming line 4", err)
	}
	for _, h := range []string{"a", "b"} {
		if ns := topo.NS(h); ns == "" || NamespaceExists(ns) {
			t.Errorf("namespace %q of %s left behind after a failed Up", ns, h)
		}
	}
}

// TestCleanupOnFailNow runs itself as a child test process that brings a
// topology up, starts a process, records both, and calls t.FailNow. The
// parent checks that the child failed and that t.Cleanup still removed the
// namespaces and killed the process.
func TestCleanupOnFailNow(t *testing.T) {
	if rec := os.Getenv(childEnv); rec != "" {
		topo := New(t, "host a\nhost b\nlink a:eth0=198.18.1.1/24 b:eth0=198.18.1.2/24")
		p, err := topo.Start(context.Background(), "b", "sleep", "300")
		if err != nil {
			t.Fatal(err)
		}
		lines := append(topo.Namespaces(), "pid "+strconv.Itoa(p.PID()))
		if err := os.WriteFile(rec, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
			t.Fatal(err)
		}
		t.FailNow()
	}
	Require(t)
	rec := filepath.Join(t.TempDir(), "child.txt")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run", "^TestCleanupOnFailNow$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+rec)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(out.String(), "--- FAIL: TestCleanupOnFailNow") {
		t.Fatalf("child should fail with exit status 1, got %v:\n%s", err, out.String())
	}
	b, err := os.ReadFile(rec)
	if err != nil {
		t.Fatalf("child record: %v\n%s", err, out.String())
	}
	var nss []string
	pid := 0
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "pid "); ok {
			pid, _ = strconv.Atoi(v)
		} else if line != "" {
			nss = append(nss, line)
		}
	}
	if len(nss) != 2 || pid == 0 {
		t.Fatalf("child record %q", b)
	}
	for _, ns := range nss {
		if NamespaceExists(ns) {
			t.Errorf("namespace %s survived the failed child test", ns)
		}
	}
	if alive(pid) {
		t.Errorf("process %d started by the failed child survived", pid)
	}
}

// TestSweep fakes a topology whose creator died (a state file naming a dead
// PID, a namespace with a process inside) and one of a live process, and
// checks Sweep removes exactly the first.
func TestSweep(t *testing.T) {
	Require(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	deadID, liveID := newID(), newID()
	deadNS, liveNS := NSPrefix+deadID+"-x", NSPrefix+liveID+"-y"
	strayNS := NSPrefix + deadID + "-stray" // not in the file, but with the dead id
	t.Cleanup(func() {
		for _, ns := range []string{deadNS, liveNS, strayNS} {
			_ = deleteNS(context.Background(), ns)
		}
		os.Remove(statePath(deadID))
		os.Remove(statePath(liveID))
	})
	for _, ns := range []string{deadNS, liveNS, strayNS} {
		if _, err := run(ctx, "ip", "netns", "add", ns); err != nil {
			t.Fatal(err)
		}
	}
	sleeper := exec.Command("ip", "netns", "exec", deadNS, "sleep", "300")
	sleeper.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	go sleeper.Wait()
	if err := os.MkdirAll(StateDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(statePath(deadID), []byte("pid "+strconv.Itoa(dead.Process.Pid)+"\nstart 1\nns "+deadNS+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeState(liveID, []string{liveNS}); err != nil {
		t.Fatal(err)
	}
	removed, err := Sweep()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, ns := range removed {
		got[ns] = true
	}
	if !got[deadNS] || !got[strayNS] || got[liveNS] || len(removed) != 2 {
		t.Errorf("Sweep removed %v, want %s and %s only", removed, deadNS, strayNS)
	}
	if NamespaceExists(deadNS) || NamespaceExists(strayNS) || !NamespaceExists(liveNS) {
		t.Errorf("after Sweep: dead %v stray %v live %v, want false false true",
			NamespaceExists(deadNS), NamespaceExists(strayNS), NamespaceExists(liveNS))
	}
	if _, err := os.Stat(statePath(deadID)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dead state file not removed: %v", err)
	}
	if _, err := os.Stat(statePath(liveID)); err != nil {
		t.Errorf("live state file removed: %v", err)
	}
	time.Sleep(100 * time.Millisecond)
	if alive(sleeper.Process.Pid) {
		t.Errorf("process %d inside the swept namespace survived", sleeper.Process.Pid)
	}
}
