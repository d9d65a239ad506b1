// Package dispatch stands in for EventBridge Scheduler on the local stack.
// No emulator fires schedules, so the dispatcher lists the group's
// schedules through the Scheduler API (ListSchedules, then GetSchedule for
// each new version), and when a one-shot at() schedule is due it invokes the
// target function's handler with the schedule's Input, as the service does:
//
//   - Precision: the service fires an at() schedule anywhere within its
//     minute, so by default a schedule is due from the start of that minute
//     (up to 59 s early, which the domain allows for). Precision time.Second
//     fires at the exact second instead (the stack's -fast-schedules).
//   - ActionAfterCompletion DELETE: the schedule is deleted once the
//     invocation succeeded, or once it went to the dead-letter queue.
//   - RetryPolicy: a failing target is retried MaximumRetryAttempts times
//     with exponential backoff, bounded by MaximumEventAgeInSeconds; after
//     that the event is "sent to the DLQ" (logged with the DLQ ARN).
//   - Each version of a schedule (name, expression and modification time)
//     fires once per process, however often it is listed.
//
// rate() and cron() expressions, disabled schedules and schedules in the
// future are left alone.
package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/scheduler/types"
)

// API is the part of the Scheduler client the dispatcher uses; *scheduler.Client satisfies it.
type API interface {
	ListSchedules(ctx context.Context, in *scheduler.ListSchedulesInput, opts ...func(*scheduler.Options)) (*scheduler.ListSchedulesOutput, error)
	GetSchedule(ctx context.Context, in *scheduler.GetScheduleInput, opts ...func(*scheduler.Options)) (*scheduler.GetScheduleOutput, error)
	DeleteSchedule(ctx context.Context, in *scheduler.DeleteScheduleInput, opts ...func(*scheduler.Options)) (*scheduler.DeleteScheduleOutput, error)
}

// Handler is a target function: it receives the schedule's Input, as a
// Lambda invoked by the Scheduler does. An error makes the invocation fail.
type Handler func(ctx context.Context, input json.RawMessage) error

// Options configure a Dispatcher. Group and Targets are required.
type Options struct {
	Group string
	// Targets maps a target ARN (a function ARN) to the handler it invokes.
	Targets map[string]Handler
	// Clock tells the time schedules are compared with; nil means time.Now.
	Clock func() time.Time
	// Precision is time.Minute (the service: due from the start of the
	// at() minute) or time.Second (exact); zero means time.Minute.
	Precision time.Duration
	// Poll is how often Run scans; zero means 10s (1s with second precision).
	Poll time.Duration
	// Backoff is the wait before the first retry, doubled each time up to
	// MaxBackoff; zero means 1s and 1m.
	Backoff, MaxBackoff time.Duration
	// PageSize is the ListSchedules page size; zero means 100.
	PageSize int32
	Log      *slog.Logger
	// Sleep waits between retries; nil means a real timer.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Dispatcher fires the due schedules of one group.
type Dispatcher struct {
	api API
	opt Options

	mu       sync.Mutex
	cache    map[string]*scheduler.GetScheduleOutput // by name|modified
	done     map[string]bool                         // versions fired or firing
	skipped  map[string]bool                         // versions logged as not fireable
	inflight sync.WaitGroup
	stats    Stats
}

// Stats counts what a Dispatcher did.
type Stats struct {
	Fired, Succeeded, Retried, DeadLettered, Deleted int
}

// New returns a Dispatcher, or an error naming what is missing.
func New(api API, opt Options) (*Dispatcher, error) {
	var missing []string
	if api == nil {
		missing = append(missing, "API")
	}
	if opt.Group == "" {
		missing = append(missing, "Group")
	}
	if len(opt.Targets) == 0 {
		missing = append(missing, "Targets")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("dispatch: missing %s", strings.Join(missing, ", "))
	}
	if opt.Clock == nil {
		opt.Clock = time.Now
	}
	if opt.Precision <= 0 {
		opt.Precision = time.Minute
	}
	if opt.Poll <= 0 {
		opt.Poll = 10 * time.Second
		if opt.Precision < time.Minute {
			opt.Poll = time.Second
		}
	}
	if opt.Backoff <= 0 {
		opt.Backoff = time.Second
	}
	if opt.MaxBackoff <= 0 {
		opt.MaxBackoff = time.Minute
	}
	if opt.PageSize <= 0 {
		opt.PageSize = 100
	}
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	if opt.Sleep == nil {
		opt.Sleep = sleep
	}
	return &Dispatcher{api: api, opt: opt, cache: map[string]*scheduler.GetScheduleOutput{},
		done: map[string]bool{}, skipped: map[string]bool{}}, nil
}

// Poll is the interval Run scans at.
func (d *Dispatcher) Poll() time.Duration { return d.opt.Poll }

// Precision is how exactly schedules fire.
func (d *Dispatcher) Precision() time.Duration { return d.opt.Precision }

// Stats returns the counts so far.
func (d *Dispatcher) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats
}

// Run scans every Poll until ctx ends, then waits for the invocations in
// flight to finish (they see ctx end, too).
func (d *Dispatcher) Run(ctx context.Context) {
	defer d.inflight.Wait()
	t := time.NewTicker(d.opt.Poll)
	defer t.Stop()
	for {
		if _, err := d.Scan(ctx); err != nil && ctx.Err() == nil {
			d.opt.Log.WarnContext(ctx, "dispatcher: list schedules failed", "group", d.opt.Group, "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Scan lists the group's schedules once and starts an invocation for each
// due one not fired yet; it returns how many it started. Invocations run in
// the background; Wait waits for them.
func (d *Dispatcher) Scan(ctx context.Context) (int, error) {
	now := d.opt.Clock()
	started := 0
	pages := scheduler.NewListSchedulesPaginator(d.api, &scheduler.ListSchedulesInput{
		GroupName: aws.String(d.opt.Group), MaxResults: aws.Int32(d.opt.PageSize),
	})
	var errs []error
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return started, errors.Join(append(errs, err)...)
		}
		for _, sum := range page.Schedules {
			s, key, err := d.details(ctx, sum)
			if err != nil {
				if isNotFound(err) {
					continue // deleted since it was listed
				}
				// One unreadable schedule must not hold up the others.
				errs = append(errs, fmt.Errorf("schedule %s: %w", aws.ToString(sum.Name), err))
				continue
			}
			if s == nil || !d.due(ctx, s, key, now) {
				continue
			}
			d.mu.Lock()
			if d.done[key] {
				d.mu.Unlock()
				continue
			}
			d.done[key] = true
			d.stats.Fired++
			d.mu.Unlock()
			started++
			d.inflight.Add(1)
			go func() {
				defer d.inflight.Done()
				d.fire(ctx, s)
			}()
		}
	}
	return started, errors.Join(errs...)
}

// Wait blocks until every invocation started so far has finished.
func (d *Dispatcher) Wait() { d.inflight.Wait() }

// RunOnce scans and waits for the invocations it started: one tick, for tests.
func (d *Dispatcher) RunOnce(ctx context.Context) (int, error) {
	n, err := d.Scan(ctx)
	d.Wait()
	return n, err
}

// details returns the full definition of a listed schedule version, read
// once per version, and that version's key; nil when it was already fired.
func (d *Dispatcher) details(ctx context.Context, sum types.ScheduleSummary) (*scheduler.GetScheduleOutput, string, error) {
	name := aws.ToString(sum.Name)
	version := name + "|" + aws.ToTime(sum.LastModificationDate).UTC().Format(time.RFC3339Nano)
	d.mu.Lock()
	s, ok := d.cache[version]
	d.mu.Unlock()
	if !ok {
		out, err := d.api.GetSchedule(ctx, &scheduler.GetScheduleInput{Name: sum.Name, GroupName: aws.String(d.opt.Group)})
		if err != nil {
			return nil, "", err
		}
		s = out
		d.mu.Lock()
		d.cache[version] = s
		d.mu.Unlock()
	}
	key := version + "|" + aws.ToString(s.ScheduleExpression)
	d.mu.Lock()
	fired := d.done[key]
	d.mu.Unlock()
	if fired {
		return nil, key, nil
	}
	return s, key, nil
}

// due reports whether schedule s fires at now. Schedules it can never fire
// are logged once.
func (d *Dispatcher) due(ctx context.Context, s *scheduler.GetScheduleOutput, key string, now time.Time) bool {
	if s.State != "" && s.State != types.ScheduleStateEnabled {
		return false
	}
	at, err := ParseAt(aws.ToString(s.ScheduleExpression), aws.ToString(s.ScheduleExpressionTimezone))
	if err != nil {
		d.mu.Lock()
		first := !d.skipped[key]
		d.skipped[key] = true
		d.mu.Unlock()
		if first {
			d.opt.Log.WarnContext(ctx, "dispatcher: not firing schedule", "schedule", aws.ToString(s.Name), "reason", err.Error())
		}
		return false
	}
	return !now.Before(FireAt(at, d.opt.Precision))
}

// FireAt is when a schedule for at becomes due at the given precision: the
// start of its minute, like the service, or at itself to the second.
func FireAt(at time.Time, precision time.Duration) time.Time {
	if precision <= 0 {
		precision = time.Minute
	}
	return at.Truncate(precision)
}

// ParseAt reads a one-time "at(yyyy-mm-ddThh:mm:ss)" expression in the
// given IANA time zone (empty means UTC), as the service does.
func ParseAt(expr, tz string) (time.Time, error) {
	inner, ok := strings.CutPrefix(strings.TrimSpace(expr), "at(")
	if !ok || !strings.HasSuffix(inner, ")") {
		return time.Time{}, fmt.Errorf("expression %q is not a one-time at() schedule", expr)
	}
	loc := time.UTC
	if tz != "" && tz != "UTC" {
		l, err := time.LoadLocation(tz)
		if err != nil {
			return time.Time{}, fmt.Errorf("time zone %q: %w", tz, err)
		}
		loc = l
	}
	t, err := time.ParseInLocation("2006-01-02T15:04:05", strings.TrimSuffix(inner, ")"), loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("expression %q: %w", expr, err)
	}
	return t.UTC(), nil
}

// fire invokes the target with retries, then applies ActionAfterCompletion.
func (d *Dispatcher) fire(ctx context.Context, s *scheduler.GetScheduleOutput) {
	name := aws.ToString(s.Name)
	target := s.Target
	if target == nil {
		target = &types.Target{}
	}
	arn := aws.ToString(target.Arn)
	retries, maxAge := int32(185), 24*time.Hour // the service's defaults
	if rp := target.RetryPolicy; rp != nil {
		if rp.MaximumRetryAttempts != nil {
			retries = *rp.MaximumRetryAttempts
		}
		if rp.MaximumEventAgeInSeconds != nil {
			maxAge = time.Duration(*rp.MaximumEventAgeInSeconds) * time.Second
		}
	}
	log := d.opt.Log.With("schedule", name, "target", arn)
	input := json.RawMessage(aws.ToString(target.Input))
	if len(input) == 0 {
		input = json.RawMessage("{}")
	}

	h, ok := d.opt.Targets[arn]
	// The event's age counts from the schedule's time, as the service's
	// MaximumEventAgeInSeconds does, on the stack's clock.
	dueAt := d.opt.Clock()
	if at, err := ParseAt(aws.ToString(s.ScheduleExpression), aws.ToString(s.ScheduleExpressionTimezone)); err == nil {
		dueAt = at
	}
	started := time.Now() // and the wall time spent retrying here
	wait := d.opt.Backoff
	var err error
	for attempt := int32(0); ; attempt++ {
		if ok {
			err = invoke(ctx, h, input)
		} else {
			err = fmt.Errorf("no local function for target %s", arn)
		}
		if err == nil {
			log.InfoContext(ctx, "dispatcher: fired schedule", "expression", aws.ToString(s.ScheduleExpression), "attempt", attempt+1)
			d.count(func(st *Stats) { st.Succeeded++ })
			break
		}
		if ctx.Err() != nil {
			log.WarnContext(ctx, "dispatcher: stopped while invoking; the schedule stays", "error", err)
			return
		}
		age := max(d.opt.Clock().Sub(dueAt), 0) + time.Since(started)
		if attempt >= retries || age+wait > maxAge {
			dlq := ""
			if target.DeadLetterConfig != nil {
				dlq = aws.ToString(target.DeadLetterConfig.Arn)
			}
			log.ErrorContext(ctx, "dispatcher: target failed after retries; sent to DLQ", "attempts", attempt+1, "dlq", dlq, "input", string(input), "error", err)
			d.count(func(st *Stats) { st.DeadLettered++ })
			break
		}
		log.WarnContext(ctx, "dispatcher: target failed; retrying", "attempt", attempt+1, "of", retries+1, "wait", wait.String(), "error", err)
		d.count(func(st *Stats) { st.Retried++ })
		if d.opt.Sleep(ctx, wait) != nil {
			log.WarnContext(ctx, "dispatcher: stopped while retrying; the schedule stays")
			return
		}
		wait = min(wait*2, d.opt.MaxBackoff)
	}

	if s.ActionAfterCompletion != types.ActionAfterCompletionDelete {
		return // a one-time schedule without DELETE stays, and never fires again
	}
	_, derr := d.api.DeleteSchedule(ctx, &scheduler.DeleteScheduleInput{Name: s.Name, GroupName: aws.String(d.opt.Group)})
	switch {
	case derr == nil:
		d.count(func(st *Stats) { st.Deleted++ })
	case isNotFound(derr):
		// Already gone: the app unscheduled it while it ran.
	default:
		log.WarnContext(ctx, "dispatcher: delete after completion failed", "error", derr)
	}
}

// invoke calls h, turning a panic into an error as the Lambda runtime would.
func invoke(ctx context.Context, h Handler, input json.RawMessage) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panicked: %v", r)
		}
	}()
	return h(ctx, input)
}

func (d *Dispatcher) count(f func(*Stats)) {
	d.mu.Lock()
	f(&d.stats)
	d.mu.Unlock()
}

func isNotFound(err error) bool {
	var e *types.ResourceNotFoundException
	return errors.As(err, &e)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
