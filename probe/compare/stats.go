package compare

import (
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// median returns the sample median of sorted values (the mean of the two
// middle values for an even count).
func median(sorted []float64) float64 {
	n := len(sorted)
	if n == 0 {
		return math.NaN()
	}
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

func floats(d []time.Duration) []float64 {
	out := make([]float64, len(d))
	for i, v := range d {
		out[i] = float64(v)
	}
	slices.Sort(out)
	return out
}

// bootstrapMedianDiff estimates median(a) − median(b) with a percentile
// bootstrap confidence interval: resamples times, each sample is drawn with
// replacement independently (the two paths' echoes are not paired), and
// the interval holds the central conf share of the resampled differences.
// The generator is seeded, so the same data give the same interval.
func bootstrapMedianDiff(a, b []time.Duration, resamples int, conf float64) (diff, lo, hi time.Duration) {
	fa, fb := floats(a), floats(b)
	diff = time.Duration(median(fa) - median(fb))
	if len(fa) < 2 || len(fb) < 2 {
		return diff, diff, diff
	}
	rng := rand.New(rand.NewPCG(uint64(len(fa))<<32|uint64(len(fb)), 0x76706e64696167))
	ra, rb := make([]float64, len(fa)), make([]float64, len(fb))
	diffs := make([]float64, resamples)
	for i := range diffs {
		for j := range ra {
			ra[j] = fa[rng.IntN(len(fa))]
		}
		for j := range rb {
			rb[j] = fb[rng.IntN(len(fb))]
		}
		slices.Sort(ra)
		slices.Sort(rb)
		diffs[i] = median(ra) - median(rb)
	}
	slices.Sort(diffs)
	tail := (1 - conf) / 2
	at := func(q float64) float64 {
		i := int(math.Floor(q * float64(len(diffs)-1)))
		return diffs[min(max(i, 0), len(diffs)-1)]
	}
	return diff, time.Duration(at(tail)), time.Duration(at(1 - tail))
}

// lossZ is the one-sided two-proportion z statistic for "path a loses more
// than path b" (pooled standard error); 0 when undefined.
func lossZ(lostA, sentA, lostB, sentB int) float64 {
	if sentA == 0 || sentB == 0 {
		return 0
	}
	pa, pb := float64(lostA)/float64(sentA), float64(lostB)/float64(sentB)
	p := float64(lostA+lostB) / float64(sentA+sentB)
	se := math.Sqrt(p * (1 - p) * (1/float64(sentA) + 1/float64(sentB)))
	if se == 0 {
		return 0
	}
	return (pa - pb) / se
}
