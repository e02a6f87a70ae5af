package ping

import (
	"math"
	"testing"
	"time"
)

func ms(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }

// TestSummarize checks loss, nearest-rank percentiles and iputils' mdev.
func TestSummarize(t *testing.T) {
	var rtts []time.Duration
	for i := 1; i <= 100; i++ {
		rtts = append(rtts, ms(float64(i)))
	}
	st := summarize(rtts, 125, 2, 3)
	if st.Sent != 125 || st.Received != 100 || st.Duplicates != 2 || st.Reordered != 3 || st.LossPercent != 20 {
		t.Errorf("counts: %+v", st)
	}
	if st.Min != ms(1) || st.Max != ms(100) || st.P50 != ms(50) || st.P90 != ms(90) || st.P99 != ms(99) {
		t.Errorf("percentiles: min %v p50 %v p90 %v p99 %v max %v", st.Min, st.P50, st.P90, st.P99, st.Max)
	}
	if st.Avg != ms(50.5) {
		t.Errorf("avg %v", st.Avg)
	}
	// Population standard deviation of 1..100 ms.
	want := math.Sqrt((100*100 - 1) / 12.0)
	if got := float64(st.Mdev) / float64(time.Millisecond); math.Abs(got-want) > 0.001 {
		t.Errorf("mdev %.4f ms, want %.4f", got, want)
	}
	if z := summarize(nil, 5, 0, 0); z.LossPercent != 100 || z.P50 != 0 {
		t.Errorf("all lost: %+v", z)
	}
	if z := summarize(nil, 0, 0, 0); z.LossPercent != 0 {
		t.Errorf("nothing sent: %+v", z)
	}
}

// TestReorder: a reply with a lower sequence number than one already seen
// counts as reordered.
func TestReorder(t *testing.T) {
	a := newAccumulator(8)
	var got []bool
	for _, seq := range []int{0, 1, 3, 2, 4, 6, 5} {
		got = append(got, a.reply(seq, time.Millisecond))
	}
	want := []bool{false, false, false, true, false, false, true}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("reply %d reordered = %v, want %v", i, got[i], want[i])
		}
	}
	if st := a.stats(8, 0); st.Reordered != 2 || st.Received != 7 {
		t.Errorf("stats %+v", st)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []Config{{}, {Target: "x", Size: 10}, {Target: "x", Interval: time.Microsecond}, {Target: "x", Source: "nope"}} {
		if _, err := c.withDefaults(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}
