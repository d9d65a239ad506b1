package iamgrant_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jitaccess/jit/internal/access"
	"github.com/jitaccess/jit/internal/awstest"
	"github.com/jitaccess/jit/internal/iamgrant"
)

func TestMain(m *testing.M) { awstest.Main(m) }

const (
	userName  = "alice"
	roleName  = "deployer"
	groupName = "admins"
	requestID = "01JABCDEFGHJKMNPQRSTVWXYZ0"
)

var (
	user = access.Principal{Kind: access.PrincipalUser, Name: userName}
	role = access.Principal{Kind: access.PrincipalRole, Name: roleName}
	end  = time.Date(2030, 1, 2, 5, 0, 0, 0, time.UTC)
)

const demoPolicy = `{
  "Version": "2012-10-17",
  "Statement": [
    {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
    {"Effect": "Allow", "Action": ["ec2:Describe*"], "Resource": "*",
     "Condition": {"Bool": {"aws:SecureTransport": "true"}}}
  ]
}`

const trustPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`

// calls counts IAM operations and fails chosen ones a chosen number of times.
type calls struct {
	mu     sync.Mutex
	counts map[string]int
	fail   map[string]int // operation -> how many more calls to fail
	err    error
}

func (c *calls) count(op string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[op]
}

func (c *calls) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.counts {
		n += v
	}
	return n
}

func (c *calls) failNext(op string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fail[op]++
	c.err = err
}

type fixture struct {
	ctx       context.Context
	client    *iam.Client
	calls     *calls
	providers map[access.ProviderKind]iamgrant.Provider
	policyARN string
}

// setup starts from an empty moto with the demo user, role, group and
// managed policy, and providers over a counting, fault-injecting client.
func setup(t *testing.T) *fixture {
	t.Helper()
	srv := awstest.Require(t)
	ctx := awstest.Context(t)
	c := &calls{counts: map[string]int{}, fail: map[string]int{}}
	client := iam.NewFromConfig(srv.Config(), func(o *iam.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Initialize.Add(middleware.InitializeMiddlewareFunc("count-and-fail",
				func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
					op := awsmiddleware.GetOperationName(ctx)
					c.mu.Lock()
					c.counts[op]++
					fail := c.fail[op] > 0
					if fail {
						c.fail[op]--
					}
					err := c.err
					c.mu.Unlock()
					if fail {
						return middleware.InitializeOutput{}, middleware.Metadata{}, err
					}
					return next.HandleInitialize(ctx, in)
				}), middleware.After)
		})
	})

	_, err := client.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(userName)})
	require.NoError(t, err)
	_, err = client.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(roleName), AssumeRolePolicyDocument: aws.String(trustPolicy)})
	require.NoError(t, err)
	_, err = client.CreateGroup(ctx, &iam.CreateGroupInput{GroupName: aws.String(groupName)})
	require.NoError(t, err)
	pol, err := client.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("ReadOnlyDemo"), PolicyDocument: aws.String(demoPolicy)})
	require.NoError(t, err)

	providers := iamgrant.Providers(client, iamgrant.Config{
		// moto is consistent at once; a miss costs nothing real.
		Sleep: func(context.Context, time.Duration) error { return nil },
	})
	c.mu.Lock()
	clear(c.counts) // only count what the providers do
	c.mu.Unlock()
	return &fixture{ctx: ctx, client: client, calls: c, providers: providers, policyARN: aws.ToString(pol.Policy.Arn)}
}

// lifecycle runs the contract every provider must keep against moto.
func lifecycle(t *testing.T, f *fixture, p iamgrant.Provider, g access.Grant) {
	t.Helper()
	ok, err := p.Check(f.ctx, g, false)
	require.NoError(t, err)
	assert.False(t, ok, "not granted yet")

	require.NoError(t, p.Grant(f.ctx, g))
	ok, err = p.Check(f.ctx, g, true)
	require.NoError(t, err)
	assert.True(t, ok, "granted")

	require.NoError(t, p.Grant(f.ctx, g), "grant again is idempotent")
	ok, err = p.Check(f.ctx, g, true)
	require.NoError(t, err)
	assert.True(t, ok)

	require.NoError(t, p.Revoke(f.ctx, g))
	ok, err = p.Check(f.ctx, g, false)
	require.NoError(t, err)
	assert.False(t, ok, "revoked")

	require.NoError(t, p.Revoke(f.ctx, g), "revoke again is a no-op")
	ok, err = p.Check(f.ctx, g, true)
	require.NoError(t, err)
	assert.False(t, ok, "still gone after the check budget")
}

func TestGroupProvider(t *testing.T) {
	f := setup(t)
	g := access.Grant{RequestID: requestID, Provider: access.ProviderIAMGroup, Principal: user, Target: access.Target{Group: groupName}, EndAt: end}
	lifecycle(t, f, f.providers[access.ProviderIAMGroup], g)
}

func TestGroupProviderSeesGrantInMoto(t *testing.T) {
	f := setup(t)
	g := access.Grant{RequestID: requestID, Principal: user, Target: access.Target{Group: groupName}}
	require.NoError(t, f.providers[access.ProviderIAMGroup].Grant(f.ctx, g))
	out, err := f.client.GetGroup(f.ctx, &iam.GetGroupInput{GroupName: aws.String(groupName)})
	require.NoError(t, err)
	require.Len(t, out.Users, 1)
	assert.Equal(t, userName, aws.ToString(out.Users[0].UserName))
}

func TestGroupProviderRejectsRole(t *testing.T) {
	f := setup(t)
	p := f.providers[access.ProviderIAMGroup]
	g := access.Grant{RequestID: requestID, Principal: role, Target: access.Target{Group: groupName}}
	err := p.Grant(f.ctx, g)
	assert.True(t, access.IsKind(err, access.KindInvalid), "%v", err)
	assert.Contains(t, access.PublicMessage(err), "users only")
	assert.True(t, access.IsKind(p.Revoke(f.ctx, g), access.KindInvalid))
	_, err = p.Check(f.ctx, g, true)
	assert.True(t, access.IsKind(err, access.KindInvalid))
	assert.Zero(t, f.calls.total())
}

func TestPolicyProvider(t *testing.T) {
	for _, principal := range []access.Principal{user, role} {
		t.Run(string(principal.Kind), func(t *testing.T) {
			f := setup(t)
			g := access.Grant{RequestID: requestID, Provider: access.ProviderIAMPolicy, Principal: principal, Target: access.Target{PolicyARN: f.policyARN}, EndAt: end}
			lifecycle(t, f, f.providers[access.ProviderIAMPolicy], g)
		})
	}
}

func TestPolicyProviderAttachesInMoto(t *testing.T) {
	f := setup(t)
	p := f.providers[access.ProviderIAMPolicy]
	require.NoError(t, p.Grant(f.ctx, access.Grant{RequestID: requestID, Principal: role, Target: access.Target{PolicyARN: f.policyARN}}))
	out, err := f.client.ListAttachedRolePolicies(f.ctx, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(roleName)})
	require.NoError(t, err)
	require.Len(t, out.AttachedPolicies, 1)
	assert.Equal(t, f.policyARN, aws.ToString(out.AttachedPolicies[0].PolicyArn))
	assert.Equal(t, 1, f.calls.count("AttachRolePolicy"))
	assert.Zero(t, f.calls.count("AttachUserPolicy"))
}

func TestTimeboxedProvider(t *testing.T) {
	for _, principal := range []access.Principal{user, role} {
		t.Run(string(principal.Kind), func(t *testing.T) {
			f := setup(t)
			g := access.Grant{RequestID: requestID, Provider: access.ProviderIAMTimeboxedPolicy, Principal: principal, Target: access.Target{PolicyDocument: demoPolicy}, EndAt: end}
			lifecycle(t, f, f.providers[access.ProviderIAMTimeboxedPolicy], g)
		})
	}
}

func TestTimeboxedPolicyDocumentInMoto(t *testing.T) {
	for _, principal := range []access.Principal{user, role} {
		t.Run(string(principal.Kind), func(t *testing.T) {
			f := setup(t)
			g := access.Grant{RequestID: requestID, Principal: principal, Target: access.Target{PolicyDocument: demoPolicy}, EndAt: end.Add(1500 * time.Millisecond)}
			require.NoError(t, f.providers[access.ProviderIAMTimeboxedPolicy].Grant(f.ctx, g))

			var raw string
			if principal.Kind == access.PrincipalRole {
				out, err := f.client.GetRolePolicy(f.ctx, &iam.GetRolePolicyInput{RoleName: aws.String(roleName), PolicyName: aws.String("jit-" + requestID)})
				require.NoError(t, err)
				raw = aws.ToString(out.PolicyDocument)
			} else {
				out, err := f.client.GetUserPolicy(f.ctx, &iam.GetUserPolicyInput{UserName: aws.String(userName), PolicyName: aws.String("jit-" + requestID)})
				require.NoError(t, err)
				raw = aws.ToString(out.PolicyDocument)
			}
			// IAM (and moto) return the document URL-encoded.
			text, err := url.PathUnescape(raw)
			require.NoError(t, err)

			var doc struct {
				Statement []struct {
					Effect    string
					Condition map[string]map[string]any
				}
			}
			require.NoError(t, json.Unmarshal([]byte(text), &doc), text)
			require.Len(t, doc.Statement, 2)
			for i, st := range doc.Statement {
				assert.Equal(t, "2030-01-02T05:00:01Z", st.Condition["DateLessThan"]["aws:CurrentTime"], "statement %d: %s", i, text)
			}
			assert.Equal(t, "true", doc.Statement[1].Condition["Bool"]["aws:SecureTransport"], "existing conditions kept")
		})
	}
}

func TestTimeboxedOversizeRejectedBeforeAWS(t *testing.T) {
	f := setup(t)
	p := f.providers[access.ProviderIAMTimeboxedPolicy]
	// Roughly 3,000 characters: too big for a user, fine for a role.
	actions := make([]string, 150)
	for i := range actions {
		actions[i] = `"s3:GetObject` + strings.Repeat("x", 5) + `"`
	}
	doc := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":[` + strings.Join(actions, ",") + `],"Resource":"*"}]}`
	require.Greater(t, access.PolicySize(doc), access.MaxUserInlinePolicySize)
	require.Less(t, access.PolicySize(doc), access.MaxRoleInlinePolicySize)

	err := p.Grant(f.ctx, access.Grant{RequestID: requestID, Principal: user, Target: access.Target{PolicyDocument: doc}, EndAt: end})
	require.True(t, access.IsKind(err, access.KindInvalid), "%v", err)
	assert.Contains(t, access.PublicMessage(err), "at most 2048")
	assert.Contains(t, access.PublicMessage(err), "user")
	assert.Zero(t, f.calls.total())

	require.NoError(t, p.Grant(f.ctx, access.Grant{RequestID: requestID, Principal: role, Target: access.Target{PolicyDocument: doc}, EndAt: end}))

	// Whitespace does not count: padding the user-sized document is fine.
	small := strings.ReplaceAll(demoPolicy, ",", ",\n"+strings.Repeat(" ", 400))
	require.Greater(t, len(small), access.MaxUserInlinePolicySize)
	require.NoError(t, p.Grant(f.ctx, access.Grant{RequestID: requestID, Principal: user, Target: access.Target{PolicyDocument: small}, EndAt: end}))

	huge := strings.Repeat(`"s3:GetObject",`, 800)
	big := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":[` + huge + `"s3:PutObject"],"Resource":"*"}]}`
	before := f.calls.total()
	err = p.Grant(f.ctx, access.Grant{RequestID: requestID, Principal: role, Target: access.Target{PolicyDocument: big}, EndAt: end})
	require.True(t, access.IsKind(err, access.KindInvalid), "%v", err)
	assert.Contains(t, access.PublicMessage(err), "at most 10240")
	assert.Equal(t, before, f.calls.total())
}

func TestBadGrantsRejectedBeforeAWS(t *testing.T) {
	f := setup(t)
	cases := []struct {
		name string
		kind access.ProviderKind
		g    access.Grant
	}{
		{"group without name", access.ProviderIAMGroup, access.Grant{RequestID: requestID, Principal: user}},
		{"group principal without name", access.ProviderIAMGroup, access.Grant{RequestID: requestID, Principal: access.Principal{Kind: access.PrincipalUser}, Target: access.Target{Group: groupName}}},
		{"policy without ARN", access.ProviderIAMPolicy, access.Grant{RequestID: requestID, Principal: user}},
		{"policy not an ARN", access.ProviderIAMPolicy, access.Grant{RequestID: requestID, Principal: user, Target: access.Target{PolicyARN: "ReadOnlyDemo"}}},
		{"policy unknown principal kind", access.ProviderIAMPolicy, access.Grant{RequestID: requestID, Principal: access.Principal{Kind: "group", Name: "x"}, Target: access.Target{PolicyARN: "arn:aws:iam::aws:policy/ReadOnlyAccess"}}},
		{"timeboxed without document", access.ProviderIAMTimeboxedPolicy, access.Grant{RequestID: requestID, Principal: user, EndAt: end}},
		{"timeboxed without end", access.ProviderIAMTimeboxedPolicy, access.Grant{RequestID: requestID, Principal: user, Target: access.Target{PolicyDocument: demoPolicy}}},
		{"timeboxed without request id", access.ProviderIAMTimeboxedPolicy, access.Grant{Principal: user, Target: access.Target{PolicyDocument: demoPolicy}, EndAt: end}},
		{"timeboxed bad request id", access.ProviderIAMTimeboxedPolicy, access.Grant{RequestID: "a/b", Principal: user, Target: access.Target{PolicyDocument: demoPolicy}, EndAt: end}},
		{"timeboxed document not JSON", access.ProviderIAMTimeboxedPolicy, access.Grant{RequestID: requestID, Principal: user, Target: access.Target{PolicyDocument: "{"}, EndAt: end}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := f.providers[tc.kind].Grant(f.ctx, tc.g)
			assert.True(t, access.IsKind(err, access.KindInvalid), "%v", err)
		})
	}
	assert.Zero(t, f.calls.total())
}

func TestMissingPrincipalIsRevokedAndAbsent(t *testing.T) {
	f := setup(t)
	ghost := access.Principal{Kind: access.PrincipalUser, Name: "ghost"}
	ghostRole := access.Principal{Kind: access.PrincipalRole, Name: "ghost"}
	grants := map[access.ProviderKind][]access.Grant{
		access.ProviderIAMGroup:           {{RequestID: requestID, Principal: ghost, Target: access.Target{Group: groupName}}},
		access.ProviderIAMPolicy:          {{RequestID: requestID, Principal: ghost, Target: access.Target{PolicyARN: f.policyARN}}, {RequestID: requestID, Principal: ghostRole, Target: access.Target{PolicyARN: f.policyARN}}},
		access.ProviderIAMTimeboxedPolicy: {{RequestID: requestID, Principal: ghost, Target: access.Target{PolicyDocument: demoPolicy}, EndAt: end}, {RequestID: requestID, Principal: ghostRole, Target: access.Target{PolicyDocument: demoPolicy}, EndAt: end}},
	}
	for kind, gs := range grants {
		for _, g := range gs {
			p := f.providers[kind]
			assert.NoError(t, p.Revoke(f.ctx, g), "%s %s", kind, g.Principal)
			ok, err := p.Check(f.ctx, g, false)
			assert.NoError(t, err, "%s %s", kind, g.Principal)
			assert.False(t, ok)
		}
	}
}

func TestGrantToMissingEntityIsInternal(t *testing.T) {
	f := setup(t)
	err := f.providers[access.ProviderIAMGroup].Grant(f.ctx, access.Grant{RequestID: requestID, Principal: user, Target: access.Target{Group: "nope"}})
	assert.True(t, access.IsKind(err, access.KindInternal), "%v", err)
	assert.Contains(t, err.Error(), "AddUserToGroup")
	assert.Contains(t, err.Error(), "NoSuchEntity")
}

// TestFaultsSurfaceWithOperation fails the first call of each operation
// and expects a KindInternal error naming it; the retry then succeeds.
func TestFaultsSurfaceWithOperation(t *testing.T) {
	boom := errors.New("injected fault")
	type step func(f *fixture) error
	grant := func(kind access.ProviderKind, g func(f *fixture) access.Grant) step {
		return func(f *fixture) error { return f.providers[kind].Grant(f.ctx, g(f)) }
	}
	revoke := func(kind access.ProviderKind, g func(f *fixture) access.Grant) step {
		return func(f *fixture) error { return f.providers[kind].Revoke(f.ctx, g(f)) }
	}
	check := func(kind access.ProviderKind, g func(f *fixture) access.Grant) step {
		return func(f *fixture) error { _, err := f.providers[kind].Check(f.ctx, g(f), true); return err }
	}
	groupG := func(*fixture) access.Grant {
		return access.Grant{RequestID: requestID, Principal: user, Target: access.Target{Group: groupName}}
	}
	policyG := func(p access.Principal) func(f *fixture) access.Grant {
		return func(f *fixture) access.Grant {
			return access.Grant{RequestID: requestID, Principal: p, Target: access.Target{PolicyARN: f.policyARN}}
		}
	}
	boxG := func(p access.Principal) func(*fixture) access.Grant {
		return func(*fixture) access.Grant {
			return access.Grant{RequestID: requestID, Principal: p, Target: access.Target{PolicyDocument: demoPolicy}, EndAt: end}
		}
	}
	cases := []struct {
		op  string
		run step
	}{
		{"AddUserToGroup", grant(access.ProviderIAMGroup, groupG)},
		{"RemoveUserFromGroup", revoke(access.ProviderIAMGroup, groupG)},
		{"ListGroupsForUser", check(access.ProviderIAMGroup, groupG)},
		{"AttachUserPolicy", grant(access.ProviderIAMPolicy, policyG(user))},
		{"DetachUserPolicy", revoke(access.ProviderIAMPolicy, policyG(user))},
		{"ListAttachedUserPolicies", check(access.ProviderIAMPolicy, policyG(user))},
		{"AttachRolePolicy", grant(access.ProviderIAMPolicy, policyG(role))},
		{"DetachRolePolicy", revoke(access.ProviderIAMPolicy, policyG(role))},
		{"ListAttachedRolePolicies", check(access.ProviderIAMPolicy, policyG(role))},
		{"PutUserPolicy", grant(access.ProviderIAMTimeboxedPolicy, boxG(user))},
		{"DeleteUserPolicy", revoke(access.ProviderIAMTimeboxedPolicy, boxG(user))},
		{"GetUserPolicy", check(access.ProviderIAMTimeboxedPolicy, boxG(user))},
		{"PutRolePolicy", grant(access.ProviderIAMTimeboxedPolicy, boxG(role))},
		{"DeleteRolePolicy", revoke(access.ProviderIAMTimeboxedPolicy, boxG(role))},
		{"GetRolePolicy", check(access.ProviderIAMTimeboxedPolicy, boxG(role))},
	}
	for _, tc := range cases {
		t.Run(tc.op, func(t *testing.T) {
			f := setup(t)
			f.calls.failNext(tc.op, boom)
			err := tc.run(f)
			require.Error(t, err)
			assert.True(t, access.IsKind(err, access.KindInternal), "%v", err)
			assert.ErrorIs(t, err, boom)
			assert.Contains(t, err.Error(), "iam "+tc.op+" ")
			assert.Equal(t, 1, f.calls.count(tc.op), "a failed read is not re-read")
			assert.NoError(t, tc.run(f), "only the first call fails")
		})
	}
}

// TestErrorsNoRetryCanCure: IAM errors that retrying cannot fix come back
// with a kind the app does not retry and a message that says what is
// wrong; throttling and the like stay internal (retried).
func TestErrorsNoRetryCanCure(t *testing.T) {
	g := access.Grant{RequestID: requestID, Provider: access.ProviderIAMGroup, Principal: user, Target: access.Target{Group: groupName}, EndAt: end}
	for _, tt := range []struct {
		code     string
		wantKind access.Kind
		wantMsg  string
	}{
		{"LimitExceeded", access.KindInvalid, "an IAM limit is reached"},
		{"MalformedPolicyDocument", access.KindInvalid, "refuses the policy document"},
		{"AccessDenied", access.KindForbidden, "the broker is not allowed to"},
		{"ServiceFailure", access.KindInternal, "iam AddUserToGroup"},
	} {
		t.Run(tt.code, func(t *testing.T) {
			f := setup(t)
			f.calls.failNext("AddUserToGroup", &smithy.GenericAPIError{Code: tt.code, Message: "injected"})
			err := f.providers[access.ProviderIAMGroup].Grant(f.ctx, g)
			require.Error(t, err)
			assert.Equal(t, tt.wantKind, access.KindOf(err), "%v", err)
			assert.Contains(t, err.Error(), tt.wantMsg)
		})
	}

	t.Run("a group that does not exist, from moto", func(t *testing.T) {
		f := setup(t)
		missing := g
		missing.Target.Group = "no-such-group"
		err := f.providers[access.ProviderIAMGroup].Grant(f.ctx, missing)
		require.Error(t, err)
		assert.Equal(t, access.KindInternal, access.KindOf(err), "retried: IAM is eventually consistent; %v", err)
		assert.Contains(t, err.Error(), "does not exist in IAM")
	})
}
