// Package storetest is the contract suite of app.Store: every store (the
// DynamoDB one against moto, the in-memory one) runs the same tests, so the
// fake the app layer is tested with behaves like the real thing.
package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jitaccess/jit/internal/access"
	"github.com/jitaccess/jit/internal/app"
)

// T0 is the suite's "now": a fixed instant with nanoseconds, so that any
// rounding of stored times shows.
var T0 = time.Date(2031, 3, 4, 5, 6, 7, 123456789, time.UTC)

// Run runs the contract suite; newStore must return an empty store.
func Run(t *testing.T, newStore func(t *testing.T) app.Store) {
	tests := []struct {
		name string
		run  func(t *testing.T, s app.Store)
	}{
		{"RoundTripEveryField", testRoundTripEveryField},
		{"RoundTripMinimal", testRoundTripMinimal},
		{"TimesStoredInUTC", testTimesStoredInUTC},
		{"CreateTwiceConflicts", testCreateTwiceConflicts},
		{"CreateChecksTheChain", testCreateChecksTheChain},
		{"GetMissingIsNotFound", testGetMissing},
		{"TransitionFromStaleVersionConflicts", testStaleTransition},
		{"TransitionSanityChecks", testTransitionSanity},
		{"ConcurrentTransitionsOneWins", testConcurrentTransitions},
		{"AuditChainVerifies", testAuditChain},
		{"DuePaging", testDuePaging},
		{"DueIndexFollowsStatus", testDueFollowsStatus},
		{"BadCursorIsInvalid", testBadCursor},
		{"ListByRequesterNewestFirst", testListByRequester},
		{"ListByTicket", testListByTicket},
		{"ListAwaiting", testListAwaiting},
		{"Ledger", testLedger},
		{"ReleaseIfShared", testReleaseIfShared},
		{"ConsumeTokenOnce", testConsumeToken},
		{"InvalidInput", testInvalidInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, newStore(t)) })
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// Seal makes rec the first link of r's audit chain: its hash computed, and
// r pointing at it, as SubmitWithAudit does.
func Seal(r access.Request, rec access.AuditRecord) (access.Request, access.AuditRecord) {
	rec.PrevHash = ""
	rec.Hash = rec.ComputeHash()
	r.AuditHead = rec.Hash
	return r, rec
}

// Full is a request with every field set (status PENDING, manual, so it is
// in every index), with its matching audit record.
func Full(id string) (access.Request, access.AuditRecord) {
	r := access.Request{
		ID:        id,
		Requester: "alice@example.com",
		Principal: access.Principal{Kind: access.PrincipalRole, Name: "alice-admin"},
		RoleID:    "prod-admin",
		Provider:  access.ProviderIAMTimeboxedPolicy,
		Target: access.Target{
			Group:          "admins",
			PolicyARN:      "arn:aws:iam::aws:policy/ReadOnlyAccess",
			PolicyDocument: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}`,
		},
		Justification:    "fix the <prod> outage \"now\"",
		Ticket:           "INC-42",
		RequestedAt:      T0,
		StartAt:          T0.Add(time.Hour + 1),
		EndAt:            T0.Add(3*time.Hour + 2),
		ApprovalDeadline: T0.Add(30*time.Minute + 3),
		Mode:             access.ModeManual,
		Approvers:        []string{"Bob@example.com", "carol@example.com", "dave@example.com"},
		Quorum:           2,
		Approvals: []access.Approval{
			{Approver: "Bob@example.com", Decision: access.DecisionApprove, Comment: "ok, go", At: T0.Add(time.Minute + 4)},
			{Approver: "eve@example.com", Decision: access.DecisionDeny, At: T0.Add(2*time.Minute + 5)},
		},
		ReviewRequired: true,
		Status:         access.StatusPending,
		Version:        3,
		CreatedAt:      T0.Add(-time.Second),
		UpdatedAt:      T0.Add(2*time.Minute + 6),
		LastError:      "iam: throttled",
		RevokeAttempts: 2,
		// (set on ACTIVE requests only in practice; stored like any field)
		RevokeRequestedBy: "carol@example.com",
		RevokeReason:      "work done",
		EndedBy:           "system:sweeper",
		EndReason:         "because",
	}
	rec := access.AuditRecord{
		RequestID: id, Seq: 3, At: T0.Add(2*time.Minute + 6), Actor: "Bob@example.com",
		Action: access.EventApprove, From: access.StatusPending, To: access.StatusPending,
		Detail: "ok, go",
	}
	return Seal(r, rec)
}

// Submit builds a new manual request the way intake does, due for approval
// by deadline, with its first audit record.
func Submit(t *testing.T, id, requester string, approvers []string, quorum int, deadline time.Time) (access.Request, access.AuditRecord) {
	t.Helper()
	r, rec, err := access.SubmitWithAudit(access.Request{
		ID: id, Requester: requester, Principal: access.Principal{Kind: access.PrincipalUser, Name: "u-" + requester},
		RoleID: "role", Provider: access.ProviderIAMGroup, Target: access.Target{Group: "g"},
		Justification: "work", StartAt: T0.Add(time.Hour), EndAt: T0.Add(2 * time.Hour),
		ApprovalDeadline: deadline, Mode: access.ModeManual, Approvers: approvers, Quorum: quorum,
	}, T0)
	require.NoError(t, err)
	return r, rec
}

// Apply runs the event through the domain and stores the result.
func Apply(t *testing.T, s app.Store, r access.Request, e access.Event, now time.Time) access.Request {
	t.Helper()
	next, rec, err := access.Apply(r, e, now)
	require.NoError(t, err)
	require.NoError(t, s.Transition(ctx(t), r, next, rec))
	return next
}

func create(t *testing.T, s app.Store, r access.Request, rec access.AuditRecord) {
	t.Helper()
	require.NoError(t, s.Create(ctx(t), r, rec))
}

func requireKind(t *testing.T, want access.Kind, err error) {
	t.Helper()
	require.Error(t, err)
	require.Equal(t, want, access.KindOf(err), "error: %v", err)
}

func ids(rs []access.Request) []string {
	out := []string{}
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

func testRoundTripEveryField(t *testing.T, s app.Store) {
	r, rec := Full("req-full")
	create(t, s, r, rec)

	got, err := s.Get(ctx(t), r.ID)
	require.NoError(t, err)
	require.Equal(t, r, got)

	trail, err := s.Audit(ctx(t), r.ID)
	require.NoError(t, err)
	require.Equal(t, []access.AuditRecord{rec}, trail)

	// Every index returns the same, complete request.
	byReq, _, err := s.ListByRequester(ctx(t), r.Requester, 10, "")
	require.NoError(t, err)
	require.Equal(t, []access.Request{r}, byReq)
	byTicket, err := s.ListByTicket(ctx(t), r.Ticket)
	require.NoError(t, err)
	require.Equal(t, []access.Request{r}, byTicket)
	due, _, err := s.ListDue(ctx(t), access.StatusPending, r.ApprovalDeadline, 10, "")
	require.NoError(t, err)
	require.Equal(t, []access.Request{r}, due)
	awaiting, more, err := s.ListAwaiting(ctx(t), "carol@example.com", 10)
	require.NoError(t, err)
	require.False(t, more)
	require.Equal(t, []access.Request{r}, awaiting)
}

func testRoundTripMinimal(t *testing.T, s app.Store) {
	r := access.Request{ID: "req-min", Requester: "alice", Status: access.StatusExpired, Version: 1}
	r, rec := Seal(r, access.AuditRecord{RequestID: r.ID, Seq: 1, Action: access.EventSubmit, To: access.StatusExpired})
	create(t, s, r, rec)
	got, err := s.Get(ctx(t), r.ID)
	require.NoError(t, err)
	require.Equal(t, r, got)
	trail, err := s.Audit(ctx(t), r.ID)
	require.NoError(t, err)
	require.Equal(t, []access.AuditRecord{rec}, trail)
}

func testTimesStoredInUTC(t *testing.T, s app.Store) {
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	r, rec := Full("req-zone")
	r.StartAt = r.StartAt.In(zone)
	r.Approvals[0].At = r.Approvals[0].At.In(zone)
	rec.At = rec.At.In(zone)
	create(t, s, r, rec)
	got, err := s.Get(ctx(t), r.ID)
	require.NoError(t, err)
	assert.True(t, got.StartAt.Equal(r.StartAt))
	assert.Equal(t, time.UTC, got.StartAt.Location())
	assert.True(t, got.Approvals[0].At.Equal(r.Approvals[0].At))
	assert.Equal(t, time.UTC, got.Approvals[0].At.Location())
	trail, err := s.Audit(ctx(t), r.ID)
	require.NoError(t, err)
	assert.True(t, trail[0].At.Equal(rec.At))
	assert.Equal(t, time.UTC, trail[0].At.Location())
}

func testCreateChecksTheChain(t *testing.T, s app.Store) {
	r, rec := Submit(t, "req-1", "alice", []string{"bob"}, 1, T0.Add(time.Hour))
	for name, give := range map[string]func(r *access.Request, rec *access.AuditRecord){
		"record's hash is wrong":       func(_ *access.Request, rec *access.AuditRecord) { rec.Detail = "edited" },
		"first record links somewhere": func(_ *access.Request, rec *access.AuditRecord) { rec.PrevHash = "x"; rec.Hash = rec.ComputeHash() },
		"request points elsewhere":     func(r *access.Request, _ *access.AuditRecord) { r.AuditHead = "x" },
		"record of another version":    func(_ *access.Request, rec *access.AuditRecord) { rec.Seq = 2 },
	} {
		t.Run(name, func(t *testing.T) {
			rr, rc := r, rec
			give(&rr, &rc)
			requireKind(t, access.KindInternal, s.Create(ctx(t), rr, rc))
			_, err := s.Get(ctx(t), r.ID)
			requireKind(t, access.KindNotFound, err)
		})
	}
}

func testCreateTwiceConflicts(t *testing.T, s app.Store) {
	r, rec := Submit(t, "req-1", "alice", []string{"bob"}, 1, T0.Add(time.Hour))
	create(t, s, r, rec)
	other := r
	other.Justification = "something else"
	requireKind(t, access.KindConflict, s.Create(ctx(t), other, rec))

	got, err := s.Get(ctx(t), r.ID)
	require.NoError(t, err)
	require.Equal(t, r, got)
	trail, err := s.Audit(ctx(t), r.ID)
	require.NoError(t, err)
	require.Len(t, trail, 1)
}

func testGetMissing(t *testing.T, s app.Store) {
	_, err := s.Get(ctx(t), "nope")
	requireKind(t, access.KindNotFound, err)
	for _, id := range []string{"nope", ""} {
		trail, err := s.Audit(ctx(t), id)
		require.NoError(t, err)
		require.Empty(t, trail)
	}
	_, err = s.Get(ctx(t), "")
	requireKind(t, access.KindNotFound, err)
}

func testStaleTransition(t *testing.T, s app.Store) {
	r, rec := Submit(t, "req-1", "alice", []string{"bob", "carol"}, 2, T0.Add(time.Hour))
	create(t, s, r, rec)
	Apply(t, s, r, access.Event{Type: access.EventApprove, Actor: "bob"}, T0.Add(time.Minute))

	// carol decides on the version she read before bob's approval.
	next, rec2, err := access.Apply(r, access.Event{Type: access.EventApprove, Actor: "carol"}, T0.Add(2*time.Minute))
	require.NoError(t, err)
	err = s.Transition(ctx(t), r, next, rec2)
	requireKind(t, access.KindConflict, err)
	assert.Contains(t, access.PublicMessage(err), "reload and retry")

	trail, err := s.Audit(ctx(t), r.ID)
	require.NoError(t, err)
	require.Len(t, trail, 2)

	// The version condition alone refuses a writer whose version is not the
	// stored one, even when its audit record's key is free (stored: 2;
	// this writer believes 4 and would write 5).
	future := r
	future.Version = 4
	next, rec4, err := access.Apply(future, access.Event{Type: access.EventApprove, Actor: "carol"}, T0.Add(2*time.Minute))
	require.NoError(t, err)
	requireKind(t, access.KindConflict, s.Transition(ctx(t), future, next, rec4))
	trail, err = s.Audit(ctx(t), r.ID)
	require.NoError(t, err)
	require.Len(t, trail, 2, "no audit record without its state change")

	// A request that was never created cannot be transitioned either.
	ghost, _ := Submit(t, "ghost", "alice", []string{"bob"}, 1, T0.Add(time.Hour))
	next, rec3, err := access.Apply(ghost, access.Event{Type: access.EventCancel, Actor: "alice"}, T0)
	require.NoError(t, err)
	requireKind(t, access.KindConflict, s.Transition(ctx(t), ghost, next, rec3))
	_, err = s.Get(ctx(t), "ghost")
	requireKind(t, access.KindNotFound, err)
}

func testTransitionSanity(t *testing.T, s app.Store) {
	r, rec := Submit(t, "req-1", "alice", []string{"bob"}, 1, T0.Add(time.Hour))
	create(t, s, r, rec)
	next, rec2, err := access.Apply(r, access.Event{Type: access.EventCancel, Actor: "alice"}, T0)
	require.NoError(t, err)

	tests := []struct {
		name string
		give func(prev, next *access.Request, rec *access.AuditRecord)
	}{
		{"version skips", func(_, n *access.Request, _ *access.AuditRecord) { n.Version++ }},
		{"version stays", func(_, n *access.Request, _ *access.AuditRecord) { n.Version-- }},
		{"record seq differs", func(_, _ *access.Request, rec *access.AuditRecord) { rec.Seq++ }},
		{"record of another request", func(_, _ *access.Request, rec *access.AuditRecord) { rec.RequestID = "other" }},
		{"next is another request", func(_, n *access.Request, _ *access.AuditRecord) { n.ID = "other" }},
		{"record does not link to the head", func(_, _ *access.Request, rec *access.AuditRecord) {
			rec.PrevHash = "elsewhere"
			rec.Hash = rec.ComputeHash()
		}},
		{"record's hash is wrong", func(_, _ *access.Request, rec *access.AuditRecord) { rec.Actor = "mallory" }},
		{"next does not point at the record", func(_, n *access.Request, _ *access.AuditRecord) { n.AuditHead = "x" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, n, rc := r, next, rec2
			tt.give(&p, &n, &rc)
			requireKind(t, access.KindInternal, s.Transition(ctx(t), p, n, rc))
		})
	}
	got, err := s.Get(ctx(t), r.ID)
	require.NoError(t, err)
	require.Equal(t, r, got)
	trail, err := s.Audit(ctx(t), r.ID)
	require.NoError(t, err)
	require.Len(t, trail, 1)
}

func testConcurrentTransitions(t *testing.T, s app.Store) {
	for round := range 3 {
		id := fmt.Sprintf("req-%d", round)
		r, rec := Submit(t, id, "alice", []string{"bob", "carol"}, 1, T0.Add(time.Hour))
		create(t, s, r, rec)

		events := []access.Event{
			{Type: access.EventApprove, Actor: "bob"},
			{Type: access.EventDeny, Actor: "carol", Comment: "no"},
		}
		nexts := make([]access.Request, len(events))
		errs := make([]error, len(events))
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, e := range events {
			next, rec, err := access.Apply(r, e, T0.Add(time.Minute))
			require.NoError(t, err)
			nexts[i] = next
			wg.Go(func() {
				<-start
				errs[i] = s.Transition(context.Background(), r, next, rec)
			})
		}
		close(start)
		wg.Wait()

		winners := 0
		var winner access.Request
		for i, err := range errs {
			if err == nil {
				winners++
				winner = nexts[i]
				continue
			}
			requireKind(t, access.KindConflict, err)
		}
		require.Equal(t, 1, winners, "errors: %v", errs)

		got, err := s.Get(ctx(t), id)
		require.NoError(t, err)
		require.Equal(t, winner, got)
		trail, err := s.Audit(ctx(t), id)
		require.NoError(t, err)
		require.Len(t, trail, 2)
		require.NoError(t, access.VerifyChain(trail, got.AuditHead))
	}
}

func testAuditChain(t *testing.T, s app.Store) {
	r, rec := Submit(t, "req-1", "alice", []string{"bob", "carol"}, 2, T0.Add(time.Hour))
	create(t, s, r, rec)
	r = Apply(t, s, r, access.Event{Type: access.EventApprove, Actor: "bob", Comment: "fine"}, T0.Add(time.Minute))
	r = Apply(t, s, r, access.Event{Type: access.EventApprove, Actor: "carol"}, T0.Add(2*time.Minute))
	r = Apply(t, s, r, access.Event{Type: access.EventActivate, Actor: "system:grant"}, T0.Add(time.Hour))
	r = Apply(t, s, r, access.Event{Type: access.EventRevokeFailed, Actor: "system:revoke", Error: "throttled"}, T0.Add(2*time.Hour))
	r = Apply(t, s, r, access.Event{Type: access.EventExpire, Actor: "system:revoke"}, T0.Add(2*time.Hour+time.Minute))

	got, err := s.Get(ctx(t), r.ID)
	require.NoError(t, err)
	require.Equal(t, r, got)
	require.Equal(t, access.StatusExpired, got.Status)
	require.Equal(t, 1, got.RevokeAttempts)

	trail, err := s.Audit(ctx(t), r.ID)
	require.NoError(t, err)
	require.Len(t, trail, 6)
	for i, rec := range trail {
		require.Equal(t, i+1, rec.Seq)
	}
	require.Equal(t, access.EventApprove, trail[1].Action)
	require.Equal(t, "fine", trail[1].Detail)
	require.NoError(t, access.VerifyChain(trail, got.AuditHead))
}

// dueRequest is a stored request in status, due at due.
func dueRequest(id string, status access.Status, due time.Time) (access.Request, access.AuditRecord) {
	r := access.Request{
		ID: id, Requester: "alice", Principal: access.Principal{Kind: access.PrincipalUser, Name: "alice"},
		RoleID: "role", Provider: access.ProviderIAMGroup, Target: access.Target{Group: "g"},
		Mode: access.ModeAuto, Status: status, Version: 1,
		StartAt: T0, EndAt: T0.Add(time.Hour), ApprovalDeadline: T0, CreatedAt: T0, UpdatedAt: T0,
	}
	switch status {
	case access.StatusPending:
		r.ApprovalDeadline = due
	case access.StatusApproved:
		r.StartAt = due
	case access.StatusActive:
		r.EndAt = due
	}
	return Seal(r, access.AuditRecord{RequestID: id, Seq: 1, At: T0, Action: access.EventSubmit, To: status})
}

func testDuePaging(t *testing.T, s app.Store) {
	// 25 pending requests due by now (inclusive), 10 due later, and others
	// in other statuses that are due too.
	now := T0.Add(24 * time.Minute)
	var want []string
	for i := range 35 {
		id := fmt.Sprintf("p-%02d", 34-i) // ids run against due order: the order must come from dueAt
		r, rec := dueRequest(id, access.StatusPending, T0.Add(time.Duration(i)*time.Minute))
		create(t, s, r, rec)
		if i < 25 {
			want = append(want, id)
		}
	}
	for i, st := range []access.Status{access.StatusApproved, access.StatusActive, access.StatusExpired, access.StatusDenied} {
		r, rec := dueRequest(fmt.Sprintf("o-%d", i), st, T0)
		create(t, s, r, rec)
	}

	tests := []struct {
		name      string
		limit     int
		wantPages []int
	}{
		{"limit 10", 10, []int{10, 10, 5}},
		{"limit 5 divides evenly", 5, []int{5, 5, 5, 5, 5}},
		{"limit 25 exactly all", 25, []int{25}},
		{"limit larger than all", 100, []int{25}},
		{"default limit", 0, []int{25}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			var pages []int
			cursor := ""
			for {
				page, next, err := s.ListDue(ctx(t), access.StatusPending, now, tt.limit, cursor)
				require.NoError(t, err)
				for _, r := range page {
					require.Equal(t, access.StatusPending, r.Status)
				}
				got = append(got, ids(page)...)
				pages = append(pages, len(page))
				if next == "" {
					break
				}
				require.Less(t, len(pages), 20, "paging does not end")
				cursor = next
			}
			require.Equal(t, tt.wantPages, pages)
			require.Equal(t, want, got)
		})
	}

	for _, tt := range []struct {
		status access.Status
		want   []string
	}{
		{access.StatusApproved, []string{"o-0"}},
		{access.StatusActive, []string{"o-1"}},
		{access.StatusExpired, []string{}},
		{access.StatusDenied, []string{}},
	} {
		page, next, err := s.ListDue(ctx(t), tt.status, now, 10, "")
		require.NoError(t, err)
		require.Equal(t, tt.want, ids(page), "status %s", tt.status)
		require.Empty(t, next)
	}
	page, _, err := s.ListDue(ctx(t), access.StatusPending, T0.Add(-time.Nanosecond), 10, "")
	require.NoError(t, err)
	require.Empty(t, page)
}

func testDueFollowsStatus(t *testing.T, s app.Store) {
	due := func(st access.Status, at time.Time) []string {
		t.Helper()
		page, _, err := s.ListDue(ctx(t), st, at, 100, "")
		require.NoError(t, err)
		return ids(page)
	}
	later := T0.Add(24 * time.Hour)

	r, rec := Submit(t, "req-a", "alice", []string{"bob"}, 1, T0.Add(30*time.Minute))
	create(t, s, r, rec)
	require.Equal(t, []string{}, due(access.StatusPending, T0.Add(29*time.Minute)), "not due before the deadline")
	require.Equal(t, []string{"req-a"}, due(access.StatusPending, T0.Add(30*time.Minute)))

	r = Apply(t, s, r, access.Event{Type: access.EventApprove, Actor: "bob"}, T0.Add(time.Minute))
	require.Equal(t, []string{}, due(access.StatusPending, later))
	require.Equal(t, []string{"req-a"}, due(access.StatusApproved, r.StartAt))
	require.Equal(t, []string{}, due(access.StatusApproved, r.StartAt.Add(-time.Nanosecond)))

	r = Apply(t, s, r, access.Event{Type: access.EventActivate, Actor: "system:grant"}, r.StartAt)
	require.Equal(t, []string{}, due(access.StatusApproved, later))
	require.Equal(t, []string{"req-a"}, due(access.StatusActive, r.EndAt))

	Apply(t, s, r, access.Event{Type: access.EventRevoke, Actor: "alice"}, r.StartAt.Add(time.Minute))
	for _, st := range access.AllStatuses {
		require.Equal(t, []string{}, due(st, later), "terminal request is due as %s", st)
	}

	// Denied, cancelled and timed-out requests leave the index too.
	for i, e := range []access.Event{
		{Type: access.EventDeny, Actor: "bob"},
		{Type: access.EventCancel, Actor: "alice"},
		{Type: access.EventTimeout, Actor: "system:sweeper"},
	} {
		r, rec := Submit(t, fmt.Sprintf("req-t%d", i), "alice", []string{"bob"}, 1, T0.Add(time.Minute))
		create(t, s, r, rec)
		at := T0.Add(30 * time.Second) // decisions before the deadline,
		if e.Type == access.EventTimeout {
			at = T0.Add(time.Minute) // the time-out at it
		}
		Apply(t, s, r, e, at)
	}
	for _, st := range access.AllStatuses {
		require.Equal(t, []string{}, due(st, later), "terminal request is due as %s", st)
	}
}

func testBadCursor(t *testing.T, s app.Store) {
	for _, c := range []string{"not a cursor!", "-1", "e30"} {
		_, _, err := s.ListDue(ctx(t), access.StatusPending, T0, 10, c)
		requireKind(t, access.KindInvalid, err)
		_, _, err = s.ListByRequester(ctx(t), "alice", 10, c)
		requireKind(t, access.KindInvalid, err)
	}
}

func testListByRequester(t *testing.T, s app.Store) {
	var want []string
	for i := range 7 {
		id := fmt.Sprintf("a-%d", i)
		r, rec := dueRequest(id, access.StatusPending, T0)
		r.CreatedAt = T0.Add(time.Duration(i) * time.Second)
		create(t, s, r, rec)
		want = append([]string{id}, want...)
	}
	for i := range 3 {
		r, rec := dueRequest(fmt.Sprintf("b-%d", i), access.StatusPending, T0)
		r.Requester = "bob"
		create(t, s, r, rec)
	}
	var got []string
	var pages []int
	cursor := ""
	for {
		page, next, err := s.ListByRequester(ctx(t), "alice", 3, cursor)
		require.NoError(t, err)
		got = append(got, ids(page)...)
		pages = append(pages, len(page))
		if next == "" {
			break
		}
		require.Less(t, len(pages), 10, "paging does not end")
		cursor = next
	}
	require.Equal(t, []int{3, 3, 1}, pages)
	require.Equal(t, want, got)

	none, next, err := s.ListByRequester(ctx(t), "nobody", 3, "")
	require.NoError(t, err)
	require.Empty(t, none)
	require.Empty(t, next)
}

func testListByTicket(t *testing.T, s app.Store) {
	for i, ticket := range []string{"T-1", "T-2", "", "T-1"} {
		r, rec := dueRequest(fmt.Sprintf("r-%d", i), access.StatusPending, T0)
		r.Ticket = ticket
		r.CreatedAt = T0.Add(time.Duration(i) * time.Second)
		create(t, s, r, rec)
	}
	got, err := s.ListByTicket(ctx(t), "T-1")
	require.NoError(t, err)
	require.Equal(t, []string{"r-0", "r-3"}, ids(got))
	got, err = s.ListByTicket(ctx(t), "T-9")
	require.NoError(t, err)
	require.Empty(t, got)
}

func testListAwaiting(t *testing.T, s app.Store) {
	awaiting := func(approver string) []string {
		t.Helper()
		rs, more, err := s.ListAwaiting(ctx(t), approver, 10)
		require.NoError(t, err)
		require.False(t, more)
		for _, r := range rs {
			require.Equal(t, access.StatusPending, r.Status)
		}
		return ids(rs)
	}
	r1, rec := Submit(t, "req-1", "alice", []string{"Bob", "carol", "dave", "alice"}, 2, T0.Add(time.Hour))
	create(t, s, r1, rec)
	r2, rec := Submit(t, "req-2", "erin", []string{"bob"}, 1, T0.Add(time.Hour))
	r2.CreatedAt = r2.CreatedAt.Add(time.Second)
	create(t, s, r2, rec)
	// Auto-approved requests never await anyone.
	auto, rec := dueRequest("req-auto", access.StatusPending, T0)
	auto.Approvers = []string{"bob"}
	create(t, s, auto, rec)

	require.Equal(t, []string{"req-1", "req-2"}, awaiting("bob"))
	require.Equal(t, []string{"req-1", "req-2"}, awaiting("BOB"), "identities match case-insensitively")
	require.Equal(t, []string{"req-1"}, awaiting("carol"))
	require.Equal(t, []string{}, awaiting("alice"), "the requester never approves their own request")
	require.Equal(t, []string{}, awaiting("mallory"))

	// The inbox is bounded: the oldest first, and a flag for the rest.
	page, more, err := s.ListAwaiting(ctx(t), "bob", 1)
	require.NoError(t, err)
	require.True(t, more)
	require.Equal(t, []string{"req-1"}, ids(page))

	// bob decides; the request stays PENDING (quorum 2) but not for him.
	r1 = Apply(t, s, r1, access.Event{Type: access.EventApprove, Actor: "bob"}, T0.Add(time.Minute))
	require.Equal(t, access.StatusPending, r1.Status)
	require.Equal(t, []string{"req-2"}, awaiting("bob"))
	require.Equal(t, []string{"req-1"}, awaiting("carol"))
	require.Equal(t, []string{"req-1"}, awaiting("dave"))

	// carol approves: quorum, APPROVED, out of everyone's inbox.
	r1 = Apply(t, s, r1, access.Event{Type: access.EventApprove, Actor: "carol"}, T0.Add(2*time.Minute))
	require.Equal(t, access.StatusApproved, r1.Status)
	require.Equal(t, []string{}, awaiting("carol"))
	require.Equal(t, []string{}, awaiting("dave"))
	require.Equal(t, []string{"req-2"}, awaiting("bob"))

	// Cancelled by the requester: gone too.
	Apply(t, s, r2, access.Event{Type: access.EventCancel, Actor: "erin"}, T0.Add(time.Minute))
	require.Equal(t, []string{}, awaiting("bob"))
}

func testLedger(t *testing.T, s app.Store) {
	const key = "iam-group|user/alice|admins"
	empty := access.Ledger{Key: key}

	l, err := s.Ledger(ctx(t), key)
	require.NoError(t, err)
	require.Equal(t, empty, l)
	l, err = s.ReleaseGrant(ctx(t), key, "r1")
	require.NoError(t, err)
	require.Equal(t, empty, l, "releasing what nobody holds is a no-op")
	l, err = s.Ledger(ctx(t), key)
	require.NoError(t, err)
	require.Equal(t, empty, l, "a release does not create the entry")

	// Every hold passes the Gen of the entry as last read, as app.hold does.
	L := func(gen int, pre bool, holders ...string) access.Ledger {
		return access.Ledger{Key: key, Holders: holders, PreExisting: pre, Gen: gen}
	}
	steps := []struct {
		name string
		hold bool
		id   string
		pre  bool
		want access.Ledger
	}{
		{"first hold sets preExisting", true, "r1", true, L(1, true, "r1")},
		{"second hold keeps it", true, "r2", false, L(2, true, "r1", "r2")},
		{"hold is idempotent", true, "r2", false, L(3, true, "r1", "r2")},
		{"release one", false, "r1", false, L(4, true, "r2")},
		{"release is idempotent", false, "r1", false, L(4, true, "r2")},
		{"last release keeps a pre-existing entry", false, "r2", false, L(5, true)},
		{"a duplicate release still sees preExisting", false, "r2", false, L(5, true)},
		{"a hold on an empty entry takes the new preExisting", true, "r3", false, L(6, false, "r3")},
		{"last release keeps the entry, so its Gen never goes back", false, "r3", false, L(7, false)},
		{"fresh hold", true, "r4", true, L(8, true, "r4")},
	}
	for _, st := range steps {
		if st.hold {
			l, err = s.HoldGrant(ctx(t), key, st.id, st.pre, l.Gen)
		} else {
			l, err = s.ReleaseGrant(ctx(t), key, st.id)
		}
		require.NoError(t, err, st.name)
		require.Equal(t, st.want, l, st.name)
		l, err = s.Ledger(ctx(t), key)
		require.NoError(t, err, st.name)
		require.Equal(t, st.want, l, st.name)
	}

	// A first hold whose entry changed since it was read (another request
	// held, granted, undid and released meanwhile) is refused: its look at
	// IAM is stale, and would mistake that request's access for pre-existing.
	const k2 = "iam-group|user/carol|admins"
	seen, err := s.Ledger(ctx(t), k2)
	require.NoError(t, err)
	_, err = s.HoldGrant(ctx(t), k2, "other", false, seen.Gen)
	require.NoError(t, err)
	_, err = s.ReleaseGrant(ctx(t), k2, "other")
	require.NoError(t, err)
	_, err = s.HoldGrant(ctx(t), k2, "late", true, seen.Gen)
	requireKind(t, access.KindConflict, err)
	l, err = s.Ledger(ctx(t), k2)
	require.NoError(t, err)
	require.Equal(t, access.Ledger{Key: k2, Gen: 2}, l, "unchanged by the refused hold")
	l, err = s.HoldGrant(ctx(t), k2, "late", false, l.Gen)
	require.NoError(t, err, "read again, it goes through")
	require.Equal(t, access.Ledger{Key: k2, Holders: []string{"late"}, Gen: 3}, l)

	other, err := s.Ledger(ctx(t), "iam-group|user/bob|admins")
	require.NoError(t, err)
	require.Equal(t, access.Ledger{Key: "iam-group|user/bob|admins"}, other)
}

func testReleaseIfShared(t *testing.T, s app.Store) {
	const key = "iam-policy|role/ops|arn:aws:iam::aws:policy/ReadOnlyAccess"
	l, released, err := s.ReleaseIfShared(ctx(t), key, "r1")
	require.NoError(t, err)
	require.False(t, released, "nothing to release")
	require.Empty(t, l.Holders)

	_, err = s.HoldGrant(ctx(t), key, "r1", false, 0)
	require.NoError(t, err)
	_, released, err = s.ReleaseIfShared(ctx(t), key, "r1")
	require.NoError(t, err)
	require.False(t, released, "the last holder keeps its hold until the access is gone")

	_, err = s.HoldGrant(ctx(t), key, "r2", true, 1) // joins: preExisting ignored
	require.NoError(t, err)
	l, released, err = s.ReleaseIfShared(ctx(t), key, "r9")
	require.NoError(t, err)
	require.False(t, released, "a request that does not hold it releases nothing")
	require.Equal(t, []string{"r1", "r2"}, l.Holders)

	l, released, err = s.ReleaseIfShared(ctx(t), key, "r1")
	require.NoError(t, err)
	require.True(t, released)
	require.Equal(t, access.Ledger{Key: key, Holders: []string{"r2"}, Gen: 3}, l, "every release bumps Gen")
	_, released, err = s.ReleaseIfShared(ctx(t), key, "r2")
	require.NoError(t, err)
	require.False(t, released)

	_, _, err = s.ReleaseIfShared(ctx(t), "", "r1")
	requireKind(t, access.KindInvalid, err)
}

func testConsumeToken(t *testing.T, s app.Store) {
	exp := T0.Add(time.Hour)
	require.NoError(t, s.ConsumeToken(ctx(t), "tok-1", exp))
	err := s.ConsumeToken(ctx(t), "tok-1", exp)
	requireKind(t, access.KindConflict, err)
	require.Equal(t, "this approval link has already been used", access.PublicMessage(err))
	require.NoError(t, s.ConsumeToken(ctx(t), "tok-2", exp))
	require.NoError(t, s.ReleaseToken(ctx(t), "tok-1"))
	require.NoError(t, s.ConsumeToken(ctx(t), "tok-1", exp), "a released token can be consumed again")
	require.NoError(t, s.ReleaseToken(ctx(t), "never-used"), "releasing an unused token is no error")
	requireKind(t, access.KindInvalid, s.ReleaseToken(ctx(t), ""))
}

func testInvalidInput(t *testing.T, s app.Store) {
	c := ctx(t)
	tests := []struct {
		name string
		give func() error
	}{
		{"create without id", func() error { return s.Create(c, access.Request{}, access.AuditRecord{}) }},
		{"due without status", func() error { _, _, err := s.ListDue(c, "", T0, 1, ""); return err }},
		{"requester empty", func() error { _, _, err := s.ListByRequester(c, "", 1, ""); return err }},
		{"ticket empty", func() error { _, err := s.ListByTicket(c, ""); return err }},
		{"approver empty", func() error { _, _, err := s.ListAwaiting(c, "", 10); return err }},
		{"hold without request", func() error { _, err := s.HoldGrant(c, "k", "", false, 0); return err }},
		{"release without key", func() error { _, err := s.ReleaseGrant(c, "", "r"); return err }},
		{"token empty", func() error { return s.ConsumeToken(c, "", T0) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { requireKind(t, access.KindInvalid, tt.give()) })
	}
}
