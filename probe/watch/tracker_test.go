package watch

import (
	"testing"
	"time"
)

// TestTrackerOutages feeds a known pattern of answered and lost probes.
func TestTrackerOutages(t *testing.T) {
	var events []Event
	tr := &tracker{target: "x", timeout: 200 * time.Millisecond, pending: map[int]int64{}, onEvent: func(e Event) {
		if e.Kind != Tick {
			events = append(events, e)
		}
	}}
	base := time.Unix(1_700_000_000, 0)
	// 0-9 ok, 10-29 lost (1 s at 50 ms), 30-39 ok, 40-41 lost, 42 send error, 43-49 ok, 50-52 lost at the end.
	for i := 0; i < 53; i++ {
		at := base.Add(time.Duration(i) * 50 * time.Millisecond)
		if i == 42 {
			tr.sendFailed(at)
			continue
		}
		tr.sent(i, at)
		lost := (i >= 10 && i < 30) || i == 40 || i == 41 || i >= 50
		if !lost {
			tr.received(i, time.Millisecond)
		}
		tr.decide(at, false)
	}
	end := base.Add(53 * 50 * time.Millisecond).Add(time.Second)
	r := tr.finish(end)
	if r.Sent != 53 || r.Received != 53-20-3-3 {
		t.Errorf("sent %d received %d", r.Sent, r.Received)
	}
	if len(r.Outages) != 3 {
		t.Fatalf("outages %+v", r.Outages)
	}
	o := r.Outages[0]
	if o.Lost != 20 || o.Duration != time.Second || !o.Start.Equal(base.Add(500*time.Millisecond)) || o.Ongoing {
		t.Errorf("first outage %+v", o)
	}
	if o := r.Outages[1]; o.Lost != 3 || o.Duration != 150*time.Millisecond {
		t.Errorf("second outage %+v", o)
	}
	if o := r.Outages[2]; !o.Ongoing || o.Lost != 3 {
		t.Errorf("last outage %+v", o)
	}
	if r.Longest < time.Second || r.Availability > 51 || r.Availability < 50 {
		t.Errorf("longest %v availability %.2f", r.Longest, r.Availability)
	}
	// down, up, down, up, down.
	if len(events) != 5 || events[0].Kind != Down || events[1].Kind != Up || events[1].Outage.Lost != 20 {
		t.Errorf("events %+v", events)
	}
}

// TestTrackerTrailingUndecided: probes sent less than timeout before the
// end, unanswered, are not counted as lost.
func TestTrackerTrailingUndecided(t *testing.T) {
	tr := &tracker{target: "x", timeout: time.Second, pending: map[int]int64{}}
	base := time.Unix(1_700_000_000, 0)
	for i := 0; i < 10; i++ {
		tr.sent(i, base.Add(time.Duration(i)*100*time.Millisecond))
		if i < 8 {
			tr.received(i, time.Millisecond)
		}
	}
	r := tr.finish(base.Add(950 * time.Millisecond))
	if r.Sent != 8 || r.Received != 8 || len(r.Outages) != 0 || r.Availability != 100 {
		t.Errorf("%+v", r)
	}
}
