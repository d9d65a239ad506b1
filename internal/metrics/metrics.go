// Package metrics records numbers in CloudWatch embedded metric format
// (EMF): one JSON line per data point on the Lambda's stdout, which
// CloudWatch Logs turns into metrics without any API call on the hot path.
package metrics

import (
	"context"
	"encoding/json"
	"io"
	"maps"
	"math"
	"slices"
	"sync"
	"time"
)

// EMF writes metrics as embedded-metric-format log lines.
type EMF struct {
	mu        sync.Mutex // one line per Write, never interleaved
	w         io.Writer
	namespace string
	dims      map[string]string
	dimKeys   []string
}

// New returns an EMF writing to w (os.Stdout in Lambda) under namespace,
// with dims as the one dimension set of every metric.
func New(w io.Writer, namespace string, dims map[string]string) *EMF {
	dims = maps.Clone(dims)
	if dims == nil {
		dims = map[string]string{}
	}
	delete(dims, "_aws") // reserved for the metadata
	keys := slices.Sorted(maps.Keys(dims))
	if keys == nil {
		keys = []string{} // [[]], not [null]: metrics without dimensions
	}
	return &EMF{w: w, namespace: namespace, dims: dims, dimKeys: keys}
}

// Count records n occurrences of name.
func (e *EMF) Count(_ context.Context, name string, n float64) {
	e.write(name, "Count", n)
}

// Duration records d for name, in milliseconds.
func (e *EMF) Duration(_ context.Context, name string, d time.Duration) {
	e.write(name, "Milliseconds", float64(d)/float64(time.Millisecond))
}

type metricDef struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

type directive struct {
	Namespace  string      `json:"Namespace"`
	Dimensions [][]string  `json:"Dimensions"`
	Metrics    []metricDef `json:"Metrics"`
}

type metadata struct {
	Timestamp         int64       `json:"Timestamp"`
	CloudWatchMetrics []directive `json:"CloudWatchMetrics"`
}

// write emits one line. Metrics must never fail the work being measured, so
// values JSON cannot hold and write errors are dropped.
func (e *EMF) write(name, unit string, v float64) {
	if name == "" || name == "_aws" || math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	if _, clash := e.dims[name]; clash {
		return
	}
	doc := make(map[string]any, len(e.dims)+2)
	for k, val := range e.dims {
		doc[k] = val
	}
	doc[name] = v
	doc["_aws"] = metadata{
		Timestamp: time.Now().UnixMilli(),
		CloudWatchMetrics: []directive{{
			Namespace:  e.namespace,
			Dimensions: [][]string{e.dimKeys},
			Metrics:    []metricDef{{Name: name, Unit: unit}},
		}},
	}
	line, err := json.Marshal(doc)
	if err != nil {
		return
	}
	line = append(line, '\n')
	e.mu.Lock()
	defer e.mu.Unlock()
	_, _ = e.w.Write(line)
}

// Discard drops every metric, for tests and tools.
type Discard struct{}

// Count does nothing.
func (Discard) Count(context.Context, string, float64) {}

// Duration does nothing.
func (Discard) Duration(context.Context, string, time.Duration) {}
