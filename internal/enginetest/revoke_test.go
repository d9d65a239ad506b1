package enginetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jitaccess/jit/internal/access"
	"github.com/jitaccess/jit/internal/app"
)

func countAction(recs []access.AuditRecord, a access.EventType) int {
	n := 0
	for _, r := range recs {
		if r.Action == a {
			n++
		}
	}
	return n
}

// TestDuplicateRevokeDeliveries delivers the same revoke payload twice in a
// row, and five times at once: one EXPIRED transition, one expire record,
// and nil for every delivery, so the scheduler does not retry duplicates.
func TestDuplicateRevokeDeliveries(t *testing.T) {
	t.Run("in sequence", func(t *testing.T) {
		e := newEnv(t)
		r := e.submit(alice, "ops-group", app.SubmitInput{})
		e.clock.Set(r.EndAt)
		msg := payload(app.ActionRevoke, r.ID)
		require.NoError(t, e.revoke(e.ctx, msg))
		require.NoError(t, e.revoke(e.ctx, msg), "a duplicate is not an error")

		got := e.get(r.ID)
		assert.Equal(t, access.StatusExpired, got.Status)
		assert.Equal(t, 4, got.Version)
		assert.Equal(t, []string{"submit", "auto-approve", "activate", "expire"}, e.actions(r.ID))
		assert.False(t, e.has(r))
		e.requireInvariant(false)
	})

	for _, c := range []struct {
		name, identity, role string
	}{
		{"concurrently/iam-group", alice, "ops-group"},
		{"concurrently/iam-policy", erin, "read-policy"},
		{"concurrently/iam-timeboxed-policy", bob, "reports-timeboxed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			r := e.submit(c.identity, c.role, app.SubmitInput{})
			e.clock.Set(r.EndAt.Add(5 * time.Second))
			msg := payload(app.ActionRevoke, r.ID)
			var wg sync.WaitGroup
			errs := make([]error, 5)
			start := make(chan struct{})
			for i := range errs {
				wg.Go(func() {
					<-start
					errs[i] = e.revoke(e.ctx, msg)
				})
			}
			close(start)
			wg.Wait()
			for i, err := range errs {
				assert.NoError(t, err, "delivery %d", i)
			}

			got := e.get(r.ID)
			assert.Equal(t, access.StatusExpired, got.Status)
			recs := e.auditRecords(r.ID)
			assert.Equal(t, 1, countAction(recs, access.EventExpire), "exactly one expire record")
			assert.Zero(t, countAction(recs, access.EventRevokeFailed), "no delivery saw a failure")
			assert.Equal(t, []string{"submit", "auto-approve", "activate", "expire"}, e.actions(r.ID))
			assert.False(t, e.has(r), "access is gone")
			l, err := e.store.Ledger(e.ctx, r.Grant().LedgerKey())
			require.NoError(t, err)
			assert.Empty(t, l.Holders)
			e.requireInvariant(false)
		})
	}
}

// TestOverlappingGrants has two requests hold the same group membership
// with overlapping windows: the first ending leaves the access, the last
// ending removes it.
func TestOverlappingGrants(t *testing.T) {
	e := newEnv(t)
	first := e.submit(alice, "ops-group", app.SubmitInput{Duration: time.Hour})
	e.clock.Advance(30 * time.Minute)
	second := e.submit(alice, "ops-group", app.SubmitInput{Duration: time.Hour})
	require.Equal(t, access.StatusActive, second.Status)
	l, err := e.store.Ledger(e.ctx, first.Grant().LedgerKey())
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{first.ID, second.ID}, l.Holders)
	assert.False(t, l.PreExisting, "the first grant found alice outside the group")

	e.clock.Set(first.EndAt)
	require.NoError(t, e.revoke(e.ctx, payload(app.ActionRevoke, first.ID)))
	assert.Equal(t, access.StatusExpired, e.get(first.ID).Status)
	assert.True(t, e.inGroup("alice"), "the second request still holds the membership")
	e.requireInvariant(false)

	// A retried delivery of the first revoke must not cut the second off.
	require.NoError(t, e.revoke(e.ctx, payload(app.ActionRevoke, first.ID)))
	assert.True(t, e.inGroup("alice"))

	e.clock.Set(second.EndAt)
	require.NoError(t, e.revoke(e.ctx, payload(app.ActionRevoke, second.ID)))
	assert.Equal(t, access.StatusExpired, e.get(second.ID).Status)
	assert.False(t, e.inGroup("alice"), "the last one out removes the membership")
	l, err = e.store.Ledger(e.ctx, first.Grant().LedgerKey())
	require.NoError(t, err)
	assert.Empty(t, l.Holders)
	e.requireInvariant(false)
}

// TestEarlyRevokeWithOverlap ends the longer grant early ("I'm done")
// while the other still runs.
func TestEarlyRevokeWithOverlap(t *testing.T) {
	e := newEnv(t)
	long := e.submit(alice, "ops-group", app.SubmitInput{Duration: 3 * time.Hour})
	short := e.submit(alice, "ops-group", app.SubmitInput{Duration: time.Hour})

	e.clock.Advance(10 * time.Minute)
	got, err := e.svc.RevokeEarly(e.ctx, app.Caller{Identity: alice}, long.ID, "done")
	require.NoError(t, err)
	assert.Equal(t, access.StatusRevoked, got.Status)
	assert.False(t, e.hasSchedule(app.ActionRevoke, long.ID), "an early revoke removes its schedule")
	assert.True(t, e.inGroup("alice"), "the short grant still holds it")

	e.clock.Set(short.EndAt)
	require.NoError(t, e.revoke(e.ctx, payload(app.ActionRevoke, short.ID)))
	assert.False(t, e.inGroup("alice"))
	e.requireInvariant(false)
}

// TestPreExistingMembershipSurvives: alice was in the group before any
// request. A grant and its revoke leave her there, and so do a retried
// revoke and a later grant.
func TestPreExistingMembershipSurvives(t *testing.T) {
	e := newEnv(t)
	e.addToGroup("alice", true)

	r := e.submit(alice, "ops-group", app.SubmitInput{})
	require.Equal(t, access.StatusActive, r.Status)
	l, err := e.store.Ledger(e.ctx, r.Grant().LedgerKey())
	require.NoError(t, err)
	assert.True(t, l.PreExisting, "the ledger recorded the membership as pre-existing")

	e.clock.Set(r.EndAt)
	msg := payload(app.ActionRevoke, r.ID)
	require.NoError(t, e.revoke(e.ctx, msg))
	assert.Equal(t, access.StatusExpired, e.get(r.ID).Status)
	assert.True(t, e.inGroup("alice"), "the revoke left the pre-existing membership")

	require.NoError(t, e.revoke(e.ctx, msg), "a retried revoke")
	assert.True(t, e.inGroup("alice"), "the retried revoke still sees it as pre-existing")
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() { assert.NoError(t, e.revoke(e.ctx, msg)) })
	}
	wg.Wait()
	assert.True(t, e.inGroup("alice"))

	// A later request, expired by the sweeper, leaves it too.
	later := e.submit(alice, "ops-group", app.SubmitInput{})
	e.clock.Set(later.EndAt.Add(time.Minute))
	rep, err := e.sweep(e.ctx, nil)
	require.NoError(t, err)
	assert.Equal(t, 1, rep.Expired)
	assert.True(t, e.inGroup("alice"))
	assert.Equal(t, 1, countAction(e.auditRecords(r.ID), access.EventExpire))
	e.requireInvariant(false)
}

// TestPreExistingSurvivesAbortedActivation: activations that stop before
// the ledger hold (the process dies after creating the revoke schedule, or
// the hold itself keeps failing) must not take pre-existing access away when
// they are cleaned up.
func TestPreExistingSurvivesAbortedActivation(t *testing.T) {
	t.Run("crash after revoke schedule, revoke at end", func(t *testing.T) {
		e := newEnv(t)
		e.addToGroup("alice", true)
		e.crash.arm(crashAfterSchedule)
		require.Equal(t, crashAfterSchedule, survive(func() {
			_, _ = e.svc.Submit(e.ctx, app.Caller{Identity: alice}, app.SubmitInput{RoleID: "ops-group", Justification: justification("ops-group")})
		}))
		r := e.get(e.lastID())
		e.clock.Set(r.EndAt)
		require.NoError(t, e.revoke(e.ctx, payload(app.ActionRevoke, r.ID)))
		assert.Equal(t, access.StatusFailed, e.get(r.ID).Status)
		assert.True(t, e.inGroup("alice"), "cleaning up a grant that never happened left alice's own membership")
	})
	t.Run("crash after revoke schedule, sweeper after end", func(t *testing.T) {
		e := newEnv(t)
		e.addToGroup("alice", true)
		e.crash.arm(crashAfterSchedule)
		require.Equal(t, crashAfterSchedule, survive(func() {
			_, _ = e.svc.Submit(e.ctx, app.Caller{Identity: alice}, app.SubmitInput{RoleID: "ops-group", Justification: justification("ops-group")})
		}))
		r := e.get(e.lastID())
		e.clock.Set(r.EndAt.Add(time.Minute))
		_, err := e.sweep(e.ctx, nil)
		require.NoError(t, err)
		assert.Equal(t, access.StatusFailed, e.get(r.ID).Status)
		assert.True(t, e.inGroup("alice"))
	})
	t.Run("ledger hold fails", func(t *testing.T) {
		e := newEnv(t)
		e.addToGroup("alice", true)
		e.faults.add(&fault{op: "UpdateItem", match: holdUpdate, kind: faultFail, times: -1})
		r, err := e.trySubmit(alice, "ops-group")
		require.NoError(t, err)
		assert.Equal(t, access.StatusFailed, r.Status)
		assert.True(t, e.inGroup("alice"))
	})
}

// TestConcurrentGrantAndRevokeOfSameAccess races a new grant of the same
// membership against the revoke of the old one: whatever the interleaving,
// the ACTIVE request ends up with its access.
func TestConcurrentGrantAndRevokeOfSameAccess(t *testing.T) {
	e := newEnv(t)
	old := e.submit(alice, "ops-group", app.SubmitInput{Duration: time.Hour})
	e.clock.Set(old.EndAt)
	var wg sync.WaitGroup
	var fresh access.Request
	wg.Go(func() { assert.NoError(t, e.revoke(context.WithoutCancel(e.ctx), payload(app.ActionRevoke, old.ID))) })
	wg.Go(func() {
		var err error
		fresh, err = e.svc.Submit(e.ctx, app.Caller{Identity: alice}, app.SubmitInput{RoleID: "ops-group", Justification: justification("ops-group")})
		assert.NoError(t, err)
	})
	wg.Wait()
	assert.Equal(t, access.StatusExpired, e.get(old.ID).Status)
	assert.Equal(t, access.StatusActive, e.get(fresh.ID).Status)
	assert.True(t, e.inGroup("alice"), "the new grant keeps its access")
	e.requireInvariant(false)
}
