package access

import (
	"slices"
	"time"
)

// EventType names something that happens to a request.
type EventType string

const (
	EventSubmit           EventType = "submit"
	EventApprove          EventType = "approve"
	EventDeny             EventType = "deny"
	EventCancel           EventType = "cancel"
	EventAutoApprove      EventType = "auto-approve"
	EventBreakGlass       EventType = "break-glass"
	EventTimeout          EventType = "timeout"
	EventActivate         EventType = "activate"
	EventActivationFailed EventType = "activation-failed"
	EventExpire           EventType = "expire"
	EventRevoke           EventType = "revoke"
	EventRevokeFailed     EventType = "revoke-failed"
	EventDrift            EventType = "drift"
)

// ScheduleTolerance is how early a time-driven event may arrive and still
// count: EventBridge Scheduler fires within the minute of an at() time.
const ScheduleTolerance = time.Minute

// MinDuration is the shortest access window: EventBridge Scheduler fires
// with one-minute precision, so a shorter window could not be ended on time.
const MinDuration = time.Minute

// Event is one thing that happens to a request, with who caused it.
type Event struct {
	Type EventType
	// Actor is the identity behind the event: a person's identity, or
	// "system:<component>" for the scheduler, sweeper and event rules.
	Actor string
	// Privileged is set by the caller for admins and system components, who
	// may cancel or revoke any request.
	Privileged bool
	Comment    string // approver comment, revoke reason, drift detail
	Error      string // for the failure events
	// Early marks a revoke-failed event as the failure of an early revoke
	// by Actor (not the end-time one), so that it is retried as such.
	Early bool
}

// Transition is the lifecycle: given a request, an event and the time, it
// returns the request after the event or a typed error. It never mutates r.
// Anything that is not a legal change (including a no-op) is a conflict;
// an actor without the right is forbidden.
func Transition(r Request, e Event, now time.Time) (Request, error) {
	next := r
	next.Approvals = slices.Clone(r.Approvals)
	now = now.UTC()

	if e.Actor == "" {
		return r, FieldErrorf("actor", "an event needs an actor")
	}
	if r.Status.Terminal() {
		return r, Errorf(KindConflict, "request is %s; no further change is possible", r.Status)
	}

	switch e.Type {
	case EventApprove, EventDeny:
		if err := checkDecision(r, e, now); err != nil {
			return r, err
		}
		d := DecisionApprove
		if e.Type == EventDeny {
			d = DecisionDeny
		}
		next.Approvals = append(next.Approvals, Approval{Approver: e.Actor, Decision: d, Comment: e.Comment, At: now})
		switch {
		case d == DecisionDeny:
			next.Status = StatusDenied
			next.EndedBy, next.EndReason = e.Actor, e.Comment
		case next.Approved() >= max(next.Quorum, 1):
			next.Status = StatusApproved
		}

	case EventCancel:
		if r.Status != StatusPending && r.Status != StatusApproved {
			return r, Errorf(KindConflict, "only a pending or approved request can be cancelled; this one is %s", r.Status)
		}
		if !SameIdentity(e.Actor, r.Requester) && !e.Privileged {
			return r, Errorf(KindForbidden, "only the requester can cancel this request")
		}
		next.Status = StatusCancelled
		next.EndedBy, next.EndReason = e.Actor, e.Comment

	case EventAutoApprove, EventBreakGlass:
		want := ModeAuto
		if e.Type == EventBreakGlass {
			want = ModeBreakGlass
		}
		if r.Status != StatusPending {
			return r, Errorf(KindConflict, "request is %s, not PENDING", r.Status)
		}
		if r.Mode != want {
			return r, Errorf(KindConflict, "request mode is %s; %s does not apply", r.Mode, e.Type)
		}
		next.Status = StatusApproved
		next.ReviewRequired = e.Type == EventBreakGlass

	case EventTimeout:
		if r.Status != StatusPending {
			return r, Errorf(KindConflict, "only a pending request can time out; this one is %s", r.Status)
		}
		// No early tolerance: approvals are taken until the deadline, and
		// from the deadline on only a time-out.
		if now.Before(r.ApprovalDeadline) {
			return r, Errorf(KindConflict, "approval deadline %s has not passed", r.ApprovalDeadline.Format(time.RFC3339))
		}
		next.Status = StatusTimedOut
		next.EndedBy, next.EndReason = e.Actor, "approval deadline passed"

	case EventActivate:
		if r.Status != StatusApproved {
			return r, Errorf(KindConflict, "only an approved request can be activated; this one is %s", r.Status)
		}
		if now.Before(r.StartAt.Add(-ScheduleTolerance)) {
			return r, Errorf(KindConflict, "start time %s has not come", r.StartAt.Format(time.RFC3339))
		}
		if !now.Before(r.EndAt) {
			return r, Errorf(KindConflict, "the access window ended at %s", r.EndAt.Format(time.RFC3339))
		}
		next.Status = StatusActive
		next.LastError = ""

	case EventActivationFailed:
		if r.Status != StatusApproved {
			return r, Errorf(KindConflict, "only an approved request can fail activation; this one is %s", r.Status)
		}
		next.Status = StatusFailed
		next.LastError = e.Error
		next.EndedBy, next.EndReason = e.Actor, e.Comment

	case EventExpire:
		if r.Status != StatusActive {
			return r, Errorf(KindConflict, "only active access can expire; this request is %s", r.Status)
		}
		if now.Before(r.EndAt.Add(-ScheduleTolerance)) {
			return r, Errorf(KindConflict, "end time %s has not come", r.EndAt.Format(time.RFC3339))
		}
		next.Status = StatusExpired
		next.LastError = ""
		next.EndedBy, next.EndReason = e.Actor, "end time reached"

	case EventRevoke:
		if r.Status != StatusActive {
			return r, Errorf(KindConflict, "only active access can be revoked; this request is %s", r.Status)
		}
		if !SameIdentity(e.Actor, r.Requester) && !r.IsApprover(e.Actor) && !e.Privileged {
			return r, Errorf(KindForbidden, "only the requester, an approver or an admin can revoke this access")
		}
		next.Status = StatusRevoked
		next.LastError = ""
		next.EndedBy, next.EndReason = e.Actor, e.Comment

	case EventRevokeFailed:
		if r.Status != StatusActive {
			return r, Errorf(KindConflict, "only active access can fail to revoke; this request is %s", r.Status)
		}
		if e.Error == "" {
			return r, FieldErrorf("error", "a failed revoke must say what failed")
		}
		if e.Early {
			if !SameIdentity(e.Actor, r.Requester) && !r.IsApprover(e.Actor) && !e.Privileged {
				return r, Errorf(KindForbidden, "only the requester, an approver or an admin can revoke this access")
			}
			if next.RevokeRequestedBy == "" {
				next.RevokeRequestedBy, next.RevokeReason = e.Actor, e.Comment
			}
		}
		next.LastError = e.Error
		next.RevokeAttempts++

	case EventDrift:
		if r.Status != StatusActive {
			return r, Errorf(KindConflict, "drift is only recorded on active access; this request is %s", r.Status)
		}
		if e.Comment == "" {
			return r, FieldErrorf("comment", "a drift record must say what drifted")
		}
		next.LastError = "drift: " + e.Comment

	case EventSubmit:
		return r, Errorf(KindConflict, "a request is submitted once, with Submit")

	default:
		return r, FieldErrorf("event", "unknown event %q", e.Type)
	}

	next.Version = r.Version + 1
	next.UpdatedAt = now
	return next, nil
}

func checkDecision(r Request, e Event, now time.Time) error {
	if r.Status != StatusPending {
		return Errorf(KindConflict, "request is %s; it is no longer awaiting decisions", r.Status)
	}
	if r.Mode != ModeManual {
		return Errorf(KindConflict, "request mode is %s; it takes no approvals", r.Mode)
	}
	if SameIdentity(e.Actor, r.Requester) {
		return Errorf(KindForbidden, "a requester cannot decide their own request")
	}
	if !r.IsApprover(e.Actor) {
		return Errorf(KindForbidden, "%s is not an approver of this request", e.Actor)
	}
	if r.HasDecided(e.Actor) {
		return Errorf(KindConflict, "%s has already decided this request", e.Actor)
	}
	if !now.Before(r.ApprovalDeadline) {
		return Errorf(KindConflict, "the approval deadline %s has passed", r.ApprovalDeadline.Format(time.RFC3339))
	}
	// The deadline is capped at the end of the window, so at that very
	// instant an approval would find nothing left to activate (FAILED, and
	// admins alerted for nothing): refuse it as past the deadline.
	if e.Type == EventApprove && !now.Before(r.EndAt) {
		return Errorf(KindConflict, "the access window ended at %s", r.EndAt.Format(time.RFC3339))
	}
	return nil
}

// Submit validates a new request and puts it in its first state, PENDING at
// version 1.
func Submit(r Request, now time.Time) (Request, error) {
	now = now.UTC()
	switch {
	case r.ID == "":
		return r, FieldErrorf("id", "is required")
	case r.Requester == "":
		return r, FieldErrorf("requester", "is required")
	case r.Principal.Name == "":
		return r, FieldErrorf("principal", "is required")
	case r.RoleID == "":
		return r, FieldErrorf("roleId", "is required")
	case !slices.Contains(Providers, r.Provider):
		return r, FieldErrorf("provider", "unknown provider %q", r.Provider)
	case r.StartAt.IsZero() || r.EndAt.IsZero():
		return r, FieldErrorf("startAt", "start and end times are required")
	case !r.EndAt.After(r.StartAt):
		return r, FieldErrorf("endAt", "must be after the start time")
	case !r.EndAt.After(now):
		return r, FieldErrorf("endAt", "must be in the future")
	case r.Mode != ModeManual && r.Mode != ModeAuto && r.Mode != ModeBreakGlass:
		return r, FieldErrorf("mode", "unknown approval mode %q", r.Mode)
	}
	if r.Mode == ModeManual {
		if r.Quorum < 1 {
			return r, FieldErrorf("quorum", "must be at least 1")
		}
		if eligible := len(distinctApprovers(r.Approvers, r.Requester)); eligible < r.Quorum {
			return r, Errorf(KindForbidden, "this role needs %d approvers other than the requester, and only %d exist", r.Quorum, eligible)
		}
		if !r.ApprovalDeadline.After(now) {
			return r, FieldErrorf("approvalDeadline", "must be in the future")
		}
	}
	r.Approvers = distinctApprovers(r.Approvers, r.Requester)
	r.Status = StatusPending
	r.Version = 1
	r.RequestedAt, r.CreatedAt, r.UpdatedAt = now, now, now
	r.StartAt, r.EndAt, r.ApprovalDeadline = r.StartAt.UTC(), r.EndAt.UTC(), r.ApprovalDeadline.UTC()
	return r, nil
}

// distinctApprovers is the approver list without the requester and without
// repeats (ignoring case), so a quorum always counts distinct people.
func distinctApprovers(approvers []string, requester string) []string {
	out := make([]string, 0, len(approvers))
	for _, a := range approvers {
		if a == "" || SameIdentity(a, requester) || slices.ContainsFunc(out, func(b string) bool { return SameIdentity(a, b) }) {
			continue
		}
		out = append(out, a)
	}
	return out
}
