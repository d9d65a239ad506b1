package enginetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jitaccess/jit/internal/access"
	"github.com/jitaccess/jit/internal/app"
	"github.com/jitaccess/jit/internal/dynamo"
)

// TestSweepPagesThroughDueIndex: 120 PENDING requests past their approval
// deadline are more than one page of the due index (ListDue pages by 100),
// so the sweep needs two queries for them; it times every one out, leaves
// the ones not yet due alone, and never scans (the injector fails the test
// on any Scan).
func TestSweepPagesThroughDueIndex(t *testing.T) {
	const due, notDue = 120, 5
	e := newEnv(t)
	// One at a time: moto's DynamoDB answers concurrent transactions with
	// HTTP 500 now and then.
	submitMany := func(n int) {
		for range n {
			e.submit(alice, "ops-manual", app.SubmitInput{})
		}
	}
	submitMany(due) // deadline t0+1h
	dueIDs := e.allIDs()
	e.clock.Advance(30 * time.Minute)
	submitMany(notDue) // deadline t0+1h30m
	later := e.allIDs()[due:]
	active := e.submit(bob, "ops-group", app.SubmitInput{Duration: 4 * time.Hour})

	e.clock.Set(t0.Add(time.Hour))
	e.faults.resetCounts()
	rep, err := e.sweep(e.ctx, nil)
	require.NoError(t, err)
	assert.Equal(t, due, rep.TimedOut)
	assert.Zero(t, rep.Failed)
	assert.Zero(t, rep.Expired)
	assert.Equal(t, 1, rep.Checked, "the one ACTIVE grant was checked for drift")
	assert.Zero(t, e.faults.count("Scan"))
	// ACTIVE, APPROVED, PENDING page 1, PENDING page 2, and the drift batch.
	assert.Equal(t, 5, e.faults.count("Query:"+dynamo.IndexDue), "every read went through the due index")
	assert.Equal(t, 5, e.faults.count("Query"))
	t.Logf("sweep of %d due items: %s", due, e.faults.timings())

	for _, id := range dueIDs {
		r := e.get(id)
		require.Equal(t, access.StatusTimedOut, r.Status, id)
		require.Equal(t, app.ActorSweeper, r.EndedBy)
	}
	assert.Equal(t, []string{"submit", "timeout"}, e.actions(dueIDs[0]))
	for _, id := range later {
		assert.Equal(t, access.StatusPending, e.get(id).Status, "not due yet")
	}
	assert.Equal(t, access.StatusActive, e.get(active.ID).Status)

	// Nothing is due any more: one query per status and the drift batch.
	e.faults.resetCounts()
	rep, err = e.sweep(e.ctx, nil)
	require.NoError(t, err)
	assert.Zero(t, rep.TimedOut)
	assert.Equal(t, 4, e.faults.count("Query:"+dynamo.IndexDue))
	assert.Zero(t, e.faults.count("TransactWriteItems"))

	e.clock.Set(t0.Add(90 * time.Minute))
	rep, err = e.sweep(e.ctx, nil)
	require.NoError(t, err)
	assert.Equal(t, notDue, rep.TimedOut)
	e.requireInvariant(false)
}

// TestSweepExpiresWhenRevokeScheduleLost: an ACTIVE grant whose revoke
// schedule vanished is still found through the due index once its end has
// passed, and expired by the sweeper.
func TestSweepExpiresWhenRevokeScheduleLost(t *testing.T) {
	e := newEnv(t)
	r := e.submit(alice, "read-policy", app.SubmitInput{})
	keep := e.submit(bob, "ops-group", app.SubmitInput{Duration: 3 * time.Hour})
	e.deleteSchedule(app.ActionRevoke, r.ID)
	e.requireInvariant(false) // the due index is its revoke path

	e.clock.Set(r.EndAt.Add(-5 * time.Minute))
	rep, err := e.sweep(e.ctx, nil)
	require.NoError(t, err)
	assert.Zero(t, rep.Expired, "not due before its end")
	assert.Equal(t, access.StatusActive, e.get(r.ID).Status)

	e.clock.Set(r.EndAt.Add(4 * time.Minute))
	rep, err = e.sweep(e.ctx, nil)
	require.NoError(t, err)
	assert.Equal(t, 1, rep.Expired)
	assert.Equal(t, 1, rep.Overdue, "counted as a revoke schedule that did not do its job")
	got := e.get(r.ID)
	assert.Equal(t, access.StatusExpired, got.Status)
	assert.Equal(t, app.ActorSweeper, got.EndedBy)
	assert.False(t, e.has(r))
	assert.Equal(t, []string{"submit", "auto-approve", "activate", "expire"}, e.actions(r.ID))
	assert.Equal(t, access.StatusActive, e.get(keep.ID).Status, "the grant not yet due is left alone")
	assert.True(t, e.inGroup("bob"))
	assert.Zero(t, e.faults.count("Scan"))
	e.requireInvariant(false)
}

// TestSweepRecordsDriftOnce: access removed in IAM behind the system's back
// is recorded once as drift (one audit record, admins told), not again on
// every sweep; the expiry afterwards still works.
func TestSweepRecordsDriftOnce(t *testing.T) {
	e := newEnv(t)
	r := e.submit(alice, "ops-group", app.SubmitInput{Duration: 2 * time.Hour})
	fine := e.submit(erin, "reports-timeboxed", app.SubmitInput{Duration: 2 * time.Hour})

	e.clock.Advance(5 * time.Minute)
	rep, err := e.sweep(e.ctx, nil)
	require.NoError(t, err)
	assert.Equal(t, 2, rep.Checked)
	assert.Zero(t, rep.Drift, "no drift while IAM matches")

	e.removeFromGroup("alice")
	for i := range 3 {
		e.clock.Advance(5 * time.Minute)
		rep, err := e.sweep(e.ctx, nil)
		require.NoError(t, err)
		assert.Equal(t, 2, rep.Checked)
		if i == 0 {
			assert.Equal(t, 1, rep.Drift, "sweep %d", i)
		} else {
			assert.Zero(t, rep.Drift, "sweep %d: already recorded", i)
		}
	}
	got := e.get(r.ID)
	assert.Equal(t, access.StatusActive, got.Status, "drift is recorded, not acted on")
	assert.Contains(t, got.LastError, "drift: access is missing in IAM")
	assert.Equal(t, []string{"submit", "auto-approve", "activate", "drift"}, e.actions(r.ID))
	recs := e.auditRecords(r.ID)
	assert.Equal(t, app.ActorSweeper, recs[3].Actor)
	assert.Equal(t, 1, countAction(recs, access.EventDrift))
	assert.True(t, e.told(admin, "[ACTION NEEDED]", r.ID), "admins are told")
	assert.Equal(t, []string{"submit", "auto-approve", "activate"}, e.actions(fine.ID))

	// Revoking access that is already gone is a no-op that succeeds.
	e.clock.Set(r.EndAt)
	require.NoError(t, e.revoke(e.ctx, payload(app.ActionRevoke, r.ID)))
	assert.Equal(t, access.StatusExpired, e.get(r.ID).Status)
	assert.Equal(t, []string{"submit", "auto-approve", "activate", "drift", "expire"}, e.actions(r.ID))
	e.requireInvariant(false)
}
