package dispatch_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/scheduler/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jitaccess/jit/infra/local/dispatch"
	"github.com/jitaccess/jit/internal/awstest"
	"github.com/jitaccess/jit/internal/schedule"
)

func TestMain(m *testing.M) { awstest.Main(m) }

const (
	group     = "jit-test"
	grantARN  = "arn:aws:lambda:us-east-1:123456789012:function:jit-grant"
	revokeARN = "arn:aws:lambda:us-east-1:123456789012:function:jit-revoke"
	dlqARN    = "arn:aws:sqs:us-east-1:123456789012:jit-dlq"
)

// t0 is on a minute boundary, so "within the minute" is easy to reason about.
var t0 = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)

// recorder is a fake target function that fails its first failures calls.
type recorder struct {
	mu       sync.Mutex
	calls    []string
	failures int
}

func (r *recorder) handle(_ context.Context, in json.RawMessage) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, string(in))
	if len(r.calls) <= r.failures {
		return fmt.Errorf("target failure %d", len(r.calls))
	}
	return nil
}

func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := append([]string(nil), r.calls...)
	sort.Strings(out)
	return out
}

type fixture struct {
	client *scheduler.Client
	now    time.Time
	mu     sync.Mutex
	waits  []time.Duration
	logs   *bytes.Buffer
}

func setup(t *testing.T) *fixture {
	srv := awstest.Require(t)
	f := &fixture{client: scheduler.NewFromConfig(srv.Config()), now: t0, logs: &bytes.Buffer{}}
	require.NoError(t, schedule.EnsureGroup(awstest.Context(t), f.client, group))
	return f
}

func (f *fixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

func (f *fixture) dispatcher(t *testing.T, targets map[string]dispatch.Handler, mod func(*dispatch.Options)) *dispatch.Dispatcher {
	opt := dispatch.Options{
		Group: group, Targets: targets, Clock: f.clock,
		Log: slog.New(slog.NewTextHandler(&lockedWriter{w: f.logs}, nil)),
		Sleep: func(_ context.Context, d time.Duration) error {
			f.mu.Lock()
			f.waits = append(f.waits, d)
			f.mu.Unlock()
			return nil
		},
	}
	if mod != nil {
		mod(&opt)
	}
	d, err := dispatch.New(f.client, opt)
	require.NoError(t, err)
	return d
}

// create makes a one-shot schedule as the schedule adapter does, at an
// explicit time.
func (f *fixture) create(t *testing.T, name, arn string, at time.Time, retries int32, after types.ActionAfterCompletion) {
	_, err := f.client.CreateSchedule(awstest.Context(t), &scheduler.CreateScheduleInput{
		Name: aws.String(name), GroupName: aws.String(group),
		ScheduleExpression:         aws.String(schedule.Expression(at)),
		ScheduleExpressionTimezone: aws.String("UTC"),
		FlexibleTimeWindow:         &types.FlexibleTimeWindow{Mode: types.FlexibleTimeWindowModeOff},
		ActionAfterCompletion:      after,
		Target: &types.Target{
			Arn: aws.String(arn), RoleArn: aws.String("arn:aws:iam::123456789012:role/jit-scheduler"),
			Input:            aws.String(fmt.Sprintf(`{"action":"revoke","requestId":%q}`, name)),
			RetryPolicy:      &types.RetryPolicy{MaximumRetryAttempts: aws.Int32(retries), MaximumEventAgeInSeconds: aws.Int32(3600)},
			DeadLetterConfig: &types.DeadLetterConfig{Arn: aws.String(dlqARN)},
		},
	})
	require.NoError(t, err)
}

func (f *fixture) names(t *testing.T) []string {
	out, err := f.client.ListSchedules(awstest.Context(t), &scheduler.ListSchedulesInput{GroupName: aws.String(group)})
	require.NoError(t, err)
	var names []string
	for _, s := range out.Schedules {
		names = append(names, aws.ToString(s.Name))
	}
	sort.Strings(names)
	return names
}

func input(name string) string { return fmt.Sprintf(`{"action":"revoke","requestId":%q}`, name) }

func TestDueSchedulesFireOnceAndAreDeleted(t *testing.T) {
	f := setup(t)
	ctx := awstest.Context(t)
	rec := &recorder{}
	d := f.dispatcher(t, map[string]dispatch.Handler{revokeARN: rec.handle}, nil)

	f.create(t, "past", revokeARN, t0.Add(-time.Hour), 3, types.ActionAfterCompletionDelete)
	f.create(t, "now", revokeARN, t0, 3, types.ActionAfterCompletionDelete)
	f.create(t, "later", revokeARN, t0.Add(2*time.Hour), 3, types.ActionAfterCompletionDelete)

	for range 3 { // listed again and again, each fires once
		_, err := d.RunOnce(ctx)
		require.NoError(t, err)
	}
	assert.Equal(t, []string{input("now"), input("past")}, rec.got(), "due schedules fire once each; the future one does not")
	assert.Equal(t, []string{"later"}, f.names(t), "fired schedules are deleted (ActionAfterCompletion DELETE)")
	assert.Equal(t, dispatch.Stats{Fired: 2, Succeeded: 2, Deleted: 2}, d.Stats())

	f.advance(2 * time.Hour)
	n, err := d.RunOnce(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n, "the later schedule fires once its time comes")
	assert.Len(t, rec.got(), 3)
	assert.Empty(t, f.names(t))
}

func TestMinutePrecisionFiresWithinTheMinute(t *testing.T) {
	f := setup(t)
	ctx := awstest.Context(t)
	rec := &recorder{}
	minute := f.dispatcher(t, map[string]dispatch.Handler{revokeARN: rec.handle}, nil)

	// Like the service: at(10:00:30) may fire from 10:00:00; at(10:01:00) not yet.
	f.create(t, "half-past", revokeARN, t0.Add(30*time.Second), 3, types.ActionAfterCompletionDelete)
	f.create(t, "next-minute", revokeARN, t0.Add(time.Minute), 3, types.ActionAfterCompletionDelete)
	_, err := minute.RunOnce(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{input("half-past")}, rec.got())
	assert.Equal(t, []string{"next-minute"}, f.names(t))
	assert.Equal(t, time.Minute, minute.Precision())
	assert.Equal(t, 10*time.Second, minute.Poll())
}

func TestSecondPrecisionFiresAtTheSecond(t *testing.T) {
	f := setup(t)
	ctx := awstest.Context(t)
	rec := &recorder{}
	exact := f.dispatcher(t, map[string]dispatch.Handler{revokeARN: rec.handle}, func(o *dispatch.Options) { o.Precision = time.Second })
	assert.Equal(t, time.Second, exact.Poll())

	f.create(t, "half-past", revokeARN, t0.Add(30*time.Second), 3, types.ActionAfterCompletionDelete)
	_, err := exact.RunOnce(ctx)
	require.NoError(t, err)
	assert.Empty(t, rec.got(), "29s early is too early at second precision")

	f.advance(29 * time.Second)
	_, err = exact.RunOnce(ctx)
	require.NoError(t, err)
	assert.Empty(t, rec.got())

	f.advance(time.Second)
	_, err = exact.RunOnce(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{input("half-past")}, rec.got())
}

func TestFailingTargetIsRetriedWithBackoff(t *testing.T) {
	f := setup(t)
	ctx := awstest.Context(t)
	rec := &recorder{failures: 2}
	d := f.dispatcher(t, map[string]dispatch.Handler{revokeARN: rec.handle}, func(o *dispatch.Options) { o.Backoff = 100 * time.Millisecond })

	f.create(t, "flaky", revokeARN, t0, 3, types.ActionAfterCompletionDelete)
	_, err := d.RunOnce(ctx)
	require.NoError(t, err)

	assert.Len(t, rec.got(), 3, "two failures, then the third attempt succeeds")
	assert.Equal(t, []time.Duration{100 * time.Millisecond, 200 * time.Millisecond}, f.waits, "exponential backoff between attempts")
	assert.Empty(t, f.names(t), "deleted after the successful attempt")
	assert.Equal(t, dispatch.Stats{Fired: 1, Succeeded: 1, Retried: 2, Deleted: 1}, d.Stats())
	assert.NotContains(t, f.logs.String(), "DLQ")
}

func TestExhaustedRetriesGoToTheDLQ(t *testing.T) {
	f := setup(t)
	ctx := awstest.Context(t)
	rec := &recorder{failures: 100}
	d := f.dispatcher(t, map[string]dispatch.Handler{revokeARN: rec.handle}, nil)

	f.create(t, "broken", revokeARN, t0, 2, types.ActionAfterCompletionDelete)
	_, err := d.RunOnce(ctx)
	require.NoError(t, err)
	assert.Len(t, rec.got(), 3, "the first attempt and MaximumRetryAttempts=2 retries")
	assert.Contains(t, f.logs.String(), "sent to DLQ")
	assert.Contains(t, f.logs.String(), dlqARN)
	assert.Empty(t, f.names(t), "deleted once the event went to the DLQ")
	assert.Equal(t, 1, d.Stats().DeadLettered)

	_, err = d.RunOnce(ctx)
	require.NoError(t, err)
	assert.Len(t, rec.got(), 3, "never fired again")
}

func TestUnknownTargetGoesToTheDLQ(t *testing.T) {
	f := setup(t)
	ctx := awstest.Context(t)
	rec := &recorder{}
	d := f.dispatcher(t, map[string]dispatch.Handler{revokeARN: rec.handle}, nil)
	f.create(t, "nowhere", "arn:aws:lambda:us-east-1:123456789012:function:other", t0, 0, types.ActionAfterCompletionDelete)
	_, err := d.RunOnce(ctx)
	require.NoError(t, err)
	assert.Empty(t, rec.got())
	assert.Contains(t, f.logs.String(), "no local function for target")
	assert.Equal(t, 1, d.Stats().DeadLettered)
}

func TestTargetsArePickedByARN(t *testing.T) {
	f := setup(t)
	ctx := awstest.Context(t)
	grants, revokes := &recorder{}, &recorder{}
	d := f.dispatcher(t, map[string]dispatch.Handler{grantARN: grants.handle, revokeARN: revokes.handle}, nil)
	f.create(t, "g", grantARN, t0, 3, types.ActionAfterCompletionDelete)
	f.create(t, "r", revokeARN, t0, 3, types.ActionAfterCompletionDelete)
	_, err := d.RunOnce(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{input("g")}, grants.got())
	assert.Equal(t, []string{input("r")}, revokes.got())
}

func TestWithoutDeleteTheScheduleStaysButDoesNotFireAgain(t *testing.T) {
	f := setup(t)
	ctx := awstest.Context(t)
	rec := &recorder{}
	d := f.dispatcher(t, map[string]dispatch.Handler{revokeARN: rec.handle}, nil)
	f.create(t, "keep", revokeARN, t0, 3, types.ActionAfterCompletionNone)
	for range 3 {
		_, err := d.RunOnce(ctx)
		require.NoError(t, err)
	}
	assert.Len(t, rec.got(), 1)
	assert.Equal(t, []string{"keep"}, f.names(t))
}

func TestRescheduledScheduleFiresAgainAtItsNewTime(t *testing.T) {
	f := setup(t)
	ctx := awstest.Context(t)
	rec := &recorder{}
	d := f.dispatcher(t, map[string]dispatch.Handler{revokeARN: rec.handle}, nil)
	f.create(t, "moved", revokeARN, t0.Add(time.Hour), 3, types.ActionAfterCompletionDelete)
	_, err := d.RunOnce(ctx)
	require.NoError(t, err)
	assert.Empty(t, rec.got())

	// The schedule adapter moves it to now (UpdateSchedule), as Reschedule does.
	sched, err := schedule.New(f.client, schedule.Config{Group: group, RoleARN: "arn:aws:iam::123456789012:role/r", DLQARN: dlqARN,
		Targets: map[string]string{"revoke": revokeARN}}, func() time.Time { return t0.Add(-time.Hour) })
	require.NoError(t, err)
	require.NoError(t, sched.Reschedule(ctx, "revoke", "moved-id", t0))
	_, err = f.client.DeleteSchedule(ctx, &scheduler.DeleteScheduleInput{Name: aws.String("moved"), GroupName: aws.String(group)})
	require.NoError(t, err)
	_, err = d.RunOnce(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{`{"action":"revoke","requestId":"moved-id"}`}, rec.got())
}

func TestListingIsPaginated(t *testing.T) {
	f := setup(t)
	ctx := awstest.Context(t)
	rec := &recorder{}
	d := f.dispatcher(t, map[string]dispatch.Handler{revokeARN: rec.handle}, func(o *dispatch.Options) { o.PageSize = 2 })
	for i := range 5 {
		f.create(t, fmt.Sprintf("s%d", i), revokeARN, t0, 3, types.ActionAfterCompletionDelete)
	}
	n, err := d.RunOnce(ctx)
	require.NoError(t, err)
	assert.Equal(t, 5, n)
	assert.Len(t, rec.got(), 5)
}

func TestPanickingTargetCountsAsAFailure(t *testing.T) {
	f := setup(t)
	ctx := awstest.Context(t)
	d := f.dispatcher(t, map[string]dispatch.Handler{revokeARN: func(context.Context, json.RawMessage) error { panic("boom") }}, nil)
	f.create(t, "p", revokeARN, t0, 0, types.ActionAfterCompletionDelete)
	_, err := d.RunOnce(ctx)
	require.NoError(t, err)
	assert.Contains(t, f.logs.String(), "handler panicked: boom")
	assert.Equal(t, 1, d.Stats().DeadLettered)
}

func TestRunPollsUntilCancelled(t *testing.T) {
	f := setup(t)
	rec := &recorder{}
	d := f.dispatcher(t, map[string]dispatch.Handler{revokeARN: rec.handle}, func(o *dispatch.Options) { o.Poll = 20 * time.Millisecond })
	ctx, cancel := context.WithCancel(awstest.Context(t))
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()

	f.create(t, "polled", revokeARN, t0, 3, types.ActionAfterCompletionDelete)
	require.Eventually(t, func() bool { return len(rec.got()) == 1 }, 10*time.Second, 10*time.Millisecond)
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

func TestParseAt(t *testing.T) {
	at, err := dispatch.ParseAt("at(2026-12-03T10:00:30)", "")
	require.NoError(t, err)
	assert.Equal(t, t0.Add(30*time.Second), at)

	at, err = dispatch.ParseAt("at(2026-12-03T11:00:30)", "Europe/Berlin")
	require.NoError(t, err)
	assert.Equal(t, t0.Add(30*time.Second), at, "evaluated in the schedule's time zone")

	for _, bad := range []string{"rate(5 minutes)", "cron(0 10 * * ? *)", "at(2026-12-03 10:00)", "at(tomorrow)"} {
		_, err := dispatch.ParseAt(bad, "UTC")
		assert.Error(t, err, bad)
	}
	assert.Equal(t, t0, dispatch.FireAt(t0.Add(59*time.Second), time.Minute))
	assert.Equal(t, t0.Add(59*time.Second), dispatch.FireAt(t0.Add(59*time.Second), time.Second))
}

func TestNewNamesWhatIsMissing(t *testing.T) {
	_, err := dispatch.New(nil, dispatch.Options{})
	require.Error(t, err)
	assert.Equal(t, "dispatch: missing API, Group, Targets", err.Error())
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
