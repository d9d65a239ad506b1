package stack_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jitaccess/jit/infra/local/stack"
	"github.com/jitaccess/jit/internal/access"
	"github.com/jitaccess/jit/internal/email/mototest"
)

// e2eCatalog has one role per provider, each approved by carol.
const e2eCatalog = `
version: 1
admins: [admin@example.com]
groups:
  leads: [carol@example.com]
principals:
  alice@example.com: user/alice
  bob@example.com: user/bob
  carol@example.com: user/carol
  erin@example.com: role/erin-ops
roles:
  - id: group-admin
    description: membership of an IAM group
    provider: iam-group
    target: {group: jit-e2e-admins}
    requesters: [alice@example.com]
    approvers: [group:leads]
    duration: {default: 1h, max: 4h}
  - id: managed-policy
    description: a customer-managed policy attached to an IAM role
    provider: iam-policy
    target: {policyArn: "arn:aws:iam::123456789012:policy/jit/e2e-read"}
    requesters: [erin@example.com]
    approvers: [group:leads]
    duration: {default: 30m, max: 2h}
  - id: timeboxed
    description: a per-request inline policy that expires by itself
    provider: iam-timeboxed-policy
    target:
      policy:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Action: s3:GetObject
            Resource: arn:aws:s3:::e2e-bucket/*
    requesters: [bob@example.com]
    approvers: [group:leads]
    duration: {default: 45m, max: 2h}
`

// hasAccess reads IAM in moto directly: is the request's access in place?
type hasAccess func(ctx context.Context, t *testing.T, c *iam.Client, r stack.Request) bool

func inGroup(ctx context.Context, t *testing.T, c *iam.Client, r stack.Request) bool {
	out, err := c.ListGroupsForUser(ctx, &iam.ListGroupsForUserInput{UserName: aws.String(strings.TrimPrefix(r.Principal, "user/"))})
	require.NoError(t, err)
	return slices.ContainsFunc(out.Groups, func(g iamtypes.Group) bool { return aws.ToString(g.GroupName) == "jit-e2e-admins" })
}

func policyAttached(ctx context.Context, t *testing.T, c *iam.Client, r stack.Request) bool {
	out, err := c.ListAttachedRolePolicies(ctx, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(strings.TrimPrefix(r.Principal, "role/"))})
	require.NoError(t, err)
	return slices.ContainsFunc(out.AttachedPolicies, func(p iamtypes.AttachedPolicy) bool {
		return aws.ToString(p.PolicyArn) == "arn:aws:iam::123456789012:policy/jit/e2e-read"
	})
}

func inlinePolicy(ctx context.Context, t *testing.T, c *iam.Client, r stack.Request) bool {
	out, err := c.GetUserPolicy(ctx, &iam.GetUserPolicyInput{UserName: aws.String(strings.TrimPrefix(r.Principal, "user/")), PolicyName: aws.String("jit-" + r.ID)})
	if err != nil {
		require.ErrorContains(t, err, "NoSuchEntity")
		return false
	}
	doc, err := url.QueryUnescape(aws.ToString(out.PolicyDocument))
	require.NoError(t, err)
	assert.Contains(t, doc, "aws:CurrentTime", "the inline policy carries its own end")
	return true
}

var approvalLink = regexp.MustCompile(`https?://[^"'\s<>]+/approvals/[A-Za-z0-9._~-]+`)

// TestEndToEnd drives each provider over HTTP through the running local
// stack: request, approval email read from moto, the link's page (which
// changes nothing), approve, the grant seen in IAM, the revoke fired by the
// dispatcher at the end time, the access gone, and the audit chain intact.
func TestEndToEnd(t *testing.T) {
	requireMoto(t) // here too, so that a skip is the top-level test's
	cases := []struct {
		provider  access.ProviderKind
		requester string
		role      string
		has       hasAccess
	}{
		{access.ProviderIAMGroup, "alice@example.com", "group-admin", inGroup},
		{access.ProviderIAMPolicy, "erin@example.com", "managed-policy", policyAttached},
		{access.ProviderIAMTimeboxedPolicy, "bob@example.com", "timeboxed", inlinePolicy},
	}
	for _, tc := range cases {
		t.Run(string(tc.provider), func(t *testing.T) {
			clk := &clock{}
			s := start(t, stack.Options{
				Catalog: mustParse(t, e2eCatalog), Clock: clk.Now,
				Precision: time.Second, Poll: 50 * time.Millisecond,
			})
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			iamClient := iam.NewFromConfig(s.AWSConfig())
			requester := newClient(t, s, tc.requester)
			anonymous := newClient(t, s, "")

			// 1. Request.
			var req stack.Request
			status := requester.json(http.MethodPost, "/requests", map[string]string{
				"roleId": tc.role, "justification": "end-to-end test of " + string(tc.provider),
			}, &req)
			require.Equal(t, http.StatusCreated, status)
			require.Equal(t, access.StatusPending, req.Status)
			require.Equal(t, string(tc.provider), req.Provider)
			assert.False(t, tc.has(ctx, t, iamClient, req), "nothing granted before approval")

			// 2. The approval email, read from moto's SES.
			var link string
			for _, m := range sent(t, s) {
				if slices.Contains(m.To, "carol@example.com") && strings.HasPrefix(m.Subject, "Approval needed") {
					link = approvalLink.FindString(m.Body)
				}
			}
			require.NotEmpty(t, link, "an approval email with a link to carol")
			require.True(t, strings.HasPrefix(link, s.URL()+"/approvals/"), "the link points at the local gateway: %s", link)

			// 3. Opening the link (as a mail scanner would) changes nothing.
			code, page := anonymous.get(link)
			require.Equal(t, http.StatusOK, code, page)
			assert.Contains(t, page, "Approve access?")
			assert.Contains(t, page, `value="approve"`)
			code, _ = anonymous.do(http.MethodHead, link, "", nil)
			assert.Equal(t, http.StatusOK, code)
			after := requester.request(req.ID)
			assert.Equal(t, access.StatusPending, after.Status)
			assert.Equal(t, req.Version, after.Version, "GET and HEAD on the link do not touch the request")
			assert.False(t, tc.has(ctx, t, iamClient, req))

			// 4. Approve with a real POST from the page's button.
			code, page = anonymous.form(link, url.Values{"decision": {"approve"}, "comment": {"looks fine"}})
			require.Equal(t, http.StatusOK, code, page)
			assert.Contains(t, page, "It is now ACTIVE")
			active := requester.request(req.ID)
			require.Equal(t, access.StatusActive, active.Status)

			// 5. The grant is in IAM, and its way out is scheduled.
			assert.True(t, tc.has(ctx, t, iamClient, req), "access granted in IAM")
			assert.Contains(t, schedules(t, s), "revoke-"+req.ID)

			// A second POST of the same link is refused: the token is single-use.
			code, _ = anonymous.form(link, url.Values{"decision": {"approve"}})
			assert.Equal(t, http.StatusConflict, code)

			// 6. Time passes; the dispatcher fires the revoke at the end.
			clk.Advance(active.EndAt.Sub(clk.Now()) + time.Second)
			require.Eventually(t, func() bool {
				return requester.request(req.ID).Status == access.StatusExpired
			}, 20*time.Second, 50*time.Millisecond, "the revoke schedule fires at the end time")

			// 7. The access is gone and the schedule deleted after completion.
			assert.False(t, tc.has(ctx, t, iamClient, req), "access removed from IAM")
			assert.Eventually(t, func() bool { return !slices.Contains(schedules(t, s), "revoke-"+req.ID) },
				10*time.Second, 20*time.Millisecond, "the schedule is deleted once its invocation succeeded")

			// 8. The audit trail verifies, through the API and in the store.
			var trail stack.Trail
			require.Equal(t, http.StatusOK, requester.json(http.MethodGet, "/requests/"+req.ID+"/audit", nil, &trail))
			assert.True(t, trail.Verified, trail.VerifyError)
			var actions []access.EventType
			for _, rec := range trail.Records {
				actions = append(actions, rec.Action)
			}
			assert.Equal(t, []access.EventType{access.EventSubmit, access.EventApprove, access.EventActivate, access.EventExpire}, actions)
			last := trail.Records[len(trail.Records)-1]
			assert.Equal(t, "system:revoke", last.Actor, "expired by the revoke function the schedule invoked, not the sweeper")
			assert.Equal(t, access.StatusExpired, last.To)
			require.NoError(t, s.Store().VerifyAudit(ctx, req.ID))

			// 9. The requester was told.
			var subjects []string
			for _, m := range sent(t, s) {
				if slices.Contains(m.To, tc.requester) {
					subjects = append(subjects, m.Subject)
				}
			}
			assert.True(t, slices.ContainsFunc(subjects, func(s string) bool { return strings.HasPrefix(s, "Ended:") }), "%q", subjects)
		})
	}
}

func sent(t *testing.T, s *stack.Stack) []mototest.Sent {
	t.Helper()
	msgs, err := mototest.SentMessages(s.MotoURL())
	require.NoError(t, err)
	return msgs
}

func schedules(t *testing.T, s *stack.Stack) []string {
	t.Helper()
	out, err := scheduler.NewFromConfig(s.AWSConfig()).ListSchedules(context.Background(),
		&scheduler.ListSchedulesInput{GroupName: aws.String(stack.ScheduleGroup)})
	require.NoError(t, err)
	var names []string
	for _, sc := range out.Schedules {
		names = append(names, aws.ToString(sc.Name))
	}
	return names
}

// TestScheduledStart: a request for later is APPROVED with a grant schedule,
// which the dispatcher fires at the start; then the revoke at the end.
func TestScheduledStart(t *testing.T) {
	clk := &clock{}
	s := start(t, stack.Options{Catalog: mustParse(t, e2eCatalog), Clock: clk.Now, Precision: time.Second, Poll: 50 * time.Millisecond})
	bob, carol := newClient(t, s, "bob@example.com"), newClient(t, s, "carol@example.com")

	startAt := clk.Now().Add(2 * time.Hour).Truncate(time.Minute)
	var req stack.Request
	require.Equal(t, http.StatusCreated, bob.json(http.MethodPost, "/requests", map[string]string{
		"roleId": "timeboxed", "justification": "maintenance window tonight", "startAt": startAt.Format(time.RFC3339), "duration": "30m",
	}, &req))
	var approved stack.Request
	require.Equal(t, http.StatusOK, carol.json(http.MethodPost, "/requests/"+req.ID+"/approve", map[string]string{"comment": "go"}, &approved))
	require.Equal(t, access.StatusApproved, approved.Status)
	assert.Contains(t, schedules(t, s), "grant-"+req.ID)

	clk.Advance(startAt.Sub(clk.Now()) + time.Second)
	require.Eventually(t, func() bool { return bob.request(req.ID).Status == access.StatusActive },
		20*time.Second, 50*time.Millisecond, "the grant schedule fires at the start")
	assert.Eventually(t, func() bool { return !slices.Contains(schedules(t, s), "grant-"+req.ID) }, 10*time.Second, 20*time.Millisecond)
	assert.True(t, inlinePolicy(context.Background(), t, iam.NewFromConfig(s.AWSConfig()), req))

	clk.Advance(30 * time.Minute)
	require.Eventually(t, func() bool { return bob.request(req.ID).Status == access.StatusExpired },
		20*time.Second, 50*time.Millisecond, "the revoke schedule fires at the end")
	assert.False(t, inlinePolicy(context.Background(), t, iam.NewFromConfig(s.AWSConfig()), req))
	require.NoError(t, s.Store().VerifyAudit(context.Background(), req.ID))
}
