package catalog

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jitaccess/jit/internal/access"
)

const examplePath = "../../infra/catalog.example.yaml"

func TestLoadExample(t *testing.T) {
	c, err := Load(examplePath)
	require.NoError(t, err)

	ids := make([]string, 0, len(c.Roles))
	providers := map[access.ProviderKind]bool{}
	for _, r := range c.Roles {
		ids = append(ids, r.ID)
		providers[r.Provider] = true
	}
	assert.Equal(t, []string{"prod-admin", "read-only", "reports-bucket-read", "prod-break-glass"}, ids)
	assert.Len(t, providers, len(access.Providers), "one role per provider")

	admin, ok := c.Role("prod-admin")
	require.True(t, ok)
	assert.Equal(t, access.Target{Group: "jit-demo-admins"}, admin.Target)
	assert.Equal(t, 2, admin.Quorum)
	assert.Equal(t, time.Hour, admin.DefaultDuration)
	assert.Equal(t, 4*time.Hour, admin.MaxDuration)
	assert.Equal(t, 2*time.Hour, admin.ApprovalDeadline)
	assert.True(t, admin.TicketRequired)
	assert.Equal(t, "^OPS-[0-9]+$", admin.TicketPattern)
	assert.Equal(t, 20, admin.MinJustification)

	ro, _ := c.Role("read-only")
	assert.Equal(t, "arn:aws:iam::aws:policy/ReadOnlyAccess", ro.Target.PolicyARN)
	assert.True(t, ro.AutoApprove)
	assert.Equal(t, 24*time.Hour, ro.ApprovalDeadline, "default deadline")

	tb, _ := c.Role("reports-bucket-read")
	assert.JSONEq(t, `{"Version":"2012-10-17","Statement":[
		{"Sid":"ListReports","Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::example-reports"},
		{"Sid":"ReadReports","Effect":"Allow","Action":["s3:GetObject","s3:GetObjectVersion"],"Resource":"arn:aws:s3:::example-reports/*"}]}`,
		tb.Target.PolicyDocument)
	assert.NotContains(t, tb.Target.PolicyDocument, " ", "compact JSON")
	assert.False(t, tb.TicketRequired)
	assert.NotEmpty(t, tb.TicketPattern)

	bg, _ := c.Role("prod-break-glass")
	assert.True(t, bg.BreakGlass)

	assert.Equal(t, []string{"admin@example.com"}, c.Admins)
	assert.Equal(t, []string{"secops@example.com"}, c.SecurityContacts)
	assert.True(t, c.IsAdmin("Admin@Example.com"))
	assert.False(t, c.IsAdmin("alice@example.com"))

	wantPrincipals := map[string]string{
		"alice@example.com": "user/alice", "bob@example.com": "user/bob",
		"carol@example.com": "user/carol", "dave@example.com": "user/dave",
		"erin@example.com": "role/erin-ops", "admin@example.com": "user/admin",
	}
	require.Len(t, c.Principals, len(wantPrincipals))
	for id, want := range wantPrincipals {
		p, ok := c.PrincipalFor(strings.ToUpper(id))
		require.True(t, ok, id)
		assert.Equal(t, want, p.String())
	}

	var erinRoles []string
	for _, r := range c.RolesFor("erin@example.com") {
		erinRoles = append(erinRoles, r.ID)
	}
	assert.Equal(t, []string{"read-only", "reports-bucket-read"}, erinRoles)
	assert.Empty(t, c.RolesFor("nobody@example.com"))
	assert.Empty(t, c.RolesFor(""))

	assert.Equal(t,
		[]string{"alice@example.com", "bob@example.com", "carol@example.com", "dave@example.com", "erin@example.com"},
		c.Members([]string{"group:sre-leads", "ERIN@example.com", "group:platform", "alice@example.com", "group:missing"}))
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestRoleReturnsCopy(t *testing.T) {
	c, err := Load(examplePath)
	require.NoError(t, err)
	r, _ := c.Role("prod-admin")
	r.Approvers[0] = "group:platform"
	again, _ := c.Role("prod-admin")
	assert.Equal(t, []string{"group:sre-leads"}, again.Approvers)
}

// header is a valid catalog up to its roles, so that each case below only
// writes the role it is about. Its roles start on line headerLines+1.
const header = `version: 1
securityContacts: [secops@example.com]
groups:
  platform: [alice@example.com, bob@example.com]
  leads: [carol@example.com, dave@example.com]
principals:
  alice@example.com: user/alice
  bob@example.com: user/bob
  carol@example.com: user/carol
  erin@example.com: role/erin-ops
roles:
`

const headerLines = 11

// role is a valid role, to be followed by extra fields.
const role = `  - id: r
    provider: iam-policy
    target: {policyArn: 'arn:aws:iam::aws:policy/ReadOnlyAccess'}
    requesters: [group:platform]
    approvers: [group:leads]
    duration: {default: 1h, max: 4h}
`

// roleLines is the number of lines in role.
const roleLines = 6

// roleWithout is role minus the line starting with field (the id line
// keeps its list dash).
func roleWithout(field string) string {
	var out []string
	for _, l := range strings.Split(strings.TrimSuffix(role, "\n"), "\n") {
		trimmed := strings.TrimPrefix(strings.TrimSpace(l), "- ")
		if strings.HasPrefix(trimmed, field+":") {
			if strings.Contains(l, "- ") {
				out = append(out, "  - description: x")
			}
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n") + "\n"
}

// roleWith is role with lines replaced: pairs of field and new line.
func roleWith(pairs ...string) string {
	lines := strings.Split(strings.TrimSuffix(role, "\n"), "\n")
	for i, l := range lines {
		trimmed := strings.TrimPrefix(strings.TrimSpace(l), "- ")
		for p := 0; p+1 < len(pairs); p += 2 {
			if strings.HasPrefix(trimmed, pairs[p]+":") {
				lines[i] = strings.Replace(l, trimmed, pairs[p+1], 1)
			}
		}
	}
	return strings.Join(lines, "\n") + "\n"
}

// bigPolicy is a timeboxed role whose policy fits the IAM role limit but
// not the user limit.
func bigPolicy(requesters string) string {
	actions := make([]string, 150)
	for i := range actions {
		actions[i] = "'s3:GetObjectVersionTagging'"
	}
	return `  - id: big
    provider: iam-timeboxed-policy
    target:
      policy:
        Statement:
          - {Effect: Allow, Resource: '*', Action: [` + strings.Join(actions, ", ") + `]}
    requesters: ` + requesters + `
    autoApprove: true
    duration: {max: 1h}
`
}

func TestParseProblems(t *testing.T) {
	const first = headerLines + 1 // the line of the role's id
	tests := []struct {
		name    string
		give    string
		want    Problem // File is always "catalog.yaml"; Message is checked by wantErr
		wantErr string  // substring of the message
	}{
		{
			name:    "syntax error",
			give:    "version: 1\nroles: [\n",
			want:    Problem{Line: 2},
			wantErr: "YAML syntax error",
		},
		{
			name:    "not a mapping",
			give:    "- version: 1\n",
			want:    Problem{Line: 1},
			wantErr: "must be a mapping",
		},
		{
			name:    "unknown top-level field",
			give:    header + role + "rolez: []\n",
			want:    Problem{Line: first + roleLines, Field: "rolez"},
			wantErr: `unknown field "rolez"`,
		},
		{
			name:    "missing version",
			give:    strings.TrimPrefix(header, "version: 1\n") + role,
			want:    Problem{Line: 1, Field: "version"},
			wantErr: "is required",
		},
		{
			name:    "unsupported version",
			give:    "version: 2\n" + strings.TrimPrefix(header, "version: 1\n") + role,
			want:    Problem{Line: 1, Field: "version"},
			wantErr: "unsupported version 2",
		},
		{
			name:    "version not a number",
			give:    "version: one\n" + strings.TrimPrefix(header, "version: 1\n") + role,
			want:    Problem{Line: 1, Field: "version"},
			wantErr: "must be a whole number",
		},
		{
			name:    "missing roles",
			give:    strings.TrimSuffix(header, "roles:\n"),
			want:    Problem{Line: 1, Field: "roles"},
			wantErr: "is required",
		},
		{
			name:    "empty roles",
			give:    header,
			want:    Problem{Line: headerLines, Field: "roles"},
			wantErr: "list at least one role",
		},
		{
			name:    "multiple documents",
			give:    header + role + "---\nversion: 1\n",
			want:    Problem{Line: first + roleLines},
			wantErr: "single YAML document",
		},
		{
			name:    "unknown role field",
			give:    header + role + "    approvalz: 2\n",
			want:    Problem{Line: first + roleLines, Field: "roles[0].approvalz"},
			wantErr: `unknown field "approvalz"`,
		},
		{
			name:    "unknown field suggests the right spelling",
			give:    header + role + "    approval_deadline: 1h\n",
			want:    Problem{Line: first + roleLines, Field: "roles[0].approval_deadline"},
			wantErr: `did you mean "approvalDeadline"`,
		},
		{
			name:    "duplicate field",
			give:    header + role + "    provider: iam-group\n",
			want:    Problem{Line: first + roleLines, Field: "roles[0].provider"},
			wantErr: "duplicate key",
		},
		{
			name:    "missing role id",
			give:    header + roleWithout("id"),
			want:    Problem{Line: first, Field: "roles[0].id"},
			wantErr: "is required",
		},
		{
			name:    "bad role id",
			give:    header + roleWith("id", "id: Prod_Admin"),
			want:    Problem{Line: first, Field: "roles[0].id"},
			wantErr: `"Prod_Admin" must be`,
		},
		{
			name:    "duplicate role id",
			give:    header + role + role,
			want:    Problem{Line: first + roleLines, Field: "roles[1].id"},
			wantErr: fmt.Sprintf(`duplicate role id "r" (first defined on line %d)`, first),
		},
		{
			name:    "missing provider",
			give:    header + roleWithout("provider"),
			want:    Problem{Line: first, Field: "roles[0].provider"},
			wantErr: "is required",
		},
		{
			name:    "unknown provider",
			give:    header + roleWith("provider", "provider: iam-magic"),
			want:    Problem{Line: first + 1, Field: "roles[0].provider"},
			wantErr: `unknown provider "iam-magic"`,
		},
		{
			name:    "missing target",
			give:    header + roleWithout("target"),
			want:    Problem{Line: first, Field: "roles[0].target"},
			wantErr: "is required",
		},
		{
			name:    "iam-group with a policyArn",
			give:    header + roleWith("provider", "provider: iam-group", "target", "target: {group: admins, policyArn: 'arn:aws:iam::aws:policy/X'}"),
			want:    Problem{Line: first + 2, Field: "roles[0].target.policyArn"},
			wantErr: "not used by provider iam-group (it takes target.group)",
		},
		{
			name:    "iam-group without group",
			give:    header + roleWith("provider", "provider: iam-group", "target", "target: {}"),
			want:    Problem{Line: first + 2, Field: "roles[0].target.group"},
			wantErr: "is required for provider iam-group",
		},
		{
			name:    "iam-group with a bad group name",
			give:    header + roleWith("provider", "provider: iam-group", "target", "target: {group: 'prod admins'}"),
			want:    Problem{Line: first + 2, Field: "roles[0].target.group"},
			wantErr: "not a valid IAM group name",
		},
		{
			name:    "iam-policy with a bad ARN",
			give:    header + roleWith("target", "target: {policyArn: 'arn:aws:iam::123:policy/x'}"),
			want:    Problem{Line: first + 2, Field: "roles[0].target.policyArn"},
			wantErr: "not a managed policy ARN",
		},
		{
			name:    "iam-policy with a group",
			give:    header + roleWith("target", "target: {group: admins, policyArn: 'arn:aws:iam::aws:policy/X'}"),
			want:    Problem{Line: first + 2, Field: "roles[0].target.group"},
			wantErr: "not used by provider iam-policy",
		},
		{
			name:    "unknown target field",
			give:    header + roleWith("target", "target: {policyArn: 'arn:aws:iam::aws:policy/X', arn: x}"),
			want:    Problem{Line: first + 2, Field: "roles[0].target.arn"},
			wantErr: `unknown field "arn"`,
		},
		{
			name:    "timeboxed without policy",
			give:    header + roleWith("provider", "provider: iam-timeboxed-policy", "target", "target: {}"),
			want:    Problem{Line: first + 2, Field: "roles[0].target.policy"},
			wantErr: "is required for provider iam-timeboxed-policy",
		},
		{
			name:    "timeboxed policy is not a mapping",
			give:    header + roleWith("provider", "provider: iam-timeboxed-policy", "target", `target: {policy: '{"Statement":[]}'}`),
			want:    Problem{Line: first + 2, Field: "roles[0].target.policy"},
			wantErr: "must be a mapping, not a string",
		},
		{
			name:    "timeboxed policy without Statement",
			give:    header + roleWith("provider", "provider: iam-timeboxed-policy", "target", "target: {policy: {Version: '2012-10-17'}}"),
			want:    Problem{Line: first + 2, Field: "roles[0].target.policy.Statement"},
			wantErr: "is required",
		},
		{
			name:    "timeboxed policy with empty Statement",
			give:    header + roleWith("provider", "provider: iam-timeboxed-policy", "target", "target: {policy: {Statement: []}}"),
			want:    Problem{Line: first + 2, Field: "roles[0].target.policy.Statement"},
			wantErr: "list at least one statement",
		},
		{
			name:    "timeboxed statement with bad Effect",
			give:    header + timeboxed("{Effect: allow, Action: 's3:GetObject', Resource: '*'}"),
			want:    Problem{Line: first + 5, Field: "roles[0].target.policy.Statement[0].Effect"},
			wantErr: "must be Allow or Deny",
		},
		{
			name:    "timeboxed statement without Action",
			give:    header + timeboxed("{Effect: Allow, Resource: '*'}"),
			want:    Problem{Line: first + 5, Field: "roles[0].target.policy.Statement[0].Action"},
			wantErr: "is required",
		},
		{
			name:    "timeboxed statement with a mapping as Action",
			give:    header + timeboxed("{Effect: Allow, Action: {s3: GetObject}, Resource: '*'}"),
			want:    Problem{Line: first + 5, Field: "roles[0].target.policy.Statement[0].Action"},
			wantErr: "must be a string or a list of strings",
		},
		{
			name:    "timeboxed statement with a bad Condition",
			give:    header + timeboxed("{Effect: Allow, Action: '*', Resource: '*', Condition: {Bool: true}}"),
			want:    Problem{Line: first + 5, Field: "roles[0].target.policy.Statement[0].Condition.Bool"},
			wantErr: "must be a mapping",
		},
		{
			name:    "timeboxed statement with an unquoted colon inside braces",
			give:    header + timeboxed("{Effect: Allow, Action: [s3:GetObject], Resource: '*'}"),
			want:    Problem{Line: first + 5, Field: "roles[0].target.policy.Statement[0].Action[0]"},
			wantErr: "quote values that contain ':'",
		},
		{
			name:    "timeboxed condition key misread inside braces",
			give:    header + timeboxed("{Effect: Allow, Action: '*', Resource: '*', Condition: {Bool: {aws:SecureTransport: 'true'}}}"),
			want:    Problem{Line: first + 5, Field: "roles[0].target.policy.Statement[0].Condition.Bool.aws"},
			wantErr: `condition key "aws" has no prefix`,
		},
		{
			name:    "timeboxed statement with Principal",
			give:    header + timeboxed("{Effect: Allow, Action: '*', Resource: '*', Principal: '*'}"),
			want:    Problem{Line: first + 5, Field: "roles[0].target.policy.Statement[0].Principal"},
			wantErr: `unknown field "Principal"`,
		},
		{
			name:    "timeboxed policy too large for users",
			give:    header + bigPolicy("[group:platform, erin@example.com]"),
			want:    Problem{Line: first + 3, Field: "roles[0].target.policy"},
			wantErr: "role big: the timeboxed policy is",
		},
		{
			name:    "max less than default",
			give:    header + roleWith("duration", "duration: {default: 4h, max: 1h}"),
			want:    Problem{Line: first + 5, Field: "roles[0].duration.max"},
			wantErr: "1h is less than default 4h",
		},
		{
			name:    "zero default",
			give:    header + roleWith("duration", "duration: {default: 0s, max: 1h}"),
			want:    Problem{Line: first + 5, Field: "roles[0].duration.default"},
			wantErr: "must be positive",
		},
		{
			name:    "default under a minute",
			give:    header + roleWith("duration", "duration: {default: 30s, max: 1h}"),
			want:    Problem{Line: first + 5, Field: "roles[0].duration.default"},
			wantErr: "30s is under the 1m minimum",
		},
		{
			name:    "negative max",
			give:    header + roleWith("duration", "duration: {max: -1h}"),
			want:    Problem{Line: first + 5, Field: "roles[0].duration.max"},
			wantErr: "must be positive",
		},
		{
			name:    "max over 12h",
			give:    header + roleWith("duration", "duration: {max: 13h}"),
			want:    Problem{Line: first + 5, Field: "roles[0].duration.max"},
			wantErr: "13h is over the 12h limit",
		},
		{
			name:    "max missing",
			give:    header + roleWith("duration", "duration: {default: 1h}"),
			want:    Problem{Line: first + 5, Field: "roles[0].duration.max"},
			wantErr: "is required",
		},
		{
			name:    "duration missing",
			give:    header + roleWithout("duration"),
			want:    Problem{Line: first, Field: "roles[0].duration"},
			wantErr: "is required",
		},
		{
			name:    "not a duration",
			give:    header + roleWith("duration", "duration: {max: 4}"),
			want:    Problem{Line: first + 5, Field: "roles[0].duration.max"},
			wantErr: "must be a duration",
		},
		{
			name:    "bad duration text",
			give:    header + roleWith("duration", "duration: {max: 4 hours}"),
			want:    Problem{Line: first + 5, Field: "roles[0].duration.max"},
			wantErr: `"4 hours" is not a duration`,
		},
		{
			name:    "approval deadline zero",
			give:    header + role + "    approvalDeadline: 0s\n",
			want:    Problem{Line: first + roleLines, Field: "roles[0].approvalDeadline"},
			wantErr: "must be positive",
		},
		{
			name:    "quorum below one",
			give:    header + role + "    approvals: 0\n",
			want:    Problem{Line: first + roleLines, Field: "roles[0].approvals"},
			wantErr: "must be at least 1",
		},
		{
			name:    "quorum above approvers",
			give:    header + role + "    approvals: 3\n",
			want:    Problem{Line: first + roleLines, Field: "roles[0].approvals"},
			wantErr: "needs 3 approval(s) but only 2 distinct approver(s)",
		},
		{
			name:    "quorum counts distinct approvers",
			give:    header + roleWith("approvers", "approvers: [group:leads, CAROL@example.com]") + "    approvals: 3\n",
			want:    Problem{Line: first + roleLines, Field: "roles[0].approvals"},
			wantErr: "only 2 distinct",
		},
		{
			name: "too many approvers",
			give: header + roleWith("approvers", "approvers: ["+func() string {
				var ids []string
				for i := range MaxApprovers + 1 {
					ids = append(ids, fmt.Sprintf("approver%d@example.com", i))
				}
				return strings.Join(ids, ", ")
			}()+"]"),
			want:    Problem{Line: first + 4, Field: "roles[0].approvers"},
			wantErr: "lists 51 approvers; at most 50",
		},
		{
			name:    "manual role without approvers",
			give:    header + roleWithout("approvers"),
			want:    Problem{Line: first, Field: "roles[0].approvers"},
			wantErr: "list at least one approver",
		},
		{
			name:    "unknown group in requesters",
			give:    header + roleWith("requesters", "requesters: [group:platfrom]"),
			want:    Problem{Line: first + 3, Field: "roles[0].requesters[0]"},
			wantErr: `unknown group "platfrom"`,
		},
		{
			name:    "unknown group in approvers",
			give:    header + roleWith("approvers", "approvers: [group:leads, group:ghosts]"),
			want:    Problem{Line: first + 4, Field: "roles[0].approvers[1]"},
			wantErr: `unknown group "ghosts"`,
		},
		{
			name:    "requester not an email",
			give:    header + roleWith("requesters", "requesters: [alice]"),
			want:    Problem{Line: first + 3, Field: "roles[0].requesters[0]"},
			wantErr: `"alice" is not an email address`,
		},
		{
			name:    "no requesters",
			give:    header + roleWith("requesters", "requesters: []"),
			want:    Problem{Line: first + 3, Field: "roles[0].requesters"},
			wantErr: "list at least one",
		},
		{
			name:    "requesters not a list",
			give:    header + roleWith("requesters", "requesters: alice@example.com"),
			want:    Problem{Line: first + 3, Field: "roles[0].requesters"},
			wantErr: "must be a list",
		},
		{
			name:    "bad ticket pattern",
			give:    header + role + "    ticket: {required: true, pattern: 'OPS-[0-9'}\n",
			want:    Problem{Line: first + roleLines, Field: "roles[0].ticket.pattern"},
			wantErr: "invalid regular expression",
		},
		{
			name:    "ticket required is not a boolean",
			give:    header + role + "    ticket: {required: yes}\n",
			want:    Problem{Line: first + roleLines, Field: "roles[0].ticket.required"},
			wantErr: "must be true or false",
		},
		{
			name:    "negative minLength",
			give:    header + role + "    justification: {minLength: -1}\n",
			want:    Problem{Line: first + roleLines, Field: "roles[0].justification.minLength"},
			wantErr: "must not be negative",
		},
		{
			name:    "autoApprove and breakGlass",
			give:    header + role + "    autoApprove: true\n    breakGlass: true\n",
			want:    Problem{Line: first + roleLines + 1, Field: "roles[0].breakGlass"},
			wantErr: "cannot both be true",
		},
		{
			name:    "bad principal",
			give:    strings.Replace(header, "user/bob", "group/bob", 1) + role,
			want:    Problem{Line: 8, Field: "principals.bob@example.com"},
			wantErr: `principal "group/bob" must be user/<name> or role/<name>`,
		},
		{
			name:    "principal identity not an email",
			give:    strings.Replace(header, "bob@example.com: user/bob", "bob: user/bob", 1) + role,
			want:    Problem{Line: 8, Field: "principals.bob"},
			wantErr: `"bob" is not an email address`,
		},
		{
			name:    "principal mapped twice ignoring case",
			give:    strings.Replace(header, "bob@example.com: user/bob", "ALICE@example.com: user/bob", 1) + role,
			want:    Problem{Line: 8, Field: "principals.ALICE@example.com"},
			wantErr: "mapped twice",
		},
		{
			name:    "group member not an email",
			give:    strings.Replace(header, "[alice@example.com, bob@example.com]", "[alice@example.com, bob]", 1) + role,
			want:    Problem{Line: 4, Field: "groups.platform[1]"},
			wantErr: `"bob" is not an email address`,
		},
		{
			name:    "group within a group",
			give:    strings.Replace(header, "[alice@example.com, bob@example.com]", "[alice@example.com, group:leads]", 1) + role,
			want:    Problem{Line: 4, Field: "groups.platform[1]"},
			wantErr: "a group cannot be used here",
		},
		{
			name:    "admin not an email",
			give:    header + role + "admins: [root]\n",
			want:    Problem{Line: first + roleLines, Field: "admins[0]"},
			wantErr: `"root" is not an email address`,
		},
		{
			name:    "break-glass that tells nobody",
			give:    strings.Replace(header, "securityContacts: [secops@example.com]\n", "", 1) + roleWithout("approvers") + "    breakGlass: true\n",
			want:    Problem{Line: first + roleLines - 2, Field: "roles[0].breakGlass"},
			wantErr: "nobody would be told",
		},
		{
			name:    "unknown anchor",
			give:    header + role + "    description: *nope\n",
			want:    Problem{Line: first + roleLines, Field: "roles[0].description"},
			wantErr: `unknown anchor "nope"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("catalog.yaml", []byte(tt.give))
			require.Error(t, err)
			assert.Nil(t, c)
			var verr *ValidationError
			require.ErrorAs(t, err, &verr)
			require.Len(t, verr.Problems, 1, "problems:\n%v", err)
			got := verr.Problems[0]
			assert.Equal(t, "catalog.yaml", got.File)
			assert.Equal(t, tt.want.Line, got.Line, "line; problem: %v", got)
			assert.Equal(t, tt.want.Field, got.Field)
			assert.Contains(t, got.Message, tt.wantErr)
			assert.Positive(t, got.Column)
		})
	}
}

// timeboxed is a timeboxed role with one statement, on line first+5.
func timeboxed(statement string) string {
	return `  - id: tb
    provider: iam-timeboxed-policy
    target:
      policy:
        Statement:
          - ` + statement + `
    requesters: [group:platform]
    autoApprove: true
    duration: {max: 1h}
`
}

func TestParseAccepts(t *testing.T) {
	tests := []struct {
		name string
		give string
		want func(t *testing.T, r Role) // called with the first role
	}{
		{
			name: "defaults",
			give: header + roleWith("duration", "duration: {max: 4h}"),
			want: func(t *testing.T, r Role) {
				assert.Equal(t, 1, r.Quorum)
				assert.Equal(t, time.Hour, r.DefaultDuration)
				assert.Equal(t, 4*time.Hour, r.MaxDuration)
				assert.Equal(t, 24*time.Hour, r.ApprovalDeadline)
				assert.Equal(t, 10, r.MinJustification)
				assert.False(t, r.TicketRequired)
				assert.Empty(t, r.TicketPattern)
				assert.Equal(t, access.ModeManual, r.Mode())
			},
		},
		{
			name: "default duration capped by a short max",
			give: header + roleWith("duration", "duration: {max: 20m}"),
			want: func(t *testing.T, r Role) { assert.Equal(t, 20*time.Minute, r.DefaultDuration) },
		},
		{
			name: "pattern with an optional ticket",
			give: header + role + "    ticket: {required: false, pattern: '[A-Z]+-[0-9]+'}\n",
			want: func(t *testing.T, r Role) {
				assert.False(t, r.TicketRequired)
				assert.Equal(t, "[A-Z]+-[0-9]+", r.TicketPattern)
			},
		},
		{
			name: "auto-approve with approvers, who are told",
			give: header + role + "    autoApprove: true\n",
			want: func(t *testing.T, r Role) { assert.Equal(t, access.ModeAuto, r.Mode()) },
		},
		{
			name: "auto-approve without approvers",
			give: header + roleWithout("approvers") + "    autoApprove: true\n",
			want: func(t *testing.T, r Role) { assert.Empty(t, r.Approvers) },
		},
		{
			name: "break-glass with approvers, who are told",
			give: header + role + "    breakGlass: true\n",
			want: func(t *testing.T, r Role) { assert.Equal(t, access.ModeBreakGlass, r.Mode()) },
		},
		{
			name: "minLength zero",
			give: header + role + "    justification: {minLength: 0}\n",
			want: func(t *testing.T, r Role) { assert.Zero(t, r.MinJustification) },
		},
		{
			name: "identities lowercased, groups kept as written",
			give: header + roleWith("requesters", "requesters: [group:platform, Erin@Example.COM]"),
			want: func(t *testing.T, r Role) {
				assert.Equal(t, []string{"group:platform", "erin@example.com"}, r.Requesters)
			},
		},
		{
			name: "large timeboxed policy when only IAM roles request it",
			give: header + bigPolicy("[erin@example.com]"),
			want: func(t *testing.T, r Role) {
				size := access.PolicySize(r.Target.PolicyDocument)
				assert.Greater(t, size, access.MaxUserInlinePolicySize)
				assert.Less(t, size, access.MaxRoleInlinePolicySize)
			},
		},
		{
			name: "timeboxed policy with Statement object and Condition",
			give: header + timeboxed("{Effect: Deny, NotAction: 's3:*', NotResource: '*', Condition: {Bool: {'aws:SecureTransport': 'false'}}}"),
			want: func(t *testing.T, r Role) {
				assert.JSONEq(t, `{"Statement":[{"Effect":"Deny","NotAction":"s3:*","NotResource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}`,
					r.Target.PolicyDocument)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("catalog.yaml", []byte(tt.give))
			require.NoError(t, err)
			require.NotEmpty(t, c.Roles)
			tt.want(t, c.Roles[0])
		})
	}
}

func TestParseAnchorsAndMergeKeys(t *testing.T) {
	give := strings.Replace(header, "version: 1\n", "version: 1\nadmins: &admins [carol@example.com]\n", 1) +
		"  - &base\n    " + strings.TrimPrefix(role, "  - ") +
		"  - <<: *base\n    id: r2\n    approvers: *admins\n"
	c, err := Parse("catalog.yaml", []byte(give))
	require.NoError(t, err)
	require.Len(t, c.Roles, 2)
	r2, ok := c.Role("r2")
	require.True(t, ok)
	assert.Equal(t, c.Roles[0].Target, r2.Target, "merged from the anchor")
	assert.Equal(t, []string{"group:platform"}, r2.Requesters)
	assert.Equal(t, []string{"carol@example.com"}, r2.Approvers, "explicit key wins over the merged one")
}

func TestParseReportsEveryProblem(t *testing.T) {
	give := `version: 1
admins: [root]
groups:
  platform: [alice@example.com]
principals:
  alice@example.com: user/alice
roles:
  - id: one
    provider: iam-group
    target: {group: admins}
    requesters: [group:platform, group:nope]
    approvers: [alice@example.com]
    duration: {default: 2h, max: 1h}
  - id: one
    provider: iam-policy
    target: {policyArn: 'arn:aws:iam::aws:policy/ReadOnlyAccess'}
    requesters: [alice@example.com]
    autoApprove: true
    breakGlass: true
    duration: {max: 24h}
`
	_, err := Parse("multi.yaml", []byte(give))
	var verr *ValidationError
	require.ErrorAs(t, err, &verr)

	var got []string
	for _, p := range verr.Problems {
		got = append(got, p.String())
	}
	assert.Equal(t, []string{
		`multi.yaml:2:10: admins[0]: "root" is not an email address`,
		`multi.yaml:11:34: roles[0].requesters[1]: unknown group "nope"`,
		`multi.yaml:13:34: roles[0].duration.max: 1h is less than default 2h`,
		`multi.yaml:14:9: roles[1].id: duplicate role id "one" (first defined on line 8)`,
		`multi.yaml:19:17: roles[1].breakGlass: autoApprove and breakGlass cannot both be true`,
		`multi.yaml:19:17: roles[1].breakGlass: nobody would be told: list approvers or securityContacts`,
		`multi.yaml:20:21: roles[1].duration.max: 24h is over the 12h limit for any role`,
	}, got)
	assert.Equal(t, strings.Join(got, "\n"), err.Error())
}

func TestProblemString(t *testing.T) {
	assert.Equal(t, "f.yaml:3:7: roles[0].id: is required",
		Problem{File: "f.yaml", Line: 3, Column: 7, Field: "roles[0].id", Message: "is required"}.String())
	assert.Equal(t, "f.yaml:1:1: YAML syntax error: x",
		Problem{File: "f.yaml", Line: 1, Column: 1, Message: "YAML syntax error: x"}.String())
}

func TestParseAliasBomb(t *testing.T) {
	// Each level doubles the expansions; the budget must stop it quickly.
	var b strings.Builder
	b.WriteString("version: 1\nroles:\n  - id: bomb\n    provider: iam-timeboxed-policy\n    target:\n      policy:\n        a0: &a0 [x, x]\n")
	for i := 1; i < 40; i++ {
		b.WriteString("        a" + strconv.Itoa(i) + ": &a" + strconv.Itoa(i) + " [*a" + strconv.Itoa(i-1) + ", *a" + strconv.Itoa(i-1) + "]\n")
	}
	b.WriteString("        Statement: *a39\n")
	done := make(chan error, 1)
	go func() {
		_, err := Parse("bomb.yaml", []byte(b.String()))
		done <- err
	}()
	select {
	case err := <-done:
		require.Error(t, err)
		assert.Contains(t, err.Error(), "too many alias expansions")
	case <-time.After(10 * time.Second):
		t.Fatal("Parse did not stop expanding aliases")
	}
}

// evalCatalog exercises Evaluate; see the cases for what each role is for.
const evalCatalog = `version: 1
admins: [admin@example.com]
securityContacts: [secops@example.com, carol@example.com]
groups:
  platform: [alice@example.com, bob@example.com]
  leads: [carol@example.com, dave@example.com]
principals:
  alice@example.com: user/alice
  bob@example.com: user/bob
  carol@example.com: user/carol
  dave@example.com: user/dave
  erin@example.com: role/erin-ops
roles:
  - id: prod-admin
    provider: iam-group
    target: {group: admins}
    requesters: [group:platform, group:leads, erin@example.com, nomap@example.com]
    approvers: [group:leads, alice@example.com]
    approvals: 2
    duration: {default: 1h, max: 4h}
    approvalDeadline: 2h
    ticket: {required: true, pattern: 'OPS-[0-9]+'}
    justification: {minLength: 20}
  - id: read-only
    provider: iam-policy
    target: {policyArn: 'arn:aws:iam::aws:policy/ReadOnlyAccess'}
    requesters: [group:platform, erin@example.com]
    approvers: [bob@example.com]
    duration: {max: 8h}
    ticket: {pattern: '[A-Z]+-[0-9]+'}
  - id: pair
    provider: iam-policy
    target: {policyArn: 'arn:aws:iam::aws:policy/ReadOnlyAccess'}
    requesters: [group:leads]
    approvers: [group:leads]
    duration: {max: 1h}
  - id: auto
    provider: iam-policy
    target: {policyArn: 'arn:aws:iam::aws:policy/ViewOnlyAccess'}
    requesters: [group:platform, group:leads]
    approvers: [group:leads]
    justification: {minLength: 0}
    duration: {max: 1h}
    autoApprove: true
  - id: glass
    provider: iam-policy
    target: {policyArn: 'arn:aws:iam::aws:policy/AdministratorAccess'}
    requesters: [group:leads]
    approvers: [dave@example.com, admin@example.com]
    duration: {max: 2h}
    breakGlass: true
`

const longEnough = "investigating incident INC-42 on prod"

func TestEvaluate(t *testing.T) {
	c, err := Parse("eval.yaml", []byte(evalCatalog))
	require.NoError(t, err)

	type want struct {
		RoleID           string
		Principal        string
		Duration         time.Duration
		Mode             access.Mode
		Approvers        []string
		Quorum           int
		ApprovalDeadline time.Duration
		Notify           []string
	}
	tests := []struct {
		name      string
		give      Input
		want      want
		wantErr   access.Kind
		wantField string
		wantMsg   string
	}{
		{
			name: "manual, requester removed from approvers",
			give: Input{Identity: "alice@example.com", RoleID: "prod-admin", Ticket: "OPS-1", Justification: longEnough, Duration: 2 * time.Hour},
			want: want{
				RoleID: "prod-admin", Principal: "user/alice", Duration: 2 * time.Hour, Mode: access.ModeManual,
				Approvers: []string{"carol@example.com", "dave@example.com"}, Quorum: 2, ApprovalDeadline: 2 * time.Hour,
				Notify: []string{"carol@example.com", "dave@example.com"},
			},
		},
		{
			name: "quorum met without the requester, who is in the approver list",
			give: Input{Identity: "carol@example.com", RoleID: "prod-admin", Ticket: "OPS-1", Justification: longEnough},
			want: want{
				RoleID: "prod-admin", Principal: "user/carol", Duration: time.Hour, Mode: access.ModeManual,
				Approvers: []string{"alice@example.com", "dave@example.com"}, Quorum: 2, ApprovalDeadline: 2 * time.Hour,
				Notify: []string{"alice@example.com", "dave@example.com"},
			},
		},
		{
			name: "identity compared without case",
			give: Input{Identity: " Bob@Example.COM ", RoleID: "prod-admin", Ticket: "OPS-7", Justification: longEnough},
			want: want{
				RoleID: "prod-admin", Principal: "user/bob", Duration: time.Hour, Mode: access.ModeManual,
				Approvers: []string{"alice@example.com", "carol@example.com", "dave@example.com"}, Quorum: 2, ApprovalDeadline: 2 * time.Hour,
				Notify: []string{"alice@example.com", "carol@example.com", "dave@example.com"},
			},
		},
		{
			name: "defaults applied",
			give: Input{Identity: "erin@example.com", RoleID: "read-only", Justification: "need to read"},
			want: want{
				RoleID: "read-only", Principal: "role/erin-ops", Duration: time.Hour, Mode: access.ModeManual,
				Approvers: []string{"bob@example.com"}, Quorum: 1, ApprovalDeadline: 24 * time.Hour,
				Notify: []string{"bob@example.com"},
			},
		},
		{
			name: "optional ticket that matches",
			give: Input{Identity: "alice@example.com", RoleID: "read-only", Ticket: "JIRA-12", Justification: "need to read", Duration: 8 * time.Hour},
			want: want{
				RoleID: "read-only", Principal: "user/alice", Duration: 8 * time.Hour, Mode: access.ModeManual,
				Approvers: []string{"bob@example.com"}, Quorum: 1, ApprovalDeadline: 24 * time.Hour,
				Notify: []string{"bob@example.com"},
			},
		},
		{
			name: "auto-approve tells the approvers",
			give: Input{Identity: "carol@example.com", RoleID: "auto"},
			want: want{
				RoleID: "auto", Principal: "user/carol", Duration: time.Hour, Mode: access.ModeAuto,
				Approvers: []string{"dave@example.com"}, Quorum: 1, ApprovalDeadline: 24 * time.Hour,
				Notify: []string{"dave@example.com"},
			},
		},
		{
			name: "break-glass tells approvers and security contacts",
			give: Input{Identity: "dave@example.com", RoleID: "glass", Justification: "prod is down, nobody answers"},
			want: want{
				RoleID: "glass", Principal: "user/dave", Duration: time.Hour, Mode: access.ModeBreakGlass,
				Approvers: []string{"admin@example.com"}, Quorum: 1, ApprovalDeadline: 24 * time.Hour,
				Notify: []string{"admin@example.com", "carol@example.com", "secops@example.com"},
			},
		},
		{
			name:    "unknown role",
			give:    Input{Identity: "alice@example.com", RoleID: "nope", Justification: longEnough},
			wantErr: access.KindNotFound,
			wantMsg: `unknown role "nope"`,
		},
		{
			name:    "no identity",
			give:    Input{RoleID: "read-only", Justification: longEnough},
			wantErr: access.KindUnauthorized,
		},
		{
			name:    "not a requester",
			give:    Input{Identity: "dave@example.com", RoleID: "read-only", Justification: longEnough},
			wantErr: access.KindForbidden,
			wantMsg: "may not request role read-only",
		},
		{
			name:    "no principal mapping",
			give:    Input{Identity: "nomap@example.com", RoleID: "prod-admin", Ticket: "OPS-1", Justification: longEnough},
			wantErr: access.KindForbidden,
			wantMsg: "no IAM principal is mapped to nomap@example.com",
		},
		{
			name:    "iam-group needs an IAM user",
			give:    Input{Identity: "erin@example.com", RoleID: "prod-admin", Ticket: "OPS-1", Justification: longEnough},
			wantErr: access.KindForbidden,
			wantMsg: "role/erin-ops, which is not an IAM user",
		},
		{
			name:    "self-approval removed leaves nobody",
			give:    Input{Identity: "bob@example.com", RoleID: "read-only", Justification: longEnough},
			wantErr: access.KindForbidden,
			wantMsg: "not enough approvers other than you",
		},
		{
			name: "quorum unreachable without the requester",
			give: Input{Identity: "carol@example.com", RoleID: "pair", Justification: longEnough},
			want: want{
				RoleID: "pair", Principal: "user/carol", Duration: time.Hour, Mode: access.ModeManual,
				Approvers: []string{"dave@example.com"}, Quorum: 1, ApprovalDeadline: 24 * time.Hour,
				Notify: []string{"dave@example.com"},
			},
		},
		{
			name:      "duration over max",
			give:      Input{Identity: "alice@example.com", RoleID: "prod-admin", Ticket: "OPS-1", Justification: longEnough, Duration: 5 * time.Hour},
			wantErr:   access.KindInvalid,
			wantField: "duration",
			wantMsg:   "5h is over the maximum of 4h",
		},
		{
			name:      "negative duration",
			give:      Input{Identity: "alice@example.com", RoleID: "prod-admin", Ticket: "OPS-1", Justification: longEnough, Duration: -time.Minute},
			wantErr:   access.KindInvalid,
			wantField: "duration",
		},
		{
			name:      "ticket missing",
			give:      Input{Identity: "alice@example.com", RoleID: "prod-admin", Ticket: "  ", Justification: longEnough},
			wantErr:   access.KindInvalid,
			wantField: "ticket",
			wantMsg:   "requires a ticket reference",
		},
		{
			name:      "ticket not matching",
			give:      Input{Identity: "alice@example.com", RoleID: "prod-admin", Ticket: "JIRA-1", Justification: longEnough},
			wantErr:   access.KindInvalid,
			wantField: "ticket",
			wantMsg:   "does not match",
		},
		{
			name:      "ticket pattern must match the whole ticket",
			give:      Input{Identity: "alice@example.com", RoleID: "prod-admin", Ticket: "see OPS-1 please", Justification: longEnough},
			wantErr:   access.KindInvalid,
			wantField: "ticket",
		},
		{
			name:      "optional ticket not matching",
			give:      Input{Identity: "alice@example.com", RoleID: "read-only", Ticket: "ops 1", Justification: longEnough},
			wantErr:   access.KindInvalid,
			wantField: "ticket",
		},
		{
			name:      "justification too short after trimming, counted in characters",
			give:      Input{Identity: "alice@example.com", RoleID: "read-only", Justification: "   ééééééééé   "},
			wantErr:   access.KindInvalid,
			wantField: "justification",
			wantMsg:   "at least 10 characters (got 9)",
		},
		{
			name:      "justification too long",
			give:      Input{Identity: "alice@example.com", RoleID: "read-only", Justification: strings.Repeat("x", maxJustification+1)},
			wantErr:   access.KindInvalid,
			wantField: "justification",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.Evaluate(tt.give)
			if tt.wantErr != "" {
				require.Error(t, err)
				var aerr *access.Error
				require.ErrorAs(t, err, &aerr)
				assert.Equal(t, tt.wantErr, aerr.Kind, "%v", err)
				assert.Equal(t, tt.wantField, aerr.Field)
				assert.Contains(t, aerr.Message, tt.wantMsg)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, want{
				RoleID: got.Role.ID, Principal: got.Principal.String(), Duration: got.Duration, Mode: got.Mode,
				Approvers: got.Approvers, Quorum: got.Quorum, ApprovalDeadline: got.ApprovalDeadline, Notify: got.Notify,
			})
		})
	}
}

func TestEvaluateQuorumWithoutRequester(t *testing.T) {
	c, err := Parse("eval.yaml", []byte(strings.Replace(evalCatalog,
		"    approvers: [group:leads]\n    duration: {max: 1h}\n  - id: auto",
		"    approvers: [group:leads]\n    approvals: 2\n    duration: {max: 1h}\n  - id: auto", 1)))
	require.NoError(t, err)
	_, err = c.Evaluate(Input{Identity: "carol@example.com", RoleID: "pair", Justification: longEnough})
	require.Error(t, err)
	assert.Equal(t, access.KindForbidden, access.KindOf(err))
	assert.Contains(t, err.Error(), "not enough approvers other than you")
}

func TestEvaluateHandBuiltCatalog(t *testing.T) {
	// Catalogs built in code (as tests elsewhere do) have no index and no
	// compiled pattern; Evaluate must still work.
	c := &Catalog{
		Groups:     map[string][]string{"ops": {"Bob@example.com"}},
		Principals: map[string]access.Principal{"alice@example.com": {Kind: access.PrincipalUser, Name: "alice"}},
		Roles: []Role{{
			ID: "r", Provider: access.ProviderIAMPolicy, Target: access.Target{PolicyARN: "arn:aws:iam::aws:policy/X"},
			Requesters: []string{"Alice@example.com"}, Approvers: []string{"group:ops"}, Quorum: 1,
			DefaultDuration: time.Hour, MaxDuration: time.Hour, TicketPattern: "T-[0-9]+",
		}},
	}
	d, err := c.Evaluate(Input{Identity: "alice@example.com", RoleID: "r", Ticket: "T-1"})
	require.NoError(t, err)
	assert.Equal(t, []string{"bob@example.com"}, d.Approvers)

	_, err = c.Evaluate(Input{Identity: "alice@example.com", RoleID: "r", Ticket: "X-1"})
	assert.Equal(t, access.KindInvalid, access.KindOf(err))
}
