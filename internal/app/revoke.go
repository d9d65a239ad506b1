package app

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jitaccess/jit/internal/access"
)

// RevokeInput says who ends access and why. Expire is the end-time path
// (schedule or sweeper); otherwise it is an early revoke by a person or an
// event rule.
type RevokeInput struct {
	RequestID  string
	Actor      string
	Privileged bool
	Reason     string
	Expire     bool
}

// Expire is the revoke schedule's entry point.
func (s *Service) Expire(ctx context.Context, id string) (access.Request, error) {
	return s.Revoke(ctx, RevokeInput{RequestID: id, Actor: ActorRevoke, Privileged: true, Expire: true})
}

// RevokeEarly is "I'm done" from the requester, or an approver or admin ending access.
func (s *Service) RevokeEarly(ctx context.Context, caller Caller, id, reason string) (access.Request, error) {
	r, err := s.Get(ctx, caller, id)
	if err != nil {
		return r, err
	}
	return s.Revoke(ctx, RevokeInput{RequestID: id, Actor: caller.Identity, Privileged: s.isAdmin(caller.Identity), Reason: reason})
}

// Revoke ends a request's access. It is safe under duplicate and concurrent
// delivery: the ledger release and the provider calls are idempotent, and
// only one terminal transition can win; the others find it done.
func (s *Service) Revoke(ctx context.Context, in RevokeInput) (access.Request, error) {
	r, err := s.Store.Get(ctx, in.RequestID)
	if err != nil {
		return r, err
	}
	if r.Status.Terminal() && !in.Expire {
		// A person or an event ending access that has already ended: no
		// change, so no audit record, so not a success either.
		return r, access.Errorf(access.KindConflict, "request is %s; there is no access to revoke", r.Status)
	}
	if r.Status.Terminal() {
		// A duplicate delivery: already done. Except that a request that
		// ended (cancelled) while it was being activated may still hold
		// access whose removal failed then; its revoke schedule was kept
		// for this. withdraw touches nothing the request does not hold.
		if in.Expire && (r.Status == access.StatusCancelled || r.Status == access.StatusFailed) {
			if p, err := s.provider(r.Provider); err == nil {
				if err := s.withdraw(ctx, p, r.Grant()); err != nil {
					s.alertAdmins(ctx, r, fmt.Sprintf("request is %s but still holds access, and removing it failed: %v", r.Status, err))
					return r, access.Wrap(access.KindInternal, err, "removing the access of an ended request failed; it will be retried")
				}
			}
		}
		return r, nil
	}
	if r.Status == access.StatusApproved && in.Expire {
		if s.now().Before(r.EndAt.Add(-access.ScheduleTolerance)) {
			// An early or stray delivery: the window is still open, and
			// the grant may yet come. Refused like an early expire of ACTIVE.
			return r, access.Errorf(access.KindConflict, "end time %s has not come", r.EndAt.Format(time.RFC3339))
		}
		// The window ended without a verified activation (a crash between
		// the activation steps): clean up whatever was done, then FAILED.
		return s.failActivation(ctx, r, fmt.Errorf("the access window ended before activation completed"), undoHeld)
	}
	ev := access.Event{Type: access.EventRevoke, Actor: in.Actor, Privileged: in.Privileged, Comment: in.Reason}
	if in.Expire {
		ev = access.Event{Type: access.EventExpire, Actor: in.Actor, Privileged: true}
	}
	// Ask the lifecycle first, so a refused revoke touches nothing in IAM.
	if _, err := access.Transition(r, ev, s.now()); err != nil {
		return r, err
	}
	p, err := s.provider(r.Provider)
	if err != nil {
		return r, err
	}
	if err := s.withdraw(ctx, p, r.Grant()); err != nil {
		return s.revokeFailed(ctx, r, in, err)
	}

	// The access is gone; record it, re-reading after lost races (a drift
	// or revoke-failed record written meanwhile) for as long as it is ACTIVE.
	next, err := s.applyTo(ctx, r, ev)
	for attempt := 0; err != nil && attempt < 5; attempt++ {
		cur, gerr := s.Store.Get(ctx, r.ID)
		switch {
		case gerr != nil:
			return r, errors.Join(err, gerr)
		case cur.Status.Terminal() && in.Expire:
			return cur, nil // a concurrent delivery finished first
		case cur.Status.Terminal():
			// Something else ended it first (this revoke's withdraw was
			// harmless): it is not this actor's revoke.
			return cur, access.Errorf(access.KindConflict, "request became %s meanwhile", cur.Status)
		case cur.Status != access.StatusActive:
			return r, err
		}
		next, err = s.applyTo(ctx, cur, ev)
	}
	if err != nil {
		return r, err
	}
	if !in.Expire {
		if err := s.Scheduler.Unschedule(ctx, ActionRevoke, r.ID); err != nil {
			// A leftover schedule finds the request REVOKED and does nothing.
			s.Log.WarnContext(ctx, "unschedule revoke after early revoke", "requestId", r.ID, "error", err)
		}
	}
	s.Metrics.Count(ctx, "Revokes", 1)
	if in.Expire {
		s.Metrics.Duration(ctx, "RevokeLag", max(s.now().Sub(r.EndAt), 0))
	}
	s.notify(ctx, access.Notice{Kind: access.NoticeEnded, To: []string{r.Requester}, Request: next, Detail: next.EndReason})
	return next, nil
}

// revokeFailed keeps the request ACTIVE with the error and attempt count,
// alerts admins, and returns the error so that the caller sees it (Lambda
// retries a failed asynchronous invocation). The sweeper retries too: an
// end-time revoke stays due at the end; a failed early revoke records who
// asked and why, which makes the request due at once, so the sweeper retries
// it as that actor's revoke instead of waiting for the end time.
func (s *Service) revokeFailed(ctx context.Context, r access.Request, in RevokeInput, cause error) (access.Request, error) {
	s.Metrics.Count(ctx, "RevokeFailures", 1)
	s.Log.ErrorContext(ctx, "revoke failed", "requestId", r.ID, "error", cause)
	ev := access.Event{Type: access.EventRevokeFailed, Actor: ActorRevoke, Error: cause.Error()}
	if !in.Expire {
		ev = access.Event{Type: access.EventRevokeFailed, Actor: in.Actor, Privileged: in.Privileged, Early: true, Comment: in.Reason, Error: cause.Error()}
	}
	next, err := s.applyTo(ctx, r, ev)
	if err != nil {
		next = r
	}
	// Alert on the first failure and then on attempts 2, 4, 8, ...: the
	// sweeper retries every five minutes, and a mail each time would drown
	// the admins (the RevokeFailures alarm fires on every failure).
	if n := next.RevokeAttempts; n <= 1 || n&(n-1) == 0 {
		s.alertAdmins(ctx, next, fmt.Sprintf("revoking access failed (attempt %d): %v", n, cause))
	}
	return next, access.Wrap(access.KindInternal, cause, "revoke failed; it stays active and will be retried")
}

// TicketEvent is an external signal that the work a grant was for is done.
type TicketEvent struct {
	Source    string // e.g. the event's source, for the audit trail
	Ticket    string
	RequestID string
}

// EndWork revokes every ACTIVE request bound to the ticket (or the one
// request id) and cancels those not yet active, recording the event.
func (s *Service) EndWork(ctx context.Context, ev TicketEvent) ([]access.Request, error) {
	var rs []access.Request
	switch {
	case ev.RequestID != "":
		r, err := s.Store.Get(ctx, ev.RequestID)
		if access.IsKind(err, access.KindNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		rs = []access.Request{r}
	case ev.Ticket != "":
		var err error
		if rs, err = s.Store.ListByTicket(ctx, ev.Ticket); err != nil {
			return nil, err
		}
	default:
		return nil, access.Errorf(access.KindInvalid, "the event names neither a ticket nor a request")
	}
	actor := "event:" + ev.Source
	reason := fmt.Sprintf("work finished (%s)", ev.Source)
	var out []access.Request
	var errs []error
	for _, r := range rs {
		if r.Status.Terminal() {
			continue
		}
		id := r.ID
		var err error
		// A request may move on between the listing and our call (an
		// activation commits ACTIVE, say): look again, a few times, and
		// stop only once it has ended.
		for range 3 {
			switch r.Status {
			case access.StatusActive:
				r, err = s.Revoke(ctx, RevokeInput{RequestID: id, Actor: actor, Privileged: true, Reason: reason})
			case access.StatusPending, access.StatusApproved:
				r, err = s.cancel(ctx, actor, true, id, reason)
			}
			if !access.IsKind(err, access.KindConflict) {
				break
			}
			cur, gerr := s.Store.Get(ctx, id)
			if gerr != nil {
				err = gerr
				break
			}
			if r = cur; r.Status.Terminal() {
				err = nil // ended meanwhile: nothing left for this event
				break
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", id, err))
		}
		out = append(out, r)
	}
	if len(errs) > 0 {
		return out, access.Wrap(access.KindInternal, fmt.Errorf("%v", errs), "some requests could not be ended")
	}
	return out, nil
}

// SweepReport says what one sweep did.
type SweepReport struct {
	Expired, Activated, TimedOut int
	Revoked                      int // failed early revokes retried and done
	Failed                       int
	Drift                        int
	Checked                      int
	Overdue                      int // ACTIVE past end when found: the revoke schedule did not do its job
}

// Sweep is the safety net: it drives due work forward through the due-work
// index (cost follows the number of due items, not the table size), bounded
// per run, and checks a batch of ACTIVE grants against IAM for drift.
//
// The statuses take turns, a page each, so that a backlog of one (say many
// revokes that keep failing) cannot starve the others; a status whose query
// fails is reported and the rest of the sweep still runs.
func (s *Service) Sweep(ctx context.Context) (SweepReport, error) {
	var rep SweepReport
	now := s.now()
	budget := s.SweepLimit
	type lane struct {
		status access.Status
		cursor string
		done   bool
	}
	lanes := []*lane{{status: access.StatusActive}, {status: access.StatusApproved}, {status: access.StatusPending}}
	var errs []error
	for open := len(lanes); open > 0 && budget > 0; {
		open = 0
		for _, l := range lanes {
			if l.done || budget <= 0 {
				continue
			}
			page, next, err := s.Store.ListDue(ctx, l.status, now, min(budget, 100), l.cursor)
			if err != nil {
				errs = append(errs, fmt.Errorf("list due %s: %w", l.status, err))
				l.done = true
				continue
			}
			budget -= len(page)
			s.sweepPage(ctx, page, now, &rep)
			if l.cursor, l.done = next, next == ""; !l.done {
				open++
			}
		}
	}
	s.checkDrift(ctx, &rep)
	if len(errs) > 0 {
		rep.Failed += len(errs)
		s.Log.ErrorContext(ctx, "sweep could not list all due work", "error", errors.Join(errs...))
	}
	s.Metrics.Count(ctx, "SweepOverdue", float64(rep.Overdue))
	s.Metrics.Count(ctx, "SweepFailures", float64(rep.Failed))
	s.Log.InfoContext(ctx, "sweep", "expired", rep.Expired, "revoked", rep.Revoked, "activated", rep.Activated, "timedOut", rep.TimedOut,
		"failed", rep.Failed, "checked", rep.Checked, "drift", rep.Drift, "overdue", rep.Overdue)
	return rep, errors.Join(errs...)
}

// overdueAfter is how late past its end an ACTIVE grant must be before the
// sweeper counts the revoke schedule as having failed.
const overdueAfter = 2 * time.Minute

// sweepPage drives a page of due items, SweepConcurrency at a time: each
// item waits on IAM and DynamoDB, so one at a time would not fit a full
// batch in the function's timeout.
func (s *Service) sweepPage(ctx context.Context, page []access.Request, now time.Time, rep *SweepReport) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	slots := make(chan struct{}, s.SweepConcurrency)
	for _, r := range page {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			var one SweepReport
			s.sweepOne(ctx, r, now, &one)
			mu.Lock()
			rep.add(one)
			mu.Unlock()
		})
	}
	wg.Wait()
}

func (r *SweepReport) add(o SweepReport) {
	r.Expired += o.Expired
	r.Revoked += o.Revoked
	r.Activated += o.Activated
	r.TimedOut += o.TimedOut
	r.Failed += o.Failed
	r.Drift += o.Drift
	r.Checked += o.Checked
	r.Overdue += o.Overdue
}

func (s *Service) sweepOne(ctx context.Context, r access.Request, now time.Time, rep *SweepReport) {
	var err error
	switch r.Status {
	case access.StatusActive:
		if r.RevokeRequestedBy != "" && now.Before(r.EndAt) {
			// An early revoke that failed: retry it as who asked.
			if _, err = s.Revoke(ctx, RevokeInput{RequestID: r.ID, Actor: r.RevokeRequestedBy, Privileged: true, Reason: r.RevokeReason}); err == nil {
				rep.Revoked++
			}
			break
		}
		if now.Sub(r.EndAt) > overdueAfter {
			rep.Overdue++
		}
		if _, err = s.Revoke(ctx, RevokeInput{RequestID: r.ID, Actor: ActorSweeper, Privileged: true, Expire: true}); err == nil {
			rep.Expired++
		}
	case access.StatusApproved:
		var got access.Request
		if got, err = s.activate(ctx, r); err == nil && got.Status == access.StatusActive {
			rep.Activated++
		}
	case access.StatusPending:
		var timedOut access.Request
		if _, timedOut, err = s.apply(ctx, r.ID, func(access.Request) access.Event {
			return access.Event{Type: access.EventTimeout, Actor: ActorSweeper}
		}); err == nil {
			rep.TimedOut++
			s.notify(ctx, access.Notice{Kind: access.NoticeTimedOut, To: []string{r.Requester}, Request: timedOut})
		}
	}
	if err != nil && !access.IsKind(err, access.KindConflict) {
		rep.Failed++
		s.Log.ErrorContext(ctx, "sweep item failed", "requestId", r.ID, "status", r.Status, "error", err)
	}
}

// checkDrift compares the ACTIVE grants ending soonest with IAM and records
// access that vanished outside the system, once per finding.
func (s *Service) checkDrift(ctx context.Context, rep *SweepReport) {
	far := s.now().Add(100 * 365 * 24 * time.Hour)
	active, _, err := s.Store.ListDue(ctx, access.StatusActive, far, s.DriftBatch, "")
	if err != nil {
		s.Log.ErrorContext(ctx, "drift: list active", "error", err)
		return
	}
	for _, r := range active {
		p, err := s.provider(r.Provider)
		if err != nil {
			continue
		}
		rep.Checked++
		present, err := p.Check(ctx, r.Grant(), true)
		if err != nil {
			s.Log.WarnContext(ctx, "drift check", "requestId", r.ID, "error", err)
			continue
		}
		const missing = "access is missing in IAM: removed outside the system"
		if present || r.LastError == "drift: "+missing {
			continue
		}
		rep.Drift++
		if _, err := s.applyTo(ctx, r, access.Event{Type: access.EventDrift, Actor: ActorSweeper, Comment: missing}); err != nil {
			s.Log.WarnContext(ctx, "drift record", "requestId", r.ID, "error", err)
		}
		s.alertAdmins(ctx, r, missing)
	}
}
