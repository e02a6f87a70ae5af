package watch

import (
	"slices"
	"sync"
	"time"

	"github.com/vpndiag/vpndiag/probe/ping"
)

// probe is one echo: its send time and outcome.
type probe struct {
	sent    time.Time
	rtt     time.Duration
	replied bool
	failed  bool // the send itself failed (counted as lost at once)
}

// tracker turns sends and replies into a decided sequence of probes and
// outages. Probes are decided in send order: answered, or lost once
// timeout passed without a reply.
type tracker struct {
	target  string
	timeout time.Duration
	onEvent func(Event)

	mu      sync.Mutex
	probes  []probe       // by index; decided ones before next
	pending map[int]int64 // pro-bing seq -> index, for undecided probes
	next    int64         // first undecided index
	down    *Outage
	outages []Outage
	rtts    []time.Duration
	events  []Event // queued for delivery outside the lock
}

func (t *tracker) sent(seq int, at time.Time) {
	t.mu.Lock()
	t.pending[seq] = int64(len(t.probes))
	t.probes = append(t.probes, probe{sent: at})
	t.mu.Unlock()
}

func (t *tracker) sendFailed(at time.Time) {
	t.mu.Lock()
	t.probes = append(t.probes, probe{sent: at, failed: true})
	t.mu.Unlock()
}

func (t *tracker) received(seq int, rtt time.Duration) {
	t.mu.Lock()
	if i, ok := t.pending[seq]; ok && i >= t.next {
		t.probes[i].replied, t.probes[i].rtt = true, rtt
	}
	t.mu.Unlock()
	t.decide(time.Now(), false)
}

// sweep decides timed-out probes every interval until stop closes.
func (t *tracker) sweep(stop <-chan struct{}, every time.Duration) {
	tk := time.NewTicker(every)
	defer tk.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-tk.C:
			t.decide(now, false)
		}
	}
}

// decide settles probes in order up to the first one still waiting for
// its reply; at the end (final) every probe is settled.
func (t *tracker) decide(now time.Time, final bool) {
	t.mu.Lock()
	for t.next < int64(len(t.probes)) {
		p := &t.probes[t.next]
		if !p.replied && !p.failed && !final && now.Sub(p.sent) < t.timeout {
			break
		}
		for seq, i := range t.pending {
			if i == t.next {
				delete(t.pending, seq)
				break
			}
		}
		t.settle(t.next, p)
		t.next++
	}
	ev := t.events
	t.events = nil
	t.mu.Unlock()
	if t.onEvent != nil {
		for _, e := range ev {
			t.onEvent(e)
		}
	}
}

// settle applies one decided probe to the outage state (lock held).
func (t *tracker) settle(i int64, p *probe) {
	if t.onEvent != nil {
		t.events = append(t.events, Event{Kind: Tick, Target: t.target, Time: p.sent, Seq: i, RTT: p.rtt, Lost: !p.replied})
	}
	if p.replied {
		t.rtts = append(t.rtts, p.rtt)
		if t.down != nil {
			o := *t.down
			o.End = p.sent
			o.Duration = o.End.Sub(o.Start)
			t.outages = append(t.outages, o)
			t.down = nil
			if t.onEvent != nil {
				t.events = append(t.events, Event{Kind: Up, Target: t.target, Time: p.sent, Seq: i, Outage: &o})
			}
		}
		return
	}
	if t.down == nil {
		t.down = &Outage{Target: t.target, Start: p.sent}
		if t.onEvent != nil {
			t.events = append(t.events, Event{Kind: Down, Target: t.target, Time: p.sent, Seq: i})
		}
	}
	t.down.Lost++
}

// finish settles everything: probes sent less than timeout before the end
// count only if already answered (the rest are dropped as undecided), and
// an outage still open is reported as ongoing.
func (t *tracker) finish(end time.Time) TargetResult {
	t.mu.Lock()
	// Drop trailing probes whose reply could still have come.
	n := len(t.probes)
	for n > int(t.next) && !t.probes[n-1].replied && !t.probes[n-1].failed && end.Sub(t.probes[n-1].sent) < t.timeout {
		n--
	}
	t.probes = t.probes[:n]
	t.mu.Unlock()
	t.decide(end, true)

	t.mu.Lock()
	defer t.mu.Unlock()
	r := TargetResult{Target: t.target, Sent: len(t.probes), Received: len(t.rtts), Outages: append([]Outage{}, t.outages...)}
	if t.down != nil {
		o := *t.down
		o.End, o.Ongoing = end, true
		o.Duration = o.End.Sub(o.Start)
		r.Outages = append(r.Outages, o)
	}
	for _, o := range r.Outages {
		r.Downtime += o.Duration
		r.Longest = max(r.Longest, o.Duration)
	}
	if r.Sent > 0 {
		r.Availability = 100 * float64(r.Received) / float64(r.Sent)
	}
	sorted := slices.Clone(t.rtts)
	slices.Sort(sorted)
	r.P50, r.P99 = ping.Percentile(sorted, 50), ping.Percentile(sorted, 99)
	return r
}
