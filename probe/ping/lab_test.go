package ping

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vpndiag/vpndiag/probe/netns"
	"github.com/vpndiag/vpndiag/testdata/lab"
)

// The lab tests run pro-bing in namespace "a" by switching a locked OS
// thread into it (netns.Do): the ICMP socket is created there and stays
// there, so the test needs no child process and can use the API directly.

const twoHosts = `
host a
host b
link a:eth0=198.18.7.1/24 b:eth0=198.18.7.2/24
mtu a:eth0 1300
mtu b:eth0 1300
loss b input icmp saddr 198.18.7.1/32 daddr 198.18.7.3/32 30%
addr b:eth0 198.18.7.3/24
addr a:eth0 2001:2:0:7::1/64
addr b:eth0 2001:2:0:7::2/64
`

func pingIn(t *testing.T, l *lab.Topology, host string, cfg Config) (*Stats, error) {
	t.Helper()
	var st *Stats
	var err error
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if e := netns.Do(l.NS(host), func() error {
		st, err = Run(ctx, cfg)
		return nil
	}); e != nil {
		t.Fatal(e)
	}
	return st, err
}

var iputilsTime = regexp.MustCompile(`time=([0-9.]+) ms`)

// iputilsMedian runs iputils ping in the namespace and returns the median
// of its per-reply times.
func iputilsMedian(t *testing.T, l *lab.Topology, host, target string, n int) time.Duration {
	t.Helper()
	lab.Require(t, "ping")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := l.Exec(ctx, host, "ping", "-n", "-c", strconv.Itoa(n), "-i", "0.01", target)
	if err != nil {
		t.Fatalf("iputils ping: %v", err)
	}
	var rtts []time.Duration
	for _, m := range iputilsTime.FindAllStringSubmatch(string(out), -1) {
		f, _ := strconv.ParseFloat(m[1], 64)
		rtts = append(rtts, time.Duration(f*float64(time.Millisecond)))
	}
	if len(rtts) < n*9/10 {
		t.Fatalf("iputils ping: only %d replies:\n%s", len(rtts), out)
	}
	slices.Sort(rtts)
	return Percentile(rtts, 50)
}

// TestLabPing runs pro-bing across a veth pair and compares with iputils.
func TestLabPing(t *testing.T) {
	l := lab.New(t, twoHosts)
	const n = 200
	// Interleave the two tools so both see the same conditions.
	var ours, theirs []time.Duration
	for round := 0; round < 2; round++ {
		st, err := pingIn(t, l, "a", Config{Target: "198.18.7.2", Count: n, Interval: 10 * time.Millisecond, Mode: Privileged})
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if st.Sent != n || st.Received != n || st.LossPercent != 0 || st.Duplicates != 0 {
			t.Fatalf("sent %d received %d loss %.1f%% dups %d", st.Sent, st.Received, st.LossPercent, st.Duplicates)
		}
		// Every reply timed by the kernel (a few may miss the 5 ms wait on
		// a loaded machine and fall back to user-space time).
		if st.KernelTimed < n*95/100 {
			t.Errorf("%d of %d replies timed by the kernel's receive timestamp, want at least 95%%", st.KernelTimed, n)
		}
		if !(st.Min <= st.P50 && st.P50 <= st.P90 && st.P90 <= st.P99 && st.P99 <= st.Max && st.Min > 0) {
			t.Errorf("percentiles out of order: %+v", st)
		}
		ours = append(ours, st.P50)
		theirs = append(theirs, iputilsMedian(t, l, "a", "198.18.7.2", n))
	}
	slices.Sort(ours)
	slices.Sort(theirs)
	o, i := (ours[0]+ours[1])/2, (theirs[0]+theirs[1])/2
	diff := o - i
	if diff < 0 {
		diff = -diff
	}
	t.Logf("median RTT: pro-bing %v, iputils %v (diff %v, %.1f%%)", o, i, diff, 100*float64(diff)/float64(i))
	if diff > 50*time.Microsecond && float64(diff) > 0.10*float64(i) {
		t.Errorf("median RTT %v differs from iputils %v by more than 10%% and 50µs", o, i)
	}
}

// TestLabPingModesAndFaults: unprivileged sockets (allowed and refused),
// injected loss, DF against a small MTU, an address nobody answers.
func TestLabPingModesAndFaults(t *testing.T) {
	l := lab.New(t, twoHosts)
	ctx := context.Background()

	t.Run("unprivileged-refused", func(t *testing.T) {
		if _, err := l.Exec(ctx, "a", "sysctl", "-w", "net.ipv4.ping_group_range=1 0"); err != nil {
			t.Fatal(err)
		}
		_, err := pingIn(t, l, "a", Config{Target: "198.18.7.2", Count: 1, Mode: Unprivileged})
		if !errors.Is(err, ErrPermission) || !strings.Contains(err.Error(), "ping_group_range") {
			t.Fatalf("err = %v, want ErrPermission naming ping_group_range", err)
		}
	})
	t.Run("unprivileged-allowed", func(t *testing.T) {
		if _, err := l.Exec(ctx, "a", "sysctl", "-w", "net.ipv4.ping_group_range=0 2147483647"); err != nil {
			t.Fatal(err)
		}
		st, err := pingIn(t, l, "a", Config{Target: "198.18.7.2", Count: 20, Interval: 5 * time.Millisecond, Mode: Unprivileged, Size: 1272})
		if err != nil || st.Received != 20 || st.Privileged || st.KernelTimed != 0 {
			t.Fatalf("err %v stats %+v, want 20 replies timed in user space", err, st)
		}
	})
	t.Run("loss-30pct", func(t *testing.T) {
		st, err := pingIn(t, l, "a", Config{Target: "198.18.7.3", Count: 300, Interval: 2 * time.Millisecond, Mode: Privileged, Wait: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		// 300 draws at 30%: 3 standard deviations is about ±8 points.
		if st.LossPercent < 20 || st.LossPercent > 40 || st.Sent != 300 {
			t.Errorf("loss %.1f%% of %d, want 30%% ± 10", st.LossPercent, st.Sent)
		}
		t.Logf("loss %.1f%% (%d/%d)", st.LossPercent, st.Received, st.Sent)
	})
	t.Run("df-over-mtu", func(t *testing.T) {
		_, err := pingIn(t, l, "a", Config{Target: "198.18.7.2", Count: 2, Size: 1400, DontFragment: true, Mode: Privileged, Interval: 10 * time.Millisecond})
		if err == nil || !strings.Contains(err.Error(), "MTU") {
			t.Fatalf("DF 1400-byte ping over MTU 1300: err = %v, want an MTU error", err)
		}
		st, err := pingIn(t, l, "a", Config{Target: "198.18.7.2", Count: 3, Size: 1400, Mode: Privileged, Interval: 10 * time.Millisecond})
		if err != nil || st.Received != 3 {
			t.Fatalf("fragmented 1400-byte ping: err %v, %+v", err, st)
		}
		st, err = pingIn(t, l, "a", Config{Target: "198.18.7.2", Count: 3, Size: 1272, DontFragment: true, Mode: Privileged, Interval: 10 * time.Millisecond})
		if err != nil || st.Received != 3 {
			t.Fatalf("DF 1272-byte ping fits MTU 1300: err %v, %+v", err, st)
		}
	})
	t.Run("no-answer", func(t *testing.T) {
		start := time.Now()
		st, err := pingIn(t, l, "a", Config{Target: "198.18.7.99", Count: 3, Interval: 10 * time.Millisecond, Mode: Privileged, Wait: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if st.Received != 0 || st.LossPercent != 100 || time.Since(start) > 3*time.Second {
			t.Errorf("stats %+v after %v", st, time.Since(start))
		}
	})
	t.Run("ipv6-kernel-timed", func(t *testing.T) {
		st, err := pingIn(t, l, "a", Config{Target: "2001:2:0:7::2", Count: 20, Interval: 5 * time.Millisecond, Mode: Privileged})
		if err != nil {
			t.Fatal(err)
		}
		if st.Received != 20 || st.KernelTimed < 19 || st.Min <= 0 || st.Max > time.Second {
			t.Errorf("stats %+v, want 20 ICMPv6 replies timed by the kernel", st)
		}
	})
}
