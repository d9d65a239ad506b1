package schedule_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/scheduler/types"
	"github.com/aws/smithy-go/middleware"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jitaccess/jit/internal/access"
	"github.com/jitaccess/jit/internal/awstest"
	"github.com/jitaccess/jit/internal/schedule"
)

func TestMain(m *testing.M) { awstest.Main(m) }

const (
	group     = "jit"
	roleARN   = "arn:aws:iam::123456789012:role/jit-scheduler"
	dlqARN    = "arn:aws:sqs:us-east-1:123456789012:jit-dlq"
	grantARN  = "arn:aws:lambda:us-east-1:123456789012:function:jit-grant"
	revokeARN = "arn:aws:lambda:us-east-1:123456789012:function:jit-revoke"
	requestID = "01JABCDEFGHJKMNPQRSTVWXYZ0"
)

// now is the fixed clock of the moto tests; moto does not check times.
var now = time.Date(2030, 1, 2, 3, 4, 5, 500_000_000, time.UTC)

func testConfig() schedule.Config {
	return schedule.Config{
		Group:   group,
		RoleARN: roleARN,
		DLQARN:  dlqARN,
		Targets: map[string]string{"grant": grantARN, "revoke": revokeARN},
	}
}

// calls counts operations sent through a client and can fail chosen ones.
type calls struct {
	mu     sync.Mutex
	counts map[string]int
	fail   map[string]error // operation -> error returned instead of calling moto
}

func (c *calls) count(op string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[op]
}

func (c *calls) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.counts {
		n += v
	}
	return n
}

// fixture is a moto-backed client with call counting, the group created,
// and a Scheduler over it.
type fixture struct {
	srv    *awstest.Server
	ctx    context.Context
	client *scheduler.Client
	calls  *calls
	s      *schedule.Scheduler
}

func setup(t *testing.T) *fixture {
	t.Helper()
	srv := awstest.Require(t)
	ctx := awstest.Context(t)
	c := &calls{counts: map[string]int{}, fail: map[string]error{}}
	client := scheduler.NewFromConfig(srv.Config(), func(o *scheduler.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Initialize.Add(middleware.InitializeMiddlewareFunc("count",
				func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
					op := awsmiddleware.GetOperationName(ctx)
					c.mu.Lock()
					c.counts[op]++
					err := c.fail[op]
					c.mu.Unlock()
					if err != nil {
						return middleware.InitializeOutput{}, middleware.Metadata{}, err
					}
					return next.HandleInitialize(ctx, in)
				}), middleware.After)
		})
	})
	require.NoError(t, schedule.EnsureGroup(ctx, client, group))
	s, err := schedule.New(client, testConfig(), func() time.Time { return now })
	require.NoError(t, err)
	return &fixture{srv: srv, ctx: ctx, client: client, calls: c, s: s}
}

func (f *fixture) get(t *testing.T, name string) *scheduler.GetScheduleOutput {
	t.Helper()
	out, err := f.client.GetSchedule(f.ctx, &scheduler.GetScheduleInput{Name: aws.String(name), GroupName: aws.String(group)})
	require.NoError(t, err)
	return out
}

func (f *fixture) exists(t *testing.T, name string) bool {
	t.Helper()
	_, err := f.client.GetSchedule(f.ctx, &scheduler.GetScheduleInput{Name: aws.String(name), GroupName: aws.String(group)})
	var nf *types.ResourceNotFoundException
	if errors.As(err, &nf) {
		return false
	}
	require.NoError(t, err)
	return true
}

func TestScheduleCreatesFullDefinition(t *testing.T) {
	f := setup(t)
	at := time.Date(2030, 1, 2, 5, 0, 0, 0, time.UTC)
	require.NoError(t, f.s.Schedule(f.ctx, "revoke", requestID, at))

	got := f.get(t, "revoke-"+requestID)
	assert.Equal(t, "revoke-"+requestID, aws.ToString(got.Name))
	assert.Equal(t, group, aws.ToString(got.GroupName))
	assert.Equal(t, "at(2030-01-02T05:00:00)", aws.ToString(got.ScheduleExpression))
	assert.Equal(t, "UTC", aws.ToString(got.ScheduleExpressionTimezone))
	require.NotNil(t, got.FlexibleTimeWindow)
	assert.Equal(t, types.FlexibleTimeWindowModeOff, got.FlexibleTimeWindow.Mode)
	assert.Nil(t, got.FlexibleTimeWindow.MaximumWindowInMinutes)
	assert.Equal(t, types.ActionAfterCompletionDelete, got.ActionAfterCompletion)
	assert.Equal(t, types.ScheduleStateEnabled, got.State)

	require.NotNil(t, got.Target)
	assert.Equal(t, revokeARN, aws.ToString(got.Target.Arn))
	assert.Equal(t, roleARN, aws.ToString(got.Target.RoleArn))
	assert.JSONEq(t, `{"action":"revoke","requestId":"`+requestID+`"}`, aws.ToString(got.Target.Input))
	require.NotNil(t, got.Target.RetryPolicy)
	assert.Equal(t, int32(3), aws.ToInt32(got.Target.RetryPolicy.MaximumRetryAttempts))
	assert.Equal(t, int32(3600), aws.ToInt32(got.Target.RetryPolicy.MaximumEventAgeInSeconds))
	require.NotNil(t, got.Target.DeadLetterConfig)
	assert.Equal(t, dlqARN, aws.ToString(got.Target.DeadLetterConfig.Arn))

	p, err := schedule.ParsePayload([]byte(aws.ToString(got.Target.Input)))
	require.NoError(t, err)
	assert.Equal(t, schedule.Payload{Action: "revoke", RequestID: requestID}, p)
}

func TestScheduleUsesActionTargetAndRetryConfig(t *testing.T) {
	f := setup(t)
	cfg := testConfig()
	cfg.MaxRetries, cfg.MaxEventAge = 10, 15*time.Minute
	s, err := schedule.New(f.client, cfg, func() time.Time { return now })
	require.NoError(t, err)
	require.NoError(t, s.Schedule(f.ctx, "grant", requestID, now.Add(time.Hour)))

	got := f.get(t, "grant-"+requestID)
	assert.Equal(t, grantARN, aws.ToString(got.Target.Arn))
	assert.JSONEq(t, `{"action":"grant","requestId":"`+requestID+`"}`, aws.ToString(got.Target.Input))
	assert.Equal(t, int32(10), aws.ToInt32(got.Target.RetryPolicy.MaximumRetryAttempts))
	assert.Equal(t, int32(900), aws.ToInt32(got.Target.RetryPolicy.MaximumEventAgeInSeconds))
	assert.Equal(t, "at(2030-01-02T04:04:06)", aws.ToString(got.ScheduleExpression), "rounded up to the second")
}

func TestScheduleTwiceIsSuccess(t *testing.T) {
	f := setup(t)
	at := now.Add(2 * time.Hour)
	require.NoError(t, f.s.Schedule(f.ctx, "revoke", requestID, at))
	// The second call hits ConflictException; it must count as success and
	// leave the first schedule as it was.
	require.NoError(t, f.s.Schedule(f.ctx, "revoke", requestID, at.Add(time.Hour)))
	assert.Equal(t, 2, f.calls.count("CreateSchedule"))
	assert.Equal(t, schedule.Expression(schedule.FireTime(at, now)), aws.ToString(f.get(t, "revoke-"+requestID).ScheduleExpression))
}

func TestUnscheduleTwiceIsSuccess(t *testing.T) {
	f := setup(t)
	require.NoError(t, f.s.Schedule(f.ctx, "grant", requestID, now.Add(time.Hour)))
	require.NoError(t, f.s.Unschedule(f.ctx, "grant", requestID))
	assert.False(t, f.exists(t, "grant-"+requestID))
	require.NoError(t, f.s.Unschedule(f.ctx, "grant", requestID), "missing schedule counts as deleted")
	assert.Equal(t, 2, f.calls.count("DeleteSchedule"))
}

func TestRescheduleMovesTime(t *testing.T) {
	f := setup(t)
	require.NoError(t, f.s.Schedule(f.ctx, "revoke", requestID, now.Add(time.Hour)))
	later := time.Date(2030, 1, 2, 9, 30, 0, 0, time.UTC)
	require.NoError(t, f.s.Reschedule(f.ctx, "revoke", requestID, later))

	got := f.get(t, "revoke-"+requestID)
	assert.Equal(t, "at(2030-01-02T09:30:00)", aws.ToString(got.ScheduleExpression))
	// The update carries the whole definition again.
	assert.Equal(t, "UTC", aws.ToString(got.ScheduleExpressionTimezone))
	assert.Equal(t, types.FlexibleTimeWindowModeOff, got.FlexibleTimeWindow.Mode)
	assert.Equal(t, types.ScheduleStateEnabled, got.State)
	assert.Equal(t, revokeARN, aws.ToString(got.Target.Arn))
	assert.Equal(t, roleARN, aws.ToString(got.Target.RoleArn))
	assert.JSONEq(t, `{"action":"revoke","requestId":"`+requestID+`"}`, aws.ToString(got.Target.Input))
	assert.Equal(t, int32(3), aws.ToInt32(got.Target.RetryPolicy.MaximumRetryAttempts))
	assert.Equal(t, dlqARN, aws.ToString(got.Target.DeadLetterConfig.Arn))
	assert.Equal(t, 1, f.calls.count("UpdateSchedule"))
}

func TestRescheduleCreatesMissing(t *testing.T) {
	f := setup(t)
	at := time.Date(2030, 1, 3, 0, 0, 0, 0, time.UTC)
	require.NoError(t, f.s.Reschedule(f.ctx, "grant", requestID, at))

	got := f.get(t, "grant-"+requestID)
	assert.Equal(t, "at(2030-01-03T00:00:00)", aws.ToString(got.ScheduleExpression))
	assert.Equal(t, types.ActionAfterCompletionDelete, got.ActionAfterCompletion)
	assert.Equal(t, 1, f.calls.count("UpdateSchedule"))
	assert.Equal(t, 1, f.calls.count("CreateSchedule"))
}

func TestSchedulePastTimeFiresSoon(t *testing.T) {
	f := setup(t)
	require.NoError(t, f.s.Schedule(f.ctx, "revoke", requestID, now.Add(-3*time.Hour)))
	// now is 03:04:05.5; one minute later rounded up is 03:05:06.
	assert.Equal(t, "at(2030-01-02T03:05:06)", aws.ToString(f.get(t, "revoke-"+requestID).ScheduleExpression))

	require.NoError(t, f.s.Reschedule(f.ctx, "revoke", requestID, now))
	assert.Equal(t, "at(2030-01-02T03:05:06)", aws.ToString(f.get(t, "revoke-"+requestID).ScheduleExpression))
}

func TestBadInputRejectedWithoutCallingAWS(t *testing.T) {
	f := setup(t)
	before := f.calls.total()
	s, err := schedule.New(f.client, schedule.Config{
		Group: group, RoleARN: roleARN, DLQARN: dlqARN,
		Targets: map[string]string{"revoke": revokeARN}, // no grant target
	}, func() time.Time { return now })
	require.NoError(t, err)

	cases := []struct {
		name, action, id string
	}{
		{"unknown action", "delete", requestID},
		{"empty action", "", requestID},
		{"action without target", "grant", requestID},
		{"empty id", "revoke", ""},
		{"slash in id", "revoke", "a/b"},
		{"space in id", "revoke", "a b"},
		{"non-ascii id", "revoke", "réquest"},
		{"name over 64", "revoke", strings.Repeat("x", 58)},
	}
	at := now.Add(time.Hour)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Schedule(f.ctx, tc.action, tc.id, at)
			assert.True(t, access.IsKind(err, access.KindInvalid), "Schedule: %v", err)
			err = s.Reschedule(f.ctx, tc.action, tc.id, at)
			assert.True(t, access.IsKind(err, access.KindInvalid), "Reschedule: %v", err)
			if tc.name != "action without target" { // deleting needs no target
				err = s.Unschedule(f.ctx, tc.action, tc.id)
				assert.True(t, access.IsKind(err, access.KindInvalid), "Unschedule: %v", err)
			}
		})
	}
	assert.Equal(t, before, f.calls.total(), "no call may reach AWS")

	// The longest id that fits still works.
	require.NoError(t, s.Schedule(f.ctx, "revoke", strings.Repeat("x", 57), at))
}

func TestAWSErrorsAreInternalAndNameTheOperation(t *testing.T) {
	f := setup(t)
	boom := errors.New("injected fault")
	for _, op := range []string{"CreateSchedule", "UpdateSchedule", "DeleteSchedule"} {
		f.calls.fail[op] = boom
	}
	for name, call := range map[string]func() error{
		"CreateSchedule": func() error { return f.s.Schedule(f.ctx, "revoke", requestID, now.Add(time.Hour)) },
		"UpdateSchedule": func() error { return f.s.Reschedule(f.ctx, "revoke", requestID, now.Add(time.Hour)) },
		"DeleteSchedule": func() error { return f.s.Unschedule(f.ctx, "revoke", requestID) },
	} {
		err := call()
		require.Error(t, err, name)
		assert.True(t, access.IsKind(err, access.KindInternal), "%s: %v", name, err)
		assert.ErrorIs(t, err, boom, name)
		assert.Contains(t, err.Error(), name)
		assert.Contains(t, err.Error(), "revoke-"+requestID)
	}
}

func TestRescheduleCreateFailureSurfaces(t *testing.T) {
	f := setup(t)
	boom := errors.New("injected fault")
	f.calls.fail["CreateSchedule"] = boom
	err := f.s.Reschedule(f.ctx, "grant", requestID, now.Add(time.Hour))
	assert.True(t, access.IsKind(err, access.KindInternal), "%v", err)
	assert.ErrorIs(t, err, boom)
	assert.Contains(t, err.Error(), "CreateSchedule")
}

func TestMissingGroupIsInternalError(t *testing.T) {
	f := setup(t)
	cfg := testConfig()
	cfg.Group = "no-such-group"
	// moto answers 500 here (AWS: ResourceNotFoundException); one attempt
	// keeps the retryer from spending backoff on it.
	single := scheduler.NewFromConfig(f.srv.Config(), func(o *scheduler.Options) { o.RetryMaxAttempts = 1 })
	s, err := schedule.New(single, cfg, nil)
	require.NoError(t, err)
	err = s.Schedule(f.ctx, "revoke", requestID, time.Now().Add(time.Hour))
	assert.True(t, access.IsKind(err, access.KindInternal), "%v", err)
	assert.Contains(t, err.Error(), "CreateSchedule")
}

func TestEnsureGroupIsIdempotentAndKeepsSchedules(t *testing.T) {
	f := setup(t) // already ensured once
	require.NoError(t, f.s.Schedule(f.ctx, "revoke", requestID, now.Add(time.Hour)))
	require.NoError(t, schedule.EnsureGroup(f.ctx, f.client, group))
	assert.True(t, f.exists(t, "revoke-"+requestID), "a second EnsureGroup must not replace the group")
	assert.Equal(t, 1, f.calls.count("CreateScheduleGroup"))

	err := schedule.EnsureGroup(f.ctx, f.client, "bad/name")
	assert.True(t, access.IsKind(err, access.KindInvalid), "%v", err)
}
