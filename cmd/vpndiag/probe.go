package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// probeSubcommands are the children of `vpndiag probe`; each probe_*.go
// file adds itself in init.
var probeSubcommands []func(*globalOptions) *cobra.Command

func registerProbe(f func(*globalOptions) *cobra.Command) {
	probeSubcommands = append(probeSubcommands, f)
}

func init() {
	register(func(g *globalOptions) *cobra.Command {
		cmd := &cobra.Command{
			Use:   "probe",
			Short: "Active measurements: ping, iperf3-compatible throughput, path MTU, outage watch, tunnel vs underlay",
			Long: `probe measures a path actively: ICMP latency and loss (ping), throughput with the iperf3
wire protocol against any iperf3 -s or vpndiag serve (throughput), the path MTU by DF probes
with black-hole detection (mtu), continuous probing that times every outage (watch), and
a side-by-side comparison of a tunnel with its underlay (compare).`,
			Example: `  vpndiag probe ping -s 1272 -c 100 -i 0.2 10.8.0.1
  vpndiag probe throughput -P 4 -t 10 203.0.113.7
  vpndiag probe mtu 10.8.0.1
  vpndiag probe watch --duration 10m 10.8.0.1 198.51.100.1
  vpndiag probe compare --tunnel 10.8.0.1 --underlay 203.0.113.7 --throughput`,
		}
		for _, f := range probeSubcommands {
			cmd.AddCommand(f(g))
		}
		return cmd
	})
}

// parseSeconds accepts iperf3/ping style seconds ("10", "0.2") or a Go
// duration ("10s", "200ms").
func parseSeconds(flag, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if f < 0 {
			return 0, usageErr("%s: negative value %q", flag, s)
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, usageErr("%s: %q is not seconds or a duration like 10s or 200ms", flag, s)
	}
	return d, nil
}

// parseSize parses a count with an optional K, M or G suffix, decimal
// (1000) by default as iperf3 does for rates, or binary (1024) if binary.
func parseSize(flag, s string, binary bool) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	mult := uint64(1000)
	if binary {
		mult = 1024
	}
	num, scale := strings.TrimSpace(s), uint64(1)
	switch strings.ToUpper(num[len(num)-1:]) {
	case "K":
		scale = mult
	case "M":
		scale = mult * mult
	case "G":
		scale = mult * mult * mult
	}
	if scale != 1 {
		num = num[:len(num)-1]
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 {
		return 0, usageErr("%s: %q is not a number with an optional K, M or G suffix", flag, s)
	}
	return uint64(f * float64(scale)), nil
}

// ms formats a duration as milliseconds with microsecond precision.
func ms(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}

// mbps formats bits per second as Mbit/s with two decimals.
func mbps(bps float64) float64 {
	return float64(int64(bps/1e4)) / 100
}

// fmtErr is a helper for findings that carry an error.
func fmtErr(err error) string { return fmt.Sprint(err) }
