//go:build linux

package nat

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/ti-mo/conntrack"
	"golang.org/x/sys/unix"

	"github.com/vpndiag/vpndiag/probe/hostexec"
)

// Collect reads a snapshot of the NAT state: conntrack entries with a source
// NAT, per-CPU and global conntrack statistics, the sysctls, and the NAT rules
// of nftables and iptables. Missing tools and unreadable sysctls are recorded
// in Snapshot.Warnings; a refused conntrack read is a *PermissionError.
func Collect(ctx context.Context, opt Options) (*Snapshot, error) {
	var snap *Snapshot
	err := inNetns(opt.NetNS, func() error {
		var err error
		snap, err = collect(ctx, opt)
		return err
	})
	return snap, err
}

// inNetns runs fn on an OS thread that has joined the named network namespace
// (or on the current one when name is ""). The thread is never returned to
// the Go scheduler, so no other goroutine runs in the namespace.
func inNetns(name string, fn func() error) error {
	if name == "" {
		return fn()
	}
	if strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
		return fmt.Errorf("network namespace %q: not a name from `ip netns list`", name)
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: the thread exits with the goroutine.
		path := "/run/netns/" + name
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("network namespace %s: %w", path, err)
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			if errors.Is(err, unix.EPERM) {
				errc <- &PermissionError{Op: "enter network namespace " + name, Err: err}
				return
			}
			errc <- fmt.Errorf("network namespace %s: setns: %w", name, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

func collect(ctx context.Context, opt Options) (*Snapshot, error) {
	s := &Snapshot{Time: time.Now()}
	c, err := conntrack.Dial(nil)
	if err != nil {
		return nil, permission("open conntrack netlink socket", err)
	}
	defer c.Close()
	if err := c.SetReadBuffer(8 << 20); err != nil && !errors.Is(err, unix.EPERM) {
		s.Warnings = append(s.Warnings, fmt.Sprintf("conntrack socket buffer: %v", err))
	}
	g, err := c.StatsGlobal()
	if err != nil {
		return nil, permission("conntrack global statistics", err)
	}
	s.Conntrack.Entries, s.Conntrack.Max = uint64(g.Entries), uint64(g.MaxEntries)
	stats, err := c.Stats()
	if err != nil {
		return nil, permission("conntrack per-CPU statistics", err)
	}
	s.Conntrack.Total.CPU = -1
	for _, st := range stats {
		cs := CPUStats{CPU: int(st.CPUID), Found: uint64(st.Found), Invalid: uint64(st.Invalid), Insert: uint64(st.Insert),
			InsertFailed: uint64(st.InsertFailed), Drop: uint64(st.Drop), EarlyDrop: uint64(st.EarlyDrop),
			Error: uint64(st.Error), SearchRestart: uint64(st.SearchRestart)}
		s.Conntrack.PerCPU = append(s.Conntrack.PerCPU, cs)
		s.Conntrack.Total.add(cs)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	flows, err := c.Dump(nil)
	if err != nil {
		return nil, permission("conntrack dump", err)
	}
	for i := range flows {
		if m, ok := mappingOf(&flows[i]); ok {
			s.Mappings = append(s.Mappings, m)
		}
	}
	readSysctls(s)
	if !opt.NoRules {
		readRules(ctx, s)
	}
	return s, nil
}

// mappingOf turns a source-NAT'd flow into a Mapping.
func mappingOf(f *conntrack.Flow) (Mapping, bool) {
	if !f.Status.SrcNAT() {
		return Mapping{}, false
	}
	o, r := f.TupleOrig, f.TupleReply
	return Mapping{
		Proto:     o.Proto.Protocol,
		Inside:    netip.AddrPortFrom(o.IP.SourceAddress, o.Proto.SourcePort),
		Dst:       netip.AddrPortFrom(r.IP.SourceAddress, r.Proto.SourcePort),
		NAT:       netip.AddrPortFrom(r.IP.DestinationAddress, r.Proto.DestinationPort),
		Unreplied: !f.Status.SeenReply(),
	}, true
}

func permission(op string, err error) error {
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) || errors.Is(err, os.ErrPermission) {
		return &PermissionError{Op: op, Err: err}
	}
	return fmt.Errorf("%s: %w", op, err)
}

// sysctlPaths lists the sysctls read into Sysctls.
var sysctlPaths = []struct {
	path string
	set  func(*Sysctls, []int)
}{
	{"net/ipv4/ip_local_port_range", func(s *Sysctls, v []int) {
		if len(v) == 2 {
			s.LocalPortMin, s.LocalPortMax = v[0], v[1]
		}
	}},
	{"net/netfilter/nf_conntrack_max", func(s *Sysctls, v []int) { s.ConntrackMax = v[0] }},
	{"net/netfilter/nf_conntrack_count", func(s *Sysctls, v []int) { s.ConntrackCount = v[0] }},
	{"net/netfilter/nf_conntrack_buckets", func(s *Sysctls, v []int) { s.ConntrackBuckets = v[0] }},
	{"net/netfilter/nf_conntrack_udp_timeout", func(s *Sysctls, v []int) { s.UDPTimeout = v[0] }},
	{"net/netfilter/nf_conntrack_udp_timeout_stream", func(s *Sysctls, v []int) { s.UDPTimeoutStream = v[0] }},
	{"net/netfilter/nf_conntrack_tcp_timeout_established", func(s *Sysctls, v []int) { s.TCPTimeoutEst = v[0] }},
	{"net/netfilter/nf_conntrack_tcp_timeout_time_wait", func(s *Sysctls, v []int) { s.TCPTimeoutTimeWait = v[0] }},
}

func readSysctls(s *Snapshot) {
	for _, sc := range sysctlPaths {
		b, err := os.ReadFile("/proc/sys/" + sc.path)
		if err != nil {
			s.Warnings = append(s.Warnings, fmt.Sprintf("sysctl %s: %v", strings.ReplaceAll(sc.path, "/", "."), err))
			continue
		}
		var vals []int
		for _, f := range strings.Fields(string(b)) {
			n, err := strconv.Atoi(f)
			if err != nil {
				break
			}
			vals = append(vals, n)
		}
		if len(vals) == 0 {
			s.Warnings = append(s.Warnings, fmt.Sprintf("sysctl %s: unexpected value %q", strings.ReplaceAll(sc.path, "/", "."), strings.TrimSpace(string(b))))
			continue
		}
		sc.set(&s.Sysctls, vals)
	}
}

// readRules runs nft and the iptables-save variants that are installed.
func readRules(ctx context.Context, s *Snapshot) {
	if out, err := hostexec.Run(ctx, "nft", "-j", "list", "ruleset"); err != nil {
		s.Warnings = append(s.Warnings, fmt.Sprintf("nftables rules not read: %v", err))
	} else if rules, err := ParseNFT(out); err != nil {
		s.Warnings = append(s.Warnings, err.Error())
	} else {
		s.Rules = append(s.Rules, rules...)
	}
	found := false
	seen := map[string]bool{} // backend + family already read
	for _, tool := range []string{"iptables-save", "ip6tables-save", "iptables-legacy-save", "ip6tables-legacy-save"} {
		if _, err := exec.LookPath(tool); err != nil {
			continue
		}
		found = true
		out, err := hostexec.Run(ctx, tool, "-t", "nat")
		if err != nil {
			s.Warnings = append(s.Warnings, fmt.Sprintf("%s rules not read: %v", tool, err))
			continue
		}
		source, family := IPTablesBackend(out), "ip"
		if strings.HasPrefix(tool, "ip6") {
			source, family = "ip6"+strings.TrimPrefix(source, "ip"), "ip6"
		}
		if seen[source] {
			continue
		}
		seen[source] = true
		rules, err := ParseIPTablesSave(out, source)
		if err != nil {
			s.Warnings = append(s.Warnings, err.Error())
			continue
		}
		if strings.HasSuffix(source, "-nft") {
			// iptables-nft rules are nftables rules too: keep the iptables
			// view (the operator edits them with iptables).
			s.Rules = dropNFTTable(s.Rules, family+" nat/")
		}
		s.Rules = append(s.Rules, rules...)
	}
	if !found {
		s.Warnings = append(s.Warnings, "iptables-save not installed: iptables rules not read (apt-get install iptables)")
	}
}
