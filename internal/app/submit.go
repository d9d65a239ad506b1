package app

import (
	"context"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/jitaccess/jit/internal/access"
	"github.com/jitaccess/jit/internal/catalog"
)

// SubmitInput is what a requester asks for. A zero StartAt means now; a zero
// Duration means the role's default.
type SubmitInput struct {
	RoleID        string
	Duration      time.Duration
	StartAt       time.Time
	Justification string
	Ticket        string
}

// Submit creates a request from the catalog's rules. Manual requests go to
// their approvers by email; auto-approved and break-glass ones are approved
// at once and, when their start has come, activated before Submit returns.
func (s *Service) Submit(ctx context.Context, caller Caller, in SubmitInput) (access.Request, error) {
	now := s.now()
	dec, err := s.Catalog.Evaluate(catalog.Input{
		Identity: caller.Identity, RoleID: in.RoleID, Duration: in.Duration,
		Ticket: in.Ticket, Justification: in.Justification,
	})
	if err != nil {
		return access.Request{}, err
	}
	start := in.StartAt.UTC()
	switch {
	case start.IsZero():
		start = now
	case start.Before(now.Add(-access.ScheduleTolerance)):
		return access.Request{}, access.FieldErrorf("startAt", "must not be in the past")
	case start.After(now.Add(s.MaxLeadTime)):
		return access.Request{}, access.FieldErrorf("startAt", "must be within %s from now", s.MaxLeadTime)
	case start.Before(now):
		start = now
	}
	end := start.Add(dec.Duration)
	// Approving after the window has ended would be pointless.
	deadline := now.Add(dec.ApprovalDeadline)
	if deadline.After(end) {
		deadline = end
	}

	r, rec, err := access.SubmitWithAudit(access.Request{
		ID:               s.NewID(),
		Requester:        caller.Identity,
		Principal:        dec.Principal,
		RoleID:           dec.Role.ID,
		Provider:         dec.Role.Provider,
		Target:           dec.Role.Target,
		Justification:    in.Justification,
		Ticket:           in.Ticket,
		StartAt:          start,
		EndAt:            end,
		ApprovalDeadline: deadline,
		Mode:             dec.Mode,
		Approvers:        dec.Approvers,
		Quorum:           dec.Quorum,
	}, now)
	if err != nil {
		return access.Request{}, err
	}
	if err := s.Store.Create(ctx, r, rec); err != nil {
		return access.Request{}, err
	}
	s.Metrics.Count(ctx, "Requests", 1)

	switch r.Mode {
	case access.ModeManual:
		s.askApprovers(ctx, r)
		return r, nil
	case access.ModeAuto:
		r, err = s.applyTo(ctx, r, access.Event{Type: access.EventAutoApprove, Actor: ActorPolicy, Comment: "approved by policy"})
	case access.ModeBreakGlass:
		r, err = s.applyTo(ctx, r, access.Event{Type: access.EventBreakGlass, Actor: caller.Identity, Comment: in.Justification})
		if err == nil {
			s.notify(ctx, access.Notice{Kind: access.NoticeBreakGlass, To: dec.Notify, Request: r})
		}
	}
	if err != nil {
		return r, err
	}
	return s.approved(ctx, r)
}

// askApprovers sends each approver a personal, signed, single-use link.
func (s *Service) askApprovers(ctx context.Context, r access.Request) {
	for _, approver := range r.Approvers {
		link := ""
		if s.Tokens != nil {
			tok, err := s.Tokens.Issue(ctx, access.ApprovalClaims{RequestID: r.ID, Approver: approver, ExpiresAt: r.ApprovalDeadline})
			if err != nil {
				s.Log.ErrorContext(ctx, "issue approval link", "requestId", r.ID, "approver", approver, "error", err)
			} else {
				link = s.BaseURL + "/approvals/" + tok
			}
		}
		s.notify(ctx, access.Notice{Kind: access.NoticeApprovalRequested, To: []string{approver}, Request: r, ActionURL: link})
	}
}

// approved hands an APPROVED request on: activate now when its start has
// come, otherwise schedule the grant for the start. A failed schedule is
// not fatal: the sweeper activates APPROVED requests past their start.
func (s *Service) approved(ctx context.Context, r access.Request) (access.Request, error) {
	if r.Mode == access.ModeManual {
		s.notify(ctx, access.Notice{Kind: access.NoticeApproved, To: []string{r.Requester}, Request: r})
	}
	if !s.now().Before(r.StartAt.Add(-access.ScheduleTolerance)) {
		return s.activate(ctx, r)
	}
	if err := s.retry(ctx, "schedule grant", func() error {
		return s.Scheduler.Schedule(ctx, ActionGrant, r.ID, r.StartAt)
	}); err != nil {
		s.Log.ErrorContext(ctx, "schedule grant failed; the sweeper will activate it", "requestId", r.ID, "error", err)
	}
	return r, nil
}

// DecideInput is an approver's verdict from the portal or an email link.
type DecideInput struct {
	RequestID string
	Decision  access.Decision
	Comment   string
}

// Decide records an approval or denial by caller.
func (s *Service) Decide(ctx context.Context, caller Caller, in DecideInput) (access.Request, error) {
	et := access.EventApprove
	switch in.Decision {
	case access.DecisionApprove:
	case access.DecisionDeny:
		et = access.EventDeny
	default:
		return access.Request{}, access.FieldErrorf("decision", "must be approve or deny")
	}
	if utf8.RuneCountInString(in.Comment) > 1000 {
		return access.Request{}, access.FieldErrorf("comment", "must be at most 1000 characters")
	}
	_, r, err := s.apply(ctx, in.RequestID, func(access.Request) access.Event {
		return access.Event{Type: et, Actor: caller.Identity, Comment: in.Comment}
	})
	if err != nil {
		return r, err
	}
	switch r.Status {
	case access.StatusApproved:
		return s.approved(ctx, r)
	case access.StatusDenied:
		s.notify(ctx, access.Notice{Kind: access.NoticeDenied, To: []string{r.Requester}, Request: r, Detail: in.Comment})
	}
	return r, nil
}

// ApprovalView is what an email link's page shows.
type ApprovalView struct {
	Claims  access.ApprovalClaims
	Request access.Request
}

// ViewApproval checks an approval link and loads its request. It changes
// nothing: mail scanners open every link.
func (s *Service) ViewApproval(ctx context.Context, token string) (ApprovalView, error) {
	claims, err := s.Tokens.Verify(ctx, token, s.now())
	if err != nil {
		return ApprovalView{}, err
	}
	r, err := s.Store.Get(ctx, claims.RequestID)
	if err != nil {
		return ApprovalView{}, err
	}
	if !r.IsApprover(claims.Approver) {
		return ApprovalView{}, access.Errorf(access.KindForbidden, "this approval link is not for an approver of this request")
	}
	return ApprovalView{Claims: claims, Request: r}, nil
}

// DecideByLink decides through an email link: verified, checked against the
// request, consumed once, then applied as the link's approver.
func (s *Service) DecideByLink(ctx context.Context, token string, d access.Decision, comment string) (access.Request, error) {
	v, err := s.ViewApproval(ctx, token)
	if err != nil {
		return access.Request{}, err
	}
	if v.Request.Status != access.StatusPending {
		return v.Request, access.Errorf(access.KindConflict, "this request is %s; it no longer needs a decision", v.Request.Status)
	}
	if v.Request.HasDecided(v.Claims.Approver) {
		return v.Request, access.Errorf(access.KindConflict, "you have already decided this request")
	}
	if err := s.Store.ConsumeToken(ctx, v.Claims.TokenID, v.Claims.ExpiresAt); err != nil {
		return v.Request, err
	}
	r, err := s.Decide(ctx, Caller{Identity: v.Claims.Approver}, DecideInput{RequestID: v.Request.ID, Decision: d, Comment: comment})
	if err != nil && !decided(r, v.Claims.Approver) {
		// The link was spent on a decision that was not recorded (say the
		// write was throttled): give it back, so that the approver can try
		// again. Once recorded, the lifecycle refuses a second decision by
		// the same approver anyway.
		if rerr := s.Store.ReleaseToken(ctx, v.Claims.TokenID); rerr != nil {
			s.Log.ErrorContext(ctx, "release approval link after a failed decision", "requestId", v.Request.ID, "error", rerr)
		}
	}
	return r, err
}

// decided reports whether r (as stored after a decision attempt) records
// approver's decision.
func decided(r access.Request, approver string) bool {
	return r.ID != "" && r.HasDecided(approver)
}

// Cancel withdraws a request before it becomes active.
func (s *Service) Cancel(ctx context.Context, caller Caller, id, reason string) (access.Request, error) {
	return s.cancel(ctx, caller.Identity, s.isAdmin(caller.Identity), id, reason)
}

func (s *Service) cancel(ctx context.Context, actor string, privileged bool, id, reason string) (access.Request, error) {
	prev, r, err := s.apply(ctx, id, func(access.Request) access.Event {
		return access.Event{Type: access.EventCancel, Actor: actor, Privileged: privileged, Comment: reason}
	})
	if err != nil {
		return r, err
	}
	if prev.Status == access.StatusApproved {
		if err := s.Scheduler.Unschedule(ctx, ActionGrant, id); err != nil {
			// The grant path finds the request CANCELLED and does nothing.
			s.Log.WarnContext(ctx, "unschedule grant", "requestId", id, "error", err)
		}
		s.releaseCancelled(ctx, r)
	}
	to := []string{r.Requester}
	if prev.Status == access.StatusPending {
		to = append(to, r.Approvers...)
	}
	s.notify(ctx, access.Notice{Kind: access.NoticeCancelled, To: to, Request: r, Detail: reason})
	return r, nil
}

// releaseCancelled removes whatever access a request cancelled while
// APPROVED still holds: an activation that stopped midway (a crash after the
// grant) leaves access in IAM, and a CANCELLED request is not due work, so
// nothing else would look at it before the end time. The revoke schedule is
// kept either way: should this fail, or an activation still in flight grant
// after it, the end-time revoke withdraws what the request holds then.
func (s *Service) releaseCancelled(ctx context.Context, r access.Request) {
	p, err := s.provider(r.Provider)
	if err == nil {
		err = s.withdrawKeepingHold(ctx, p, r.Grant())
	}
	if err != nil {
		s.Log.ErrorContext(ctx, "release access of a cancelled request", "requestId", r.ID, "error", err)
		s.alertAdmins(ctx, r, fmt.Sprintf("request was cancelled while its access was being granted, and removing that access failed (%v); the end-time revoke will retry", err))
	}
}

// Get returns a request to its requester, its approvers and admins; to
// anyone else it does not exist.
func (s *Service) Get(ctx context.Context, caller Caller, id string) (access.Request, error) {
	r, err := s.Store.Get(ctx, id)
	if err != nil {
		return r, err
	}
	if !s.canSee(caller, r) {
		return access.Request{}, access.Errorf(access.KindNotFound, "request %s not found", id)
	}
	return r, nil
}

func (s *Service) canSee(caller Caller, r access.Request) bool {
	return access.SameIdentity(caller.Identity, r.Requester) || r.IsApprover(caller.Identity) || s.isAdmin(caller.Identity)
}

// Lists is a caller's view of the system.
type Lists struct {
	Mine     []access.Request
	Awaiting []access.Request // the oldest ones, at most the page size
	// AwaitingMore: more requests await the caller than Awaiting holds
	// (they show as the oldest are decided).
	AwaitingMore bool
	Cursor       string
}

// List returns the caller's own requests (paged) and those awaiting their decision.
func (s *Service) List(ctx context.Context, caller Caller, limit int, cursor string) (Lists, error) {
	if limit <= 0 || limit > 100 {
		limit = 50
	}
	mine, next, err := s.Store.ListByRequester(ctx, caller.Identity, limit, cursor)
	if err != nil {
		return Lists{}, err
	}
	awaiting, more, err := s.Store.ListAwaiting(ctx, caller.Identity, limit)
	if err != nil {
		return Lists{}, err
	}
	return Lists{Mine: mine, Awaiting: awaiting, AwaitingMore: more, Cursor: next}, nil
}

// AuditTrail is a request's records and whether its hash chain verifies.
type AuditTrail struct {
	Records     []access.AuditRecord
	Verified    bool
	VerifyError string
}

// Audit returns the trail to whoever may see the request.
func (s *Service) Audit(ctx context.Context, caller Caller, id string) (AuditTrail, error) {
	r, err := s.Get(ctx, caller, id)
	if err != nil {
		return AuditTrail{}, err
	}
	recs, err := s.Store.Audit(ctx, id)
	if err != nil {
		return AuditTrail{}, err
	}
	t := AuditTrail{Records: recs, Verified: true}
	if err := access.VerifyTrail(r, recs); err != nil {
		t.Verified, t.VerifyError = false, err.Error()
	}
	return t, nil
}

// Roles lists the catalog roles caller may request.
func (s *Service) Roles(caller Caller) []catalog.Role {
	return s.Catalog.RolesFor(caller.Identity)
}
