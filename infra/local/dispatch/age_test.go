package dispatch_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/scheduler/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jitaccess/jit/infra/local/dispatch"
	"github.com/jitaccess/jit/internal/awstest"
)

// TestEventAgeCountsFromTheScheduleTime: MaximumEventAgeInSeconds (3600
// here) counts from the schedule's at() time, as in the service: a schedule
// fired 59m30s late has 30s of retrying left, not an hour.
func TestEventAgeCountsFromTheScheduleTime(t *testing.T) {
	f := setup(t)
	rec := &recorder{failures: 1000}
	d := f.dispatcher(t, map[string]dispatch.Handler{revokeARN: rec.handle}, func(o *dispatch.Options) { o.Backoff = time.Second })
	f.create(t, "late", revokeARN, t0, 100, types.ActionAfterCompletionDelete)
	f.advance(59*time.Minute + 30*time.Second)

	_, err := d.RunOnce(awstest.Context(t))
	require.NoError(t, err)
	// Waits of 1, 2, 4, 8 and 16 s fit in the 30 s left; the sixth attempt's
	// 32 s would not: 6 attempts, then the DLQ.
	assert.Len(t, rec.got(), 6)
	assert.Contains(t, f.logs.String(), "sent to DLQ")
	assert.Equal(t, 1, d.Stats().DeadLettered)
}

// failingGet fails GetSchedule for one schedule name.
type failingGet struct {
	dispatch.API
	name string
}

func (f failingGet) GetSchedule(ctx context.Context, in *scheduler.GetScheduleInput, opts ...func(*scheduler.Options)) (*scheduler.GetScheduleOutput, error) {
	if aws.ToString(in.Name) == f.name {
		return nil, errors.New("throttled")
	}
	return f.API.GetSchedule(ctx, in, opts...)
}

// TestUnreadableScheduleDoesNotHoldUpOthers: a schedule that cannot be read
// is reported, and the rest of the scan still fires.
func TestUnreadableScheduleDoesNotHoldUpOthers(t *testing.T) {
	f := setup(t)
	rec := &recorder{}
	opt := dispatch.Options{Group: group, Targets: map[string]dispatch.Handler{revokeARN: rec.handle}, Clock: f.clock,
		Sleep: func(context.Context, time.Duration) error { return nil }}
	d, err := dispatch.New(failingGet{API: f.client, name: "a-unreadable"}, opt)
	require.NoError(t, err)
	f.create(t, "a-unreadable", revokeARN, t0, 0, types.ActionAfterCompletionDelete)
	f.create(t, "b-fine", revokeARN, t0, 0, types.ActionAfterCompletionDelete)

	n, err := d.RunOnce(awstest.Context(t))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "a-unreadable")
	assert.Equal(t, 1, n)
	assert.Equal(t, []string{input("b-fine")}, rec.got())
}
