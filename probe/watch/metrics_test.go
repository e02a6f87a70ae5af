package watch

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// events: 10 answered probes, 4 lost (one outage of 200 ms), 6 answered,
// then 2 lost (an ongoing outage), all for target "t"; "idle" never probed.
func events(t0 time.Time) []Event {
	var ev []Event
	seq := int64(0)
	tick := func(lost bool) {
		at := t0.Add(time.Duration(seq) * 50 * time.Millisecond)
		ev = append(ev, Event{Kind: Tick, Target: "t", Time: at, Seq: seq, Lost: lost, RTT: map[bool]time.Duration{false: 2 * time.Millisecond}[lost]})
		seq++
	}
	for i := 0; i < 10; i++ {
		tick(false)
	}
	// As the tracker delivers them: the deciding probe's tick, then the
	// state change.
	tick(true)
	ev = append(ev, Event{Kind: Down, Target: "t", Time: t0.Add(500 * time.Millisecond)})
	for i := 0; i < 3; i++ {
		tick(true)
	}
	tick(false)
	o := Outage{Target: "t", Start: t0.Add(500 * time.Millisecond), End: t0.Add(700 * time.Millisecond), Duration: 200 * time.Millisecond, Lost: 4}
	ev = append(ev, Event{Kind: Up, Target: "t", Time: o.End, Outage: &o})
	for i := 0; i < 5; i++ {
		tick(false)
	}
	tick(true)
	ev = append(ev, Event{Kind: Down, Target: "t", Time: t0.Add(time.Second)})
	tick(true)
	return ev
}

func TestMetricsTextfile(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	m := NewMetrics("t", "idle")
	for _, e := range events(t0) {
		m.Observe(e)
	}
	dir := t.TempDir()
	if err := m.WriteTextfile(dir); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, TextfileName))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for _, want := range []string{
		`vpndiag_probe_sent_total{target="t"} 22`,
		`vpndiag_probe_lost_total{target="t"} 6`,
		`vpndiag_probe_outages_total{target="t"} 2`,
		`vpndiag_probe_downtime_seconds_total{target="t"} 0.2`,
		`vpndiag_probe_longest_outage_seconds{target="t"} 0.2`,
		`vpndiag_probe_up{target="t"} 0`,
		`vpndiag_probe_last_rtt_seconds{target="t"} 0.002`,
		`vpndiag_probe_down_since_timestamp_seconds{target="t"} 1.700000001e+09`,
		`vpndiag_probe_rtt_seconds_count{target="t"} 16`,
		`vpndiag_probe_rtt_seconds_bucket{target="t",le="0.0032"} 16`,
		`vpndiag_probe_rtt_seconds_bucket{target="t",le="0.0016"} 0`,
		`vpndiag_probe_sent_total{target="idle"} 0`,
		`# TYPE vpndiag_probe_lost_total counter`,
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("textfile lacks %q", want)
		}
	}
	if strings.Contains(text, `vpndiag_probe_up{target="idle"}`) {
		t.Error("up exported for a target never probed")
	}
	problems, err := testutil.GatherAndLint(m.Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	c := m.Live().Snapshot()[0]
	if c.Availability() != 100*16.0/22 || c.DownSince != t0.Add(time.Second) {
		t.Errorf("counters %+v", c)
	}
}

func TestRowWriter(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.Local)
	live := NewLive("t")
	var buf bytes.Buffer
	rw := NewRowWriter(&buf)
	var rows int
	for _, e := range events(t0) {
		live.Observe(e)
		before := buf.Len()
		if err := rw.Event(e, live.Snapshot()[0]); err != nil {
			t.Fatal(err)
		}
		if e.Kind != Tick {
			rows++
			if buf.Len() == before {
				t.Fatalf("row for %s not written at once", e.Kind)
			}
		} else if buf.Len() != before {
			t.Fatalf("tick printed a row")
		}
	}
	if err := rw.Status(t0.Add(2*time.Second), live.Snapshot()); err != nil {
		t.Fatal(err)
	}
	if err := rw.Close(); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	t.Logf("\n%s", out)
	if strings.Count(out, "TARGET") != 1 || strings.Count(out, "│ DOWN ") != 2 || strings.Count(out, "│ UP") != 1 {
		t.Errorf("header or event rows wrong:\n%s", out)
	}
	for _, want := range []string{"03:04:05.500", "200ms", "03:04:07.000", "│ down ", "1s", "72.73", "90.91"} {
		if !strings.Contains(out, want) {
			t.Errorf("rows lack %q", want)
		}
	}
}
