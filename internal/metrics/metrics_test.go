package metrics_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jitaccess/jit/internal/app"
	"github.com/jitaccess/jit/internal/metrics"
)

var (
	_ app.Metrics = (*metrics.EMF)(nil)
	_ app.Metrics = metrics.Discard{}
)

func lines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(buf)
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m), "line %q", sc.Text())
		out = append(out, m)
	}
	require.NoError(t, sc.Err())
	return out
}

func TestEMF(t *testing.T) {
	tests := []struct {
		name      string
		dims      map[string]string
		record    func(m *metrics.EMF)
		wantName  string
		wantUnit  string
		wantValue float64
		wantDims  []any
	}{
		{
			name:      "count",
			dims:      map[string]string{"Service": "jit", "Function": "api"},
			record:    func(m *metrics.EMF) { m.Count(context.Background(), "RequestsSubmitted", 2) },
			wantName:  "RequestsSubmitted",
			wantUnit:  "Count",
			wantValue: 2,
			wantDims:  []any{"Function", "Service"},
		},
		{
			name:      "duration in milliseconds",
			dims:      map[string]string{"Service": "jit"},
			record:    func(m *metrics.EMF) { m.Duration(context.Background(), "GrantLatency", 1500*time.Microsecond) },
			wantName:  "GrantLatency",
			wantUnit:  "Milliseconds",
			wantValue: 1.5,
			wantDims:  []any{"Service"},
		},
		{
			name:      "no dimensions",
			record:    func(m *metrics.EMF) { m.Count(context.Background(), "Sweeps", 1) },
			wantName:  "Sweeps",
			wantUnit:  "Count",
			wantValue: 1,
			wantDims:  []any{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			before := time.Now().UnixMilli()
			tt.record(metrics.New(&buf, "JIT", tt.dims))
			after := time.Now().UnixMilli()

			got := lines(t, &buf)
			require.Len(t, got, 1)
			line := got[0]
			assert.Equal(t, tt.wantValue, line[tt.wantName])
			for k, v := range tt.dims {
				assert.Equal(t, v, line[k])
			}
			assert.Len(t, line, len(tt.dims)+2, "dimensions, the value and _aws")

			aws := line["_aws"].(map[string]any)
			ts := aws["Timestamp"].(float64)
			assert.GreaterOrEqual(t, ts, float64(before))
			assert.LessOrEqual(t, ts, float64(after))
			assert.Equal(t, []any{map[string]any{
				"Namespace":  "JIT",
				"Dimensions": []any{tt.wantDims},
				"Metrics":    []any{map[string]any{"Name": tt.wantName, "Unit": tt.wantUnit}},
			}}, aws["CloudWatchMetrics"])
		})
	}
}

func TestEMFDropsWhatItCannotWrite(t *testing.T) {
	var buf bytes.Buffer
	m := metrics.New(&buf, "JIT", map[string]string{"Service": "jit"})
	ctx := context.Background()
	m.Count(ctx, "", 1)
	m.Count(ctx, "Service", 1) // would overwrite the dimension
	m.Count(ctx, "_aws", 1)
	m.Count(ctx, "Bad", math.NaN())
	m.Count(ctx, "Bad", math.Inf(1))
	assert.Zero(t, buf.Len())
}

func TestEMFCopiesDimensions(t *testing.T) {
	var buf bytes.Buffer
	dims := map[string]string{"Service": "jit"}
	m := metrics.New(&buf, "JIT", dims)
	dims["Service"] = "changed"
	dims["Extra"] = "x"
	m.Count(context.Background(), "N", 1)
	line := lines(t, &buf)[0]
	assert.Equal(t, "jit", line["Service"])
	assert.NotContains(t, line, "Extra")
}

func TestEMFConcurrentWritesKeepLinesWhole(t *testing.T) {
	var buf bytes.Buffer // not safe on its own: EMF must serialise
	m := metrics.New(&buf, "JIT", map[string]string{"Service": "jit"})
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			for range 20 {
				if i%2 == 0 {
					m.Count(context.Background(), "Hits", 1)
				} else {
					m.Duration(context.Background(), "Latency", time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	assert.Len(t, lines(t, &buf), 1000)
}

func TestDiscard(t *testing.T) {
	metrics.Discard{}.Count(context.Background(), "N", 1)
	metrics.Discard{}.Duration(context.Background(), "D", time.Second)
}
