package app

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jitaccess/jit/internal/access"
)

// Activate is the grant schedule's entry point: it activates an APPROVED
// request whose start has come. Duplicate deliveries are harmless.
func (s *Service) Activate(ctx context.Context, id string) (access.Request, error) {
	r, err := s.Store.Get(ctx, id)
	if err != nil {
		return r, err
	}
	return s.activate(ctx, r)
}

func (s *Service) provider(kind access.ProviderKind) (Provider, error) {
	p, ok := s.Providers[kind]
	if !ok {
		return nil, access.Errorf(access.KindInternal, "no provider for %q", kind)
	}
	return p, nil
}

// activate follows the order that never leaves access without a way out:
// 1. the revoke schedule exists, 2. the ledger holds the grant, then the
// provider grants, 3. a read-back sees the access, then ACTIVE is recorded.
// A crash after any step leaves a revoke that will fire (revoking what was
// never granted is a no-op) and an APPROVED request the sweeper retries.
func (s *Service) activate(ctx context.Context, r access.Request) (access.Request, error) {
	switch {
	case r.Status == access.StatusActive || r.Status.Terminal():
		return r, nil // duplicate or late delivery
	case r.Status != access.StatusApproved:
		return r, access.Errorf(access.KindConflict, "request is %s, not APPROVED", r.Status)
	}
	now := s.now()
	if !now.Before(r.EndAt) {
		// An earlier delivery may have died after granting: undo what this
		// request holds (withdraw touches nothing it does not hold).
		return s.failActivation(ctx, r, errors.New("the access window ended before activation"), undoHeld)
	}
	if now.Before(r.StartAt.Add(-access.ScheduleTolerance)) {
		// Early delivery: make sure the grant fires at the start instead.
		return r, s.Scheduler.Schedule(ctx, ActionGrant, r.ID, r.StartAt)
	}
	p, err := s.provider(r.Provider)
	if err != nil {
		return s.failActivation(ctx, r, err, undoNothing)
	}
	g := r.Grant()

	// 1. The way out comes first.
	if err := s.retry(ctx, "schedule revoke", func() error {
		return s.Scheduler.Schedule(ctx, ActionRevoke, r.ID, r.EndAt)
	}); err != nil {
		return s.failActivation(ctx, r, fmt.Errorf("create revoke schedule: %w", err), undoNothing)
	}

	// 2. Ledger, then provider.
	if err := s.retry(ctx, "hold grant", func() error { return s.hold(ctx, p, g) }); err != nil {
		return s.failActivation(ctx, r, fmt.Errorf("record grant: %w", err), undoHeld)
	}
	// 3. Read back before we call it ACTIVE.
	if err := s.retry(ctx, "grant", func() error {
		if err := p.Grant(ctx, g); err != nil {
			return err
		}
		ok, err := p.Check(ctx, g, true)
		if err == nil && !ok {
			err = access.Errorf(access.KindInternal, "granted, but the read-back does not show the access")
		}
		return err
	}); err != nil {
		return s.failActivation(ctx, r, fmt.Errorf("grant %s: %w", g.Provider, err), undoGrant)
	}

	var next access.Request
	err = s.retry(ctx, "record activation", func() (err error) {
		next, err = s.applyTo(ctx, r, access.Event{Type: access.EventActivate, Actor: ActorGrant, Comment: "access verified in IAM"})
		return err
	})
	if err != nil {
		return s.afterLostActivation(ctx, r, p, err)
	}
	s.Metrics.Count(ctx, "Grants", 1)
	s.notify(ctx, access.Notice{Kind: access.NoticeActive, To: []string{r.Requester}, Request: next})
	return next, nil
}

// hold records this request in the grant ledger. The first holder also
// records whether the principal already had the access, so that no revoke
// ever takes away access we did not give.
func (s *Service) hold(ctx context.Context, p Provider, g access.Grant) error {
	return s.takeHold(ctx, g, func(access.Ledger) (pre, skip bool, err error) {
		if g.Provider == access.ProviderIAMTimeboxedPolicy {
			return false, false, nil // per request: never there before us
		}
		pre, err = p.Check(ctx, g, false)
		return pre, false, err
	})
}

// takeHold adds the request to the holders of its grant's ledger entry,
// reading the entry again when it changed under us (a conflict on its
// generation). For an entry nobody holds, first decides what to record as
// pre-existing, or to skip the hold altogether.
func (s *Service) takeHold(ctx context.Context, g access.Grant, first func(access.Ledger) (pre, skip bool, err error)) error {
	key := g.LedgerKey()
	var err error
	for range 5 {
		var l access.Ledger
		if l, err = s.Store.Ledger(ctx, key); err != nil {
			return err
		}
		if slices.Contains(l.Holders, g.RequestID) {
			return nil // a retried or duplicate activation
		}
		pre := false
		if len(l.Holders) == 0 {
			var skip bool
			if pre, skip, err = first(l); err != nil || skip {
				return err
			}
		}
		if _, err = s.Store.HoldGrant(ctx, key, g.RequestID, pre, l.Gen); !access.IsKind(err, access.KindConflict) {
			return err
		}
	}
	return err
}

// afterLostActivation handles a failed ACTIVE write after access was
// granted: if a concurrent delivery activated it, fine; if the request was
// cancelled meanwhile, the access must go again.
func (s *Service) afterLostActivation(ctx context.Context, r access.Request, p Provider, cause error) (access.Request, error) {
	var cur access.Request
	if err := s.retry(ctx, "read request after lost activation", func() (err error) {
		cur, err = s.Store.Get(ctx, r.ID)
		return err
	}); err != nil {
		// The revoke schedule and our hold stay; a redelivery or the
		// end-time revoke withdraws what we hold.
		return r, errors.Join(cause, err)
	}
	switch cur.Status {
	case access.StatusActive:
		return cur, nil
	case access.StatusApproved:
		if access.IsKind(cause, access.KindConflict) {
			return s.activate(ctx, cur) // a stale read; every step is idempotent
		}
		// The store keeps failing the write: stop as a crash before it would.
		// The revoke schedule and the ledger hold are in place; the error
		// makes the scheduler re-deliver, and the sweeper retries too.
		return cur, cause
	}
	// Whatever ended it may have withdrawn our hold between our hold and
	// our grant: take hold again of what we granted, then withdraw it.
	err := s.reclaim(ctx, r.Grant())
	if err == nil {
		err = s.withdraw(ctx, p, r.Grant())
	}
	if err != nil {
		s.alertAdmins(ctx, cur, fmt.Sprintf("request became %s while access was being granted, and removing it failed: %v", cur.Status, err))
		return cur, err
	}
	_ = s.Scheduler.Unschedule(ctx, ActionRevoke, r.ID)
	return cur, nil
}

// reclaim takes hold again of access this request has just granted, in
// case its hold was withdrawn under it (a revoke or cancel that ran between
// the hold and the grant), so that withdraw takes the access away rather
// than finding nothing of ours. An entry that nobody holds and that records
// pre-existing access was there before us: leave it. Only for access this
// request is known to have granted: on an entry it never held, a hold
// would make pre-existing access ours to take.
func (s *Service) reclaim(ctx context.Context, g access.Grant) error {
	return s.retry(ctx, "reclaim grant", func() error {
		return s.takeHold(ctx, g, func(l access.Ledger) (pre, skip bool, err error) {
			return false, l.PreExisting, nil
		})
	})
}

// undo says what a failed activation must take back.
type undo int

const (
	undoNothing undo = iota // nothing was held or granted
	undoHeld                // withdraw whatever the request holds
	// undoGrant: the request held the access and tried to grant it; the
	// grant may have landed although it reported an error (a lost
	// response), possibly after a cancel withdrew the hold: take hold again
	// (reclaim), then withdraw.
	undoGrant
)

// failActivation records FAILED, then undoes what activation did, removes
// the revoke schedule and tells the requester and admins. FAILED comes
// first: a duplicate delivery still activating the same request then loses
// its ACTIVE write and cleans up after itself, instead of finishing on
// access this undo has just taken away (and without a revoke schedule). If
// undoing fails, the revoke schedule stays: the end-time revoke withdraws
// whatever a FAILED request still holds.
func (s *Service) failActivation(ctx context.Context, r access.Request, cause error, u undo) (access.Request, error) {
	s.Metrics.Count(ctx, "GrantFailures", 1)
	s.Log.ErrorContext(ctx, "activation failed", "requestId", r.ID, "error", cause)
	next, activated, err := s.recordFailed(ctx, r, cause)
	if err != nil {
		return r, errors.Join(cause, err)
	}
	if activated {
		return next, nil // another delivery activated it: its hold and schedule stand
	}
	if u != undoNothing {
		p, err := s.provider(r.Provider)
		if err == nil && u == undoGrant {
			err = s.reclaim(ctx, r.Grant())
		}
		if err == nil {
			err = s.withdraw(ctx, p, r.Grant())
		}
		if err != nil {
			s.alertAdmins(ctx, next, fmt.Sprintf("activation failed (%v) and undoing it failed (%v); access may remain until the revoke schedule, which stays, removes it", cause, err))
			return next, errors.Join(cause, err)
		}
	}
	if err := s.Scheduler.Unschedule(ctx, ActionRevoke, r.ID); err != nil {
		s.Log.WarnContext(ctx, "unschedule revoke after failed activation", "requestId", r.ID, "error", err)
	}
	if next.Status == access.StatusFailed {
		s.notify(ctx, access.Notice{Kind: access.NoticeFailed, To: append([]string{r.Requester}, s.admins()...), Request: next, Detail: cause.Error()})
	}
	return next, nil
}

// recordFailed writes FAILED, re-reading after a lost race: activated is
// set when another delivery made the request ACTIVE meanwhile; a request
// that ended otherwise (a cancel) is returned as it is, still to be undone.
func (s *Service) recordFailed(ctx context.Context, r access.Request, cause error) (next access.Request, activated bool, err error) {
	ev := access.Event{Type: access.EventActivationFailed, Actor: ActorGrant, Error: cause.Error(), Comment: "activation failed; what it did is undone"}
	for range 5 {
		if next, err = s.applyTo(ctx, r, ev); !access.IsKind(err, access.KindConflict) {
			return next, false, err
		}
		if r, err = s.Store.Get(ctx, r.ID); err != nil {
			return r, false, err
		}
		switch {
		case r.Status == access.StatusActive:
			return r, true, nil
		case r.Status.Terminal():
			return r, false, nil
		}
	}
	return r, false, err
}

// withdraw removes this request's hold on the access, and the access
// itself when no other request holds it and the principal did not have it
// before. The rule that keeps it safe: a request lets go of the ledger
// before the access is gone only while another request still holds it
// (ReleaseIfShared is one conditional write); the last holder revokes,
// reads back until the access is gone, and only then releases. So a crash
// anywhere leaves either a holder that a retry will find, or nothing of
// ours in IAM; and no request ever mistakes our leftover access for
// pre-existing, as it never sees an empty entry while the access is ours.
func (s *Service) withdraw(ctx context.Context, p Provider, g access.Grant) error {
	return s.withdrawAccess(ctx, p, g, false)
}

// withdrawKeepingHold is withdraw for a request cancelled while it may still
// be activating: as its sole holder it removes the access but keeps its
// hold, so that an activation still in flight finds the hold (and not an
// empty entry that a new first holder would read as pre-existing once that
// activation's grant lands). The end-time revoke, whose schedule stays,
// releases the hold.
func (s *Service) withdrawKeepingHold(ctx context.Context, p Provider, g access.Grant) error {
	return s.withdrawAccess(ctx, p, g, true)
}

func (s *Service) withdrawAccess(ctx context.Context, p Provider, g access.Grant, keepSoleHold bool) error {
	key := g.LedgerKey()
	var l access.Ledger
	if err := s.retry(ctx, "read grant", func() (err error) {
		l, err = s.Store.Ledger(ctx, key)
		return err
	}); err != nil {
		return err
	}
	if !slices.Contains(l.Holders, g.RequestID) {
		// Never held (activation stopped before the ledger step), or an
		// earlier try already finished: nothing in IAM is ours to take.
		return nil
	}
	if l.PreExisting {
		return s.release(ctx, key, g.RequestID, nil)
	}
	shared, err := s.heldByOthers(ctx, l, g.RequestID)
	if err != nil {
		return err
	}
	if shared {
		var released bool
		if err := s.retry(ctx, "release shared grant", func() (err error) {
			l, released, err = s.Store.ReleaseIfShared(ctx, key, g.RequestID)
			return err
		}); err != nil {
			return err
		}
		if released {
			return nil // another request still holds it
		}
		if !slices.Contains(l.Holders, g.RequestID) {
			// A concurrent try of this same request (a duplicate delivery)
			// let go first: the rest is its to do, not ours. Going on would
			// take away access the other holder still has.
			return nil
		}
	}
	if err := s.removeAccess(ctx, p, g); err != nil {
		return err
	}
	regrant := func(after access.Ledger) error {
		if held, err := s.heldByOthers(ctx, after, g.RequestID); err != nil || !held {
			return err
		}
		// Another request took hold while we revoked: give its access back.
		s.Log.WarnContext(ctx, "re-granting for an overlapping request", "requestId", g.RequestID, "holders", after.Holders)
		return s.retry(ctx, "re-grant", func() error { return p.Grant(ctx, g) })
	}
	if keepSoleHold {
		var after access.Ledger
		if err := s.retry(ctx, "read grant", func() (err error) {
			after, err = s.Store.Ledger(ctx, key)
			return err
		}); err != nil {
			return err
		}
		return regrant(after)
	}
	return s.release(ctx, key, g.RequestID, regrant)
}

// heldByOthers reports whether a request other than self holds the access
// and is still live (APPROVED or ACTIVE). The hold of an ended request is
// stale: a request cancelled while activating keeps its hold (see
// withdrawKeepingHold) until its end-time revoke, and must not keep the
// access alive for others, nor make a revoke grant it back.
func (s *Service) heldByOthers(ctx context.Context, l access.Ledger, self string) (bool, error) {
	for _, h := range l.Holders {
		if h == self {
			continue
		}
		var r access.Request
		err := s.retry(ctx, "read holder", func() (err error) {
			r, err = s.Store.Get(ctx, h)
			return err
		})
		switch {
		case access.IsKind(err, access.KindNotFound):
			continue
		case err != nil:
			return false, err
		case !r.Status.Terminal():
			return true, nil
		}
	}
	return false, nil
}

func (s *Service) release(ctx context.Context, key, id string, then func(access.Ledger) error) error {
	var after access.Ledger
	if err := s.retry(ctx, "release grant", func() (err error) {
		after, err = s.Store.ReleaseGrant(ctx, key, id)
		return err
	}); err != nil {
		return err
	}
	if then == nil {
		return nil
	}
	return then(after)
}

// removeAccess revokes and reads back until the access is gone.
func (s *Service) removeAccess(ctx context.Context, p Provider, g access.Grant) error {
	return s.retry(ctx, "revoke", func() error {
		if err := p.Revoke(ctx, g); err != nil {
			return err
		}
		present, err := p.Check(ctx, g, false)
		if err == nil && present {
			err = access.Errorf(access.KindInternal, "revoked, but the read-back still shows the access")
		}
		return err
	})
}

func (s *Service) alertAdmins(ctx context.Context, r access.Request, detail string) {
	s.notify(ctx, access.Notice{Kind: access.NoticeRevokeFailing, To: s.admins(), Request: r, Detail: detail})
}
