package deploy

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jitaccess/jit/internal/access"
	"github.com/jitaccess/jit/internal/config"
	"github.com/jitaccess/jit/internal/dynamo"
)

// The tests in this file pin the resources and conditions of every policy
// statement, not just its actions: what each function may touch, and under
// which conditions.

func sub(s string) map[string]any     { return map[string]any{"Fn::Sub": s} }
func ref(id string) map[string]any    { return map[string]any{"Ref": id} }
func getAtt(id string) map[string]any { return map[string]any{"Fn::GetAtt": []any{id, "Arn"}} }

var (
	groupARN      = sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:group/${GrantableGroupPrefix}*")
	principalARNs = []any{
		sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:user${PrincipalPath}*"),
		sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:role${PrincipalPath}*"),
	}
	scheduleARN   = sub("arn:${AWS::Partition}:scheduler:${AWS::Region}:${AWS::AccountId}:schedule/${ScheduleGroup}/*")
	sesIdentities = sub("arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/*")
	brokerRoles   = sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:role/jit-broker/*")
	brokerPath    = sub("/jit-broker/${AWS::StackName}/")
	policyARNCond = map[string]any{"iam:PolicyARN": ref("GrantablePolicyArns")}
	boundaryCond  = map[string]any{"iam:PermissionsBoundary": ref("PrincipalBoundaryArn")}
)

// The IAM provider actions by what they act on and how they are fenced.
var (
	groupActions    = []string{"iam:AddUserToGroup", "iam:RemoveUserFromGroup"}
	readActions     = []string{"iam:ListGroupsForUser", "iam:ListAttachedUserPolicies", "iam:ListAttachedRolePolicies", "iam:GetUserPolicy", "iam:GetRolePolicy"}
	attachActions   = []string{"iam:AttachUserPolicy", "iam:AttachRolePolicy"}
	detachActions   = []string{"iam:DetachUserPolicy", "iam:DetachRolePolicy"}
	inlineActions   = []string{"iam:PutUserPolicy", "iam:PutRolePolicy", "iam:DeleteUserPolicy", "iam:DeleteRolePolicy"}
	roleMutations   = []string{"iam:AttachRolePolicy", "iam:DetachRolePolicy", "iam:PutRolePolicy", "iam:DeleteRolePolicy"}
	tooBroadPolices = []string{"AdministratorAccess", "IAMFullAccess", "PowerUserAccess"}
)

func fnStatements(t *testing.T, tpl *Template, fn string) []Statement {
	t.Helper()
	stmts, err := tpl.FunctionStatements(LogicalID(fn))
	require.NoError(t, err)
	return stmts
}

func overlaps(a, b []string) bool {
	return slices.ContainsFunc(a, func(x string) bool { return slices.Contains(b, x) })
}

func subsetOf(a, b []string) bool {
	return !slices.ContainsFunc(a, func(x string) bool { return !slices.Contains(b, x) })
}

// wildcardAnchors are what may stand right before a "*" in an Allow
// resource: the group prefix, the schedule group, the principal path (and
// SES identities, only with the ses:FromAddress condition).
var wildcardAnchors = []string{
	"group/${GrantableGroupPrefix}", ":schedule/${ScheduleGroup}/", ":user${PrincipalPath}", ":role${PrincipalPath}",
}

func TestEveryResourceComesFromTheTemplate(t *testing.T) {
	tpl := loadTemplate(t)
	all, err := tpl.AllStatements()
	require.NoError(t, err)
	params := tpl.Defaults(nil)
	for _, stmt := range all {
		where := stmt.Source + " " + stmt.Sid
		require.NotEmpty(t, stmt.Resources, "%s: no Resource", where)
		for _, r := range stmt.Resources {
			_, ok := tpl.Resolve(r, params)
			if !assert.True(t, ok, "%s: resource %v is not built from template resources, parameters and pseudo parameters only", where, r) {
				continue
			}
			if _, isStr := r.(string); isStr {
				assert.Fail(t, "literal resource", "%s: %q; build ARNs with !Sub from ${AWS::Partition}, ${AWS::AccountId}, parameters and resources", where, r)
				continue
			}
			s := Str(Map(r)["Fn::Sub"])
			if s == "" {
				continue // Ref or GetAtt of a template resource
			}
			assert.True(t, strings.HasPrefix(s, "arn:${AWS::Partition}:") || regexp.MustCompile(`^\$\{[A-Za-z0-9]+\.Arn\}`).MatchString(s),
				"%s: %q starts neither with arn:${AWS::Partition}: nor with a resource's ARN", where, s)
			if i := strings.Index(s, "*"); i >= 0 {
				before := s[:i]
				assert.Equal(t, len(s)-1, i, "%s: %q: a wildcard only at the end", where, s)
				if stmt.Effect == "Deny" {
					continue // a Deny may be as wide as it likes
				}
				switch {
				case slices.ContainsFunc(wildcardAnchors, func(a string) bool { return strings.HasSuffix(before, a) }):
				case s == Str(sesIdentities["Fn::Sub"]):
					assert.Equal(t, map[string]any{"StringEquals": map[string]any{"ses:FromAddress": ref("SenderEmail")}}, Map(stmt.Condition),
						"%s: SES identities only with From = SenderEmail", where)
				default:
					assert.Fail(t, "wildcard resource", "%s: %q: \"*\" only after the group prefix, the schedule group or the principal path", where, s)
				}
			}
		}
	}
}

func TestProviderScopeIsPinned(t *testing.T) {
	tpl := loadTemplate(t)
	assert.Equal(t, map[string]any{"Fn::Not": []any{map[string]any{"Fn::Equals": []any{ref("PrincipalBoundaryArn"), ""}}}},
		tpl.Conditions["HasPrincipalBoundary"], "HasPrincipalBoundary is true exactly when PrincipalBoundaryArn is set")
	for _, fn := range config.Functions {
		t.Run(fn, func(t *testing.T) {
			seen := map[string]int{}
			for _, s := range fnStatements(t, tpl, fn) {
				if s.Effect != "Allow" {
					continue
				}
				where := s.Source + " " + s.Sid
				var iam []string
				for _, a := range s.Actions {
					if strings.HasPrefix(a, "iam:") && a != "iam:PassRole" {
						iam = append(iam, a)
						seen[a]++
					}
				}
				if len(iam) == 0 {
					continue
				}
				require.Equal(t, iam, s.Actions, "%s: IAM provider actions are not mixed with others", where)
				variants := ConditionVariants(s.Condition)
				switch {
				case subsetOf(iam, groupActions):
					assert.Equal(t, []any{groupARN}, s.Resources, "%s: only groups named GrantableGroupPrefix*", where)
					assert.Empty(t, s.When, where)
				case subsetOf(iam, readActions):
					assert.Equal(t, principalARNs, s.Resources, "%s: principals under PrincipalPath only", where)
					assert.Empty(t, s.When, where)
				case subsetOf(iam, attachActions):
					assert.Equal(t, principalARNs, s.Resources, "%s: principals under PrincipalPath only", where)
					assert.Empty(t, s.When, where)
					require.Subset(t, []string{"", "HasPrincipalBoundary", "!HasPrincipalBoundary"}, keys(variants), where)
					for when, c := range variants {
						assert.Equal(t, policyARNCond, Map(c["ArnEquals"]), "%s (%q): attach only GrantablePolicyArns (iam:PolicyARN)", where, when)
						if when != "!HasPrincipalBoundary" {
							assert.Equal(t, boundaryCond, Map(c["StringEquals"]), "%s (%q): attach only to principals with the boundary", where, when)
						}
					}
					if _, plain := variants[""]; !plain {
						assert.Contains(t, variants, "HasPrincipalBoundary", where)
					}
				case subsetOf(iam, detachActions):
					assert.Equal(t, principalARNs, s.Resources, "%s: principals under PrincipalPath only", where)
					for when, c := range variants {
						assert.Equal(t, policyARNCond, Map(c["ArnEquals"]), "%s (%q): detach only GrantablePolicyArns", where, when)
					}
				case subsetOf(iam, inlineActions):
					assert.Equal(t, principalARNs, s.Resources, "%s: principals under PrincipalPath only", where)
					assert.Equal(t, []string{"HasPrincipalBoundary"}, s.When,
						"%s: inline policies (whose name and content IAM cannot fence) only exist with PrincipalBoundaryArn", where)
					assert.Equal(t, map[string]map[string]any{"": {"StringEquals": boundaryCond}}, variants,
						"%s: inline policies only on principals that carry the boundary", where)
				default:
					assert.Fail(t, "unexpected IAM statement", "%s: %v", where, iam)
				}
			}
			for _, a := range slices.Concat(groupActions, readActions, attachActions, detachActions, inlineActions) {
				assert.Equal(t, 1, seen[a], "%s: %s is allowed by exactly one statement", fn, a)
			}
		})
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// holds evaluates a template condition of the forms the template uses
// (Fn::Not, Fn::Equals of a Ref and a string).
func holds(t *testing.T, tpl *Template, name string, params map[string]string) bool {
	t.Helper()
	neg := strings.HasPrefix(name, "!")
	c := Map(tpl.Conditions[strings.TrimPrefix(name, "!")])
	require.NotNil(t, c, "no condition %s", name)
	var eval func(v any) bool
	eval = func(v any) bool {
		m := Map(v)
		if n := List(m["Fn::Not"]); len(n) == 1 {
			return !eval(n[0])
		}
		e := List(m["Fn::Equals"])
		require.Len(t, e, 2, "condition %s: only Fn::Not and Fn::Equals are evaluated", name)
		a, ok1 := tpl.Resolve(e[0], params)
		b, ok2 := tpl.Resolve(e[1], params)
		require.True(t, ok1 && ok2, "condition %s", name)
		return a == b
	}
	return eval(c) != neg
}

// allows reports whether some Allow statement that exists with params lets
// action act on arn, not counting conditions; Deny statements win.
func allows(t *testing.T, tpl *Template, stmts []Statement, params map[string]string, action, arn string) bool {
	t.Helper()
	allowed := false
	for _, s := range stmts {
		exists := true
		for _, w := range s.When {
			exists = exists && holds(t, tpl, w, params)
		}
		if !exists || !slices.Contains(s.Actions, action) {
			continue
		}
		for _, r := range s.Resources {
			p, ok := tpl.Resolve(r, params)
			require.True(t, ok)
			if GlobMatch(p, arn) {
				if s.Effect == "Deny" {
					return false
				}
				allowed = true
			}
		}
	}
	return allowed
}

const acct = "arn:aws:iam::123456789012:"

func TestDefaultsGrantNothingArbitrary(t *testing.T) {
	tpl := loadTemplate(t)
	params := tpl.Defaults(nil)
	pattern := regexp.MustCompile(Str(tpl.Parameters["PrincipalPath"]["AllowedPattern"]))
	assert.False(t, pattern.MatchString("/"), `PrincipalPath "/" (every principal of the account) is refused`)
	assert.True(t, pattern.MatchString(params["PrincipalPath"]), "the default PrincipalPath is allowed")
	assert.True(t, pattern.MatchString("/jit/prod/"))
	assert.NotEqual(t, "/", params["PrincipalPath"])
	assert.Empty(t, params["PrincipalBoundaryArn"], "no boundary by default (so no inline policies either)")
	for _, p := range tooBroadPolices {
		assert.NotContains(t, params["GrantablePolicyArns"], p, "GrantablePolicyArns must not offer %s by default", p)
	}

	withBoundary := tpl.Defaults(map[string]string{"PrincipalBoundaryArn": acct + "policy/jit-principal-boundary"})
	everywhere := tpl.Defaults(map[string]string{"PrincipalPath": "/"}) // refused by the pattern; the Deny still holds
	for _, fn := range config.Functions {
		stmts := fnStatements(t, tpl, fn)
		for _, a := range inlineActions {
			kind := "user"
			if strings.Contains(a, "Role") {
				kind = "role"
			}
			assert.False(t, allows(t, tpl, stmts, params, a, acct+kind+"/jit/alice"), "%s: %s without a boundary", fn, a)
			assert.True(t, allows(t, tpl, stmts, withBoundary, a, acct+kind+"/jit/alice"), "%s: %s with a boundary", fn, a)
			assert.False(t, allows(t, tpl, stmts, withBoundary, a, acct+kind+"/alice"), "%s: %s outside PrincipalPath", fn, a)
		}
		for _, a := range slices.Concat(attachActions, detachActions, readActions) {
			kind := "user"
			if strings.Contains(a, "Role") {
				kind = "role"
			}
			assert.True(t, allows(t, tpl, stmts, params, a, acct+kind+"/jit/alice"), "%s: %s under PrincipalPath", fn, a)
			assert.False(t, allows(t, tpl, stmts, params, a, acct+kind+"/alice"), "%s: %s at /", fn, a)
			assert.False(t, allows(t, tpl, stmts, params, a, acct+kind+"/other/jit/alice"), "%s: %s elsewhere", fn, a)
		}
		for _, a := range groupActions {
			assert.True(t, allows(t, tpl, stmts, params, a, acct+"group/jit-demo-admins"), "%s: %s on a jit- group", fn, a)
			assert.False(t, allows(t, tpl, stmts, params, a, acct+"group/Admins"), "%s: %s on another group", fn, a)
		}
		for _, a := range roleMutations {
			for _, p := range []map[string]string{withBoundary, everywhere} {
				assert.False(t, allows(t, tpl, stmts, p, a, acct+"role/jit-broker/jit/jit-intake-role"), "%s: %s on the broker's own role (PrincipalPath %s)", fn, a, p["PrincipalPath"])
			}
		}
	}
}

func TestBrokerNeverChangesItsOwnRoles(t *testing.T) {
	tpl := loadTemplate(t)
	assert.Equal(t, brokerPath, Map(tpl.Globals["Function"])["RolePath"], "Globals.Function.RolePath puts every function role under /jit-broker/<stack>/")
	assert.Equal(t, brokerPath, tpl.Resources["SchedulerRole"].Properties["Path"], "SchedulerRole path")
	deny := Str(brokerRoles["Fn::Sub"])
	assert.True(t, strings.HasPrefix(deny, "arn:${AWS::Partition}:iam::${AWS::AccountId}:role"+strings.TrimSuffix(Str(brokerPath["Fn::Sub"]), "${AWS::StackName}/")),
		"the Deny covers RolePath")
	for _, fn := range config.Functions {
		id := LogicalID(fn)
		assert.Nil(t, tpl.Resources[id].Properties["RolePath"], "%s keeps the global RolePath", id)
		var denies []Statement
		for _, s := range fnStatements(t, tpl, fn) {
			if s.Effect == "Deny" {
				denies = append(denies, s)
			}
		}
		require.Len(t, denies, 1, "%s: one Deny statement (NeverTheBrokersOwnRoles)", id)
		d := denies[0]
		assert.Equal(t, "NeverTheBrokersOwnRoles", d.Sid)
		assert.Empty(t, d.When, "the Deny always exists")
		assert.Nil(t, d.Condition, "the Deny is unconditional")
		assert.Equal(t, []any{brokerRoles}, d.Resources)
		var allowedRole []string
		for _, a := range Calls[fn] {
			if strings.HasPrefix(a, "iam:") && strings.Contains(a, "Role") && a != "iam:PassRole" &&
				!strings.HasPrefix(a, "iam:Get") && !strings.HasPrefix(a, "iam:List") {
				allowedRole = append(allowedRole, a)
			}
		}
		assert.ElementsMatch(t, allowedRole, d.Actions, "%s: the Deny names every role-changing action the function may call", id)
	}
}

func TestQueriesNameTheIndexesTheCodeUses(t *testing.T) {
	tpl := loadTemplate(t)
	var indexes []string
	for _, g := range dynamo.StateTable("x").GlobalSecondaryIndexes {
		indexes = append(indexes, *g.IndexName)
	}
	for _, fn := range config.Functions {
		t.Run(fn, func(t *testing.T) {
			assert.Equal(t, slices.Contains(Calls[fn], "dynamodb:Query"), len(Queries[fn]) > 0, "Queries and Calls agree on dynamodb:Query")
			for _, q := range Queries[fn] {
				if q.Index != "" {
					assert.Contains(t, indexes, q.Index)
				}
			}
			var got []Query
			for _, s := range fnStatements(t, tpl, fn) {
				if s.Effect != "Allow" || !slices.Contains(s.Actions, "dynamodb:Query") {
					continue
				}
				where := s.Source + " " + s.Sid
				assert.Equal(t, []string{"dynamodb:Query"}, s.Actions, "%s: Query statements hold only Query", where)
				leading := Strings(Map(Map(s.Condition)["ForAllValues:StringLike"])["dynamodb:LeadingKeys"])
				for _, r := range s.Resources {
					switch {
					case reflectEqual(r, getAtt("StateTable")):
						require.Len(t, leading, 1, "%s: a base-table Query only with dynamodb:LeadingKeys", where)
						got = append(got, Query{Table: "StateTable", LeadingKeys: leading[0]})
					case reflectEqual(r, getAtt("AuditTable")):
						got = append(got, Query{Table: "AuditTable"})
					default:
						m := regexp.MustCompile(`^\$\{StateTable\.Arn\}/index/([A-Za-z0-9_.-]+)$`).FindStringSubmatch(Str(Map(r)["Fn::Sub"]))
						if assert.NotNil(t, m, "%s: Query on %v", where, r) {
							got = append(got, Query{Table: "StateTable", Index: m[1]})
						}
					}
				}
			}
			assert.ElementsMatch(t, Queries[fn], got, "what the template lets %s query vs what its code queries (deploy.Queries)", fn)
		})
	}
}

func reflectEqual(a, b any) bool { return fmt.Sprintf("%#v", a) == fmt.Sprintf("%#v", b) }

// Every DynamoDB permission names the state table, one of its indexes or the
// audit table by the resources' ARNs; no pattern can reach the audit table.
func TestDynamoResourcesAreTheTables(t *testing.T) {
	tpl := loadTemplate(t)
	all, err := tpl.AllStatements()
	require.NoError(t, err)
	for _, s := range all {
		if !slices.ContainsFunc(s.Actions, func(a string) bool { return strings.HasPrefix(a, "dynamodb:") }) {
			continue
		}
		where := s.Source + " " + s.Sid
		for _, r := range s.Resources {
			p, ok := tpl.Resolve(r, tpl.Defaults(nil))
			require.True(t, ok, where)
			assert.Regexp(t, `^<(StateTable\.Arn>(/index/[A-Za-z0-9_.-]+)?|AuditTable\.Arn>)$`, p, "%s: DynamoDB resource %v", where, r)
		}
		assert.True(t, slices.ContainsFunc(s.Actions, func(a string) bool { return strings.HasPrefix(a, "dynamodb:") }) &&
			!slices.ContainsFunc(s.Actions, func(a string) bool { return !strings.HasPrefix(a, "dynamodb:") }), "%s: DynamoDB actions are not mixed with others", where)
	}
	for _, fn := range config.Functions {
		for _, s := range fnStatements(t, tpl, fn) {
			if overlaps(s.Actions, []string{"dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchGetItem"}) {
				assert.Equal(t, []any{getAtt("StateTable")}, s.Resources, "%s %s %s: item access on the state table only", fn, s.Source, s.Sid)
			}
		}
	}
}

// Finding: audit writes must not be able to overwrite or remove records.
func TestAuditWritesArePutsInsideTransactions(t *testing.T) {
	tpl := loadTemplate(t)
	inTx := map[string]map[string]any{"": {"ForAnyValue:StringEquals": map[string]any{"dynamodb:EnclosingOperation": []any{"TransactWriteItems"}}}}
	for _, fn := range config.Functions {
		t.Run(fn, func(t *testing.T) {
			var puts int
			for _, s := range fnStatements(t, tpl, fn) {
				if !RefersTo(s.Resources, "AuditTable") {
					continue
				}
				where := s.Source + " " + s.Sid
				require.Equal(t, "Allow", s.Effect, where)
				assert.Equal(t, []any{getAtt("AuditTable")}, s.Resources, "%s: the audit table's own ARN, nothing else", where)
				assert.Empty(t, s.When, where)
				for _, a := range []string{"dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem",
					"dynamodb:PartiQLInsert", "dynamodb:PartiQLUpdate", "dynamodb:PartiQLDelete", "dynamodb:DeleteTable", "dynamodb:UpdateTable"} {
					assert.NotContains(t, s.Actions, a, "%s: %s on the audit table", where, a)
				}
				switch {
				case slices.Contains(s.Actions, "dynamodb:PutItem"):
					puts++
					assert.Equal(t, []string{"dynamodb:PutItem"}, s.Actions, "%s: the append is PutItem alone", where)
					assert.Equal(t, inTx, ConditionVariants(s.Condition), "%s: PutItem only inside TransactWriteItems", where)
				case slices.Equal(s.Actions, []string{"dynamodb:Query"}):
					assert.Equal(t, config.Intake, fn, "%s: only intake reads trails", where)
				default:
					assert.Fail(t, "audit table", "%s: %v", where, s.Actions)
				}
			}
			assert.Equal(t, 1, puts, "one audit append statement")
		})
	}
}

func TestOtherResourcesArePinned(t *testing.T) {
	tpl := loadTemplate(t)
	for _, fn := range config.Functions {
		for _, s := range fnStatements(t, tpl, fn) {
			where := fn + " " + s.Source + " " + s.Sid
			switch {
			case slices.Contains(s.Actions, "ses:SendEmail"):
				assert.Equal(t, []string{"ses:SendEmail"}, s.Actions, where)
				assert.Equal(t, []any{sesIdentities}, s.Resources, where)
				assert.Equal(t, map[string]any{"StringEquals": map[string]any{"ses:FromAddress": ref("SenderEmail")}}, Map(s.Condition),
					"%s: mail only from SenderEmail", where)
			case overlaps(s.Actions, []string{"scheduler:CreateSchedule", "scheduler:DeleteSchedule"}):
				assert.Equal(t, []any{scheduleARN}, s.Resources, "%s: schedules of the stack's group only", where)
			case slices.Contains(s.Actions, "iam:PassRole"):
				assert.Equal(t, []string{"iam:PassRole"}, s.Actions, where)
				assert.Equal(t, []any{getAtt("SchedulerRole")}, s.Resources, where)
				assert.Equal(t, map[string]any{"StringEquals": map[string]any{"iam:PassedToService": "scheduler.amazonaws.com"}}, Map(s.Condition), where)
			case slices.Contains(s.Actions, "secretsmanager:GetSecretValue"):
				assert.Equal(t, []any{ref("SigningSecret")}, s.Resources, where)
			}
		}
	}
}

type exampleCatalog struct {
	Principals map[string]string `yaml:"principals"`
	Roles      []struct {
		ID       string `yaml:"id"`
		Provider string `yaml:"provider"`
		Target   struct {
			Group     string `yaml:"group"`
			PolicyArn string `yaml:"policyArn"`
		} `yaml:"target"`
	} `yaml:"roles"`
}

// The example catalog (the default CATALOG) must be grantable with the
// parameters of every samconfig environment: its groups carry the prefix,
// its policies are listed, its principals (created under PrincipalPath)
// fall under the template's principal resources, and iam-timeboxed-policy
// roles have the boundary they need.
func TestExampleCatalogIsWithinTheGrantableScope(t *testing.T) {
	tpl := loadTemplate(t)
	b, err := os.ReadFile(filepath.Join(root, "infra", "catalog.example.yaml"))
	require.NoError(t, err)
	var cat exampleCatalog
	require.NoError(t, yaml.Unmarshal(b, &cat))
	require.NotEmpty(t, cat.Roles)
	require.NotEmpty(t, cat.Principals)

	envs, err := LoadSamconfig(filepath.Join(root, "samconfig.toml"))
	require.NoError(t, err)
	require.Contains(t, envs, "default")
	require.Contains(t, envs, "dev")
	pathPattern := regexp.MustCompile(Str(tpl.Parameters["PrincipalPath"]["AllowedPattern"]))
	boundaryPattern := regexp.MustCompile(Str(tpl.Parameters["PrincipalBoundaryArn"]["AllowedPattern"]))
	stmts := fnStatements(t, tpl, config.Grant)

	for env, over := range envs {
		t.Run(env, func(t *testing.T) {
			for name := range over {
				assert.Contains(t, tpl.Parameters, name, "samconfig %s overrides an unknown parameter", env)
			}
			params := tpl.Defaults(over)
			prefix := params["GrantableGroupPrefix"]
			require.NotEmpty(t, prefix, "GrantableGroupPrefix must not be empty (every group)")
			assert.True(t, pathPattern.MatchString(params["PrincipalPath"]), "PrincipalPath %q", params["PrincipalPath"])
			assert.NotEqual(t, "/", params["PrincipalPath"])
			boundary := params["PrincipalBoundaryArn"]
			assert.True(t, boundaryPattern.MatchString(strings.ReplaceAll(boundary, "REPLACE-ME-ACCOUNT-ID", "123456789012")), "PrincipalBoundaryArn %q", boundary)
			policies := strings.Split(params["GrantablePolicyArns"], ",")
			for _, p := range tooBroadPolices {
				assert.NotContains(t, params["GrantablePolicyArns"], p, "samconfig %s offers %s", env, p)
			}
			usedPolicies := map[string]bool{}
			for _, r := range cat.Roles {
				switch r.Provider {
				case string(access.ProviderIAMGroup):
					assert.True(t, strings.HasPrefix(r.Target.Group, prefix), "role %s: group %s lacks the prefix %q", r.ID, r.Target.Group, prefix)
					assert.True(t, allows(t, tpl, stmts, params, "iam:AddUserToGroup", acct+"group/"+r.Target.Group), "role %s", r.ID)
				case string(access.ProviderIAMPolicy):
					assert.Contains(t, policies, r.Target.PolicyArn, "role %s: %s is not in GrantablePolicyArns", r.ID, r.Target.PolicyArn)
					usedPolicies[r.Target.PolicyArn] = true
				case string(access.ProviderIAMTimeboxedPolicy):
					assert.NotEmpty(t, boundary, "role %s (iam-timeboxed-policy) needs PrincipalBoundaryArn: without it the broker may not put inline policies", r.ID)
				default:
					assert.Fail(t, "unknown provider", "role %s: %s", r.ID, r.Provider)
				}
			}
			for _, p := range policies {
				assert.True(t, usedPolicies[p], "GrantablePolicyArns lists %s, which no example role uses", p)
			}
			for identity, s := range cat.Principals {
				p, err := access.ParsePrincipal(s)
				require.NoError(t, err, identity)
				arn := acct + string(p.Kind) + params["PrincipalPath"] + p.Name
				read := "iam:ListAttachedUserPolicies"
				if p.Kind == access.PrincipalRole {
					read = "iam:ListAttachedRolePolicies"
				}
				assert.True(t, allows(t, tpl, stmts, params, read, arn), "%s (%s) under PrincipalPath", identity, arn)
				assert.False(t, allows(t, tpl, stmts, params, read, acct+string(p.Kind)+"/"+p.Name), "%s at path / is outside the scope", identity)
			}
		})
	}
}
