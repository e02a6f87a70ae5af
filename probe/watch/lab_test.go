package watch

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vpndiag/vpndiag/probe/ping"
	"github.com/vpndiag/vpndiag/testdata/lab"
)

// TestLabLinkDown takes b's interface down for a known time while a probes
// it every 50 ms, and checks the measured outage within two intervals.
func TestLabLinkDown(t *testing.T) {
	l := lab.New(t, `
host a
host b
link a:eth0=198.18.9.1/24 b:eth0=198.18.9.2/24
`)
	const interval = 50 * time.Millisecond
	const downFor = time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w := startWatch(ctx, Config{
		Targets: []string{"198.18.9.2"}, Interval: interval, Duration: 4 * time.Second,
		Timeout: 2 * interval, Mode: ping.Privileged, Netns: l.NS("a"),
	})
	time.Sleep(1200 * time.Millisecond)
	// The link changes state somewhere inside each command, so the true
	// outage lies between these bounds.
	downBefore := time.Now()
	if _, err := l.Exec(ctx, "b", "ip", "link", "set", "eth0", "down"); err != nil {
		t.Fatal(err)
	}
	downAfter := time.Now()
	time.Sleep(downFor)
	upBefore := time.Now()
	if _, err := l.Exec(ctx, "b", "ip", "link", "set", "eth0", "up"); err != nil {
		t.Fatal(err)
	}
	upAfter := time.Now()
	shortest, longest := upBefore.Sub(downAfter), upAfter.Sub(downBefore)
	actual := (shortest + longest) / 2
	res, downs, ups, err := w.wait()
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	tr := res.Targets[0]
	if tr.Error != "" || len(tr.Outages) != 1 {
		t.Fatalf("target result %+v", tr)
	}
	o := tr.Outages[0]
	var diff time.Duration
	switch {
	case o.Duration < shortest:
		diff = shortest - o.Duration
	case o.Duration > longest:
		diff = o.Duration - longest
	}
	t.Logf("link down for %v..%v; measured outage %v (%d probes lost), availability %.1f%%, sent %d",
		shortest.Round(time.Millisecond), longest.Round(time.Millisecond), o.Duration.Round(time.Millisecond), o.Lost, tr.Availability, tr.Sent)
	// Carrier comes back a little after "ip link set up" returns; allow
	// two probe intervals plus that.
	if diff > 2*interval+50*time.Millisecond {
		t.Errorf("outage %v vs actual %v: off by %v (> 2 intervals)", o.Duration, actual, diff)
	}
	// Under heavy CPU load pro-bing's ticker skips sends, so the lost
	// count is only bounded loosely; the outage length is what matters.
	if o.Ongoing || o.Lost < int(actual/interval)/2 || downs != 1 || ups != 1 || tr.Longest != o.Duration {
		t.Errorf("outage %+v, events down=%d up=%d, longest %v", o, downs, ups, tr.Longest)
	}
	if tr.Sent < 40 || tr.Sent > 82 {
		t.Errorf("sent %d probes in 4 s at 50 ms", tr.Sent)
	}
}

// TestUnresolvable: a target that cannot be resolved is an error, not a hang.
func TestUnresolvable(t *testing.T) {
	start := time.Now()
	_, err := Run(context.Background(), Config{Targets: []string{"no-such-host.invalid"}, Duration: time.Second})
	if err == nil || time.Since(start) > 8*time.Second {
		t.Fatalf("err = %v after %v", err, time.Since(start))
	}
}

// backgroundWatch is a watch run in the background that counts its Down and
// Up events (OnEvent may be called from several goroutines).
type backgroundWatch struct {
	done      chan struct{}
	res       *Result
	err       error
	downs, up atomic.Int64
}

// startWatch runs Run(ctx, cfg) in the background; cfg.OnEvent is replaced.
func startWatch(ctx context.Context, cfg Config) *backgroundWatch {
	w := &backgroundWatch{done: make(chan struct{})}
	cfg.OnEvent = func(e Event) {
		switch e.Kind {
		case Down:
			w.downs.Add(1)
		case Up:
			w.up.Add(1)
		}
	}
	go func() {
		defer close(w.done)
		w.res, w.err = Run(ctx, cfg)
	}()
	return w
}

// wait returns the result and the number of Down and Up events.
func (w *backgroundWatch) wait() (*Result, int, int, error) {
	<-w.done
	return w.res, int(w.downs.Load()), int(w.up.Load()), w.err
}
