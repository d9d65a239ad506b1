package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/jitaccess/jit/infra/local/dispatch"
	"github.com/jitaccess/jit/infra/local/stack"
	"github.com/jitaccess/jit/internal/access"
	"github.com/jitaccess/jit/internal/app"
	"github.com/jitaccess/jit/internal/faults"
)

// Config is one soak run.
type Config struct {
	// Lifecycles is how many requests are driven from submit to their end.
	Lifecycles int
	// FaultRate is the probability that an attempt of a call to one of
	// Services fails with one of Kinds (the SDK retries most of these away).
	FaultRate float64
	// CallFaultRate is the probability that a call fails on every one of
	// its attempts, so that the functions see the fault; CallFaultBurst
	// following calls of the same operation (within CallFaultBurstFor)
	// fail the same way, an outage that outlasts the app's own retries.
	CallFaultRate     float64
	CallFaultBurst    int
	CallFaultBurstFor time.Duration
	// FaultDelay is how long a timeout or a lost response takes.
	FaultDelay time.Duration
	Services   []string
	// Kinds are the faults drawn from; lost responses never go to DynamoDB
	// (see lostExempt).
	Kinds []faults.Kind
	// DupRate is the share of schedule deliveries made twice (half of them
	// at the same time, half one after the other), and of lifecycles that
	// get a stale grant and revoke delivery after their end.
	DupRate float64
	// Seed makes the lifecycles' plans and the faults reproducible (the
	// faults only up to the order in which concurrent calls arrive).
	Seed uint64
	// Concurrency bounds the HTTP clients working at once.
	Concurrency int
	// Batch is how many lifecycles share one local stack (a fresh
	// moto_server each): moto copies whole tables on every
	// TransactWriteItems and never frees the copies, so a store that keeps
	// growing makes every write slower.
	Batch int
	// SDKAttempts is the SDK retryer's attempts per call (the SDK default is 3).
	SDKAttempts int
	// MotoPath is the moto_server binary; empty looks it up on PATH.
	MotoPath string
	// Log receives the stack's logs; nil discards them.
	Log io.Writer
	// Progress is told how the run goes; nil is silent.
	Progress func(format string, args ...any)
	// Started, when set, is told about each batch's stack once it is up.
	Started func(st *stack.Stack)
	// Timeout bounds the whole run; zero means none.
	Timeout time.Duration
}

// DefaultConfig is `make soak`.
func DefaultConfig() Config {
	return Config{
		Lifecycles:        1000,
		FaultRate:         0.05,
		CallFaultRate:     0.01,
		CallFaultBurst:    3,
		CallFaultBurstFor: 3 * time.Second,
		FaultDelay:        20 * time.Millisecond,
		Services:          []string{faults.IAM, faults.Scheduler, faults.DynamoDB},
		Kinds:             []faults.Kind{faults.Throttle, faults.ServerError, faults.Timeout, faults.LostResponse},
		DupRate:           0.1,
		Seed:              1,
		Concurrency:       8,
		Batch:             100,
		SDKAttempts:       3,
	}
}

func (c *Config) validate() error {
	var errs []error
	if c.Lifecycles <= 0 {
		errs = append(errs, errors.New("-lifecycles must be positive"))
	}
	if c.FaultRate < 0 || c.FaultRate >= 1 {
		errs = append(errs, errors.New("-fault-rate must be at least 0 and below 1"))
	}
	if c.CallFaultRate < 0 || c.CallFaultRate >= 1 {
		errs = append(errs, errors.New("-call-fault-rate must be at least 0 and below 1"))
	}
	if c.CallFaultBurst < 0 || c.FaultDelay < 0 || c.FaultDelay > time.Second {
		errs = append(errs, errors.New("-call-fault-burst must not be negative, -fault-delay from 0 to 1s"))
	}
	if c.DupRate < 0 || c.DupRate > 1 {
		errs = append(errs, errors.New("-dup-rate must be from 0 to 1"))
	}
	if c.Concurrency <= 0 {
		errs = append(errs, errors.New("-concurrency must be positive"))
	}
	if c.SDKAttempts <= 0 {
		errs = append(errs, errors.New("-sdk-attempts must be positive"))
	}
	if c.Batch <= 0 || c.Batch > c.Lifecycles {
		c.Batch = c.Lifecycles
	}
	if len(c.Kinds) == 0 {
		c.Kinds = DefaultConfig().Kinds
	}
	if len(c.Services) == 0 {
		c.Services = DefaultConfig().Services
	}
	if c.Progress == nil {
		c.Progress = func(string, ...any) {}
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	return errors.Join(errs...)
}

// Run drives the lifecycles, batch by batch, and checks the invariants
// after each batch. The error is for a run that could not be carried out;
// broken invariants are in the result (Result.OK).
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cat, err := parseCatalog()
	if err != nil {
		return nil, err
	}
	if cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Timeout)
		defer cancel()
	}
	res := newResult(cfg)
	res.Commit = commit()
	plans := makePlans(cat, cfg)
	clk := newClock(time.Now().UTC().Truncate(time.Minute))
	for b := 0; b*cfg.Batch < len(plans); b++ {
		batch := plans[b*cfg.Batch : min((b+1)*cfg.Batch, len(plans))]
		t := time.Now()
		br, err := runBatch(ctx, cfg, b, batch, clk)
		if err != nil {
			return res, fmt.Errorf("batch %d: %w", b+1, err)
		}
		br.Took = time.Since(t)
		res.add(br)
		cfg.Progress("batch %d/%d: %d lifecycles, %d faults injected, invariants %s, %s",
			b+1, (len(plans)+cfg.Batch-1)/cfg.Batch, len(batch), br.Faults.InjectedTotal(), passFail(br.ok()), br.Took.Round(time.Second))
	}
	res.Duration = time.Since(res.Started)
	return res, nil
}

// clock is the stack's clock: virtual time the driver moves forward.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock(t time.Time) *clock { return &clock{now: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.now) {
		c.now = t
	}
}

// recorder is the functions' app.Metrics.
type recorder struct {
	mu     sync.Mutex
	counts map[string]float64
	maxDur map[string]time.Duration
}

func newRecorder() *recorder {
	return &recorder{counts: map[string]float64{}, maxDur: map[string]time.Duration{}}
}

func (r *recorder) Count(_ context.Context, name string, n float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.counts[name] += n
}

func (r *recorder) Duration(_ context.Context, name string, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.maxDur[name] = max(r.maxDur[name], d)
}

func (r *recorder) snapshot() (map[string]float64, map[string]time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.counts), maps.Clone(r.maxDur)
}

// duplicator wraps the dispatcher's targets: some deliveries are made
// twice, at once or one after the other, as the at-least-once Scheduler may.
type duplicator struct {
	mu   sync.Mutex
	rng  *rand.Rand
	rate float64

	deliveries, concurrent, sequential, dupErrors int
}

func (d *duplicator) wrap(_ string, h dispatch.Handler) dispatch.Handler {
	return func(ctx context.Context, in json.RawMessage) error {
		d.mu.Lock()
		d.deliveries++
		mode := 0
		if d.rng.Float64() < d.rate {
			mode = 1 + d.rng.IntN(2)
			if mode == 1 {
				d.concurrent++
			} else {
				d.sequential++
			}
		}
		d.mu.Unlock()
		switch mode {
		case 1:
			var wg sync.WaitGroup
			var dupErr error
			wg.Go(func() { dupErr = h(ctx, in) })
			err := h(ctx, in)
			wg.Wait()
			d.dupFailed(dupErr)
			return err
		case 2:
			err := h(ctx, in)
			d.dupFailed(h(ctx, in))
			return err
		}
		return h(ctx, in)
	}
}

func (d *duplicator) dupFailed(err error) {
	if err != nil {
		d.mu.Lock()
		d.dupErrors++
		d.mu.Unlock()
	}
}

// runBatch runs one batch on a fresh local stack.
func runBatch(ctx context.Context, cfg Config, index int, plans []*lifecycle, clk *clock) (*batchResult, error) {
	cat, err := parseCatalog()
	if err != nil {
		return nil, err
	}
	seed := cfg.Seed + uint64(index)*1_000_003
	inj := faults.New(faults.WithRate(faults.Rate{
		P: cfg.FaultRate, PerCall: cfg.CallFaultRate, Burst: cfg.CallFaultBurst, BurstFor: cfg.CallFaultBurstFor,
		Delay: cfg.FaultDelay, Services: cfg.Services, Kinds: cfg.Kinds, ExemptKind: lostExempt, Seed: seed,
	}))
	inj.Disable() // no faults while the stack is set up
	rec := newRecorder()
	dup := &duplicator{rng: rand.New(rand.NewPCG(seed, 7)), rate: cfg.DupRate}
	st, err := stack.Start(ctx, stack.Options{
		Addr:          "127.0.0.1:0",
		MotoPath:      cfg.MotoPath,
		Catalog:       cat,
		Clock:         clk.Now,
		Precision:     time.Minute,
		Poll:          24 * time.Hour, // the driver fires schedules itself (DispatchNow)
		RetryBackoff:  10 * time.Millisecond,
		SweepInterval: -1, // and runs the sweeper itself, on virtual time
		Log:           cfg.Log,
		Metrics:       rec,
		ConfigureAWS: func(c *aws.Config) {
			c.Retryer = faults.FastRetryer(cfg.SDKAttempts, 2*time.Millisecond)
			// (moto already gets one request at a time: awstest.SerialClient)
			inj.Install(c)
		},
		WrapTarget: dup.wrap,
	})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	if index == 0 {
		cfg.Progress("local stack up: moto_server %s, gateway %s", st.MotoURL(), st.URL())
	}
	if cfg.Started != nil {
		cfg.Started(st)
	}
	d, err := newDriver(ctx, cfg, st, clk, inj, plans, seed)
	if err != nil {
		return nil, err
	}
	inj.Enable()
	if err := d.run(ctx); err != nil {
		return nil, err
	}
	inj.Disable()
	if err := d.settle(ctx); err != nil {
		return nil, err
	}
	br := newBatchResult()
	br.Lifecycles = len(plans)
	if err := check(ctx, st, d, br); err != nil {
		return nil, fmt.Errorf("check invariants: %w", err)
	}
	br.Faults = inj.Stats()
	br.Metrics, br.MaxDurations = rec.snapshot()
	// Every revoke-failed record stands for one failed revoke (the metric
	// is counted once per failure, before the record is written): more
	// records than failures are duplicates.
	if n, m := br.RevokeFailedRecords, int(br.Metrics["RevokeFailures"]); n > m {
		br.Invariants[invOneRecord].fail("%d revoke-failed records but %d revoke failures (RevokeFailures metric)", n, m)
	}
	br.Dispatch = st.Dispatcher().Stats()
	dup.mu.Lock()
	br.Deliveries, br.DupConcurrent, br.DupSequential, br.DupErrors = dup.deliveries, dup.concurrent, dup.sequential, dup.dupErrors
	dup.mu.Unlock()
	d.fill(br)
	return br, nil
}

// lostExempt keeps lost responses away from DynamoDB: the SDK gives
// TransactWriteItems an idempotency token, which DynamoDB honours on a
// retry and moto ignores, so on moto a lost commit comes back as a conflict
// AWS would not report. IAM and Scheduler calls get lost responses: their
// adapters must take "already there" and "already gone" as success.
func lostExempt(service, _ string, k faults.Kind) bool {
	return k == faults.LostResponse && service == faults.DynamoDB
}

// commit names the code the run tested: the short commit, "-dirty" when
// the working tree has changes.
func commit() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
		c += "-dirty"
	}
	return c
}

func passFail(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

func sortedKeys[M ~map[K]V, K ~string, V any](m M) []K {
	return slices.Sorted(maps.Keys(m))
}

// terminal lists the terminal statuses in report order.
var terminal = []access.Status{access.StatusExpired, access.StatusRevoked, access.StatusDenied, access.StatusCancelled, access.StatusTimedOut, access.StatusFailed}

var _ app.Metrics = (*recorder)(nil)

func progressTo(w io.Writer) func(string, ...any) {
	if w == nil {
		w = os.Stderr
	}
	return func(format string, args ...any) {
		fmt.Fprintf(w, "soak: "+format+"\n", args...)
	}
}
