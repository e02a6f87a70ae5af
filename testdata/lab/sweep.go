package lab

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// StateDir holds one file per live topology, named ID.state, recording the
// creating process (PID and start time) and its namespaces, so Sweep can
// remove what a killed test left behind.
const StateDir = "/run/vpndiag-lab"

// NSPrefix starts every lab namespace name.
const NSPrefix = "vd"

func newID() string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("lab: crypto/rand: %v", err))
	}
	return hex.EncodeToString(b[:])
}

// procStart returns the start time of process pid (field 22 of
// /proc/PID/stat, clock ticks since boot), which tells a live process from a
// later one that reused its PID.
func procStart(pid int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')') // the command name may contain spaces
	if i < 0 {
		return "", fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return "", fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return f[19], nil // field 22 overall; fields after ")" start at field 3
}

func statePath(id string) string { return filepath.Join(StateDir, id+".state") }

// writeState records this process and namespaces for topology id.
func writeState(id string, namespaces []string) error {
	if err := os.MkdirAll(StateDir, 0o755); err != nil {
		return fmt.Errorf("lab state: %w", err)
	}
	pid := os.Getpid()
	start, err := procStart(pid)
	if err != nil {
		return fmt.Errorf("lab state: %w", err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "pid %d\nstart %s\n", pid, start)
	for _, ns := range namespaces {
		fmt.Fprintf(&b, "ns %s\n", ns)
	}
	tmp := statePath(id) + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("lab state: %w", err)
	}
	return os.Rename(tmp, statePath(id))
}

type state struct {
	pid   int
	start string
	ns    []string
}

func readState(path string) (state, error) {
	var st state
	f, err := os.Open(path)
	if err != nil {
		return st, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		switch k {
		case "pid":
			st.pid, _ = strconv.Atoi(v)
		case "start":
			st.start = v
		case "ns":
			st.ns = append(st.ns, v)
		}
	}
	return st, sc.Err()
}

// alive reports whether the process recorded in st still runs.
func (st state) alive() bool {
	if st.pid <= 0 {
		return false
	}
	start, err := procStart(st.pid)
	return err == nil && start == st.start
}

// Sweep removes the namespaces of lab topologies whose creating process is
// gone (a test binary that was killed before its cleanup ran): it kills every
// process still inside them, deletes them, and removes their state files.
// Topologies of live processes are left alone, as are "vd" namespaces that
// have no state file (other code may own them). It returns the namespaces it
// deleted. Sweep needs root.
func Sweep() ([]string, error) {
	files, err := filepath.Glob(filepath.Join(StateDir, "*.state"))
	if err != nil {
		return nil, fmt.Errorf("sweep: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	live := liveNamespaces(ctx)
	var removed []string
	var errs []error
	for _, path := range files {
		st, err := readState(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("sweep %s: %w", path, err))
			continue
		}
		if st.alive() {
			continue
		}
		id := strings.TrimSuffix(filepath.Base(path), ".state")
		names := map[string]bool{}
		for _, ns := range st.ns {
			names[ns] = true
		}
		for ns := range live {
			if strings.HasPrefix(ns, NSPrefix+id+"-") {
				names[ns] = true
			}
		}
		ok := true
		for ns := range names {
			if !live[ns] {
				continue
			}
			if err := deleteNS(ctx, ns); err != nil {
				errs = append(errs, err)
				ok = false
				continue
			}
			removed = append(removed, ns)
		}
		if ok {
			if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, fmt.Errorf("sweep: %w", err))
			}
		}
	}
	sweepToolDirs()
	return removed, errors.Join(errs...)
}

// sweepToolDirs removes labtool build directories of processes that are gone.
func sweepToolDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), toolDirPrefix+"*"))
	for _, d := range dirs {
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(d), toolDirPrefix))
		if err != nil || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); errors.Is(err, os.ErrNotExist) {
			_ = os.RemoveAll(d)
		}
	}
}

// liveNamespaces lists the named namespaces (ip netns list).
func liveNamespaces(ctx context.Context) map[string]bool {
	out := map[string]bool{}
	b, err := run(ctx, "ip", "netns", "list")
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			out[f[0]] = true
		}
	}
	return out
}

// NamespaceExists reports whether a named namespace exists (ip netns list).
func NamespaceExists(name string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	return liveNamespaces(ctx)[name]
}

// deleteNS kills every process inside ns, then deletes it.
func deleteNS(ctx context.Context, ns string) error {
	for range 3 {
		b, err := run(ctx, "ip", "netns", "pids", ns)
		if err != nil {
			break
		}
		pids := strings.Fields(string(b))
		if len(pids) == 0 {
			break
		}
		for _, p := range pids {
			if pid, err := strconv.Atoi(p); err == nil && pid != os.Getpid() {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := run(ctx, "ip", "netns", "del", ns); err != nil {
		if !liveNamespaces(ctx)[ns] {
			return nil
		}
		return fmt.Errorf("delete namespace %s: %w", ns, err)
	}
	return nil
}
