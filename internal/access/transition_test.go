package access

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)

func baseRequest(status Status, mode Mode) Request {
	return Request{
		ID: "01JREQ", Requester: "alice@example.com", Principal: Principal{Kind: PrincipalUser, Name: "alice"},
		RoleID: "prod-admin", Provider: ProviderIAMGroup, Target: Target{Group: "admins"},
		Justification: "fix the outage", StartAt: t0.Add(time.Hour), EndAt: t0.Add(3 * time.Hour),
		ApprovalDeadline: t0.Add(30 * time.Minute), Mode: mode,
		Approvers: []string{"carol@example.com", "dave@example.com"}, Quorum: 1,
		Status: status, Version: 3,
	}
}

func TestTransitionAllowed(t *testing.T) {
	type give struct {
		status Status
		mode   Mode
		quorum int
		event  Event
		at     time.Time
	}
	tests := []struct {
		name string
		give give
		want Status
	}{
		{"approve reaches quorum of one", give{StatusPending, ModeManual, 1, Event{Type: EventApprove, Actor: "carol@example.com"}, t0}, StatusApproved},
		{"approve below quorum stays pending", give{StatusPending, ModeManual, 2, Event{Type: EventApprove, Actor: "carol@example.com"}, t0}, StatusPending},
		{"deny ends it", give{StatusPending, ModeManual, 2, Event{Type: EventDeny, Actor: "dave@example.com"}, t0}, StatusDenied},
		{"requester cancels pending", give{StatusPending, ModeManual, 1, Event{Type: EventCancel, Actor: "alice@example.com"}, t0}, StatusCancelled},
		{"requester cancels approved", give{StatusApproved, ModeManual, 1, Event{Type: EventCancel, Actor: "alice@example.com"}, t0}, StatusCancelled},
		{"admin cancels", give{StatusApproved, ModeManual, 1, Event{Type: EventCancel, Actor: "admin@example.com", Privileged: true}, t0}, StatusCancelled},
		{"auto-approve", give{StatusPending, ModeAuto, 0, Event{Type: EventAutoApprove, Actor: "system:policy"}, t0}, StatusApproved},
		{"break-glass", give{StatusPending, ModeBreakGlass, 0, Event{Type: EventBreakGlass, Actor: "alice@example.com"}, t0}, StatusApproved},
		{"timeout at deadline", give{StatusPending, ModeManual, 1, Event{Type: EventTimeout, Actor: "system:sweeper"}, t0.Add(30 * time.Minute)}, StatusTimedOut},
		{"activate at start", give{StatusApproved, ModeManual, 1, Event{Type: EventActivate, Actor: "system:grant"}, t0.Add(time.Hour)}, StatusActive},
		{"activate within scheduler tolerance", give{StatusApproved, ModeManual, 1, Event{Type: EventActivate, Actor: "system:grant"}, t0.Add(time.Hour - 30*time.Second)}, StatusActive},
		{"activation fails", give{StatusApproved, ModeManual, 1, Event{Type: EventActivationFailed, Actor: "system:grant", Error: "iam down"}, t0.Add(time.Hour)}, StatusFailed},
		{"expire at end", give{StatusActive, ModeManual, 1, Event{Type: EventExpire, Actor: "system:revoke"}, t0.Add(3 * time.Hour)}, StatusExpired},
		{"requester revokes early", give{StatusActive, ModeManual, 1, Event{Type: EventRevoke, Actor: "alice@example.com", Comment: "done"}, t0.Add(2 * time.Hour)}, StatusRevoked},
		{"approver revokes early", give{StatusActive, ModeManual, 1, Event{Type: EventRevoke, Actor: "dave@example.com"}, t0.Add(2 * time.Hour)}, StatusRevoked},
		{"admin revokes early", give{StatusActive, ModeManual, 1, Event{Type: EventRevoke, Actor: "admin@example.com", Privileged: true}, t0.Add(2 * time.Hour)}, StatusRevoked},
		{"revoke failure keeps it active", give{StatusActive, ModeManual, 1, Event{Type: EventRevokeFailed, Actor: "system:revoke", Error: "throttled"}, t0.Add(3 * time.Hour)}, StatusActive},
		{"drift keeps it active", give{StatusActive, ModeManual, 1, Event{Type: EventDrift, Actor: "system:sweeper", Comment: "group membership missing"}, t0.Add(2 * time.Hour)}, StatusActive},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := baseRequest(tt.give.status, tt.give.mode)
			r.Quorum = tt.give.quorum
			next, err := Transition(r, tt.give.event, tt.give.at)
			require.NoError(t, err)
			assert.Equal(t, tt.want, next.Status)
			assert.Equal(t, r.Version+1, next.Version, "every transition bumps the version")
			assert.Equal(t, tt.give.at, next.UpdatedAt)
			assert.Equal(t, 3, r.Version, "input is not mutated")
			assert.Empty(t, r.Approvals, "input approvals are not mutated")
		})
	}
}

func TestTransitionForbidden(t *testing.T) {
	tests := []struct {
		name     string
		status   Status
		mode     Mode
		event    Event
		at       time.Time
		wantKind Kind
	}{
		{"self approval", StatusPending, ModeManual, Event{Type: EventApprove, Actor: "alice@example.com"}, t0, KindForbidden},
		{"non-approver approves", StatusPending, ModeManual, Event{Type: EventApprove, Actor: "mallory@example.com"}, t0, KindForbidden},
		{"non-approver denies", StatusPending, ModeManual, Event{Type: EventDeny, Actor: "mallory@example.com"}, t0, KindForbidden},
		{"approve after deadline", StatusPending, ModeManual, Event{Type: EventApprove, Actor: "carol@example.com"}, t0.Add(31 * time.Minute), KindConflict},
		{"approve auto mode", StatusPending, ModeAuto, Event{Type: EventApprove, Actor: "carol@example.com"}, t0, KindConflict},
		{"approve approved", StatusApproved, ModeManual, Event{Type: EventApprove, Actor: "carol@example.com"}, t0, KindConflict},
		{"other person cancels", StatusPending, ModeManual, Event{Type: EventCancel, Actor: "carol@example.com"}, t0, KindForbidden},
		{"cancel active", StatusActive, ModeManual, Event{Type: EventCancel, Actor: "alice@example.com"}, t0, KindConflict},
		{"auto-approve manual request", StatusPending, ModeManual, Event{Type: EventAutoApprove, Actor: "system:policy"}, t0, KindConflict},
		{"break-glass on auto request", StatusPending, ModeAuto, Event{Type: EventBreakGlass, Actor: "alice@example.com"}, t0, KindConflict},
		{"timeout just before the deadline", StatusPending, ModeManual, Event{Type: EventTimeout, Actor: "system:sweeper"}, t0.Add(30*time.Minute - time.Second), KindConflict},
		{"deny at the deadline", StatusPending, ModeManual, Event{Type: EventDeny, Actor: "carol@example.com"}, t0.Add(30 * time.Minute), KindConflict},
		{"requester approves with other case", StatusPending, ModeManual, Event{Type: EventApprove, Actor: "Alice@Example.com"}, t0, KindForbidden},
		{"auto-approve approved", StatusApproved, ModeAuto, Event{Type: EventAutoApprove, Actor: "system:policy"}, t0, KindConflict},
		{"timeout before deadline", StatusPending, ModeManual, Event{Type: EventTimeout, Actor: "system:sweeper"}, t0, KindConflict},
		{"timeout approved", StatusApproved, ModeManual, Event{Type: EventTimeout, Actor: "system:sweeper"}, t0.Add(time.Hour), KindConflict},
		{"activate before start", StatusApproved, ModeManual, Event{Type: EventActivate, Actor: "system:grant"}, t0, KindConflict},
		{"activate after end", StatusApproved, ModeManual, Event{Type: EventActivate, Actor: "system:grant"}, t0.Add(3 * time.Hour), KindConflict},
		{"activate pending", StatusPending, ModeManual, Event{Type: EventActivate, Actor: "system:grant"}, t0.Add(time.Hour), KindConflict},
		{"activate active", StatusActive, ModeManual, Event{Type: EventActivate, Actor: "system:grant"}, t0.Add(time.Hour), KindConflict},
		{"fail pending", StatusPending, ModeManual, Event{Type: EventActivationFailed, Actor: "system:grant"}, t0, KindConflict},
		{"fail active", StatusActive, ModeManual, Event{Type: EventActivationFailed, Actor: "system:grant"}, t0, KindConflict},
		{"expire before end", StatusActive, ModeManual, Event{Type: EventExpire, Actor: "system:revoke"}, t0.Add(2 * time.Hour), KindConflict},
		{"expire approved", StatusApproved, ModeManual, Event{Type: EventExpire, Actor: "system:revoke"}, t0.Add(3 * time.Hour), KindConflict},
		{"stranger revokes", StatusActive, ModeManual, Event{Type: EventRevoke, Actor: "mallory@example.com"}, t0.Add(2 * time.Hour), KindForbidden},
		{"revoke approved", StatusApproved, ModeManual, Event{Type: EventRevoke, Actor: "alice@example.com"}, t0, KindConflict},
		{"revoke failed without error", StatusActive, ModeManual, Event{Type: EventRevokeFailed, Actor: "system:revoke"}, t0, KindInvalid},
		{"revoke failed on approved", StatusApproved, ModeManual, Event{Type: EventRevokeFailed, Actor: "system:revoke", Error: "x"}, t0, KindConflict},
		{"drift without detail", StatusActive, ModeManual, Event{Type: EventDrift, Actor: "system:sweeper"}, t0, KindInvalid},
		{"drift on pending", StatusPending, ModeManual, Event{Type: EventDrift, Actor: "system:sweeper", Comment: "x"}, t0, KindConflict},
		{"submit again", StatusPending, ModeManual, Event{Type: EventSubmit, Actor: "alice@example.com"}, t0, KindConflict},
		{"unknown event", StatusPending, ModeManual, Event{Type: "explode", Actor: "alice@example.com"}, t0, KindInvalid},
		{"no actor", StatusPending, ModeManual, Event{Type: EventApprove}, t0, KindInvalid},
	}
	// Every event on every terminal status is a conflict.
	for _, s := range AllStatuses {
		if !s.Terminal() {
			continue
		}
		for _, et := range []EventType{EventApprove, EventDeny, EventCancel, EventAutoApprove, EventBreakGlass, EventTimeout,
			EventActivate, EventActivationFailed, EventExpire, EventRevoke, EventRevokeFailed, EventDrift} {
			tests = append(tests, struct {
				name     string
				status   Status
				mode     Mode
				event    Event
				at       time.Time
				wantKind Kind
			}{fmt.Sprintf("%s on %s", et, s), s, ModeManual, Event{Type: et, Actor: "admin@example.com", Privileged: true, Error: "e", Comment: "c"}, t0.Add(4 * time.Hour), KindConflict})
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := baseRequest(tt.status, tt.mode)
			next, err := Transition(r, tt.event, tt.at)
			require.Error(t, err)
			assert.Equal(t, tt.wantKind, KindOf(err), err.Error())
			assert.Equal(t, r, next, "a refused transition returns the request unchanged")
		})
	}
}

// legalMoves is every (status, event) pair the lifecycle allows (given the
// right actor, mode and time); TestEveryIllegalMoveIsAConflict checks that
// every other pair is refused as a conflict.
var legalMoves = map[Status][]EventType{
	StatusPending:  {EventApprove, EventDeny, EventCancel, EventAutoApprove, EventBreakGlass, EventTimeout},
	StatusApproved: {EventCancel, EventActivate, EventActivationFailed},
	StatusActive:   {EventExpire, EventRevoke, EventRevokeFailed, EventDrift},
}

func TestEveryIllegalMoveIsAConflict(t *testing.T) {
	events := []EventType{EventSubmit, EventApprove, EventDeny, EventCancel, EventAutoApprove, EventBreakGlass, EventTimeout,
		EventActivate, EventActivationFailed, EventExpire, EventRevoke, EventRevokeFailed, EventDrift}
	// A time at which the status's own time checks pass, so only legality decides.
	at := map[Status]time.Time{StatusPending: t0, StatusApproved: t0.Add(time.Hour), StatusActive: t0.Add(3 * time.Hour)}
	checked := 0
	for _, s := range AllStatuses {
		for _, et := range events {
			if slices.Contains(legalMoves[s], et) {
				continue
			}
			mode := ModeManual
			switch et {
			case EventAutoApprove:
				mode = ModeAuto
			case EventBreakGlass:
				mode = ModeBreakGlass
			}
			when, ok := at[s]
			if !ok {
				when = t0.Add(4 * time.Hour)
			}
			r := baseRequest(s, mode)
			// The most capable actor: an approver with admin rights.
			e := Event{Type: et, Actor: "carol@example.com", Privileged: true, Error: "e", Comment: "c"}
			next, err := Transition(r, e, when)
			require.Error(t, err, "%s on %s must be refused", et, s)
			assert.Equal(t, KindConflict, KindOf(err), "%s on %s: %v", et, s, err)
			assert.Equal(t, r, next)
			checked++
		}
	}
	legal := 0
	for _, evs := range legalMoves {
		legal += len(evs)
	}
	assert.Equal(t, len(AllStatuses)*len(events)-legal, checked, "every pair outside legalMoves was checked")
}

func TestRequesterNeverApprovesWhateverTheCase(t *testing.T) {
	r := baseRequest(StatusPending, ModeManual)
	r.Requester = "Alice@Example.com"
	r.Approvers = []string{"alice@example.com", "carol@example.com"}
	_, err := Transition(r, Event{Type: EventApprove, Actor: "alice@example.com"}, t0)
	assert.Equal(t, KindForbidden, KindOf(err))
	assert.False(t, r.IsApprover("ALICE@example.com"))

	r = baseRequest("", ModeManual)
	r.Version = 0
	r.Requester = "Alice@Example.com"
	r.Approvers = []string{"alice@example.com", "carol@example.com", "CAROL@example.com", "dave@example.com"}
	got, err := Submit(r, t0)
	require.NoError(t, err)
	assert.Equal(t, []string{"carol@example.com", "dave@example.com"}, got.Approvers, "requester removed, repeats folded")

	r.Approvers, r.Quorum = []string{"carol@example.com", "CAROL@example.com"}, 2
	_, err = Submit(r, t0)
	assert.Equal(t, KindForbidden, KindOf(err), "one person listed twice is not a quorum of two")
}

func TestQuorumNeedsDistinctApprovers(t *testing.T) {
	r := baseRequest(StatusPending, ModeManual)
	r.Quorum = 2
	r, err := Transition(r, Event{Type: EventApprove, Actor: "carol@example.com"}, t0)
	require.NoError(t, err)
	_, err = Transition(r, Event{Type: EventApprove, Actor: "carol@example.com"}, t0)
	assert.Equal(t, KindConflict, KindOf(err), "the same approver twice does not count")
	r, err = Transition(r, Event{Type: EventApprove, Actor: "dave@example.com", Comment: "ok"}, t0)
	require.NoError(t, err)
	assert.Equal(t, StatusApproved, r.Status)
	assert.Equal(t, 2, r.Approved())
}

func TestSubmit(t *testing.T) {
	valid := func() Request {
		r := baseRequest("", ModeManual)
		r.Version = 0
		return r
	}
	tests := []struct {
		name     string
		give     func(r *Request)
		wantKind Kind
	}{
		{"valid", func(*Request) {}, ""},
		{"no id", func(r *Request) { r.ID = "" }, KindInvalid},
		{"no requester", func(r *Request) { r.Requester = "" }, KindInvalid},
		{"no principal", func(r *Request) { r.Principal = Principal{} }, KindInvalid},
		{"no role", func(r *Request) { r.RoleID = "" }, KindInvalid},
		{"bad provider", func(r *Request) { r.Provider = "ldap" }, KindInvalid},
		{"end before start", func(r *Request) { r.EndAt = r.StartAt.Add(-time.Minute) }, KindInvalid},
		{"end in the past", func(r *Request) { r.StartAt, r.EndAt = t0.Add(-2*time.Hour), t0.Add(-time.Hour) }, KindInvalid},
		{"bad mode", func(r *Request) { r.Mode = "maybe" }, KindInvalid},
		{"zero quorum", func(r *Request) { r.Quorum = 0 }, KindInvalid},
		{"only approver is requester", func(r *Request) { r.Approvers = []string{"alice@example.com"} }, KindForbidden},
		{"deadline passed", func(r *Request) { r.ApprovalDeadline = t0 }, KindInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := valid()
			tt.give(&r)
			got, err := Submit(r, t0)
			if tt.wantKind != "" {
				assert.Equal(t, tt.wantKind, KindOf(err))
				return
			}
			require.NoError(t, err)
			assert.Equal(t, StatusPending, got.Status)
			assert.Equal(t, 1, got.Version)
		})
	}
	r := valid()
	r.Approvers = append(r.Approvers, "alice@example.com")
	got, err := Submit(r, t0)
	require.NoError(t, err)
	assert.NotContains(t, got.Approvers, "alice@example.com", "the requester is never an approver")
}

func TestAuditChain(t *testing.T) {
	r := baseRequest("", ModeManual)
	r.Version = 0
	r, first, err := SubmitWithAudit(r, t0)
	require.NoError(t, err)
	records := []AuditRecord{first}
	for _, step := range []struct {
		e  Event
		at time.Time
	}{
		{Event{Type: EventApprove, Actor: "carol@example.com"}, t0},
		{Event{Type: EventActivate, Actor: "system:grant"}, t0.Add(time.Hour)},
		{Event{Type: EventExpire, Actor: "system:revoke"}, t0.Add(3 * time.Hour)},
	} {
		var rec AuditRecord
		r, rec, err = Apply(r, step.e, step.at)
		require.NoError(t, err, step.e.Type)
		records = append(records, rec)
	}
	require.NoError(t, VerifyChain(records, r.AuditHead))

	tampered := append([]AuditRecord(nil), records...)
	tampered[1].Detail = "nothing to see"
	assert.ErrorContains(t, VerifyChain(tampered, r.AuditHead), "modified")

	removed := append(append([]AuditRecord(nil), records[:1]...), records[2:]...)
	assert.Error(t, VerifyChain(removed, r.AuditHead))

	swapped := append([]AuditRecord(nil), records...)
	swapped[1], swapped[2] = swapped[2], swapped[1]
	assert.Error(t, VerifyChain(swapped, r.AuditHead))

	assert.ErrorContains(t, VerifyChain(records[:3], r.AuditHead), "later record", "a removed tail is caught by the head")
	assert.Error(t, VerifyChain(nil, ""))
}

func TestParsePrincipal(t *testing.T) {
	for _, s := range []string{"user/alice", "role/ops"} {
		p, err := ParsePrincipal(s)
		require.NoError(t, err)
		assert.Equal(t, s, p.String())
	}
	for _, s := range []string{"", "alice", "group/x", "user/", "user/a/b", "user/a b"} {
		_, err := ParsePrincipal(s)
		assert.Equal(t, KindInvalid, KindOf(err), s)
	}
}

func TestLedgerKeyAndErrors(t *testing.T) {
	g := Grant{RequestID: "r1", Provider: ProviderIAMGroup, Principal: Principal{PrincipalUser, "alice"}, Target: Target{Group: "admins"}}
	g2 := g
	g2.RequestID = "r2"
	assert.Equal(t, g.LedgerKey(), g2.LedgerKey(), "overlapping requests share the ledger entry")
	g.Provider, g2.Provider = ProviderIAMTimeboxedPolicy, ProviderIAMTimeboxedPolicy
	assert.NotEqual(t, g.LedgerKey(), g2.LedgerKey(), "timeboxed policies are per request")

	assert.Equal(t, KindInternal, KindOf(fmt.Errorf("boom")))
	assert.Equal(t, "internal error", PublicMessage(fmt.Errorf("secret detail")))
	assert.Equal(t, "ticket: is required", PublicMessage(FieldErrorf("ticket", "is required")))
}

func TestFailedEarlyRevokeIsDueAtOnce(t *testing.T) {
	r := baseRequest(StatusActive, ModeManual)
	at := t0.Add(90 * time.Minute)
	_, err := Transition(r, Event{Type: EventRevokeFailed, Actor: "mallory@example.com", Early: true, Error: "x"}, at)
	assert.Equal(t, KindForbidden, KindOf(err), "a stranger's failed revoke is still a revoke they may not do")

	next, err := Transition(r, Event{Type: EventRevokeFailed, Actor: "alice@example.com", Early: true, Comment: "done", Error: "throttled"}, at)
	require.NoError(t, err)
	assert.Equal(t, StatusActive, next.Status)
	assert.Equal(t, "alice@example.com", next.RevokeRequestedBy)
	assert.Equal(t, "done", next.RevokeReason)
	due, ok := next.DueAt()
	require.True(t, ok)
	assert.Equal(t, at, due, "due at once, not at the end")

	again, err := Transition(next, Event{Type: EventRevokeFailed, Actor: "dave@example.com", Early: true, Comment: "later", Error: "throttled"}, at.Add(time.Minute))
	require.NoError(t, err)
	assert.Equal(t, "alice@example.com", again.RevokeRequestedBy, "the first request to end it is kept")
	assert.Equal(t, 2, again.RevokeAttempts)

	endTime, err := Transition(r, Event{Type: EventRevokeFailed, Actor: "system:revoke", Error: "throttled"}, r.EndAt)
	require.NoError(t, err)
	due, _ = endTime.DueAt()
	assert.Equal(t, r.EndAt, due, "a failed end-time revoke stays due at the end")
}
