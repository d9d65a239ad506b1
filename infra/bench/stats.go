// Package bench holds the pure helpers of the benchmark command
// (bench/cmd/jitbench): statistics, the DynamoDB capacity model, the price
// table, an AWS call counter and a minimal Lambda Runtime API server. The
// benchmarks themselves only run through `make bench`; the tests of this
// package cover the helpers and run in `make test`.
package bench

import (
	"math"
	"slices"
	"time"
)

// Percentile returns the p-th percentile (0..100) of xs by linear
// interpolation between the closest ranks (numpy's default). xs need not be
// sorted; an empty xs gives NaN.
func Percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	p = min(max(p, 0), 100)
	pos := p / 100 * float64(len(s)-1)
	lo := int(math.Floor(pos))
	hi := int(math.Ceil(pos))
	frac := pos - float64(lo)
	return s[lo] + (s[hi]-s[lo])*frac
}

// Median is the 50th percentile.
func Median(xs []float64) float64 { return Percentile(xs, 50) }

// Summary describes a sample of durations.
type Summary struct {
	N                  int
	Min, P50, P99, Max time.Duration
	Mean               time.Duration
}

// Summarize computes the summary of ds.
func Summarize(ds []time.Duration) Summary {
	if len(ds) == 0 {
		return Summary{}
	}
	xs := make([]float64, len(ds))
	var sum float64
	for i, d := range ds {
		xs[i] = float64(d)
		sum += float64(d)
	}
	return Summary{
		N:    len(ds),
		Min:  time.Duration(Percentile(xs, 0)),
		P50:  time.Duration(Percentile(xs, 50)),
		P99:  time.Duration(Percentile(xs, 99)),
		Max:  time.Duration(Percentile(xs, 100)),
		Mean: time.Duration(sum / float64(len(xs))),
	}
}

// Ms renders d in milliseconds with two decimals, for tables.
func Ms(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Millisecond)*100) / 100
}

// Ratio is a/b, or NaN when b is zero.
func Ratio(a, b float64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return a / b
}
