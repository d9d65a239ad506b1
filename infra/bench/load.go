package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// LoadStats is a bounded load's outcome.
type LoadStats struct {
	Name        string          `json:"name"`
	N           int             `json:"n"`
	Concurrency int             `json:"concurrency"`
	Wall        time.Duration   `json:"wall"`
	Latencies   []time.Duration `json:"-"`
	Lat         Summary         `json:"lat"`
	Status      map[int]int     `json:"status"`
}

// RPS is requests per second over the whole run.
func (l LoadStats) RPS() float64 {
	if l.Wall <= 0 {
		return 0
	}
	return float64(l.N) / l.Wall.Seconds()
}

// Load sends n requests made by mk(0..n-1) with conc workers and records
// each one's latency (until the body is read) and status. A transport error
// ends the run.
func Load(ctx context.Context, client *http.Client, name string, n, conc int, mk func(i int) *http.Request) (LoadStats, error) {
	st := LoadStats{Name: name, N: n, Concurrency: conc, Latencies: make([]time.Duration, n), Status: map[int]int{}}
	var (
		mu    sync.Mutex
		next  int
		first error
		wg    sync.WaitGroup
	)
	t0 := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if first != nil || next >= n || ctx.Err() != nil {
					mu.Unlock()
					return
				}
				i := next
				next++
				mu.Unlock()
				req := mk(i).WithContext(ctx)
				s := time.Now()
				resp, err := client.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				d := time.Since(s)
				mu.Lock()
				if err != nil {
					if first == nil {
						first = fmt.Errorf("request %d: %w", i, err)
					}
				} else {
					st.Latencies[i] = d
					st.Status[resp.StatusCode]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	st.Wall = time.Since(t0)
	if first == nil {
		first = ctx.Err()
	}
	st.Lat = Summarize(st.Latencies)
	return st, first
}
