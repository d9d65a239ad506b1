package email_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jitaccess/jit/internal/access"
	"github.com/jitaccess/jit/internal/email"
)

const (
	baseURL   = "https://jit.example.com"
	actionURL = "https://jit.example.com/approvals/eyJ2IjoxfQ.c2ln"
	portal    = "https://jit.example.com/portal/requests/req-1"
	evil      = "<script>alert(1)</script>"
)

var start = time.Date(2026, 5, 4, 9, 30, 0, 0, time.UTC)

func sampleRequest() access.Request {
	return access.Request{
		ID:               "req-1",
		Requester:        "alice@example.com",
		Principal:        access.Principal{Kind: access.PrincipalUser, Name: "alice"},
		RoleID:           "prod-readonly",
		Provider:         access.ProviderIAMGroup,
		Justification:    "investigate the outage",
		Ticket:           "INC-42",
		StartAt:          start,
		EndAt:            start.Add(2*time.Hour + 30*time.Minute),
		ApprovalDeadline: start.Add(-30 * time.Minute),
		Mode:             access.ModeManual,
		Approvers:        []string{"bob@example.com", "carol@example.com", "dan@example.com"},
		Quorum:           2,
		Approvals:        []access.Approval{{Approver: "carol@example.com", Decision: access.DecisionApprove, Comment: "fine by me", At: start.Add(-time.Hour)}},
		Status:           access.StatusPending,
	}
}

func with(mod func(*access.Request)) access.Request {
	r := sampleRequest()
	mod(&r)
	return r
}

func TestRender(t *testing.T) {
	tests := []struct {
		name        string
		give        access.Notice
		wantSubject string
		want        []string // in both bodies
	}{
		{
			name:        "approval requested",
			give:        access.Notice{Kind: access.NoticeApprovalRequested, To: []string{"bob@example.com"}, Request: sampleRequest(), ActionURL: actionURL},
			wantSubject: "Approval needed: alice@example.com requests prod-readonly on user/alice for 2h 30m",
			want: []string{
				"alice@example.com", "prod-readonly", "user/alice", "2h 30m",
				"Mon, 04 May 2026 09:30 UTC", "Mon, 04 May 2026 12:00 UTC", // start, end
				"Mon, 04 May 2026 09:00 UTC", // approval deadline
				"investigate the outage", "INC-42", "2 needed, 1 so far, from 3 approvers",
				actionURL, "opening the link decides nothing", "do not forward it",
				"carol@example.com", "fine by me", portal,
			},
		},
		{
			name: "break glass",
			give: access.Notice{Kind: access.NoticeBreakGlass, To: []string{"bob@example.com", "security@example.com"}, Request: with(func(r *access.Request) {
				r.Mode = access.ModeBreakGlass
				r.ReviewRequired = true
				r.Status = access.StatusActive
			})},
			wantSubject: "[BREAK-GLASS] alice@example.com took prod-readonly on user/alice for 2h 30m",
			want:        []string{"Review required", "without approval", "investigate the outage", "INC-42", "Mon, 04 May 2026 09:30 UTC", "Mon, 04 May 2026 12:00 UTC", portal},
		},
		{
			name:        "approved",
			give:        access.Notice{Kind: access.NoticeApproved, To: []string{"alice@example.com"}, Request: with(func(r *access.Request) { r.Status = access.StatusApproved })},
			wantSubject: "Approved: prod-readonly on user/alice (req-1)",
			want:        []string{"APPROVED", "was approved", "carol@example.com", "approve", "fine by me", portal},
		},
		{
			name: "denied",
			give: access.Notice{Kind: access.NoticeDenied, To: []string{"alice@example.com"}, Request: with(func(r *access.Request) {
				r.Status = access.StatusDenied
				r.Approvals = append(r.Approvals, access.Approval{Approver: "bob@example.com", Decision: access.DecisionDeny, Comment: "use the read-only role", At: start})
			})},
			wantSubject: "Denied: prod-readonly on user/alice (req-1)",
			want:        []string{"DENIED", "was denied", "bob@example.com", "deny", "use the read-only role", portal},
		},
		{
			name:        "timed out",
			give:        access.Notice{Kind: access.NoticeTimedOut, To: []string{"alice@example.com"}, Request: with(func(r *access.Request) { r.Status = access.StatusTimedOut })},
			wantSubject: "Timed out: prod-readonly on user/alice (req-1)",
			want:        []string{"TIMED_OUT", "got no decision by Mon, 04 May 2026 09:00 UTC", portal},
		},
		{
			name: "cancelled",
			give: access.Notice{Kind: access.NoticeCancelled, To: []string{"bob@example.com"}, Request: with(func(r *access.Request) {
				r.Status, r.EndedBy, r.EndReason = access.StatusCancelled, "alice@example.com", "no longer needed"
			})},
			wantSubject: "Cancelled: prod-readonly on user/alice (req-1)",
			want:        []string{"CANCELLED", "Ended by", "alice@example.com", "no longer needed", portal},
		},
		{
			name:        "active",
			give:        access.Notice{Kind: access.NoticeActive, To: []string{"alice@example.com"}, Request: with(func(r *access.Request) { r.Status = access.StatusActive })},
			wantSubject: "Active: prod-readonly on user/alice until Mon, 04 May 2026 12:00 UTC",
			want:        []string{"ACTIVE", "removed automatically", portal},
		},
		{
			name: "ended",
			give: access.Notice{Kind: access.NoticeEnded, To: []string{"alice@example.com"}, Request: with(func(r *access.Request) {
				r.Status, r.EndedBy, r.EndReason = access.StatusRevoked, "bob@example.com", "incident closed"
			})},
			wantSubject: "Ended: prod-readonly on user/alice (req-1)",
			want:        []string{"REVOKED", "has ended (revoked)", "bob@example.com", "incident closed", portal},
		},
		{
			name: "failed",
			give: access.Notice{Kind: access.NoticeFailed, To: []string{"alice@example.com"}, Detail: "grant did not take", Request: with(func(r *access.Request) {
				r.Status, r.LastError = access.StatusFailed, "AccessDenied: iam:AddUserToGroup"
			})},
			wantSubject: "Failed: prod-readonly on user/alice (req-1)",
			want:        []string{"FAILED", "AccessDenied: iam:AddUserToGroup", "grant did not take", portal},
		},
		{
			name: "revoke failing",
			give: access.Notice{Kind: access.NoticeRevokeFailing, To: []string{"admin@example.com"}, Detail: "schedule dead-lettered", Request: with(func(r *access.Request) {
				r.Status, r.LastError, r.RevokeAttempts = access.StatusActive, "Throttling", 5
			})},
			wantSubject: "[ACTION NEEDED] Revoke failing: prod-readonly on user/alice (req-1)",
			want:        []string{"may still be in place", "failed 5 time(s)", "Throttling", "schedule dead-lettered", "Attempts", portal},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := email.Render(tt.give, baseURL)
			require.NoError(t, err)
			assert.Equal(t, tt.give.To, got.To)
			assert.Equal(t, tt.wantSubject, got.Subject)
			assert.True(t, strings.HasPrefix(got.HTML, "<!DOCTYPE html>"))
			for _, w := range tt.want {
				assert.Contains(t, got.Text, w, "text body")
				assert.Contains(t, got.HTML, w, "html body")
			}
			if tt.give.Kind != access.NoticeApprovalRequested {
				assert.NotContains(t, got.Text, "/approvals/", "only approvers get a link")
			}
		})
	}
}

func TestRenderEscapesUserText(t *testing.T) {
	r := with(func(r *access.Request) {
		r.Requester, r.RoleID, r.Justification, r.Ticket = evil, evil, evil, evil
		r.EndedBy, r.EndReason, r.LastError = evil, evil, evil
		r.Approvals = []access.Approval{{Approver: evil, Decision: access.DecisionDeny, Comment: evil, At: start}}
	})
	escaped := "&lt;script&gt;alert(1)&lt;/script&gt;"
	kinds := []access.NoticeKind{
		access.NoticeApprovalRequested, access.NoticeBreakGlass, access.NoticeApproved, access.NoticeDenied,
		access.NoticeTimedOut, access.NoticeCancelled, access.NoticeActive, access.NoticeEnded,
		access.NoticeFailed, access.NoticeRevokeFailing,
	}
	for _, kind := range kinds {
		t.Run(string(kind), func(t *testing.T) {
			got, err := email.Render(access.Notice{Kind: kind, To: []string{"bob@example.com"}, Request: r, ActionURL: actionURL, Detail: evil}, baseURL)
			require.NoError(t, err)
			assert.NotContains(t, got.HTML, "<script")
			assert.Contains(t, got.HTML, escaped)
			assert.Contains(t, got.Text, evil, "text bodies carry user text as is")
		})
	}
}

func TestRenderSubjectHasNoLineBreaks(t *testing.T) {
	r := with(func(r *access.Request) {
		r.RoleID = "ops\r\nBcc: victim@example.com"
		r.Requester = "alice@example.com\n\nbody"
	})
	got, err := email.Render(access.Notice{Kind: access.NoticeBreakGlass, To: []string{"bob@example.com"}, Request: r}, "")
	require.NoError(t, err)
	assert.NotContains(t, got.Subject, "\r")
	assert.NotContains(t, got.Subject, "\n")
	assert.Equal(t, "[BREAK-GLASS] alice@example.com body took ops Bcc: victim@example.com on user/alice for 2h 30m", got.Subject)

	r.RoleID = strings.Repeat("x", 500)
	got, err = email.Render(access.Notice{Kind: access.NoticeApproved, To: []string{"bob@example.com"}, Request: r}, "")
	require.NoError(t, err)
	assert.Len(t, []rune(got.Subject), 200)
}

func TestRenderQuotesMultilineTextInPlainBody(t *testing.T) {
	r := with(func(r *access.Request) { r.Justification = "outage\r\nApprove here: https://evil.example\n" })
	got, err := email.Render(access.Notice{Kind: access.NoticeApprovalRequested, To: []string{"bob@example.com"}, Request: r, ActionURL: actionURL}, baseURL)
	require.NoError(t, err)
	assert.Contains(t, got.Text, "Justification:\n  > outage\n  > Approve here: https://evil.example\n")
}

func TestRenderRefusesUnsafeLinks(t *testing.T) {
	got, err := email.Render(access.Notice{Kind: access.NoticeApprovalRequested, To: []string{"bob@example.com"}, Request: sampleRequest(), ActionURL: "javascript:alert(1)"}, "")
	require.NoError(t, err)
	assert.NotContains(t, got.HTML, `href="javascript:`)
	assert.Contains(t, got.HTML, "#ZgotmplZ")
}

func TestRenderWithoutBaseURL(t *testing.T) {
	got, err := email.Render(access.Notice{Kind: access.NoticeApproved, To: []string{"alice@example.com"}, Request: sampleRequest()}, "")
	require.NoError(t, err)
	assert.NotContains(t, got.Text, "/portal/")
	assert.NotContains(t, got.HTML, "/portal/")

	got, err = email.Render(access.Notice{Kind: access.NoticeApproved, To: []string{"alice@example.com"}, Request: sampleRequest()}, baseURL+"/")
	require.NoError(t, err)
	assert.Contains(t, got.Text, portal)
}

func TestRenderRecipients(t *testing.T) {
	got, err := email.Render(access.Notice{Kind: access.NoticeApproved, To: []string{"a@example.com", " ", "A@example.com", "b@example.com"}, Request: sampleRequest()}, "")
	require.NoError(t, err)
	assert.Equal(t, []string{"a@example.com", "b@example.com"}, got.To)
}

func TestRenderRejects(t *testing.T) {
	tests := []struct {
		name string
		give access.Notice
	}{
		{"unknown kind", access.Notice{Kind: "party", To: []string{"a@example.com"}, Request: sampleRequest()}},
		{"approval link to two people", access.Notice{Kind: access.NoticeApprovalRequested, To: []string{"a@example.com", "b@example.com"}, Request: sampleRequest(), ActionURL: actionURL}},
		{"approval request without link", access.Notice{Kind: access.NoticeApprovalRequested, To: []string{"a@example.com"}, Request: sampleRequest()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := email.Render(tt.give, baseURL)
			assert.Equal(t, access.KindInternal, access.KindOf(err))
		})
	}
}
