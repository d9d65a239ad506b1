package enginetest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jitaccess/jit/internal/access"
	"github.com/jitaccess/jit/internal/app"
	"github.com/jitaccess/jit/internal/schedule"
)

// TestLifecycle runs every provider, for user and role principals where the
// provider allows them, from submit to expiry through the real adapters:
// auto-approved with start now, ACTIVE with the access in moto's IAM and the
// revoke schedule in moto's Scheduler, then the schedule's own payload
// delivered to the revoke handler after the end.
func TestLifecycle(t *testing.T) {
	cases := []struct {
		name, identity, role string
		provider             access.ProviderKind
		principal            access.Principal
	}{
		{"iam-group/user", alice, "ops-group", access.ProviderIAMGroup, user("alice")},
		{"iam-policy/user", bob, "read-policy", access.ProviderIAMPolicy, user("bob")},
		{"iam-policy/role", erin, "read-policy", access.ProviderIAMPolicy, role("erin-ops")},
		{"iam-timeboxed-policy/user", alice, "reports-timeboxed", access.ProviderIAMTimeboxedPolicy, user("alice")},
		{"iam-timeboxed-policy/role", erin, "reports-timeboxed", access.ProviderIAMTimeboxedPolicy, role("erin-ops")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			r := e.submit(c.identity, c.role, app.SubmitInput{Duration: 90 * time.Minute})
			require.Equal(t, access.StatusActive, r.Status, "auto-approved with start now is active when Submit returns")
			require.Equal(t, c.provider, r.Provider)
			require.Equal(t, c.principal, r.Principal)
			assert.Equal(t, t0, r.StartAt)
			assert.Equal(t, t0.Add(90*time.Minute), r.EndAt)

			assert.True(t, e.has(r), "access is in IAM")
			e.requireInvariant(false)

			sch, ok := e.schedule(app.ActionRevoke, r.ID)
			require.True(t, ok, "revoke schedule exists")
			assert.Equal(t, "at(2030-01-02T10:30:00)", aws.ToString(sch.ScheduleExpression))
			assert.Equal(t, schedule.Expression(r.EndAt), aws.ToString(sch.ScheduleExpression))
			assert.Equal(t, revokeARN, aws.ToString(sch.Target.Arn))
			input := json.RawMessage(aws.ToString(sch.Target.Input))
			assert.JSONEq(t, string(payload(app.ActionRevoke, r.ID)), string(input))

			// The schedule fires within the minute of its at() time.
			e.clock.Set(r.EndAt.Add(20 * time.Second))
			require.NoError(t, e.revoke(e.ctx, input))

			got := e.get(r.ID)
			assert.Equal(t, access.StatusExpired, got.Status)
			assert.Equal(t, app.ActorRevoke, got.EndedBy)
			assert.False(t, e.has(r), "access is gone from IAM")
			assert.Equal(t, []string{"submit", "auto-approve", "activate", "expire"}, e.actions(r.ID))
			recs := e.auditRecords(r.ID)
			assert.Equal(t, c.identity, recs[0].Actor)
			assert.Equal(t, app.ActorPolicy, recs[1].Actor)
			assert.Equal(t, app.ActorGrant, recs[2].Actor)
			assert.Equal(t, app.ActorRevoke, recs[3].Actor)
			assert.Empty(t, e.iamAccess(), "nothing is left in IAM")
			e.requireInvariant(false)
			assert.True(t, e.told(c.identity, "Ended:", r.ID), "the requester is told the access ended")
		})
	}
}
