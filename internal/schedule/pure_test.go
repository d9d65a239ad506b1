package schedule_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/scheduler/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jitaccess/jit/internal/access"
	"github.com/jitaccess/jit/internal/schedule"
)

func TestFireTime(t *testing.T) {
	base := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	paris := time.FixedZone("CEST", 2*3600)
	cases := []struct {
		name    string
		at, now time.Time
		want    time.Time
	}{
		{"far future whole second", base.Add(time.Hour), base, base.Add(time.Hour)},
		{"far future rounds up", base.Add(time.Hour + time.Millisecond), base, base.Add(time.Hour + time.Second)},
		{"just under a second rounds up", base.Add(time.Hour + 999*time.Millisecond), base, base.Add(time.Hour + time.Second)},
		{"exactly the lead", base.Add(time.Minute), base, base.Add(time.Minute)},
		{"a bit less than the lead", base.Add(59 * time.Second), base, base.Add(time.Minute)},
		{"now", base, base, base.Add(time.Minute)},
		{"past", base.Add(-48 * time.Hour), base, base.Add(time.Minute)},
		{"zero time", time.Time{}, base, base.Add(time.Minute)},
		{"past with fractional now rounds up", base.Add(-time.Hour), base.Add(300 * time.Millisecond), base.Add(time.Minute + time.Second)},
		{"lead with fractional now", base.Add(time.Minute), base.Add(300 * time.Millisecond), base.Add(time.Minute + time.Second)},
		{"other zone converted to UTC", time.Date(2030, 6, 1, 16, 0, 0, 0, paris), base, base.Add(2 * time.Hour)},
		{"other zone now", base, base.In(paris), base.Add(time.Minute)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := schedule.FireTime(tc.at, tc.now)
			assert.True(t, tc.want.Equal(got), "FireTime = %s, want %s", got, tc.want)
			assert.Equal(t, time.UTC, got.Location())
			assert.Zero(t, got.Nanosecond())
			assert.False(t, got.Before(tc.at.Truncate(time.Second)), "never earlier than asked")
			assert.GreaterOrEqual(t, got.Sub(tc.now), time.Minute, "never less than the lead")
		})
	}
}

func TestExpression(t *testing.T) {
	at := time.Date(2030, 6, 1, 14, 5, 9, 0, time.FixedZone("CEST", 2*3600))
	assert.Equal(t, "at(2030-06-01T12:05:09)", schedule.Expression(at))
	assert.Equal(t, "revoke-abc", schedule.Name("revoke", "abc"))
}

func TestNewValidatesConfig(t *testing.T) {
	client := &scheduler.Client{}

	_, err := schedule.New(client, schedule.Config{}, nil)
	require.True(t, access.IsKind(err, access.KindInvalid), "%v", err)
	for _, field := range []string{"Group", "RoleARN", "DLQARN", "Targets"} {
		assert.Contains(t, err.Error(), field)
	}

	_, err = schedule.New(nil, schedule.Config{
		Group:       "bad/group",
		RoleARN:     roleARN,
		DLQARN:      dlqARN,
		Targets:     map[string]string{"revoke": "", "delete": grantARN},
		MaxRetries:  186,
		MaxEventAge: 30 * time.Second,
	}, nil)
	require.True(t, access.IsKind(err, access.KindInvalid), "%v", err)
	for _, part := range []string{"client", `Group "bad/group"`, "Targets[revoke]", `unknown action "delete"`, "MaxRetries 186", "MaxEventAge 30s"} {
		assert.Contains(t, err.Error(), part)
	}

	s, err := schedule.New(client, testConfig(), nil)
	require.NoError(t, err)
	assert.NotNil(t, s)
}

func TestParsePayload(t *testing.T) {
	good := []struct {
		in   string
		want schedule.Payload
	}{
		{`{"action":"revoke","requestId":"01JABC"}`, schedule.Payload{Action: "revoke", RequestID: "01JABC"}},
		{` {"requestId":"a-b_c.d","action":"grant"} `, schedule.Payload{Action: "grant", RequestID: "a-b_c.d"}},
	}
	for _, tc := range good {
		got, err := schedule.ParsePayload([]byte(tc.in))
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got)
	}

	bad := []string{
		``,
		`null`,
		`[]`,
		`"revoke"`,
		`{}`,
		`{"action":"revoke"}`,
		`{"action":"revoke","requestId":""}`,
		`{"action":"delete","requestId":"x"}`,
		`{"action":"REVOKE","requestId":"x"}`,
		`{"action":"revoke","requestId":"x","extra":1}`,
		`{"action":"revoke","requestId":"x"} {"action":"grant","requestId":"y"}`,
		`{"action":"revoke","requestId":"x"}garbage`,
		`{"action":"revoke","requestId":"../etc"}`,
		`{"action":"revoke","requestId":"a b"}`,
		`{"action":"revoke","requestId":"` + strings.Repeat("x", 58) + `"}`,
		`{"action":"revoke","requestId":7}`,
		`{"action":"revoke","requestId":"x"` + strings.Repeat(" ", 2000) + `}`,
	}
	for _, in := range bad {
		_, err := schedule.ParsePayload([]byte(in))
		assert.True(t, access.IsKind(err, access.KindInvalid), "%q: %v", in, err)
	}
}

func TestPayloadRoundTrip(t *testing.T) {
	p := schedule.Payload{Action: "grant", RequestID: "01JABCDEFGHJKMNPQRSTVWXYZ0"}
	b, err := p.Marshal()
	require.NoError(t, err)
	assert.Equal(t, `{"action":"grant","requestId":"01JABCDEFGHJKMNPQRSTVWXYZ0"}`, string(b))
	got, err := schedule.ParsePayload(b)
	require.NoError(t, err)
	assert.Equal(t, p, got)

	_, err = schedule.Payload{Action: "nope", RequestID: "x"}.Marshal()
	assert.True(t, access.IsKind(err, access.KindInvalid))
}

func FuzzParsePayload(f *testing.F) {
	f.Add([]byte(`{"action":"revoke","requestId":"01JABC"}`))
	f.Add([]byte(`{"action":"grant","requestId":"x","y":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := schedule.ParsePayload(b)
		if err != nil {
			if !access.IsKind(err, access.KindInvalid) {
				t.Fatalf("error of kind %s: %v", access.KindOf(err), err)
			}
			return
		}
		// Whatever parses must make a valid schedule name and re-encode.
		out, err := p.Marshal()
		if err != nil {
			t.Fatalf("parsed %+v does not marshal: %v", p, err)
		}
		again, err := schedule.ParsePayload(out)
		if err != nil || again != p {
			t.Fatalf("round trip %+v -> %s -> %+v, %v", p, out, again, err)
		}
	})
}

// racing is a Scheduler API where the schedule appears between the
// reschedule's update and its create.
type racing struct {
	schedule.API
	updates, creates int
	gone             bool // the schedule vanishes again before the second update
}

func (r *racing) UpdateSchedule(_ context.Context, in *scheduler.UpdateScheduleInput, _ ...func(*scheduler.Options)) (*scheduler.UpdateScheduleOutput, error) {
	r.updates++
	if r.updates == 1 || r.gone {
		return nil, &types.ResourceNotFoundException{Message: aws.String("no")}
	}
	return &scheduler.UpdateScheduleOutput{}, nil
}

func (r *racing) CreateSchedule(context.Context, *scheduler.CreateScheduleInput, ...func(*scheduler.Options)) (*scheduler.CreateScheduleOutput, error) {
	r.creates++
	return nil, &types.ConflictException{Message: aws.String("exists")}
}

func TestRescheduleRacingCreate(t *testing.T) {
	r := &racing{}
	s, err := schedule.New(r, testConfig(), nil)
	require.NoError(t, err)
	require.NoError(t, s.Reschedule(t.Context(), "revoke", "r1", time.Now().Add(time.Hour)))
	assert.Equal(t, 2, r.updates, "the schedule someone else created is moved too")
	assert.Equal(t, 1, r.creates)

	r = &racing{gone: true}
	s, err = schedule.New(r, testConfig(), nil)
	require.NoError(t, err)
	err = s.Reschedule(t.Context(), "revoke", "r1", time.Now().Add(time.Hour))
	assert.True(t, access.IsKind(err, access.KindInternal), "%v", err)
	assert.Contains(t, err.Error(), "vanished")
}
