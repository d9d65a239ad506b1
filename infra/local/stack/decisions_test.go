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
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jitaccess/jit/infra/local/stack"
	"github.com/jitaccess/jit/internal/access"
)

// decisionsCatalog has a role that needs two of three leads, and one that
// needs any one of them, with a short approval deadline.
const decisionsCatalog = `
version: 1
admins: [admin@example.com]
groups:
  leads: [carol@example.com, dave@example.com, frank@example.com]
principals:
  alice@example.com: user/alice
roles:
  - id: two-leads
    description: membership of an IAM group, approved by two leads
    provider: iam-group
    target: {group: jit-quorum-admins}
    requesters: [alice@example.com]
    approvers: [group:leads]
    approvals: 2
    duration: {default: 1h, max: 4h}
  - id: one-lead
    description: membership of an IAM group, approved by one lead
    provider: iam-group
    target: {group: jit-one-admins}
    requesters: [alice@example.com]
    approvers: [group:leads]
    duration: {default: 1h, max: 4h}
    approvalDeadline: 30m
`

var leads = []string{"carol@example.com", "dave@example.com", "frank@example.com"}

// notice is one email as the tests compare it: the subject's first word
// ("Approved", "Denied", ...) and the Status row of its facts table.
type notice struct {
	Kind   string
	Status string
}

var statusRow = regexp.MustCompile(`>Status</th><td[^>]*>([A-Z_]+)</td>`)

// noticesTo lists the emails to who about request id, in the order sent,
// leaving out approval requests (their personal links are read by linkFor).
func noticesTo(t *testing.T, s *stack.Stack, who, id string) []notice {
	t.Helper()
	var out []notice
	for _, m := range sent(t, s) {
		if !slices.Contains(m.To, who) || !strings.Contains(m.Body, id) || strings.HasPrefix(m.Subject, "Approval needed") {
			continue
		}
		n := notice{Kind: strings.SplitN(m.Subject, ":", 2)[0]}
		if sm := statusRow.FindStringSubmatch(m.Body); sm != nil {
			n.Status = sm[1]
		}
		out = append(out, n)
	}
	return out
}

// linkFor is the personal approval link emailed to approver for request id.
func linkFor(t *testing.T, s *stack.Stack, approver, id string) string {
	t.Helper()
	var links []string
	for _, m := range sent(t, s) {
		if slices.Contains(m.To, approver) && strings.HasPrefix(m.Subject, "Approval needed") && strings.Contains(m.Body, id) {
			links = append(links, approvalLink.FindString(m.Body))
		}
	}
	require.Len(t, links, 1, "exactly one approval email to %s for %s", approver, id)
	require.True(t, strings.HasPrefix(links[0], s.URL()+"/approvals/"), links[0])
	return links[0]
}

func groupMembers(t *testing.T, s *stack.Stack, group string) []string {
	t.Helper()
	out, err := iam.NewFromConfig(s.AWSConfig()).GetGroup(context.Background(), &iam.GetGroupInput{GroupName: aws.String(group)})
	require.NoError(t, err)
	var names []string
	for _, u := range out.Users {
		names = append(names, aws.ToString(u.UserName))
	}
	return names
}

// requireNothingToDecide: the link of a decided request shows a page that
// says so, without the buttons, and a POST from it is refused and changes
// nothing.
func requireNothingToDecide(t *testing.T, anon, alice *client, link, id string, status access.Status) {
	t.Helper()
	before := alice.request(id)
	code, page := anon.get(link)
	require.Equal(t, http.StatusOK, code, page)
	assert.Contains(t, page, "Already decided")
	assert.Contains(t, page, "This request is "+string(status)+"; it needs no decision.")
	assert.NotContains(t, page, `value="approve"`)
	assert.NotContains(t, page, `value="deny"`)
	for _, decision := range []string{"approve", "deny"} {
		code, page = anon.form(link, url.Values{"decision": {decision}})
		assert.Equal(t, http.StatusConflict, code, page)
		assert.Contains(t, page, "Nothing to decide")
		assert.Contains(t, page, "it no longer needs a decision")
	}
	after := alice.request(id)
	assert.Equal(t, status, after.Status)
	assert.Equal(t, before.Version, after.Version, "a refused link POST does not touch the request")
	assert.Equal(t, before.Approvals, after.Approvals)
}

// TestLinkDecisions drives the email-link decisions through the local stack
// (moto behind the real handlers): a quorum of two, a deny, a cancel by the
// requester and a time-out, with the requester's notices read from moto.
// The subtests share one stack and run in order; the time-out moves the
// clock, so it is last.
func TestLinkDecisions(t *testing.T) {
	requireMoto(t)
	clk := &clock{}
	s := start(t, stack.Options{Catalog: mustParse(t, decisionsCatalog), Clock: clk.Now, Precision: time.Second, Poll: 50 * time.Millisecond})
	alice := newClient(t, s, "alice@example.com")
	anon := newClient(t, s, "")

	submit := func(t *testing.T, role, why string) stack.Request {
		t.Helper()
		var req stack.Request
		require.Equal(t, http.StatusCreated, alice.json(http.MethodPost, "/requests", map[string]string{"roleId": role, "justification": why}, &req))
		require.Equal(t, access.StatusPending, req.Status)
		return req
	}

	t.Run("quorum of two", func(t *testing.T) {
		req := submit(t, "two-leads", "needs two of the leads to agree")
		require.Equal(t, 2, req.Quorum)
		carol, dave := linkFor(t, s, "carol@example.com", req.ID), linkFor(t, s, "dave@example.com", req.ID)
		require.NotEqual(t, carol, dave, "each approver has a personal link")

		// The first approval counts but does not decide.
		code, page := anon.form(carol, url.Values{"decision": {"approve"}, "comment": {"first"}})
		require.Equal(t, http.StatusOK, code, page)
		assert.Contains(t, page, "You approved this request. It still needs more approvals.")
		after := alice.request(req.ID)
		require.Equal(t, access.StatusPending, after.Status)
		require.Len(t, after.Approvals, 1)
		assert.Equal(t, "carol@example.com", after.Approvals[0].Approver)
		assert.Empty(t, groupMembers(t, s, "jit-quorum-admins"), "nothing granted on one approval of two")
		assert.Empty(t, noticesTo(t, s, "alice@example.com", req.ID), "the requester is told nothing yet")

		// The same approver's link again: the page says so, the POST is refused.
		code, page = anon.get(carol)
		require.Equal(t, http.StatusOK, code, page)
		assert.Contains(t, page, "You have already decided this request.")
		assert.NotContains(t, page, `value="approve"`)
		code, page = anon.form(carol, url.Values{"decision": {"approve"}})
		assert.Equal(t, http.StatusConflict, code, page)
		assert.Contains(t, page, "Nothing to decide")
		again := alice.request(req.ID)
		assert.Equal(t, access.StatusPending, again.Status)
		assert.Equal(t, after.Version, again.Version, "a second use by the same approver changes nothing")
		assert.Len(t, again.Approvals, 1)

		// A second, different approver reaches the quorum: approved, then active.
		code, page = anon.form(dave, url.Values{"decision": {"approve"}, "comment": {"second"}})
		require.Equal(t, http.StatusOK, code, page)
		assert.Contains(t, page, "You approved this request. It is now ACTIVE.")
		active := alice.request(req.ID)
		require.Equal(t, access.StatusActive, active.Status)
		assert.Len(t, active.Approvals, 2)
		assert.Equal(t, []string{"alice"}, groupMembers(t, s, "jit-quorum-admins"), "granted in IAM")

		var trail stack.Trail
		require.Equal(t, http.StatusOK, alice.json(http.MethodGet, "/requests/"+req.ID+"/audit", nil, &trail))
		assert.True(t, trail.Verified, trail.VerifyError)
		var actions []access.EventType
		var actors []string
		for _, rec := range trail.Records {
			actions = append(actions, rec.Action)
			actors = append(actors, rec.Actor)
		}
		assert.Equal(t, []access.EventType{access.EventSubmit, access.EventApprove, access.EventApprove, access.EventActivate}, actions)
		assert.Equal(t, []string{"alice@example.com", "carol@example.com", "dave@example.com"}, actors[:3])

		assert.Equal(t, []notice{{"Approved", "APPROVED"}, {"Active", "ACTIVE"}}, noticesTo(t, s, "alice@example.com", req.ID),
			"the requester is told once it is approved, and once it is active")

		// The third lead's link now has nothing to decide.
		requireNothingToDecide(t, anon, alice, linkFor(t, s, "frank@example.com", req.ID), req.ID, access.StatusActive)
	})

	t.Run("deny by link", func(t *testing.T) {
		req := submit(t, "one-lead", "one lead will say no to this")
		carol := linkFor(t, s, "carol@example.com", req.ID)

		code, page := anon.get(carol)
		require.Equal(t, http.StatusOK, code, page)
		assert.Contains(t, page, `value="deny"`)
		code, page = anon.form(carol, url.Values{"decision": {"deny"}, "comment": {"not this week"}})
		require.Equal(t, http.StatusOK, code, page)
		assert.Contains(t, page, "You denied this request. It is now DENIED.")

		denied := alice.request(req.ID)
		require.Equal(t, access.StatusDenied, denied.Status)
		require.Len(t, denied.Approvals, 1)
		assert.Equal(t, access.DecisionDeny, denied.Approvals[0].Decision)
		assert.Empty(t, groupMembers(t, s, "jit-one-admins"), "nothing in IAM")
		assert.NotContains(t, schedules(t, s), "revoke-"+req.ID, "no revoke scheduled for a denied request")

		assert.Equal(t, []notice{{"Denied", "DENIED"}}, noticesTo(t, s, "alice@example.com", req.ID))
		for _, m := range sent(t, s) {
			if slices.Contains(m.To, "alice@example.com") && strings.HasPrefix(m.Subject, "Denied") && strings.Contains(m.Body, req.ID) {
				assert.Contains(t, m.Body, "not this week", "the denial carries the approver's comment")
			}
		}

		// The denying link is spent, and the other leads have nothing to decide.
		code, page = anon.form(carol, url.Values{"decision": {"approve"}})
		assert.Equal(t, http.StatusConflict, code, page)
		requireNothingToDecide(t, anon, alice, linkFor(t, s, "dave@example.com", req.ID), req.ID, access.StatusDenied)
		assert.Empty(t, groupMembers(t, s, "jit-one-admins"))

		var trail stack.Trail
		require.Equal(t, http.StatusOK, alice.json(http.MethodGet, "/requests/"+req.ID+"/audit", nil, &trail))
		assert.True(t, trail.Verified, trail.VerifyError)
		assert.Len(t, trail.Records, 2, "submit and deny, nothing else")
	})

	t.Run("cancel by the requester", func(t *testing.T) {
		req := submit(t, "two-leads", "changed my mind about this one")
		carol := linkFor(t, s, "carol@example.com", req.ID)
		// One approval first, so the cancel ends a request that was half-way.
		code, page := anon.form(carol, url.Values{"decision": {"approve"}})
		require.Equal(t, http.StatusOK, code, page)

		// Nobody else may cancel it: an approver gets a refusal (invisible or forbidden).
		var tmp stack.Request
		code = newClient(t, s, "dave@example.com").json(http.MethodPost, "/requests/"+req.ID+"/cancel", map[string]string{}, &tmp)
		assert.GreaterOrEqual(t, code, 400, "only the requester cancels")
		require.Equal(t, access.StatusPending, alice.request(req.ID).Status)

		var cancelled stack.Request
		require.Equal(t, http.StatusOK, alice.json(http.MethodPost, "/requests/"+req.ID+"/cancel", map[string]string{"comment": "not needed"}, &cancelled))
		require.Equal(t, access.StatusCancelled, cancelled.Status)
		assert.Equal(t, access.StatusCancelled, alice.request(req.ID).Status)

		// The requester and (the request was PENDING) every approver are told, once.
		assert.Equal(t, []notice{{"Cancelled", "CANCELLED"}}, noticesTo(t, s, "alice@example.com", req.ID))
		for _, lead := range leads {
			assert.Equal(t, []notice{{"Cancelled", "CANCELLED"}}, noticesTo(t, s, lead, req.ID), lead)
		}

		// Every approver's link, used or not, now has nothing to decide.
		for _, lead := range leads {
			requireNothingToDecide(t, anon, alice, linkFor(t, s, lead, req.ID), req.ID, access.StatusCancelled)
		}
		assert.NotContains(t, schedules(t, s), "revoke-"+req.ID)
		var trail stack.Trail
		require.Equal(t, http.StatusOK, alice.json(http.MethodGet, "/requests/"+req.ID+"/audit", nil, &trail))
		assert.True(t, trail.Verified, trail.VerifyError)
		var actions []access.EventType
		for _, rec := range trail.Records {
			actions = append(actions, rec.Action)
		}
		assert.Equal(t, []access.EventType{access.EventSubmit, access.EventApprove, access.EventCancel}, actions,
			"never activated, and the refused link POSTs recorded nothing")
	})

	t.Run("deadline", func(t *testing.T) {
		req := submit(t, "one-lead", "nobody will answer this one")
		carol := linkFor(t, s, "carol@example.com", req.ID)
		require.WithinDuration(t, req.CreatedAt.Add(30*time.Minute), req.ApprovalDeadline, time.Second)

		// Before the deadline the sweeper leaves it alone.
		_, err := s.SweepNow(context.Background())
		require.NoError(t, err)
		require.Equal(t, access.StatusPending, alice.request(req.ID).Status)

		clk.Advance(req.ApprovalDeadline.Sub(clk.Now()) + time.Minute)
		rep, err := s.SweepNow(context.Background())
		require.NoError(t, err)
		assert.Equal(t, 1, rep.TimedOut)
		timedOut := alice.request(req.ID)
		require.Equal(t, access.StatusTimedOut, timedOut.Status)

		var trail stack.Trail
		require.Equal(t, http.StatusOK, alice.json(http.MethodGet, "/requests/"+req.ID+"/audit", nil, &trail))
		assert.True(t, trail.Verified, trail.VerifyError)
		last := trail.Records[len(trail.Records)-1]
		assert.Equal(t, access.EventTimeout, last.Action)
		assert.Equal(t, "system:sweeper", last.Actor)

		assert.Equal(t, []notice{{"Timed out", "TIMED_OUT"}}, noticesTo(t, s, "alice@example.com", req.ID),
			"the time-out notice shows the status after the change")

		// The link expired with the deadline: refused, nothing changes.
		code, page := anon.get(carol)
		assert.Equal(t, http.StatusUnauthorized, code, page)
		assert.Contains(t, page, "This link is not valid")
		code, page = anon.form(carol, url.Values{"decision": {"approve"}})
		assert.Equal(t, http.StatusUnauthorized, code, page)
		assert.Equal(t, timedOut.Version, alice.request(req.ID).Version)
		assert.Empty(t, groupMembers(t, s, "jit-one-admins"))

		// A second sweep finds nothing more to do.
		rep, err = s.SweepNow(context.Background())
		require.NoError(t, err)
		assert.Zero(t, rep.TimedOut)
		assert.Len(t, noticesTo(t, s, "alice@example.com", req.ID), 1)
	})
}
