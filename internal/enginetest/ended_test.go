package enginetest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jitaccess/jit/internal/access"
	"github.com/jitaccess/jit/internal/app"
)

// TestCancelAfterCrashedActivationReleasesAccess: an activation that died
// after the IAM grant leaves an APPROVED request holding access. Cancelling
// it (by the requester, or by a work-finished event) must take that access
// away at once: a CANCELLED request is not due work, so nothing else would
// look at it before the end time.
func TestCancelAfterCrashedActivationReleasesAccess(t *testing.T) {
	for _, tt := range []struct {
		name   string
		cancel func(e *env, r access.Request)
		actor  string
	}{
		{"requester cancels", func(e *env, r access.Request) {
			_, err := e.svc.Cancel(e.ctx, app.Caller{Identity: alice}, r.ID, "not needed")
			require.NoError(t, err)
		}, alice},
		{"ticket closed", func(e *env, r access.Request) {
			require.NoError(t, e.revoke(e.ctx, readEvent(t, "revoke-ticket-closed.json")))
		}, ticketActor},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.crash.arm(crashAfterGrant)
			require.Equal(t, crashAfterGrant, survive(func() {
				_, _ = e.svc.Submit(e.ctx, app.Caller{Identity: alice}, app.SubmitInput{
					RoleID: "ops-group", Justification: justification("ops-group"), Ticket: "OPS-1234"})
			}))
			r := e.get(e.lastID())
			require.Equal(t, access.StatusApproved, r.Status)
			require.True(t, e.inGroup("alice"), "the crash left the access in IAM")

			tt.cancel(e, r)
			got := e.get(r.ID)
			assert.Equal(t, access.StatusCancelled, got.Status)
			assert.Equal(t, tt.actor, got.EndedBy)
			assert.False(t, e.inGroup("alice"), "cancelling took the leftover access away")
			l, err := e.store.Ledger(e.ctx, r.Grant().LedgerKey())
			require.NoError(t, err)
			assert.Equal(t, []string{r.ID}, l.Holders, "the hold stays, for an activation that may still be running")
			e.requireInvariant(false) // strictly: no access without an ACTIVE request

			// The revoke schedule stays as the way out; at the end it releases the hold.
			require.True(t, e.hasSchedule(app.ActionRevoke, r.ID))
			e.clock.Set(r.EndAt)
			require.NoError(t, e.revoke(e.ctx, payload(app.ActionRevoke, r.ID)))
			l, err = e.store.Ledger(e.ctx, r.Grant().LedgerKey())
			require.NoError(t, err)
			assert.Empty(t, l.Holders)
			assert.False(t, e.inGroup("alice"))
			assert.Equal(t, access.StatusCancelled, e.get(r.ID).Status)
			assert.Equal(t, []string{"submit", "auto-approve", "cancel"}, e.actions(r.ID))
		})
	}
}

// TestFailedEarlyRevokeIsRetriedBySweeper: an early revoke ("I'm done", an
// approver, an admin or a work-finished event) whose IAM call keeps failing
// stays ACTIVE with the error, and is due at once: the next sweep retries
// it as the same actor's revoke, long before the end time.
func TestFailedEarlyRevokeIsRetriedBySweeper(t *testing.T) {
	e := newEnv(t)
	r := e.submit(alice, "ops-group", app.SubmitInput{Duration: 4 * time.Hour})
	require.Equal(t, access.StatusActive, r.Status)
	e.clock.Advance(10 * time.Minute)

	e.faults.add(&fault{op: "RemoveUserFromGroup", kind: faultFail, times: -1})
	_, err := e.svc.RevokeEarly(e.ctx, app.Caller{Identity: alice}, r.ID, "done with it")
	require.Error(t, err, "the failure is reported to the caller")
	got := e.get(r.ID)
	require.Equal(t, access.StatusActive, got.Status)
	assert.Equal(t, 1, got.RevokeAttempts)
	assert.Equal(t, alice, got.RevokeRequestedBy)
	assert.Equal(t, "done with it", got.RevokeReason)
	assert.True(t, e.inGroup("alice"))
	assert.True(t, e.told(admin, "[ACTION NEEDED]", r.ID), "admins are told")

	// Still failing: the sweep tries, records a second attempt, stays ACTIVE.
	e.clock.Advance(5 * time.Minute)
	rep, err := e.sweep(e.ctx, nil)
	require.NoError(t, err)
	assert.Equal(t, 1, rep.Failed)
	assert.Equal(t, 2, e.get(r.ID).RevokeAttempts)

	// IAM recovers: the next sweep finishes the revoke, as alice's.
	e.faults.clear()
	e.clock.Advance(5 * time.Minute)
	rep, err = e.sweep(e.ctx, nil)
	require.NoError(t, err)
	assert.Equal(t, 1, rep.Revoked)
	assert.Zero(t, rep.Expired)
	got = e.get(r.ID)
	assert.Equal(t, access.StatusRevoked, got.Status)
	assert.Equal(t, alice, got.EndedBy)
	assert.Equal(t, "done with it", got.EndReason)
	assert.True(t, got.EndAt.After(e.clock.Now().Add(3*time.Hour)), "well before the end time")
	assert.False(t, e.inGroup("alice"))
	assert.False(t, e.hasSchedule(app.ActionRevoke, r.ID), "the revoke schedule is removed")
	assert.Equal(t, []string{"submit", "auto-approve", "activate", "revoke-failed", "revoke-failed", "revoke"}, e.actions(r.ID))
	e.requireInvariant(false)
}

// revokeDuringGrant runs the end-time revoke (as the revoke schedule firing
// up to a minute early would) right before the provider's first grant: the
// revoke withdraws the hold the activation has just taken and records FAILED,
// then the activation grants.
type revokeDuringGrant struct {
	app.Provider
	e    *env
	id   string
	done bool
}

func (p *revokeDuringGrant) Grant(ctx context.Context, g access.Grant) error {
	if !p.done && g.RequestID == p.id {
		p.done = true
		require.NoError(p.e.t, p.e.revoke(ctx, payload(app.ActionRevoke, p.id)))
	}
	return p.Provider.Grant(ctx, g)
}

// TestRevokeBetweenHoldAndGrant: the activation's hold is withdrawn under it
// by a revoke that ends the request; the access it then grants must still be
// taken away (it used to stay, held by nobody, with the request FAILED).
func TestRevokeBetweenHoldAndGrant(t *testing.T) {
	e := newEnv(t)
	r := e.submit(alice, "ops-group", app.SubmitInput{StartAt: t0.Add(time.Hour), Duration: time.Hour})
	require.Equal(t, access.StatusApproved, r.Status)
	hook := &revokeDuringGrant{Provider: e.svc.Providers[access.ProviderIAMGroup], e: e, id: r.ID}
	e.svc.Providers[access.ProviderIAMGroup] = hook

	e.clock.Set(r.EndAt.Add(-30 * time.Second)) // the grant comes very late
	_ = e.grant(e.ctx, payload(app.ActionGrant, r.ID))
	require.True(t, hook.done)
	got := e.get(r.ID)
	assert.Equal(t, access.StatusFailed, got.Status)
	assert.False(t, e.inGroup("alice"), "the access granted after the revoke is taken away")
	l, err := e.store.Ledger(e.ctx, r.Grant().LedgerKey())
	require.NoError(t, err)
	assert.Empty(t, l.Holders)
	e.requireInvariant(false)
}

// TestMetrics: the embedded-metric-format counters the alarms and
// dashboards read: grants, revokes, their failures, and the lag from the end
// time to the verified removal.
func TestMetrics(t *testing.T) {
	e := newEnv(t)
	r := e.submit(alice, "ops-group", app.SubmitInput{Duration: time.Hour})
	assert.Equal(t, 1.0, e.m.get("Grants"))
	e.clock.Set(r.EndAt.Add(90 * time.Second)) // the revoke comes 90 s late
	require.NoError(t, e.revoke(e.ctx, payload(app.ActionRevoke, r.ID)))
	assert.Equal(t, 1.0, e.m.get("Revokes"))
	assert.Equal(t, []time.Duration{90 * time.Second}, e.m.durationsOf("RevokeLag"), "end time to verified removal")
	assert.Zero(t, e.m.get("RevokeFailures"))
	assert.Zero(t, e.m.get("GrantFailures"))

	// A revoke that fails, and a grant that does.
	r = e.submit(bob, "ops-group", app.SubmitInput{Duration: time.Hour})
	e.faults.add(&fault{op: "RemoveUserFromGroup", kind: faultFail, times: -1})
	e.clock.Set(r.EndAt)
	require.Error(t, e.revoke(e.ctx, payload(app.ActionRevoke, r.ID)))
	assert.Equal(t, 1.0, e.m.get("RevokeFailures"))
	e.faults.clear()
	e.faults.add(&fault{op: "AddUserToGroup", kind: faultFail, times: -1})
	failed, err := e.trySubmit(alice, "ops-group")
	require.NoError(t, err)
	assert.Equal(t, access.StatusFailed, failed.Status)
	assert.Equal(t, 1.0, e.m.get("GrantFailures"))
	assert.Equal(t, 2.0, e.m.get("Grants"), "a failed grant is not counted as one")
}

// cancelThenLoseGrants cancels the request right before its first grant,
// and makes every grant land in IAM while reporting an error (its response
// lost), so activation gives up after its retries.
type cancelThenLoseGrants struct {
	app.Provider
	e         *env
	id        string
	cancelled bool
}

func (p *cancelThenLoseGrants) Grant(ctx context.Context, g access.Grant) error {
	if g.RequestID != p.id {
		return p.Provider.Grant(ctx, g)
	}
	if !p.cancelled {
		p.cancelled = true
		_, err := p.e.svc.Cancel(ctx, app.Caller{Identity: alice}, p.id, "changed my mind")
		require.NoError(p.e.t, err)
	}
	if err := p.Provider.Grant(ctx, g); err != nil {
		return err
	}
	return access.Errorf(access.KindInternal, "response lost")
}

// TestCancelDuringAGrantThatFails: the cancel withdraws the hold before the
// grant lands; the grant then "fails" (it landed, its answer was lost), and
// the failed activation must still take that access away.
func TestCancelDuringAGrantThatFails(t *testing.T) {
	e := newEnv(t)
	r := e.submit(alice, "ops-group", app.SubmitInput{StartAt: t0.Add(time.Hour), Duration: time.Hour})
	require.Equal(t, access.StatusApproved, r.Status)
	hook := &cancelThenLoseGrants{Provider: e.svc.Providers[access.ProviderIAMGroup], e: e, id: r.ID}
	e.svc.Providers[access.ProviderIAMGroup] = hook

	e.clock.Set(r.StartAt)
	_ = e.grant(e.ctx, payload(app.ActionGrant, r.ID))
	require.True(t, hook.cancelled)
	assert.Equal(t, access.StatusCancelled, e.get(r.ID).Status)
	assert.False(t, e.inGroup("alice"), "the grant that landed after the cancel is taken away")
	l, err := e.store.Ledger(e.ctx, r.Grant().LedgerKey())
	require.NoError(t, err)
	assert.Empty(t, l.Holders)
	e.requireInvariant(false)
}
