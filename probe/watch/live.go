package watch

import (
	"sync"
	"time"
)

// Counters is one target's running state, built from events while a watch
// runs (the live rows and the metrics read it).
type Counters struct {
	Target   string
	Sent     int64         // decided probes
	Lost     int64         // of them unanswered
	Outages  int64         // outages started
	Up       bool          // the last decided probe was answered
	Known    bool          // at least one probe was decided
	LastRTT  time.Duration // of the last answered probe
	Downtime time.Duration // of finished outages
	Longest  time.Duration // longest finished outage
	// DownSince is the start of the ongoing outage (zero when up).
	DownSince time.Time
}

// Availability is answered probes in percent (100 before the first probe).
func (c Counters) Availability() float64 {
	if c.Sent == 0 {
		return 100
	}
	return 100 * float64(c.Sent-c.Lost) / float64(c.Sent)
}

// Live accumulates events into per-target Counters. It is safe for
// concurrent use; Observe is what Config.OnEvent should call.
type Live struct {
	mu      sync.Mutex
	targets map[string]*Counters
	order   []string
}

// NewLive returns an empty Live; targets appear in the order given, the
// others as they are first seen.
func NewLive(targets ...string) *Live {
	l := &Live{targets: map[string]*Counters{}}
	for _, t := range targets {
		l.get(t)
	}
	return l
}

func (l *Live) get(target string) *Counters {
	c, ok := l.targets[target]
	if !ok {
		c = &Counters{Target: target}
		l.targets[target] = c
		l.order = append(l.order, target)
	}
	return c
}

// Observe applies one event.
func (l *Live) Observe(e Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.get(e.Target)
	switch e.Kind {
	case Tick:
		c.Sent++
		c.Known = true
		c.Up = !e.Lost
		if e.Lost {
			c.Lost++
		} else {
			c.LastRTT = e.RTT
		}
	case Down:
		c.Outages++
		c.DownSince = e.Time
	case Up:
		c.DownSince = time.Time{}
		if e.Outage != nil {
			c.Downtime += e.Outage.Duration
			c.Longest = max(c.Longest, e.Outage.Duration)
		}
	}
}

// Snapshot returns every target's counters.
func (l *Live) Snapshot() []Counters {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Counters, 0, len(l.order))
	for _, t := range l.order {
		out = append(out, *l.targets[t])
	}
	return out
}
