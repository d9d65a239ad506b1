package enginetest

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jitaccess/jit/internal/access"
	"github.com/jitaccess/jit/internal/app"
)

// cancelBeforeActive cancels the request (as its requester) right before
// activation writes ACTIVE: the cancel wins the version race.
type cancelBeforeActive struct {
	app.Store
	svc  func() *app.Service
	done bool
}

func (s *cancelBeforeActive) Transition(ctx context.Context, prev, next access.Request, rec access.AuditRecord) error {
	if !s.done && prev.Status == access.StatusApproved && next.Status == access.StatusActive {
		s.done = true
		if _, err := s.svc().Cancel(ctx, app.Caller{Identity: prev.Requester}, prev.ID, "changed my mind"); err != nil {
			return err
		}
	}
	return s.Store.Transition(ctx, prev, next, rec)
}

// TestCancelDuringActivationWithFailingUndo: the requester cancels while
// the access is being granted, and taking the access away again fails.
// The request is CANCELLED but still holds access in IAM and the ledger;
// the revoke schedule, which stays, must remove it at the end time (found
// by the soak's reading of the code: a terminal request made the revoke a
// no-op, so the access stayed for good).
func TestCancelDuringActivationWithFailingUndo(t *testing.T) {
	e := newEnv(t)
	e.svc.Store = &cancelBeforeActive{Store: e.svc.Store, svc: func() *app.Service { return e.svc }}
	e.faults.add(&fault{op: "RemoveUserFromGroup", kind: faultFail, times: -1})

	_, err := e.svc.Submit(e.ctx, app.Caller{Identity: alice}, app.SubmitInput{RoleID: "ops-group", Justification: justification("ops-group")})
	require.Error(t, err, "the undo failed: the error goes back")
	r := e.get(e.lastID())
	require.Equal(t, access.StatusCancelled, r.Status)
	require.True(t, e.inGroup("alice"), "the undo failed, the access is still there")
	require.True(t, e.hasSchedule(app.ActionRevoke, r.ID), "the way out stays")
	assert.True(t, e.told(admin, "[ACTION NEEDED]", r.ID), "admins are told")

	// A redelivered grant finds the request ended and changes nothing.
	e.faults.clear()
	require.NoError(t, e.grant(e.ctx, payload(app.ActionGrant, r.ID)))
	require.Equal(t, access.StatusCancelled, e.get(r.ID).Status)

	// The revoke schedule at the end time takes the access away.
	e.clock.Set(r.EndAt)
	require.NoError(t, e.revoke(e.ctx, payload(app.ActionRevoke, r.ID)))
	assert.False(t, e.inGroup("alice"), "the revoke schedule removed the access of the cancelled request")
	l, err := e.store.Ledger(e.ctx, r.Grant().LedgerKey())
	require.NoError(t, err)
	assert.Empty(t, l.Holders)
	assert.Equal(t, access.StatusCancelled, e.get(r.ID).Status, "the request stays CANCELLED")
	assert.Equal(t, []string{"submit", "auto-approve", "cancel"}, e.actions(r.ID))
	e.requireInvariant(false)
}
