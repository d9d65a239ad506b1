// Command jitbench-lag measures revoke lag (and, with -load, API load) on
// the local stack (infra/local/stack) with the fast dispatcher, and prints
// the result as JSON on stdout. jitbench runs it as a separate process so
// that the rest of the benchmark does not depend on the local stack.
//
// Revoke lag: LagUsers auto-approved grants all start at the same second S
// (their grant schedules fire together) and so all end at S+1h. The stack's
// clock runs in real time from an offset the command moves: to just before
// S, then to just before S+1h; the stack's own dispatcher (polling every
// second, firing at the exact second) fires the schedules. Each grant's lag
// is from its schedule's time to the request's transition (UpdatedAt, on
// the same clock), which follows the IAM read-back; afterwards every user is
// checked in IAM.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/jitaccess/jit/infra/bench"
	"github.com/jitaccess/jit/infra/local/stack"
	"github.com/jitaccess/jit/internal/access"
	"github.com/jitaccess/jit/internal/catalog"
)

var stackLog, motoLog io.Writer = io.Discard, nil

type output struct {
	Lag  *bench.LagResult  `json:"lag"`
	Load []bench.LoadStats `json:"load,omitempty"`
}

func main() {
	load := flag.Int("load", 0, "also send this many POST /requests and GET /requests through the gateway")
	conc := flag.Int("c", 8, "concurrency of -load")
	verbose := flag.Bool("v", false, "pass the stack's logs to stderr")
	flag.Parse()
	if *verbose {
		stackLog, motoLog = os.Stderr, os.Stderr
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	out, err := run(ctx, *load, *conc)
	if err != nil {
		fmt.Fprintln(os.Stderr, "jitbench-lag:", err)
		os.Exit(1)
	}
	_ = json.NewEncoder(os.Stdout).Encode(out)
}

func run(ctx context.Context, loadN, conc int) (*output, error) {
	src, _ := bench.CatalogYAML()
	cat, err := catalog.Parse("bench-catalog.yaml", []byte(src))
	if err != nil {
		return nil, err
	}
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())).UTC() }
	s, err := stack.Start(ctx, stack.Options{
		Addr: "127.0.0.1:0", Catalog: cat, Clock: now,
		Precision: time.Second, SweepInterval: -1, Log: stackLog, MotoLog: motoLog,
	})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	out := &output{}
	if out.Lag, err = lag(ctx, s, client, now, &offset); err != nil {
		return nil, err
	}
	if loadN > 0 {
		if out.Load, err = loadTest(ctx, s, client, loadN, conc); err != nil {
			fmt.Fprintln(os.Stderr, "jitbench-lag: load:", err)
		}
	}
	return out, nil
}

func post(ctx context.Context, client *http.Client, url, as, body string) (map[string]any, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(stack.DevIdentityHeader, as)
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return nil, fmt.Errorf("POST %s: %d %.300s", url, resp.StatusCode, raw)
	}
	var v map[string]any
	return v, json.Unmarshal(raw, &v)
}

// jump moves the stack's clock so that it reads t now.
func jump(offset *atomic.Int64, t time.Time) {
	offset.Store(int64(time.Until(t)))
}

func lag(ctx context.Context, s *stack.Stack, client *http.Client, now func() time.Time, offset *atomic.Int64) (*bench.LagResult, error) {
	n := bench.LagUsers
	start := now().Add(10 * time.Minute).Truncate(time.Minute)
	end := start.Add(time.Hour)
	ids := make([]string, n)
	errs := make([]error, n)
	sem := make(chan struct{}, 1) // one at a time: moto fails concurrent transactions
	done := make(chan struct{})
	for i := range n {
		go func() {
			sem <- struct{}{}
			defer func() { <-sem; done <- struct{}{} }()
			v, err := post(ctx, client, s.URL()+"/requests", fmt.Sprintf("u%03d@example.com", i),
				`{"roleId":"lag","duration":"1h","startAt":"`+start.Format(time.RFC3339)+`","justification":"Maintenance window for everyone"}`)
			if err == nil && v["status"] != string(access.StatusApproved) {
				err = fmt.Errorf("request is %v", v["status"])
			}
			if err == nil {
				ids[i], _ = v["id"].(string)
			}
			errs[i] = err
		}()
	}
	for range n {
		<-done
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	res := &bench.LagResult{
		Method: fmt.Sprintf("local stack (infra/local/stack) with the fast dispatcher (exact second, listing every %s): %d auto-approved grants starting at the same second and ending an hour later; the stack clock is moved to just before each moment and the dispatcher fires the schedules itself", s.Dispatcher().Poll(), n),
		Grants: n,
	}
	base := s.Dispatcher().Stats().Succeeded

	wait := func(target int, want access.Status, at time.Time) ([]time.Duration, time.Duration, error) {
		jump(offset, at.Add(-2*time.Second))
		t0 := time.Now()
		deadline := time.After(2 * time.Minute)
		for s.Dispatcher().Stats().Succeeded+s.Dispatcher().Stats().DeadLettered < base+target {
			select {
			case <-ctx.Done():
				return nil, 0, ctx.Err()
			case <-deadline:
				return nil, 0, fmt.Errorf("only %d of %d schedules fired in 2 minutes", s.Dispatcher().Stats().Succeeded-base, target)
			case <-time.After(20 * time.Millisecond):
			}
		}
		wall := time.Since(t0) - 2*time.Second
		var lags []time.Duration
		for _, id := range ids {
			r, err := s.Store().Get(ctx, id)
			if err != nil {
				return nil, 0, err
			}
			if r.Status != want {
				return nil, 0, fmt.Errorf("request %s is %s, want %s (%s)", id, r.Status, want, r.LastError)
			}
			lags = append(lags, r.UpdatedAt.Sub(at))
		}
		return lags, wall, nil
	}
	var err error
	if res.GrantLags, _, err = wait(n, access.StatusActive, start); err != nil {
		return nil, fmt.Errorf("grants: %w", err)
	}
	base = s.Dispatcher().Stats().Succeeded
	if res.Lags, res.Wall, err = wait(n, access.StatusExpired, end); err != nil {
		return nil, fmt.Errorf("revokes: %w", err)
	}
	ic := iam.NewFromConfig(s.AWSConfig())
	for i := range n {
		g, err := ic.ListGroupsForUser(ctx, &iam.ListGroupsForUserInput{UserName: aws.String(fmt.Sprintf("u%03d", i))})
		if err != nil {
			return nil, err
		}
		in := false
		for _, grp := range g.Groups {
			in = in || aws.ToString(grp.GroupName) == bench.LagGroup
		}
		if !in {
			res.Revoked++
		}
	}
	st := s.Dispatcher().Stats()
	res.Notes = append(res.Notes, fmt.Sprintf("dispatcher: %d fired, %d succeeded, %d retried, %d dead-lettered, %d deleted", st.Fired, st.Succeeded, st.Retried, st.DeadLettered, st.Deleted))
	return res, nil
}

func loadTest(ctx context.Context, s *stack.Stack, client *http.Client, n, conc int) ([]bench.LoadStats, error) {
	users := []string{"alice@example.com", "bob@example.com"}
	create := func(i int) *http.Request {
		req, _ := http.NewRequest(http.MethodPost, s.URL()+"/requests", strings.NewReader(`{"roleId":"one-approver","duration":"1h","justification":"Rotate the production database credentials"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(stack.DevIdentityHeader, users[(i+2)%2])
		return req
	}
	list := func(i int) *http.Request {
		req, _ := http.NewRequest(http.MethodGet, s.URL()+"/requests?limit=50", nil)
		req.Header.Set(stack.DevIdentityHeader, users[(i+2)%2])
		return req
	}
	var out []bench.LoadStats
	for _, c := range []struct {
		name string
		mk   func(int) *http.Request
		want int
	}{{"POST /requests", create, http.StatusCreated}, {"GET /requests", list, http.StatusOK}} {
		// Statuses other than c.want are reported, not fatal: moto answers
		// concurrent transactions with HTTP 500, and the stack does not
		// serialize them.
		st, err := bench.Load(ctx, client, c.name, n, conc, c.mk)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}
