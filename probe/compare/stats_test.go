package compare

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func sample(n int, med, spread time.Duration, seed uint64) []time.Duration {
	r := rand.New(rand.NewPCG(seed, 1))
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = med + time.Duration(r.NormFloat64()*float64(spread))
	}
	return out
}

func TestBootstrapMedianDiff(t *testing.T) {
	for _, tc := range []struct {
		name          string
		a, b          []time.Duration
		wantZeroInCI  bool
		wantNear      time.Duration
		maxWidthShare float64 // CI width relative to the spread
	}{
		{"shift 1ms, spread 0.5ms", sample(300, 11*time.Millisecond, 500*time.Microsecond, 1), sample(300, 10*time.Millisecond, 500*time.Microsecond, 2), false, time.Millisecond, 0.5},
		{"no shift", sample(300, 10*time.Millisecond, 2*time.Millisecond, 3), sample(300, 10*time.Millisecond, 2*time.Millisecond, 4), true, 0, 0.5},
		{"shift 50us under 3ms jitter", sample(100, 20*time.Millisecond+50*time.Microsecond, 3*time.Millisecond, 5), sample(100, 20*time.Millisecond, 3*time.Millisecond, 6), true, 50 * time.Microsecond, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, lo, hi := bootstrapMedianDiff(tc.a, tc.b, 2000, 0.95)
			if lo > d || hi < d {
				t.Fatalf("interval %v..%v does not hold the estimate %v", lo, hi, d)
			}
			if zero := lo <= 0 && hi >= 0; zero != tc.wantZeroInCI {
				t.Errorf("interval %v..%v: includes zero %v, want %v", lo, hi, zero, tc.wantZeroInCI)
			}
			if !tc.wantZeroInCI && (tc.wantNear < lo || tc.wantNear > hi) {
				t.Errorf("true shift %v outside %v..%v", tc.wantNear, lo, hi)
			}
			// Same data, same interval (seeded).
			if d2, lo2, hi2 := bootstrapMedianDiff(tc.a, tc.b, 2000, 0.95); d2 != d || lo2 != lo || hi2 != hi {
				t.Errorf("not reproducible")
			}
		})
	}
	// Degenerate inputs do not panic.
	if d, lo, hi := bootstrapMedianDiff([]time.Duration{5}, []time.Duration{3}, 100, 0.95); d != 2 || lo != 2 || hi != 2 {
		t.Errorf("single values: %v %v %v", d, lo, hi)
	}
}

func TestMedian(t *testing.T) {
	if m := median([]float64{1, 2, 3, 10}); m != 2.5 {
		t.Errorf("even median %v", m)
	}
	if m := median([]float64{1, 2, 30}); m != 2 {
		t.Errorf("odd median %v", m)
	}
	if !math.IsNaN(median(nil)) {
		t.Error("empty median not NaN")
	}
}

func TestLossZ(t *testing.T) {
	for _, tc := range []struct {
		lostA, sentA, lostB, sentB int
		min, max                   float64
	}{
		{100, 500, 0, 500, 10, 11},  // 20% vs 0
		{2, 10, 0, 10, 1.4, 1.5},    // too few echoes to tell
		{5, 500, 5, 500, -0.1, 0.1}, // equal
		{0, 500, 0, 500, 0, 0},      // no loss: undefined -> 0
		{0, 0, 0, 10, 0, 0},
	} {
		if z := lossZ(tc.lostA, tc.sentA, tc.lostB, tc.sentB); z < tc.min || z > tc.max {
			t.Errorf("lossZ(%d/%d vs %d/%d) = %.2f, want %.1f..%.1f", tc.lostA, tc.sentA, tc.lostB, tc.sentB, z, tc.min, tc.max)
		}
	}
}
