// Command labtool is the lab's small, always-bounded traffic tool. It runs
// inside lab namespaces (ip netns exec) and prints one JSON summary line on
// stdout when done:
//
//	labtool udp-send    -to ADDR:PORT -count N [-size B] [-rate PPS] [-fresh]
//	labtool udp-sink    -listen ADDR:PORT [-count N] [-duration D]
//	labtool dns         -to ADDR:PORT -count N [-rate QPS] [-name ZONE] [-timeout D] [-fresh]
//	labtool tcp-connect -to ADDR:PORT -count N [-rate R] [-timeout D]
//	labtool tcp-sink    -listen ADDR:PORT [-duration D] [-conns N]
//	labtool tcp-send    -to ADDR:PORT -bytes N [-write W] [-mss M]
//	labtool lab         -f TOPOLOGY [-duration D]
//
// Every command stops after its count or its -duration (default 60s, at most
// 1h), whichever comes first. Sinks print "listening" on stderr once bound.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"
)

// maxDuration caps every -duration.
const maxDuration = time.Hour

type command struct {
	run   func(args []string) (any, error)
	usage string
}

var commands = map[string]command{
	"udp-send":    {udpSend, "send UDP datagrams"},
	"udp-sink":    {udpSink, "count received UDP datagrams"},
	"dns":         {dnsFlood, "send DNS A queries and count answers"},
	"tcp-connect": {tcpConnect, "open and close TCP connections"},
	"tcp-sink":    {tcpSink, "accept TCP connections and discard data"},
	"tcp-send":    {tcpSend, "send bytes over one TCP connection"},
	"lab":         {labCmd, "bring a lab topology up until signalled"},
}

func main() {
	if len(os.Args) < 2 || commands[os.Args[1]].run == nil {
		fmt.Fprintln(os.Stderr, "usage: labtool COMMAND [flags]; commands:")
		for name, c := range commands {
			fmt.Fprintf(os.Stderr, "  %-12s %s\n", name, c.usage)
		}
		os.Exit(2)
	}
	res, err := commands[os.Args[1]].run(os.Args[2:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "labtool %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
	if res != nil {
		if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
			fmt.Fprintf(os.Stderr, "labtool: %v\n", err)
			os.Exit(1)
		}
	}
}

// flags returns a flag set whose parse errors exit with status 2.
func flags(name string) *flag.FlagSet {
	return flag.NewFlagSet("labtool "+name, flag.ExitOnError)
}

// bound clamps d to (0, maxDuration].
func bound(d time.Duration) time.Duration {
	if d <= 0 || d > maxDuration {
		return maxDuration
	}
	return d
}

// pacer spaces events at rate per second (0 = as fast as possible).
type pacer struct {
	start time.Time
	every time.Duration
}

func newPacer(rate float64) *pacer {
	p := &pacer{start: time.Now()}
	if rate > 0 {
		p.every = time.Duration(float64(time.Second) / rate)
	}
	return p
}

// wait blocks until event i (0-based) is due.
func (p *pacer) wait(i int) {
	if p.every == 0 {
		return
	}
	if d := time.Until(p.start.Add(time.Duration(i) * p.every)); d > 0 {
		time.Sleep(d)
	}
}
