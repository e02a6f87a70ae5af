// Package compare measures what a tunnel costs over its underlay: the same
// ICMP echo (same payload size) to the peer's tunnel address and to its
// underlay address, interleaved so both see the same conditions, and
// optionally the same iperf3 throughput test and path MTU search over both.
// It reports the latency overhead with a bootstrap confidence interval
// ("not measurable" when the interval includes zero or the difference is
// below the jitter), loss on each path, the throughput ratio and the MTUs.
package compare

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/vpndiag/vpndiag/probe/iperf"
	"github.com/vpndiag/vpndiag/probe/mtu"
	"github.com/vpndiag/vpndiag/probe/netns"
	"github.com/vpndiag/vpndiag/probe/ping"
)

// DefaultSize is the default ICMP payload: the incident's ping -s 1272.
const DefaultSize = 1272

// Config describes one comparison. Zero values take the defaults.
type Config struct {
	Tunnel   string // the peer's address inside the tunnel
	Underlay string // the peer's public (underlay) address
	// Size is the ICMP payload of every echo on both paths; default 1272.
	Size int
	// Count is the number of echoes per path; default 100.
	Count int
	// Interval is the time between echoes on one path; default 200 ms. The
	// underlay's echoes are sent half an interval after the tunnel's, so
	// the two alternate.
	Interval time.Duration
	// Wait is how long to wait for the last replies; default 1 s.
	Wait         time.Duration
	DontFragment bool
	Mode         ping.Mode
	// Netns, if set, measures from that network namespace.
	Netns string
	// Resamples and Confidence configure the bootstrap interval of the
	// latency overhead; defaults 2000 and 0.95.
	Resamples  int
	Confidence float64

	// Throughput runs an iperf3 test over each path (against an iperf3 -s
	// or vpndiag serve on each address), alternating tunnel and underlay.
	Throughput bool
	Iperf      iperf.Config // Server is set per path; Parallel, Duration, Port, Reverse, ... apply to both
	Rounds     int          // throughput tests per path; default 1

	// MTU searches the path MTU of each path (probe/mtu) after the pings.
	MTU       bool
	MTUConfig mtu.Config // Target and Netns are set per path

	// OnPhase, if set, is told what runs now ("ping", "throughput tunnel", ...).
	OnPhase func(string)
}

// Path is what was measured over one path.
type Path struct {
	Role   string      `json:"role"` // "tunnel" or "underlay"
	Target string      `json:"target"`
	Ping   *ping.Stats `json:"ping,omitempty"`
	// PingError is set when the echoes could not be sent at all or stopped
	// early.
	PingError string `json:"ping_error,omitempty"`
	// Throughput holds every round; BitsPerSecond is their mean, as
	// received.
	Throughput      []*iperf.Result `json:"throughput,omitempty"`
	BitsPerSecond   float64         `json:"bits_per_second,omitempty"`
	ThroughputError string          `json:"throughput_error,omitempty"`
	MTU             *mtu.Result     `json:"mtu,omitempty"`
	MTUError        string          `json:"mtu_error,omitempty"`
	// RTT is the echoes over time (series.go), nil when none was sent.
	RTT *RTTSeries `json:"-"`
}

// Overhead is the latency the tunnel adds.
type Overhead struct {
	// Median is median(tunnel RTT) − median(underlay RTT); Low and High
	// bound it with the given confidence.
	Median     time.Duration `json:"median_ns"`
	Low        time.Duration `json:"ci_low_ns"`
	High       time.Duration `json:"ci_high_ns"`
	Confidence float64       `json:"confidence"`
	Method     string        `json:"method"`
	// Jitter is the larger of the two paths' mdev.
	Jitter time.Duration `json:"jitter_ns"`
	// Measurable is false when the interval includes zero or the median
	// difference is smaller than the jitter; Reason says which.
	Measurable bool   `json:"measurable"`
	Reason     string `json:"reason,omitempty"`
}

// Result is a finished (or partial) comparison.
type Result struct {
	Size     int       `json:"size"`
	Count    int       `json:"count"`
	Interval float64   `json:"interval_seconds"`
	Tunnel   Path      `json:"tunnel"`
	Underlay Path      `json:"underlay"`
	Overhead *Overhead `json:"overhead,omitempty"`
	// LossZ is the one-sided two-proportion z statistic for "the tunnel
	// loses more echoes than the underlay".
	LossZ float64 `json:"loss_z"`
	// ThroughputRatio is tunnel / underlay received bits per second (0
	// when not measured).
	ThroughputRatio float64 `json:"throughput_ratio,omitempty"`
}

func (c *Config) withDefaults() (Config, error) {
	cfg := *c
	if cfg.Tunnel == "" || cfg.Underlay == "" {
		return cfg, errors.New("both a tunnel and an underlay address are needed")
	}
	if cfg.Tunnel == cfg.Underlay {
		return cfg, fmt.Errorf("tunnel and underlay are the same address %s", cfg.Tunnel)
	}
	if cfg.Size == 0 {
		cfg.Size = DefaultSize
	}
	if cfg.Count == 0 {
		cfg.Count = 100
	}
	if cfg.Interval == 0 {
		cfg.Interval = 200 * time.Millisecond
	}
	if cfg.Wait <= 0 {
		cfg.Wait = time.Second
	}
	if cfg.Resamples == 0 {
		cfg.Resamples = 2000
	}
	if cfg.Confidence == 0 {
		cfg.Confidence = 0.95
	}
	if cfg.Rounds == 0 {
		cfg.Rounds = 1
	}
	switch {
	case cfg.Size < ping.MinSize || cfg.Size > 65507:
		return cfg, fmt.Errorf("size %d out of range %d..65507", cfg.Size, ping.MinSize)
	case cfg.Count < 2 || cfg.Count > 1_000_000:
		return cfg, fmt.Errorf("count %d out of range 2..1000000", cfg.Count)
	case cfg.Interval < 2*time.Millisecond:
		return cfg, fmt.Errorf("interval %v below 2ms", cfg.Interval)
	case cfg.Resamples < 100 || cfg.Resamples > 100_000:
		return cfg, fmt.Errorf("resamples %d out of range 100..100000", cfg.Resamples)
	case cfg.Confidence <= 0.5 || cfg.Confidence >= 1:
		return cfg, fmt.Errorf("confidence %v out of range (0.5, 1)", cfg.Confidence)
	case cfg.Rounds < 1 || cfg.Rounds > 100:
		return cfg, fmt.Errorf("rounds %d out of range 1..100", cfg.Rounds)
	}
	return cfg, nil
}

// Run measures both paths. The result holds everything measured also when
// a path fails (its *Error fields say why); Run returns an error only for a
// bad configuration, when neither path could be pinged, or when ctx ended.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("compare: %w", err)
	}
	res := &Result{Size: cfg.Size, Count: cfg.Count, Interval: cfg.Interval.Seconds(),
		Tunnel: Path{Role: "tunnel", Target: cfg.Tunnel}, Underlay: Path{Role: "underlay", Target: cfg.Underlay}}
	phase := func(s string) {
		if cfg.OnPhase != nil {
			cfg.OnPhase(s)
		}
	}
	phase("ping")
	pingBoth(ctx, cfg, res)
	if res.Tunnel.Ping == nil && res.Underlay.Ping == nil {
		return res, fmt.Errorf("compare: no path could be pinged: tunnel: %s; underlay: %s", res.Tunnel.PingError, res.Underlay.PingError)
	}
	res.overhead(cfg)
	if cfg.Throughput && ctx.Err() == nil {
		throughputBoth(ctx, cfg, res, phase)
	}
	if cfg.MTU && ctx.Err() == nil {
		for _, p := range []*Path{&res.Tunnel, &res.Underlay} {
			phase("mtu " + p.Role)
			mc := cfg.MTUConfig
			mc.Target, mc.Netns = p.Target, cfg.Netns
			if mc.Mode == ping.Auto {
				mc.Mode = cfg.Mode
			}
			r, err := mtu.Run(ctx, mc)
			p.MTU = r
			if err != nil {
				p.MTUError = err.Error()
			}
		}
	}
	if ctx.Err() != nil {
		return res, fmt.Errorf("compare interrupted: %w", ctx.Err())
	}
	return res, nil
}

// inNetns runs fn in cfg.Netns (or here).
func inNetns(cfg Config, fn func()) error {
	if cfg.Netns == "" {
		fn()
		return nil
	}
	return netns.Do(cfg.Netns, func() error { fn(); return nil })
}

// pingBoth runs the two echo series at once, the underlay's offset by half
// an interval, so echoes alternate tunnel, underlay, tunnel, ...
func pingBoth(ctx context.Context, cfg Config, res *Result) {
	var wg sync.WaitGroup
	for i, p := range []*Path{&res.Tunnel, &res.Underlay} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i == 1 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(cfg.Interval / 2):
				}
			}
			rec := newSeriesRecorder(time.Now(), cfg.Count, cfg.Interval)
			pc := ping.Config{Target: p.Target, Count: cfg.Count, Interval: cfg.Interval, Size: cfg.Size,
				Mode: cfg.Mode, DontFragment: cfg.DontFragment, Wait: cfg.Wait, OnReply: rec.reply}
			var st *ping.Stats
			var err error
			if nerr := inNetns(cfg, func() { st, err = ping.Run(ctx, pc) }); nerr != nil {
				err = nerr
			}
			p.Ping = st
			if st != nil && st.Sent > 0 {
				p.RTT = rec.finish(st.Sent)
			}
			if err != nil {
				p.PingError = err.Error()
			}
		}()
	}
	wg.Wait()
}

// overhead fills the latency comparison from the two echo series.
func (res *Result) overhead(cfg Config) {
	t, u := res.Tunnel.Ping, res.Underlay.Ping
	if t == nil || u == nil {
		return
	}
	res.LossZ = lossZ(t.Sent-min(t.Received, t.Sent), t.Sent, u.Sent-min(u.Received, u.Sent), u.Sent)
	if t.Received < 2 || u.Received < 2 {
		return
	}
	d, lo, hi := bootstrapMedianDiff(t.RTTs, u.RTTs, cfg.Resamples, cfg.Confidence)
	o := &Overhead{Median: d, Low: lo, High: hi, Confidence: cfg.Confidence, Jitter: max(t.Mdev, u.Mdev),
		Method: fmt.Sprintf("percentile bootstrap of the difference of medians (%d resamples, paths resampled independently)", cfg.Resamples)}
	abs := d
	if abs < 0 {
		abs = -abs
	}
	switch {
	case lo <= 0 && hi >= 0:
		o.Reason = fmt.Sprintf("the %.0f%% interval %v..%v includes zero", 100*cfg.Confidence, lo, hi)
	case abs < o.Jitter:
		o.Reason = fmt.Sprintf("the difference %v is below the jitter (mdev) %v", d, o.Jitter)
	default:
		o.Measurable = true
	}
	res.Overhead = o
}

// serverRetries and serverRetryWait bound the retries of a throughput
// test whose server was busy, or refused the connection right after an
// earlier test (iperf3 -s listens again only once it has reset).
const (
	serverRetries   = 5
	serverRetryWait = 500 * time.Millisecond
)

// sleepCtx waits d unless ctx ends first (false).
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// throughputBoth runs Rounds iperf3 tests per path, alternating
// tunnel/underlay (and the order each round), never at the same time.
func throughputBoth(ctx context.Context, cfg Config, res *Result, phase func(string)) {
	paths := []*Path{&res.Tunnel, &res.Underlay}
	ran := false // a test ran: a refused connection may be the server resetting
	for round := 0; round < cfg.Rounds && ctx.Err() == nil; round++ {
		order := []int{0, 1}
		if round%2 == 1 {
			order = []int{1, 0}
		}
		for _, i := range order {
			p := paths[i]
			if p.ThroughputError != "" {
				continue
			}
			phase("throughput " + p.Role)
			ic := cfg.Iperf
			ic.Server = p.Target
			var r *iperf.Result
			var err error
			// An iperf3 server takes a moment after one test before it
			// takes the next: busy, or closing and reopening its listening
			// socket (refused, or reset). Before any test ran, a refused
			// connection means no server: that fails at once.
			for try := 0; ; try++ {
				if nerr := inNetns(cfg, func() { r, err = iperf.Run(ctx, ic) }); nerr != nil {
					err = nerr
				}
				retry := errors.Is(err, iperf.ErrBusy) || ran && errors.Is(err, iperf.ErrNotReady)
				if try == serverRetries || !retry || !sleepCtx(ctx, serverRetryWait) {
					break
				}
			}
			ran = ran || r != nil
			if r != nil && r.Complete {
				p.Throughput = append(p.Throughput, r)
			}
			if err != nil {
				p.ThroughputError = err.Error()
			}
		}
	}
	for _, p := range paths {
		if len(p.Throughput) == 0 {
			continue
		}
		var sum float64
		for _, r := range p.Throughput {
			sum += r.Sum.ReceivedBitsPerSecond
		}
		p.BitsPerSecond = sum / float64(len(p.Throughput))
	}
	if res.Underlay.BitsPerSecond > 0 && res.Tunnel.ThroughputError == "" && res.Underlay.ThroughputError == "" {
		res.ThroughputRatio = res.Tunnel.BitsPerSecond / res.Underlay.BitsPerSecond
	}
}
