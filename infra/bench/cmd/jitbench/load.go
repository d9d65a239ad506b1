package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"time"

	"github.com/jitaccess/jit/infra/bench"
	"github.com/jitaccess/jit/internal/api"
	"github.com/jitaccess/jit/internal/config"
)

// loadEndpoint is one endpoint's bounded load.
type loadEndpoint struct {
	bench.LoadStats
	CallsPerReq  map[string]float64 // AWS calls per request, by service
	ReadsPerReq  float64            // modelled read units per request
	WritesPerReq float64
	// PerCall is the mean time of one AWS call (on moto, under this load).
	PerCall time.Duration
}

type loadResult struct {
	Path      string
	Endpoints []loadEndpoint
	Stack     []bench.LoadStats // the same load through the local stack's gateway, when it ran
	StackNote string
}

const createBody = `{"roleId":"one-approver","duration":"1h","justification":"Rotate the production database credentials"}`

// apiLoad drives POST /requests and GET /requests through the gateway path
// (api.Gateway over api.Lambda over the intake handler over a wire.Service
// on moto) with a bounded load at fixed concurrency.
func apiLoad(ctx context.Context, w *world, n, conc, approverN int, logf func(string, ...any)) (*loadResult, error) {
	cat, users := benchCatalog()
	if err := w.reset(ctx, users[:5]); err != nil {
		return nil, err
	}
	tr := newTracker()
	svc, err := w.service(config.Intake, w.tracked(tr, true), time.Now, cat, tr)
	if err != nil {
		return nil, err
	}
	log := quiet
	if os.Getenv("JITBENCH_TRACE") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		svc.Log = log
	}
	srv := httptest.NewServer(api.Gateway(api.Lambda(api.Intake(svc, api.Options{Log: log})), claimsOf))
	defer srv.Close()
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 2 * conc}}
	res := &loadResult{Path: "HTTP client -> httptest server: api.Gateway(api.Lambda(api.Intake(svc))) -> wire.Service(intake) -> moto_server"}
	requesters := []string{"alice@example.com", "bob@example.com"}

	run := func(name string, n, conc int, mk func(i int) *http.Request, want int) error {
		// One request first, outside the measurement (connections, moto's lazy loading).
		if err := do(client, mk(-1), want); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		tr.Reset()
		st, err := bench.Load(ctx, client, name, n, conc, mk)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if bad := n - st.Status[want]; bad*100 > n {
			return fmt.Errorf("%s: statuses %v, want %d for at least 99%%", name, st.Status, want)
		}
		snap := tr.Snapshot()
		ep := loadEndpoint{LoadStats: st, CallsPerReq: map[string]float64{}}
		for _, op := range snap.Names() {
			svcName, _, _ := strings.Cut(op, ".")
			ep.CallsPerReq[svcName] += float64(snap.Ops[op].Calls) / float64(n)
		}
		t := snap.Total("DynamoDB")
		ep.ReadsPerReq, ep.WritesPerReq = t.Read/float64(n), t.Write/float64(n)
		if all := snap.Total(""); all.Calls > 0 {
			ep.PerCall = all.Took / time.Duration(all.Calls)
		}
		res.Endpoints = append(res.Endpoints, ep)
		logf("api load: %s: %d requests at concurrency %d in %s", name, n, conc, st.Wall.Round(time.Millisecond))
		return nil
	}
	create := func(i int) *http.Request {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/requests", strings.NewReader(createBody))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Bench-User", requesters[(i+len(requesters))%len(requesters)])
		return req
	}
	list := func(user string) func(i int) *http.Request {
		return func(i int) *http.Request {
			u := user
			if u == "" {
				u = requesters[(i+len(requesters))%len(requesters)]
			}
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/requests?limit=50", nil)
			req.Header.Set("X-Bench-User", u)
			return req
		}
	}
	if err := run("POST /requests", n, conc, create, http.StatusCreated); err != nil {
		return nil, err
	}
	// moto answers every query by scanning the whole table, so GET is
	// measured over a table of realistic size, not the one the POSTs left:
	// seedPerUser requests of each requester, all awaiting carol.
	if err := w.reset(ctx, users[:5]); err != nil {
		return nil, err
	}
	if err := parallel(ctx, conc, seedPerUser*len(requesters), func(i int) error { return do(client, create(i), http.StatusCreated) }); err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	if err := run("GET /requests", n, conc, list(""), http.StatusOK); err != nil {
		return nil, err
	}
	// The approver of all of them lists too: her awaiting-approval list is
	// every pending request, read in full whatever the limit.
	if approverN > 0 {
		more := awaitingApprover - seedPerUser*len(requesters)
		if err := parallel(ctx, conc, more, func(i int) error { return do(client, create(i), http.StatusCreated) }); err != nil {
			return nil, fmt.Errorf("seed: %w", err)
		}
		if err := run(fmt.Sprintf("GET /requests by their approver (%d awaiting her)", awaitingApprover), approverN, 1, list("carol@example.com"), http.StatusOK); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// seedPerUser is how many requests each requester has when GET is
// measured; awaitingApprover how many await the approver when she lists.
const (
	seedPerUser      = 10
	awaitingApprover = 200
)

func do(client *http.Client, req *http.Request, want int) error {
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return fmt.Errorf("status %d, want %d: %.300s", resp.StatusCode, want, body)
	}
	return nil
}
