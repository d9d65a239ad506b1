package stack_test

import (
	"context"
	"encoding/json"
	"html"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
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

// browser is a cookie-keeping client that signs in through /signin, like a person.
func browser(t *testing.T, s *stack.Stack) *client {
	c := newClient(t, s, "")
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	c.http.Jar = jar
	return c
}

func (c *client) signIn(identity string) {
	c.t.Helper()
	code, _ := c.form("/signin", url.Values{"identity": {identity}, "next": {"/portal"}})
	require.Equal(c.t, http.StatusSeeOther, code)
}

// page GETs path, following one redirect, and returns the HTML unescaped
// enough to search for text.
func (c *client) page(path string) string {
	c.t.Helper()
	code, body := c.get(path)
	require.Equal(c.t, http.StatusOK, code, body)
	return html.UnescapeString(body)
}

var rowID = regexp.MustCompile(`id="req-([0-9A-Z]+)"`)

func TestPortal(t *testing.T) {
	clk := &clock{}
	s := start(t, stack.Options{Catalog: mustParse(t, e2eCatalog), Clock: clk.Now, Precision: time.Second, Poll: 50 * time.Millisecond})
	b := browser(t, s)

	// Anonymous visitors are sent to the sign-in page, and come back after.
	code, _ := b.get("/portal")
	require.Equal(t, http.StatusSeeOther, code)
	signin := b.page("/signin")
	assert.Contains(t, signin, `value="alice@example.com"`)
	assert.Contains(t, signin, "X-Dev-Identity")
	b.signIn("alice@example.com")

	portal := b.page("/portal")
	assert.Contains(t, portal, "Signed in as alice@example.com")
	assert.Contains(t, portal, `<option value="group-admin"`)
	assert.NotContains(t, portal, `<option value="timeboxed"`, "only the roles alice may request")

	// A refused request shows the API's message and keeps what was typed.
	code, _ = b.form("/portal/requests", url.Values{"roleId": {"group-admin"}, "justification": {"short"}, "duration": {"90m"}})
	require.Equal(t, http.StatusSeeOther, code)
	portal = b.page("/portal")
	assert.Regexp(t, `class="flash error" role="alert">The request was refused: justification: [^<]+`, portal)
	assert.Contains(t, portal, `value="90m"`)
	assert.Contains(t, portal, ">short</textarea>")

	code, _ = b.form("/portal/requests", url.Values{"roleId": {"group-admin"}, "justification": {"portal test of the iam-group role"}, "duration": {"90m"}})
	require.Equal(t, http.StatusSeeOther, code)
	portal = b.page("/portal")
	assert.Contains(t, portal, "Requested group-admin for 1h 30m: it is PENDING.")
	m := rowID.FindStringSubmatch(portal)
	require.NotNil(t, m, "my request is listed")
	id := m[1]
	assert.Contains(t, portal, `class="status s-pending">PENDING`)

	// The approver sees it waiting and approves it in the portal.
	b.signIn("carol@example.com")
	live := b.page("/portal/live")
	assert.Contains(t, live, "alice@example.com")
	assert.Contains(t, live, `action="/portal/requests/`+id+`/approve"`)
	code, _ = b.form("/portal/requests/"+id+"/approve", url.Values{"comment": {"ok from the portal"}})
	require.Equal(t, http.StatusSeeOther, code)
	portal = b.page("/portal")
	assert.Contains(t, portal, "Approved group-admin ("+id+" for alice@example.com): it is now ACTIVE.")
	assert.Contains(t, portal, "Nothing awaits your decision.")

	// The requester sees it ACTIVE with its time left, and its audit trail.
	b.signIn("alice@example.com")
	portal = b.page("/portal")
	assert.Contains(t, portal, `class="status s-active">ACTIVE`)
	assert.Regexp(t, `1h 30m left|1h 29m left`, portal)
	assert.Contains(t, portal, "I'm done")
	detail := b.page("/portal/requests/" + id)
	assert.Contains(t, detail, "Hash chain verifies: 3 records")
	assert.Contains(t, detail, "ok from the portal")

	// "I'm done" ends it at once, through the same revoke path.
	code, _ = b.form("/portal/requests/"+id+"/revoke", url.Values{"next": {"/portal/requests/" + id}})
	require.Equal(t, http.StatusSeeOther, code)
	detail = b.page("/portal/requests/" + id)
	assert.Contains(t, detail, "it is now REVOKED.")
	assert.Contains(t, detail, "Hash chain verifies: 4 records")
	out, err := iam.NewFromConfig(s.AWSConfig()).ListGroupsForUser(context.Background(), &iam.ListGroupsForUserInput{UserName: aws.String("alice")})
	require.NoError(t, err)
	assert.Empty(t, out.Groups, "access removed")

	// An action the lifecycle refuses shows the API's message.
	code, _ = b.form("/portal/requests/"+id+"/cancel", url.Values{})
	require.Equal(t, http.StatusSeeOther, code)
	assert.Regexp(t, `class="flash error" role="alert">Could not cancel: [^<]+`, b.page("/portal"))

	// The mailbox shows every email, newest first, with working links.
	mailbox := b.page("/mailbox")
	ended := strings.Index(mailbox, "Ended: group-admin")
	asked := strings.Index(mailbox, "Approval needed: alice@example.com")
	require.Positive(t, ended)
	require.Positive(t, asked)
	assert.Less(t, ended, asked, "newest first")
	assert.Contains(t, mailbox, `sandbox="allow-popups allow-popups-to-escape-sandbox allow-top-navigation-by-user-activation"`)
	assert.Contains(t, mailbox, `class="mail-link" href="`+s.URL()+`/approvals/`)
	assert.Contains(t, mailbox, `class="mail-link" href="`+s.URL()+`/portal/requests/`+id+`"`)
	carols := b.page("/mailbox?to=carol@example.com")
	assert.Contains(t, carols, "Approval needed")
	assert.NotContains(t, carols, "Ended: group-admin")
}

func TestGatewayServesTheAPI(t *testing.T) {
	s := start(t, stack.Options{Catalog: mustParse(t, e2eCatalog)})

	// No identity: the authorizer would have refused; the intake says 401.
	anon := newClient(t, s, "")
	code, body := anon.get("/catalog")
	assert.Equal(t, http.StatusUnauthorized, code)
	var e struct {
		Error struct{ Code, Message string }
	}
	require.NoError(t, json.Unmarshal([]byte(body), &e))
	assert.Equal(t, "unauthorized", e.Error.Code)

	// X-Dev-Identity stands in for the token.
	var cat struct{ Roles []stack.Role }
	require.Equal(t, http.StatusOK, newClient(t, s, "Bob@Example.com").json(http.MethodGet, "/catalog", nil, &cat))
	require.Len(t, cat.Roles, 1)
	assert.Equal(t, "timeboxed", cat.Roles[0].ID)

	// Unknown API routes answer in the API's JSON; unknown pages in HTML.
	code, body = newClient(t, s, "bob@example.com").get("/requests/x/y")
	assert.Equal(t, http.StatusNotFound, code)
	assert.Contains(t, body, `"not_found"`)
	code, body = anon.get("/nope")
	assert.Equal(t, http.StatusNotFound, code)
	assert.Contains(t, body, "There is nothing at this address")

	// A forged approval link gets the approval function's error page.
	code, body = anon.get("/approvals/not-a-token")
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Contains(t, body, "This link is not valid")

	code, _ = anon.get("/healthz")
	assert.Equal(t, http.StatusOK, code)
	code, body = anon.get("/assets/style.css")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, ":focus-visible")

	// The demo IAM principals and groups of the catalog exist.
	d := s.DemoIAM()
	assert.ElementsMatch(t, []string{"alice", "bob", "carol"}, d.Users)
	assert.Equal(t, []string{"erin-ops"}, d.Roles)
	assert.Equal(t, []string{"jit-e2e-admins"}, d.Groups)
	assert.Equal(t, []string{"arn:aws:iam::123456789012:policy/jit/e2e-read"}, d.CustomerPolicies)
	assert.Empty(t, d.Warnings)
}

func TestSweeperRunsOnItsRate(t *testing.T) {
	clk := &clock{}
	s := start(t, stack.Options{Catalog: mustParse(t, e2eCatalog), Clock: clk.Now, SweepInterval: 100 * time.Millisecond})
	alice := newClient(t, s, "alice@example.com")
	var req stack.Request
	require.Equal(t, http.StatusCreated, alice.json(http.MethodPost, "/requests",
		map[string]string{"roleId": "group-admin", "justification": "nobody will answer this"}, &req))

	clk.Advance(req.ApprovalDeadline.Sub(clk.Now()) + time.Minute)
	require.Eventually(t, func() bool { return alice.request(req.ID).Status == access.StatusTimedOut },
		20*time.Second, 50*time.Millisecond, "the sweeper times out a request past its approval deadline")
	var trail stack.Trail
	require.Equal(t, http.StatusOK, alice.json(http.MethodGet, "/requests/"+req.ID+"/audit", nil, &trail))
	assert.Equal(t, "system:sweeper", trail.Records[len(trail.Records)-1].Actor)
	assert.True(t, trail.Verified)
}

func TestExampleCatalogStarts(t *testing.T) {
	s := start(t, stack.Options{CatalogPath: exampleCatalog})
	d := s.DemoIAM()
	assert.Empty(t, d.Warnings, "every role of the example can be tried locally")
	assert.NotEmpty(t, stack.Identities(s.Catalog()))
	cat := s.Catalog()
	for _, p := range cat.Principals {
		if p.Kind == access.PrincipalUser {
			assert.Contains(t, d.Users, p.Name)
		} else {
			assert.Contains(t, d.Roles, p.Name)
		}
	}

	// An auto-approved iam-policy role with an AWS-managed policy (read-only in
	// the example) is granted on the spot: moto knows the AWS-managed policies.
	for _, role := range cat.Roles {
		if role.Provider != access.ProviderIAMPolicy || !role.AutoApprove || !strings.HasPrefix(role.Target.PolicyARN, "arn:aws:iam::aws:policy/") {
			continue
		}
		assert.Contains(t, d.ManagedPolicies, role.Target.PolicyARN)
		for _, who := range cat.Members(role.Requesters) {
			p, ok := cat.PrincipalFor(who)
			if !ok || p.Kind != access.PrincipalUser {
				continue
			}
			var req stack.Request
			require.Equal(t, http.StatusCreated, newClient(t, s, who).json(http.MethodPost, "/requests",
				map[string]string{"roleId": role.ID, "justification": "checking the example catalog locally"}, &req))
			assert.Equal(t, access.StatusActive, req.Status)
			out, err := iam.NewFromConfig(s.AWSConfig()).ListAttachedUserPolicies(context.Background(), &iam.ListAttachedUserPoliciesInput{UserName: aws.String(p.Name)})
			require.NoError(t, err)
			require.Len(t, out.AttachedPolicies, 1)
			assert.Equal(t, role.Target.PolicyARN, aws.ToString(out.AttachedPolicies[0].PolicyArn))
			return
		}
	}
	t.Log("the example catalog has no auto-approved AWS-managed iam-policy role for an IAM user; grant not tried")
}
