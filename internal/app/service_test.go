package app_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jitaccess/jit/internal/access"
	"github.com/jitaccess/jit/internal/app"
	"github.com/jitaccess/jit/internal/app/apptest"
	"github.com/jitaccess/jit/internal/dynamo/memstore"
)

type env struct {
	*apptest.Env
	svc   *app.Service
	store *memstore.Store
	sched *apptest.Scheduler
	iam   *apptest.Provider
	mail  *apptest.Notifier
	clock *apptest.Clock
}

var t0 = apptest.T0

var (
	alice = app.Caller{Identity: "alice@example.com"}
	bob   = app.Caller{Identity: "bob@example.com"}
	carol = app.Caller{Identity: "carol@example.com"}
	dave  = app.Caller{Identity: "dave@example.com"}
	admin = app.Caller{Identity: "admin@example.com"}
	eve   = app.Caller{Identity: "eve@example.com"}
)

const why = "deploying the fix for INC-42"

func newEnv(t *testing.T) *env {
	e := apptest.NewEnv(t)
	return &env{Env: e, svc: e.Svc, store: e.Store, sched: e.Sched, iam: e.IAM, mail: e.Mail, clock: e.Clock}
}

func (e *env) submit(t *testing.T, c app.Caller, in app.SubmitInput) access.Request {
	t.Helper()
	if in.Justification == "" {
		in.Justification = why
	}
	r, err := e.svc.Submit(context.Background(), c, in)
	require.NoError(t, err)
	return r
}

func (e *env) verify(t *testing.T, id string) {
	t.Helper()
	require.NoError(t, e.store.VerifyAudit(context.Background(), id))
}

func ctx() context.Context { return context.Background() }

func TestManualApprovalActivatesAndExpires(t *testing.T) {
	e := newEnv(t)
	r := e.submit(t, alice, app.SubmitInput{RoleID: "admin"})
	assert.Equal(t, access.StatusPending, r.Status)
	assert.ElementsMatch(t, []string{"carol@example.com", "dave@example.com"}, r.Approvers, "the requester is never an approver")
	asks := e.mail.Sent(access.NoticeApprovalRequested)
	require.Len(t, asks, 2, "one personal link per approver")
	assert.Contains(t, asks[0].ActionURL, "https://jit.example.com/approvals/")

	_, err := e.svc.Decide(ctx(), alice, app.DecideInput{RequestID: r.ID, Decision: access.DecisionApprove})
	assert.Equal(t, access.KindForbidden, access.KindOf(err), "self-approval is refused")

	r, err = e.svc.Decide(ctx(), carol, app.DecideInput{RequestID: r.ID, Decision: access.DecisionApprove, Comment: "ok"})
	require.NoError(t, err)
	assert.Equal(t, access.StatusActive, r.Status)
	assert.True(t, e.iam.Has(r.Grant()))
	at, ok := e.sched.At(app.ActionRevoke, r.ID)
	require.True(t, ok, "the revoke schedule exists before access is ACTIVE")
	assert.Equal(t, r.EndAt, at)

	// The revoke fires at the end.
	e.clock.Set(r.EndAt)
	r, err = e.svc.Expire(ctx(), r.ID)
	require.NoError(t, err)
	assert.Equal(t, access.StatusExpired, r.Status)
	assert.False(t, e.iam.Has(r.Grant()))
	assert.Len(t, e.mail.Sent(access.NoticeEnded), 1)
	e.verify(t, r.ID)

	// A duplicate delivery changes nothing and is not an error.
	again, err := e.svc.Expire(ctx(), r.ID)
	require.NoError(t, err)
	assert.Equal(t, r.Version, again.Version)
}

func TestQuorumNeedsTwoDistinctApprovers(t *testing.T) {
	e := newEnv(t)
	r := e.submit(t, alice, app.SubmitInput{RoleID: "quorum"})
	r, err := e.svc.Decide(ctx(), carol, app.DecideInput{RequestID: r.ID, Decision: access.DecisionApprove})
	require.NoError(t, err)
	assert.Equal(t, access.StatusPending, r.Status)
	_, err = e.svc.Decide(ctx(), carol, app.DecideInput{RequestID: r.ID, Decision: access.DecisionApprove})
	assert.Equal(t, access.KindConflict, access.KindOf(err))
	r, err = e.svc.Decide(ctx(), dave, app.DecideInput{RequestID: r.ID, Decision: access.DecisionApprove})
	require.NoError(t, err)
	assert.Equal(t, access.StatusActive, r.Status)
}

func TestDenyAndCancel(t *testing.T) {
	e := newEnv(t)
	r := e.submit(t, alice, app.SubmitInput{RoleID: "quorum"})
	r, err := e.svc.Decide(ctx(), dave, app.DecideInput{RequestID: r.ID, Decision: access.DecisionDeny, Comment: "not now"})
	require.NoError(t, err)
	assert.Equal(t, access.StatusDenied, r.Status)
	assert.Len(t, e.mail.Sent(access.NoticeDenied), 1)
	assert.Zero(t, e.iam.Count())

	r2 := e.submit(t, alice, app.SubmitInput{RoleID: "admin"})
	_, err = e.svc.Cancel(ctx(), carol, r2.ID, "")
	assert.Equal(t, access.KindForbidden, access.KindOf(err), "only the requester cancels")
	r2, err = e.svc.Cancel(ctx(), alice, r2.ID, "not needed")
	require.NoError(t, err)
	assert.Equal(t, access.StatusCancelled, r2.Status)
	e.verify(t, r2.ID)
}

func TestFutureStartSchedulesGrant(t *testing.T) {
	e := newEnv(t)
	start := t0.Add(12 * time.Hour)
	r := e.submit(t, alice, app.SubmitInput{RoleID: "auto", StartAt: start})
	assert.Equal(t, access.StatusApproved, r.Status)
	at, ok := e.sched.At(app.ActionGrant, r.ID)
	require.True(t, ok)
	assert.Equal(t, start, at)
	assert.Zero(t, e.iam.Count())

	// An early delivery does not grant.
	r, err := e.svc.Activate(ctx(), r.ID)
	require.NoError(t, err)
	assert.Equal(t, access.StatusApproved, r.Status)

	e.clock.Set(start)
	r, err = e.svc.Activate(ctx(), r.ID)
	require.NoError(t, err)
	assert.Equal(t, access.StatusActive, r.Status)

	// Cancelling an approved future request removes its grant schedule.
	r2 := e.submit(t, alice, app.SubmitInput{RoleID: "auto", StartAt: start.Add(time.Hour)})
	_, err = e.svc.Cancel(ctx(), alice, r2.ID, "plans changed")
	require.NoError(t, err)
	_, ok = e.sched.At(app.ActionGrant, r2.ID)
	assert.False(t, ok)
}

func TestBreakGlassNotifiesAndMarksReview(t *testing.T) {
	e := newEnv(t)
	r := e.submit(t, alice, app.SubmitInput{RoleID: "glass"})
	assert.Equal(t, access.StatusActive, r.Status)
	assert.True(t, r.ReviewRequired)
	n := e.mail.Sent(access.NoticeBreakGlass)
	require.Len(t, n, 1)
	assert.ElementsMatch(t, []string{"carol@example.com", "secops@example.com"}, n[0].To)
}

func TestSubmitRefusesBadInput(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name     string
		caller   app.Caller
		give     app.SubmitInput
		wantKind access.Kind
	}{
		{"unknown role", alice, app.SubmitInput{RoleID: "nope", Justification: why}, access.KindNotFound},
		{"not a requester", eve, app.SubmitInput{RoleID: "admin", Justification: why}, access.KindForbidden},
		{"too long", alice, app.SubmitInput{RoleID: "admin", Justification: why, Duration: 5 * time.Hour}, access.KindInvalid},
		{"start in the past", alice, app.SubmitInput{RoleID: "admin", Justification: why, StartAt: t0.Add(-time.Hour)}, access.KindInvalid},
		{"start too far ahead", alice, app.SubmitInput{RoleID: "admin", Justification: why, StartAt: t0.Add(90 * 24 * time.Hour)}, access.KindInvalid},
		{"missing ticket", alice, app.SubmitInput{RoleID: "ticketed", Justification: why}, access.KindInvalid},
		{"bad ticket", alice, app.SubmitInput{RoleID: "ticketed", Justification: why, Ticket: "JIRA-1"}, access.KindInvalid},
		{"short justification", alice, app.SubmitInput{RoleID: "admin", Justification: "x"}, access.KindInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.svc.Submit(ctx(), tt.caller, tt.give)
			assert.Equal(t, tt.wantKind, access.KindOf(err), "%v", err)
		})
	}
	assert.Empty(t, e.store.AllRequests(), "bad input changes nothing")
	assert.Empty(t, e.mail.Sent(""))
}

func TestVisibility(t *testing.T) {
	e := newEnv(t)
	r := e.submit(t, alice, app.SubmitInput{RoleID: "admin"})
	for _, c := range []app.Caller{alice, carol, admin} {
		_, err := e.svc.Get(ctx(), c, r.ID)
		assert.NoError(t, err, c.Identity)
	}
	for _, c := range []app.Caller{bob, eve} {
		_, err := e.svc.Get(ctx(), c, r.ID)
		assert.Equal(t, access.KindNotFound, access.KindOf(err), c.Identity)
		_, err = e.svc.Audit(ctx(), c, r.ID)
		assert.Equal(t, access.KindNotFound, access.KindOf(err), c.Identity)
		_, err = e.svc.RevokeEarly(ctx(), c, r.ID, "")
		assert.Equal(t, access.KindNotFound, access.KindOf(err), c.Identity)
	}
	lists, err := e.svc.List(ctx(), carol, 0, "")
	require.NoError(t, err)
	require.Len(t, lists.Awaiting, 1)
	lists, err = e.svc.List(ctx(), alice, 0, "")
	require.NoError(t, err)
	require.Len(t, lists.Mine, 1)
	assert.Empty(t, lists.Awaiting)
}

func TestApprovalLink(t *testing.T) {
	e := newEnv(t)
	r := e.submit(t, alice, app.SubmitInput{RoleID: "quorum"})
	links := map[string]string{}
	for _, n := range e.mail.Sent(access.NoticeApprovalRequested) {
		links[n.To[0]] = n.ActionURL[len("https://jit.example.com/approvals/"):]
	}
	v, err := e.svc.ViewApproval(ctx(), links["carol@example.com"])
	require.NoError(t, err)
	assert.Equal(t, r.ID, v.Request.ID)
	got, _ := e.store.Get(ctx(), r.ID)
	assert.Equal(t, r.Version, got.Version, "viewing changes nothing")

	r, err = e.svc.DecideByLink(ctx(), links["carol@example.com"], access.DecisionApprove, "")
	require.NoError(t, err)
	assert.Equal(t, access.StatusPending, r.Status)
	_, err = e.svc.DecideByLink(ctx(), links["carol@example.com"], access.DecisionApprove, "")
	assert.Equal(t, access.KindConflict, access.KindOf(err), "a link decides once")

	_, err = e.svc.DecideByLink(ctx(), links["dave@example.com"]+"x", access.DecisionApprove, "")
	assert.Contains(t, []access.Kind{access.KindInvalid, access.KindUnauthorized}, access.KindOf(err), "a tampered link is refused")

	e.clock.Advance(25 * time.Hour)
	_, err = e.svc.DecideByLink(ctx(), links["dave@example.com"], access.DecisionApprove, "")
	assert.Equal(t, access.KindUnauthorized, access.KindOf(err), "an expired link is refused")
}

func TestOverlappingGrantsAndPreExistingAccess(t *testing.T) {
	e := newEnv(t)
	a := e.submit(t, alice, app.SubmitInput{RoleID: "auto", Duration: time.Hour})
	e.clock.Advance(30 * time.Minute)
	b := e.submit(t, alice, app.SubmitInput{RoleID: "auto", Duration: time.Hour})
	require.Equal(t, access.StatusActive, a.Status)
	require.Equal(t, access.StatusActive, b.Status)

	e.clock.Set(a.EndAt)
	_, err := e.svc.Expire(ctx(), a.ID)
	require.NoError(t, err)
	assert.True(t, e.iam.Has(b.Grant()), "the overlapping request still holds the access")
	e.clock.Set(b.EndAt)
	_, err = e.svc.Expire(ctx(), b.ID)
	require.NoError(t, err)
	assert.False(t, e.iam.Has(b.Grant()), "the last one out removes it")

	// Bob already has the policy before asking: it must survive the revoke,
	// also when the revoke is delivered again.
	pre := access.Grant{Provider: access.ProviderIAMPolicy, Principal: access.Principal{Kind: access.PrincipalUser, Name: "bob"},
		Target: access.Target{PolicyARN: "arn:aws:iam::aws:policy/ReadOnlyAccess"}}
	e.iam.Set(pre, true)
	c := e.submit(t, bob, app.SubmitInput{RoleID: "auto"})
	require.Equal(t, access.StatusActive, c.Status)
	_, err = e.svc.RevokeEarly(ctx(), bob, c.ID, "done")
	require.NoError(t, err)
	assert.True(t, e.iam.Has(pre), "pre-existing access is never removed")
	e.clock.Set(c.EndAt)
	_, err = e.svc.Expire(ctx(), c.ID)
	require.NoError(t, err)
	assert.True(t, e.iam.Has(pre))
}

func TestActivationFailureLeavesNothing(t *testing.T) {
	e := newEnv(t)
	e.iam.Fail("Grant", -1)
	r := e.submit(t, alice, app.SubmitInput{RoleID: "auto"})
	assert.Equal(t, access.StatusFailed, r.Status)
	assert.NotEmpty(t, r.LastError)
	assert.Zero(t, e.iam.Count())
	assert.Empty(t, e.sched.Names(), "the revoke schedule is removed with the failed grant")
	failed := e.mail.Sent(access.NoticeFailed)
	require.Len(t, failed, 1)
	assert.Contains(t, failed[0].To, "admin@example.com")
	e.verify(t, r.ID)

	// A transient failure is retried.
	e.iam.Fail("Grant", 2)
	r = e.submit(t, alice, app.SubmitInput{RoleID: "auto"})
	assert.Equal(t, access.StatusActive, r.Status)

	// No way out, no access: a failing revoke schedule means no grant.
	e.sched.Fail("Schedule", -1)
	grants := e.iam.Calls("Grant")
	r = e.submit(t, bob, app.SubmitInput{RoleID: "auto"})
	assert.Equal(t, access.StatusFailed, r.Status)
	assert.Equal(t, grants, e.iam.Calls("Grant"), "no grant call without a revoke schedule")
}

func TestRevokeFailureStaysActiveAndRetries(t *testing.T) {
	e := newEnv(t)
	r := e.submit(t, alice, app.SubmitInput{RoleID: "auto"})
	e.clock.Set(r.EndAt)
	e.iam.Fail("Revoke", -1)
	got, err := e.svc.Expire(ctx(), r.ID)
	require.Error(t, err, "the scheduler must see the failure to retry")
	assert.Equal(t, access.StatusActive, got.Status)
	assert.Equal(t, 1, got.RevokeAttempts)
	assert.NotEmpty(t, got.LastError)
	assert.True(t, e.iam.Has(r.Grant()))
	assert.NotEmpty(t, e.mail.Sent(access.NoticeRevokeFailing))

	e.iam.Fail("Revoke", 0)
	e.clock.Advance(5 * time.Minute)
	rep, err := e.svc.Sweep(ctx())
	require.NoError(t, err)
	assert.Equal(t, 1, rep.Expired)
	got, _ = e.store.Get(ctx(), r.ID)
	assert.Equal(t, access.StatusExpired, got.Status)
	assert.False(t, e.iam.Has(r.Grant()))
	e.verify(t, r.ID)
}

func TestConcurrentDuplicateRevokes(t *testing.T) {
	e := newEnv(t)
	r := e.submit(t, alice, app.SubmitInput{RoleID: "auto"})
	e.clock.Set(r.EndAt)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			_, err := e.svc.Expire(ctx(), r.ID)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}
	recs, err := e.store.Audit(ctx(), r.ID)
	require.NoError(t, err)
	expires := 0
	for _, rec := range recs {
		if rec.Action == access.EventExpire {
			expires++
		}
	}
	assert.Equal(t, 1, expires)
	assert.False(t, e.iam.Has(r.Grant()))
}

func TestSweepTimesOutActivatesAndDetectsDrift(t *testing.T) {
	e := newEnv(t)
	pending := e.submit(t, alice, app.SubmitInput{RoleID: "admin", Duration: 4 * time.Hour})
	e.sched.Fail("Schedule", 1) // the grant schedule is lost
	future := e.submit(t, bob, app.SubmitInput{RoleID: "auto", StartAt: t0.Add(time.Hour)})
	active := e.submit(t, alice, app.SubmitInput{RoleID: "auto", Duration: 4 * time.Hour})

	e.clock.Set(t0.Add(90 * time.Minute))
	rep, err := e.svc.Sweep(ctx())
	require.NoError(t, err)
	assert.Equal(t, app.SweepReport{Activated: 1, Checked: 2}, rep, "only the missed activation is due")

	e.clock.Set(t0.Add(2*time.Hour + time.Minute))
	e.iam.Set(active.Grant(), false) // removed behind our back
	rep, err = e.svc.Sweep(ctx())
	require.NoError(t, err)
	assert.Equal(t, 1, rep.TimedOut)
	assert.Equal(t, 1, rep.Expired, "the activated request ended at 2h")
	assert.Equal(t, 1, rep.Drift)
	got, _ := e.store.Get(ctx(), pending.ID)
	assert.Equal(t, access.StatusTimedOut, got.Status)
	got, _ = e.store.Get(ctx(), future.ID)
	assert.Equal(t, access.StatusExpired, got.Status)
	got, _ = e.store.Get(ctx(), active.ID)
	assert.Contains(t, got.LastError, "drift")

	rep, err = e.svc.Sweep(ctx())
	require.NoError(t, err)
	assert.Zero(t, rep.Drift, "drift is recorded once")
}

func TestEndWorkByTicket(t *testing.T) {
	e := newEnv(t)
	a := e.submit(t, alice, app.SubmitInput{RoleID: "ticketed", Ticket: "OPS-1"})
	b := e.submit(t, alice, app.SubmitInput{RoleID: "ticketed", Ticket: "OPS-2"})
	later := e.submit(t, alice, app.SubmitInput{RoleID: "ticketed", Ticket: "OPS-1", StartAt: t0.Add(time.Hour)})
	require.Equal(t, access.StatusApproved, later.Status)
	ended, err := e.svc.EndWork(ctx(), app.TicketEvent{Source: "jira", Ticket: "OPS-1"})
	require.NoError(t, err)
	require.Len(t, ended, 2)
	byID := map[string]access.Request{ended[0].ID: ended[0], ended[1].ID: ended[1]}
	assert.Equal(t, access.StatusRevoked, byID[a.ID].Status)
	assert.Equal(t, "event:jira", byID[a.ID].EndedBy)
	assert.Equal(t, access.StatusCancelled, byID[later.ID].Status, "work that is done needs no future access either")
	_, scheduled := e.sched.At(app.ActionGrant, later.ID)
	assert.False(t, scheduled)
	assert.False(t, e.iam.Has(a.Grant()))
	assert.True(t, e.iam.Has(b.Grant()))
}

func TestEarlyRevokePermissions(t *testing.T) {
	e := newEnv(t)
	r := e.submit(t, alice, app.SubmitInput{RoleID: "admin"})
	r, err := e.svc.Decide(ctx(), carol, app.DecideInput{RequestID: r.ID, Decision: access.DecisionApprove})
	require.NoError(t, err)
	require.Equal(t, access.StatusActive, r.Status)
	r, err = e.svc.RevokeEarly(ctx(), dave, r.ID, "incident over")
	require.NoError(t, err, "an approver may end access")
	assert.Equal(t, access.StatusRevoked, r.Status)
	assert.Equal(t, "dave@example.com", r.EndedBy)
	_, ok := e.sched.At(app.ActionRevoke, r.ID)
	assert.False(t, ok, "early revoke deletes the pending revoke schedule")
}

func TestLastHolderKeepsItsHoldUntilTheAccessIsGone(t *testing.T) {
	e := newEnv(t)
	a := e.submit(t, alice, app.SubmitInput{RoleID: "auto", Duration: 2 * time.Hour})
	b := e.submit(t, alice, app.SubmitInput{RoleID: "auto", Duration: time.Hour})
	e.clock.Set(b.EndAt)
	_, err := e.svc.Expire(ctx(), b.ID)
	require.NoError(t, err)
	require.True(t, e.iam.Has(a.Grant()))

	e.clock.Set(a.EndAt)
	e.iam.Fail("Revoke", -1)
	_, err = e.svc.Expire(ctx(), a.ID)
	require.Error(t, err)
	l, err := e.store.Ledger(ctx(), a.Grant().LedgerKey())
	require.NoError(t, err)
	assert.Equal(t, []string{a.ID}, l.Holders, "a failed revoke keeps the hold, so the retry still owns the access")

	e.iam.Fail("Revoke", 0)
	got, err := e.svc.Expire(ctx(), a.ID)
	require.NoError(t, err)
	assert.Equal(t, access.StatusExpired, got.Status)
	assert.False(t, e.iam.Has(a.Grant()))
}

func TestCrashBeforeTheLedgerNeverRemovesOthersAccess(t *testing.T) {
	e := newEnv(t)
	pre := access.Grant{Provider: access.ProviderIAMPolicy, Principal: access.Principal{Kind: access.PrincipalUser, Name: "bob"},
		Target: access.Target{PolicyARN: "arn:aws:iam::aws:policy/ReadOnlyAccess"}}
	e.iam.Set(pre, true)
	// The ledger write keeps failing, as after a crash right after the
	// revoke schedule was created.
	e.svc.Store = failingHold{e.store}
	r := e.submit(t, bob, app.SubmitInput{RoleID: "auto"})
	require.Equal(t, access.StatusFailed, r.Status)
	assert.True(t, e.iam.Has(pre), "failing activation does not touch access it never held")

	// The process dies right after creating the revoke schedule: the
	// request stays APPROVED until its revoke fires.
	e.svc.Store = crashingHold{e.store}
	require.Panics(t, func() { _, _ = e.svc.Submit(ctx(), bob, app.SubmitInput{RoleID: "auto", Justification: why}) })
	e.svc.Store = e.store
	var crashed access.Request
	for _, x := range e.store.AllRequests() {
		if x.Status == access.StatusApproved {
			crashed = x
		}
	}
	require.NotEmpty(t, crashed.ID)
	_, ok := e.sched.At(app.ActionRevoke, crashed.ID)
	require.True(t, ok)
	e.clock.Set(crashed.EndAt)
	got, err := e.svc.Expire(ctx(), crashed.ID)
	require.NoError(t, err)
	assert.Equal(t, access.StatusFailed, got.Status)
	assert.True(t, e.iam.Has(pre), "access the request never took hold of is not its to remove")
}

type failingHold struct{ app.Store }

func (failingHold) HoldGrant(context.Context, string, string, bool, int) (access.Ledger, error) {
	return access.Ledger{}, access.Errorf(access.KindInternal, "injected: ledger unavailable")
}

type crashingHold struct{ app.Store }

func (crashingHold) HoldGrant(context.Context, string, string, bool, int) (access.Ledger, error) {
	panic("crash between the revoke schedule and the ledger")
}

// flakyTransitions fails the next n Transition writes, as a throttled or
// timed-out DynamoDB would.
type flakyTransitions struct {
	app.Store
	n int
}

func (f *flakyTransitions) Transition(ctx context.Context, prev, next access.Request, rec access.AuditRecord) error {
	if f.n > 0 {
		f.n--
		return access.Wrap(access.KindInternal, errors.New("throttled"), "transition failed")
	}
	return f.Store.Transition(ctx, prev, next, rec)
}

// TestApprovalLinkSurvivesFailedWrite: a link whose decision could not be
// recorded is not spent; the approver's second press decides.
func TestApprovalLinkSurvivesFailedWrite(t *testing.T) {
	e := newEnv(t)
	r := e.submit(t, alice, app.SubmitInput{RoleID: "quorum"})
	var link string
	for _, n := range e.mail.Sent(access.NoticeApprovalRequested) {
		if n.To[0] == "carol@example.com" {
			link = n.ActionURL[len("https://jit.example.com/approvals/"):]
		}
	}
	require.NotEmpty(t, link)
	flaky := &flakyTransitions{Store: e.svc.Store, n: 1}
	e.svc.Store = flaky

	_, err := e.svc.DecideByLink(ctx(), link, access.DecisionApprove, "")
	require.Error(t, err)
	got, _ := e.store.Get(ctx(), r.ID)
	require.Equal(t, r.Version, got.Version, "nothing was recorded")

	got, err = e.svc.DecideByLink(ctx(), link, access.DecisionApprove, "ok")
	require.NoError(t, err, "the link still works")
	assert.True(t, got.HasDecided("carol@example.com"))
	_, err = e.svc.DecideByLink(ctx(), link, access.DecisionApprove, "")
	assert.Equal(t, access.KindConflict, access.KindOf(err), "and is spent once the decision is recorded")
}

// failingListDue fails the due-work query of one status.
type failingListDue struct {
	app.Store
	status access.Status
}

func (f failingListDue) ListDue(ctx context.Context, st access.Status, now time.Time, limit int, cursor string) ([]access.Request, string, error) {
	if st == f.status {
		return nil, "", access.Wrap(access.KindInternal, errors.New("throttled"), "list due failed")
	}
	return f.Store.ListDue(ctx, st, now, limit, cursor)
}

// TestSweepStatusesTakeTurns: a backlog of due ACTIVE grants larger than
// the sweep's budget does not starve a PENDING request past its deadline,
// and a status whose query fails does not stop the others.
func TestSweepStatusesTakeTurns(t *testing.T) {
	e := newEnv(t)
	pending := e.submit(t, alice, app.SubmitInput{RoleID: "admin"})
	for range 160 {
		e.submit(t, bob, app.SubmitInput{RoleID: "auto", Duration: time.Hour})
	}
	e.clock.Advance(2 * time.Hour) // every grant and the approval deadline are past
	e.svc.SweepLimit = 150

	rep, err := e.svc.Sweep(ctx())
	require.NoError(t, err)
	assert.Equal(t, 1, rep.TimedOut, "the PENDING request had its turn")
	assert.Equal(t, 149, rep.Expired, "the rest of the budget went to the backlog")
	got, _ := e.store.Get(ctx(), pending.ID)
	assert.Equal(t, access.StatusTimedOut, got.Status)

	// The ACTIVE query fails: the rest still runs, and the error is reported.
	late := e.submit(t, alice, app.SubmitInput{RoleID: "admin"})
	e.clock.Advance(2 * time.Hour)
	e.svc.Store = failingListDue{Store: e.store, status: access.StatusActive}
	rep, err = e.svc.Sweep(ctx())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "list due ACTIVE")
	assert.Equal(t, 1, rep.TimedOut)
	assert.Equal(t, 1, rep.Failed)
	got, _ = e.store.Get(ctx(), late.ID)
	assert.Equal(t, access.StatusTimedOut, got.Status)
}

// TestRevokeFailureAlertsBackOff: an early revoke that keeps failing is
// retried by every sweep, but admins are mailed on attempts 1, 2, 4 and 8
// only, not on each of them.
func TestRevokeFailureAlertsBackOff(t *testing.T) {
	e := newEnv(t)
	r := e.submit(t, alice, app.SubmitInput{RoleID: "auto", Duration: 4 * time.Hour})
	e.iam.Fail("Revoke", -1)
	_, err := e.svc.RevokeEarly(ctx(), alice, r.ID, "done")
	require.Error(t, err)
	for range 8 { // attempts 2 to 9
		e.clock.Advance(5 * time.Minute)
		_, err := e.svc.Sweep(ctx())
		require.NoError(t, err)
	}
	got, _ := e.store.Get(ctx(), r.ID)
	require.Equal(t, 9, got.RevokeAttempts)
	assert.Len(t, e.mail.Sent(access.NoticeRevokeFailing), 4)
}
