// Package watch probes targets continuously with ICMP echo at a fine
// interval and reports every outage (start, end, length, probes lost), the
// longest, and availability, as failover and link-flap measurements need.
package watch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	probing "github.com/prometheus-community/pro-bing"

	"github.com/vpndiag/vpndiag/probe/netns"
	"github.com/vpndiag/vpndiag/probe/ping"
)

// Config describes a watch. Zero values take the defaults.
type Config struct {
	Targets  []string
	Interval time.Duration // between probes; default 50 ms, at least 1 ms
	Duration time.Duration // 0: until ctx ends
	// Timeout is how long a reply may take before its probe counts as
	// lost; default 1 s. Outage boundaries are probe send times, so their
	// precision is the interval, not the timeout.
	Timeout time.Duration
	Size    int       // ICMP payload; default 56
	Mode    ping.Mode // socket kind
	Source  string    // source address
	// Netns, if set, probes from that network namespace (a name under
	// /var/run/netns or a path).
	Netns string
	// OnEvent, if set, receives outage starts and ends as they are known
	// (Timeout after the probe that decides them), and one Tick per probe.
	OnEvent func(Event)
}

// EventKind tells what an Event reports.
type EventKind string

// Event kinds.
const (
	Down EventKind = "down" // an outage started (first lost probe)
	Up   EventKind = "up"   // an outage ended (first answered probe after it)
	Tick EventKind = "probe"
)

// Event is a live observation.
type Event struct {
	Kind   EventKind     `json:"kind"`
	Target string        `json:"target"`
	Time   time.Time     `json:"time"` // send time of the probe that decided it
	Seq    int64         `json:"seq"`
	RTT    time.Duration `json:"rtt_ns,omitempty"`
	Lost   bool          `json:"lost,omitempty"`
	Outage *Outage       `json:"outage,omitempty"` // for Up: the finished outage
}

// Outage is a run of consecutive lost probes.
type Outage struct {
	Target   string        `json:"target"`
	Start    time.Time     `json:"start"` // send time of the first lost probe
	End      time.Time     `json:"end"`   // send time of the next answered probe (or the end of the watch)
	Duration time.Duration `json:"duration_ns"`
	Lost     int           `json:"lost"`
	Ongoing  bool          `json:"ongoing,omitempty"` // still down when the watch ended
}

// TargetResult is one target's summary.
type TargetResult struct {
	Target       string        `json:"target"`
	Sent         int           `json:"sent"`
	Received     int           `json:"received"`
	Availability float64       `json:"availability_percent"` // answered probes in percent
	Outages      []Outage      `json:"outages"`
	Longest      time.Duration `json:"longest_ns"`
	Downtime     time.Duration `json:"downtime_ns"`
	P50          time.Duration `json:"rtt_p50_ns"`
	P99          time.Duration `json:"rtt_p99_ns"`
	Error        string        `json:"error,omitempty"`
}

// Result is the whole watch.
type Result struct {
	Started  time.Time      `json:"started"`
	Ended    time.Time      `json:"ended"`
	Interval time.Duration  `json:"interval_ns"`
	Targets  []TargetResult `json:"targets"`
}

func (c *Config) withDefaults() (Config, error) {
	cfg := *c
	if len(cfg.Targets) == 0 {
		return cfg, errors.New("no target given")
	}
	if cfg.Interval == 0 {
		cfg.Interval = 50 * time.Millisecond
	}
	if cfg.Interval < time.Millisecond {
		return cfg, fmt.Errorf("interval %v below 1ms", cfg.Interval)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Second
	}
	if cfg.Size == 0 {
		cfg.Size = 56
	}
	if cfg.Size < ping.MinSize || cfg.Size > 65507 {
		return cfg, fmt.Errorf("size %d out of range %d..65507", cfg.Size, ping.MinSize)
	}
	if cfg.Duration < 0 {
		return cfg, fmt.Errorf("negative duration %v", cfg.Duration)
	}
	return cfg, nil
}

// Run watches every target until ctx ends or cfg.Duration passes. A
// target that cannot be probed at all (unresolvable, no permission) has
// its Error set; Run returns an error only when no target could be probed.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("watch: %w", err)
	}
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	res := &Result{Started: time.Now(), Interval: cfg.Interval, Targets: make([]TargetResult, len(cfg.Targets))}
	var wg sync.WaitGroup
	for i, target := range cfg.Targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res.Targets[i] = watchOne(ctx, cfg, target)
		}()
	}
	wg.Wait()
	res.Ended = time.Now()
	failed := 0
	var first string
	for _, t := range res.Targets {
		if t.Error != "" {
			failed++
			if first == "" {
				first = t.Error
			}
		}
	}
	if failed == len(res.Targets) {
		return res, fmt.Errorf("watch: no target could be probed: %s", first)
	}
	return res, nil
}

// watchOne probes one target until ctx ends.
func watchOne(ctx context.Context, cfg Config, target string) TargetResult {
	tr := &tracker{target: target, timeout: cfg.Timeout, onEvent: cfg.OnEvent, pending: map[int]int64{}}
	run := func() error {
		p := probing.New(target)
		p.ResolveTimeout = 5 * time.Second
		if err := p.Resolve(); err != nil {
			return fmt.Errorf("resolve %s: %w", target, err)
		}
		p.Count = -1
		p.Interval = cfg.Interval
		p.Size = cfg.Size
		p.Source = cfg.Source
		p.RecordRtts, p.RecordTTLs = false, false
		p.SetLogger(probing.NoopLogger{})
		p.SetPrivileged(cfg.Mode == ping.Privileged || (cfg.Mode == ping.Auto && os.Geteuid() == 0))
		p.OnSend = func(pk *probing.Packet) { tr.sent(pk.Seq, time.Now()) }
		p.OnSendError = func(pk *probing.Packet, err error) { tr.sendFailed(time.Now()) }
		p.OnRecv = func(pk *probing.Packet) { tr.received(pk.Seq, pk.Rtt) }
		stop := make(chan struct{})
		defer close(stop)
		go tr.sweep(stop, cfg.Interval)
		return p.RunWithContext(ctx)
	}
	var err error
	if cfg.Netns != "" {
		if e := netns.Do(cfg.Netns, func() error { err = run(); return nil }); e != nil {
			err = e
		}
	} else {
		err = run()
	}
	out := tr.finish(time.Now())
	if err != nil && ctx.Err() == nil {
		out.Error = fmt.Sprintf("%s: %v", target, err)
	}
	return out
}
