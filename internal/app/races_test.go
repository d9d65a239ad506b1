package app_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jitaccess/jit/internal/access"
	"github.com/jitaccess/jit/internal/app"
	"github.com/jitaccess/jit/internal/app/apptest"
)

type ctxKey string

// hookProvider wraps the fake IAM with per-context hooks.
type hookProvider struct {
	*apptest.Provider
	beforeGrant func(ctx context.Context, g access.Grant) error
	afterGrant  func(ctx context.Context, g access.Grant)
}

func (p *hookProvider) Grant(ctx context.Context, g access.Grant) error {
	if p.beforeGrant != nil {
		if err := p.beforeGrant(ctx, g); err != nil {
			return err
		}
	}
	err := p.Provider.Grant(ctx, g)
	if p.afterGrant != nil {
		p.afterGrant(ctx, g)
	}
	return err
}

type hookSched struct {
	*apptest.Scheduler
	onUnschedule func(ctx context.Context, action, id string)
}

func (s *hookSched) Unschedule(ctx context.Context, action, id string) error {
	if s.onUnschedule != nil {
		s.onUnschedule(ctx, action, id)
	}
	return s.Scheduler.Unschedule(ctx, action, id)
}

func setProv(e *env, p app.Provider) {
	e.svc.Providers = map[access.ProviderKind]app.Provider{
		access.ProviderIAMGroup: p, access.ProviderIAMPolicy: p, access.ProviderIAMTimeboxedPolicy: p,
	}
}

// D1 (failing grant) withdraws; D2 (duplicate delivery) grants after that
// and records ACTIVE before D1 records FAILED.
func TestRaceFailActivationRacesDuplicateActivation(t *testing.T) {
	e := newEnv(t)
	start := t0.Add(time.Hour)
	r := e.submit(t, alice, app.SubmitInput{RoleID: "auto", StartAt: start})
	require.Equal(t, access.StatusApproved, r.Status)
	e.clock.Set(start)

	d2Go := make(chan struct{})
	d2Done := make(chan struct{})
	hp := &hookProvider{Provider: e.iam}
	hp.beforeGrant = func(ctx context.Context, g access.Grant) error {
		switch ctx.Value(ctxKey("d")) {
		case "d1":
			return access.Errorf(access.KindInternal, "throttled")
		case "d2":
			<-d2Go
		}
		return nil
	}
	setProv(e, hp)
	hs := &hookSched{Scheduler: e.sched}
	var once sync.Once
	hs.onUnschedule = func(ctx context.Context, action, id string) {
		if ctx.Value(ctxKey("d")) == "d1" && action == app.ActionRevoke {
			once.Do(func() { close(d2Go); <-d2Done })
		}
	}
	e.svc.Scheduler = hs

	d2ctx := context.WithValue(ctx(), ctxKey("d"), "d2")
	var d2r access.Request
	var d2err error
	go func() {
		d2r, d2err = e.svc.Activate(d2ctx, r.ID)
		close(d2Done)
	}()
	// let D2 take hold first
	for {
		l, _ := e.store.Ledger(ctx(), r.Grant().LedgerKey())
		if len(l.Holders) > 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	d1ctx := context.WithValue(ctx(), ctxKey("d"), "d1")
	_, d1err := e.svc.Activate(d1ctx, r.ID)
	t.Logf("d1 err: %v; d2: %s %v", d1err, d2r.Status, d2err)

	cur, err := e.store.Get(ctx(), r.ID)
	require.NoError(t, err)
	l, _ := e.store.Ledger(ctx(), r.Grant().LedgerKey())
	_, revokeScheduled := e.sched.At(app.ActionRevoke, r.ID)
	t.Logf("status=%s iam=%v holders=%v revokeScheduled=%v", cur.Status, e.iam.Has(r.Grant()), l.Holders, revokeScheduled)

	// The window ends; the sweeper expires it.
	e.clock.Set(cur.EndAt.Add(time.Minute))
	_, _ = e.svc.Sweep(ctx())
	cur, _ = e.store.Get(ctx(), r.ID)
	assert.False(t, e.iam.Has(r.Grant()), "access left behind after %s", cur.Status)
}

type hookStore struct {
	app.Store
	afterListByTicket func()
}

func (s *hookStore) ListByTicket(ctx context.Context, ticket string) ([]access.Request, error) {
	rs, err := s.Store.ListByTicket(ctx, ticket)
	if s.afterListByTicket != nil {
		s.afterListByTicket()
	}
	return rs, err
}

// A work-finished event that lists an APPROVED request which becomes ACTIVE
// before its cancel.
func TestRaceEndWorkDropsRequestThatActivated(t *testing.T) {
	e := newEnv(t)
	start := t0.Add(time.Hour)
	r := e.submit(t, alice, app.SubmitInput{RoleID: "ticketed", Ticket: "OPS-1", StartAt: start})
	require.Equal(t, access.StatusApproved, r.Status)
	e.clock.Set(start)
	hs := &hookStore{Store: e.store}
	hs.afterListByTicket = func() {
		got, err := e.svc.Activate(ctx(), r.ID)
		require.NoError(t, err)
		require.Equal(t, access.StatusActive, got.Status)
	}
	e.svc.Store = hs
	_, err := e.svc.EndWork(ctx(), app.TicketEvent{Source: "jira", Ticket: "OPS-1"})
	cur, _ := e.store.Get(ctx(), r.ID)
	t.Logf("EndWork err=%v status=%s iam=%v", err, cur.Status, e.iam.Has(r.Grant()))
	assert.True(t, err != nil || cur.Status.Terminal(), "work finished, access stays %s and nothing will retry", cur.Status)
}

// Cancel of an APPROVED request while its activation's grant is in flight;
// another request for the same access looks at IAM in between.
func TestRaceReclaimLosesToPreExistingLook(t *testing.T) {
	e := newEnv(t)
	start := t0.Add(time.Hour)
	a := e.submit(t, alice, app.SubmitInput{RoleID: "auto", StartAt: start})
	e.clock.Set(start)
	hp := &hookProvider{Provider: e.iam}
	aGrantGo := make(chan struct{})
	var cID string
	hp.beforeGrant = func(ctx context.Context, g access.Grant) error {
		if g.RequestID == a.ID && ctx.Value(ctxKey("d")) == "a" {
			<-aGrantGo
		}
		return nil
	}
	var once sync.Once
	hp.afterGrant = func(ctx context.Context, g access.Grant) {
		if g.RequestID == a.ID && ctx.Value(ctxKey("d")) == "a" {
			once.Do(func() {
				// C arrives now and looks at IAM.
				c := e.submit(t, alice, app.SubmitInput{RoleID: "auto"})
				cID = c.ID
				t.Logf("C: %s", c.Status)
			})
		}
	}
	setProv(e, hp)
	done := make(chan struct{})
	go func() {
		defer close(done)
		got, err := e.svc.Activate(context.WithValue(ctx(), ctxKey("d"), "a"), a.ID)
		t.Logf("A activate: %s %v", got.Status, err)
	}()
	for {
		l, _ := e.store.Ledger(ctx(), a.Grant().LedgerKey())
		if len(l.Holders) > 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	_, err := e.svc.Cancel(ctx(), alice, a.ID, "changed my mind")
	require.NoError(t, err)
	close(aGrantGo)
	<-done
	l, _ := e.store.Ledger(ctx(), a.Grant().LedgerKey())
	t.Logf("ledger after: %+v", l)
	_, err = e.svc.RevokeEarly(ctx(), alice, cID, "done")
	require.NoError(t, err)
	l, _ = e.store.Ledger(ctx(), a.Grant().LedgerKey())
	t.Logf("ledger end: %+v iam=%v", l, e.iam.Has(a.Grant()))
	assert.False(t, e.iam.Has(a.Grant()), "alice had no access before either request")
}

// duplicateReleaseStore runs a whole second revoke of the same request
// inside the first one's ReleaseIfShared, as a duplicate delivery at once.
type duplicateReleaseStore struct {
	app.Store
	dup  func()
	done bool
}

func (s *duplicateReleaseStore) ReleaseIfShared(ctx context.Context, key, id string) (access.Ledger, bool, error) {
	if !s.done {
		s.done = true
		s.dup()
	}
	return s.Store.ReleaseIfShared(ctx, key, id)
}

// countingRevokes counts the provider's revokes.
type countingRevokes struct {
	*apptest.Provider
	n int
}

func (p *countingRevokes) Revoke(ctx context.Context, g access.Grant) error {
	p.n++
	return p.Provider.Revoke(ctx, g)
}

// TestRaceDuplicateRevokeOfASharedGrant: two deliveries of A's revoke at
// once, while B holds the same access: the one that loses the shared release
// must not go on to remove the access B still holds.
func TestRaceDuplicateRevokeOfASharedGrant(t *testing.T) {
	e := newEnv(t)
	a := e.submit(t, alice, app.SubmitInput{RoleID: "auto", Duration: time.Hour})
	e.clock.Advance(10 * time.Minute)
	b := e.submit(t, alice, app.SubmitInput{RoleID: "auto", Duration: time.Hour})
	require.Equal(t, access.StatusActive, b.Status)
	cr := &countingRevokes{Provider: e.iam}
	setProv(e, cr)
	e.clock.Set(a.EndAt)
	e.svc.Store = &duplicateReleaseStore{Store: e.store, dup: func() {
		_, err := e.svc.Expire(ctx(), a.ID)
		require.NoError(t, err)
	}}

	_, err := e.svc.Expire(ctx(), a.ID)
	require.NoError(t, err)
	assert.Zero(t, cr.n, "B's access was never taken away")
	assert.True(t, e.iam.Has(b.Grant()))
	got, _ := e.store.Get(ctx(), a.ID)
	assert.Equal(t, access.StatusExpired, got.Status)
	l, _ := e.store.Ledger(ctx(), b.Grant().LedgerKey())
	assert.Equal(t, []string{b.ID}, l.Holders)
}

// driftDuringRevoke writes a drift finding (as a concurrent sweep would)
// just before each of the first n REVOKED writes, so each loses its race.
type driftDuringRevoke struct {
	app.Store
	now func() time.Time
	n   int
}

func (s *driftDuringRevoke) Transition(ctx context.Context, prev, next access.Request, rec access.AuditRecord) error {
	if next.Status == access.StatusRevoked && s.n > 0 {
		s.n--
		cur, err := s.Store.Get(ctx, prev.ID)
		if err != nil {
			return err
		}
		drifted, drec, err := access.Apply(cur, access.Event{Type: access.EventDrift, Actor: app.ActorSweeper, Comment: "seen missing"}, s.now())
		if err != nil {
			return err
		}
		if err := s.Store.Transition(ctx, cur, drifted, drec); err != nil {
			return err
		}
	}
	return s.Store.Transition(ctx, prev, next, rec)
}

// TestRaceEarlyRevokeRecordOutlastsLostRaces: once the access is gone, the
// REVOKED record is written even if several concurrent records beat it.
func TestRaceEarlyRevokeRecordOutlastsLostRaces(t *testing.T) {
	e := newEnv(t)
	r := e.submit(t, alice, app.SubmitInput{RoleID: "auto", Duration: time.Hour})
	e.svc.Store = &driftDuringRevoke{Store: e.store, now: e.clock.Now, n: 3}
	got, err := e.svc.RevokeEarly(ctx(), alice, r.ID, "done")
	require.NoError(t, err)
	assert.Equal(t, access.StatusRevoked, got.Status)
	assert.False(t, e.iam.Has(r.Grant()))
	require.NoError(t, e.store.VerifyAudit(ctx(), r.ID))
}
