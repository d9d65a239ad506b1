package deploy

import (
	"fmt"
	"go/ast"
	"go/parser"
	gotoken "go/token"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jitaccess/jit/internal/api"
	"github.com/jitaccess/jit/internal/config"
	"github.com/jitaccess/jit/internal/dynamo"
	"github.com/jitaccess/jit/internal/email"
	"github.com/jitaccess/jit/internal/iamgrant"
	"github.com/jitaccess/jit/internal/schedule"
	"github.com/jitaccess/jit/internal/token"
	"github.com/jitaccess/jit/internal/wire"
)

const root = "../.."

func loadTemplate(t *testing.T) *Template {
	t.Helper()
	tpl, err := LoadTemplate(filepath.Join(root, "template.yaml"))
	require.NoError(t, err)
	return tpl
}

// functionNames is config.Functions plus any directory under functions/, so
// a new function without a template resource fails here.
func functionNames(t *testing.T) []string {
	t.Helper()
	names := slices.Clone(config.Functions)
	entries, err := os.ReadDir(filepath.Join(root, "functions"))
	if err != nil && !os.IsNotExist(err) {
		require.NoError(t, err)
	}
	for _, e := range entries {
		if e.IsDir() && !slices.Contains(names, e.Name()) {
			t.Errorf("functions/%s is not in config.Functions (and so has no Required environment)", e.Name())
			names = append(names, e.Name())
		}
	}
	return names
}

func TestEveryFunctionIsBuiltByTheMakefile(t *testing.T) {
	tpl := loadTemplate(t)
	mk, err := LoadMakefile(filepath.Join(root, "Makefile"))
	require.NoError(t, err)
	for _, fn := range functionNames(t) {
		id := LogicalID(fn)
		t.Run(fn, func(t *testing.T) {
			r, ok := tpl.Resources[id]
			require.True(t, ok, "template has no resource %s for functions/%s", id, fn)
			assert.Equal(t, "AWS::Serverless::Function", r.Type)
			assert.Equal(t, "makefile", Str(r.Metadata["BuildMethod"]), "Metadata.BuildMethod")
			assert.Equal(t, "provided.al2023", tpl.FunctionProperty(id, "Runtime"))
			assert.Equal(t, []any{"arm64"}, tpl.FunctionProperty(id, "Architectures"))
			assert.Equal(t, "bootstrap", tpl.FunctionProperty(id, "Handler"))
			assert.Equal(t, "JSON", Str(Map(tpl.FunctionProperty(id, "LoggingConfig"))["LogFormat"]), "LoggingConfig.LogFormat")
			assert.Equal(t, map[string]any{"Fn::Sub": "${AWS::StackName}-" + fn}, r.Properties["FunctionName"],
				"FunctionName: the other functions build its ARN from this name")

			// sam build runs the Makefile in CodeUri with target build-<LogicalId>.
			codeURI := Str(tpl.FunctionProperty(id, "CodeUri"))
			require.NotEmpty(t, codeURI, "CodeUri")
			assert.FileExists(t, filepath.Join(root, codeURI, "Makefile"), "CodeUri must hold the Makefile")
			rule, stem, recipe, ok := mk.Rule("build-" + id)
			require.True(t, ok, "Makefile has no rule for build-%s", id)
			if stem != "" {
				assert.Equal(t, fn, strings.ToLower(stem), "rule %s builds ./functions/<lowercased stem>", rule)
				assert.Contains(t, strings.Join(recipe, "\n"), "tr 'A-Z' 'a-z'", "rule %s lowercases its stem", rule)
			}
			cmd := mk.Expand(strings.Join(recipe, "\n"))
			for _, want := range []string{
				"CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64", "-tags lambda.norpc", "-trimpath", `-ldflags "-s -w"`,
				"-o $(ARTIFACTS_DIR)/bootstrap", "./functions/",
				"$(ARTIFACTS_DIR)/catalog.yaml",
			} {
				assert.Contains(t, cmd, want, "recipe of %s", rule)
			}
		})
	}
	// The catalog the build bundles by default exists.
	catalog := mk.Vars["CATALOG"]
	require.NotEmpty(t, catalog, "Makefile sets CATALOG ?= <default catalog>")
	assert.FileExists(t, filepath.Join(root, catalog))
}

// knownVariables is every variable config reads, from config.Config.Env.
func knownVariables() []string {
	var c config.Config
	v := reflect.ValueOf(&c).Elem()
	for i := range v.NumField() {
		if v.Field(i).Kind() == reflect.String {
			v.Field(i).SetString("x")
		}
	}
	return slices.Sorted(maps.Keys(c.Env()))
}

func TestEnvironmentMatchesConfig(t *testing.T) {
	tpl := loadTemplate(t)
	known := knownVariables()
	require.Contains(t, known, "STATE_TABLE")
	for _, fn := range config.Functions {
		id := LogicalID(fn)
		t.Run(fn, func(t *testing.T) {
			env := tpl.FunctionEnvironment(id)
			for _, name := range config.Required[fn] {
				assert.NotEmpty(t, env[name], "%s must set %s (config.Required)", id, name)
			}
			for name := range env {
				assert.Contains(t, known, name, "%s sets %s, which config does not read", id, name)
				if name == "SIGNING_SECRET_ARN" {
					assert.Contains(t, config.Required[fn], name, "only the functions that sign or verify links get the key's ARN")
				}
			}
			assert.NotContains(t, env, "AWS_ENDPOINT_URL", "the emulator endpoint is for the local stack only")
			assert.Equal(t, "catalog.yaml", env["CATALOG_FILE"], "the build copies the catalog next to bootstrap as catalog.yaml")

			// The ARNs built with !Sub name the functions the template defines.
			for variable, target := range map[string]string{"GRANT_FUNCTION_ARN": config.Grant, "REVOKE_FUNCTION_ARN": config.Revoke} {
				if _, ok := env[variable]; !ok {
					continue
				}
				sub := Str(Map(env[variable])["Fn::Sub"])
				assert.True(t, strings.HasSuffix(sub, ":function:${AWS::StackName}-"+target), "%s = %q", variable, sub)
			}
		})
	}
}

func keySchema(ks any) [][2]string {
	var out [][2]string
	for _, k := range List(ks) {
		m := Map(k)
		out = append(out, [2]string{Str(m["AttributeName"]), Str(m["KeyType"])})
	}
	return out
}

func sdkKeySchema(in *dynamodb.CreateTableInput, gsi string) [][2]string {
	ks := in.KeySchema
	for _, g := range in.GlobalSecondaryIndexes {
		if aws.ToString(g.IndexName) == gsi {
			ks = g.KeySchema
		}
	}
	var out [][2]string
	for _, k := range ks {
		out = append(out, [2]string{aws.ToString(k.AttributeName), string(k.KeyType)})
	}
	return out
}

func checkTable(t *testing.T, tpl *Template, id string, want *dynamodb.CreateTableInput) {
	t.Helper()
	r, ok := tpl.Resources[id]
	require.True(t, ok, "template has no %s", id)
	require.Equal(t, "AWS::DynamoDB::Table", r.Type)
	p := r.Properties
	assert.Equal(t, string(want.BillingMode), Str(p["BillingMode"]), "%s BillingMode", id)
	assert.Equal(t, sdkKeySchema(want, ""), keySchema(p["KeySchema"]), "%s KeySchema", id)

	var attrs, wantAttrs []string
	for _, a := range List(p["AttributeDefinitions"]) {
		attrs = append(attrs, Str(Map(a)["AttributeName"])+":"+Str(Map(a)["AttributeType"]))
	}
	for _, a := range want.AttributeDefinitions {
		wantAttrs = append(wantAttrs, aws.ToString(a.AttributeName)+":"+string(a.AttributeType))
	}
	assert.ElementsMatch(t, wantAttrs, attrs, "%s AttributeDefinitions", id)

	got := map[string]map[string]any{}
	for _, g := range List(p["GlobalSecondaryIndexes"]) {
		got[Str(Map(g)["IndexName"])] = Map(g)
	}
	var wantNames []string
	for _, g := range want.GlobalSecondaryIndexes {
		name := aws.ToString(g.IndexName)
		wantNames = append(wantNames, name)
		tg, ok := got[name]
		if !assert.True(t, ok, "%s lacks index %s", id, name) {
			continue
		}
		assert.Equal(t, sdkKeySchema(want, name), keySchema(tg["KeySchema"]), "%s index %s KeySchema", id, name)
		proj := Map(tg["Projection"])
		assert.Equal(t, string(g.Projection.ProjectionType), Str(proj["ProjectionType"]), "%s index %s projection", id, name)
		assert.ElementsMatch(t, g.Projection.NonKeyAttributes, Strings(proj["NonKeyAttributes"]), "%s index %s NonKeyAttributes", id, name)
	}
	assert.ElementsMatch(t, wantNames, slices.Collect(maps.Keys(got)), "%s index names", id)
	assert.Nil(t, p["LocalSecondaryIndexes"], "%s: the code uses no local indexes", id)

	assert.Equal(t, true, Map(p["PointInTimeRecoverySpecification"])["PointInTimeRecoveryEnabled"], "%s point-in-time recovery", id)
	assert.Equal(t, "Retain", r.DeletionPolicy, "%s DeletionPolicy", id)
}

func TestTablesMatchTheStore(t *testing.T) {
	tpl := loadTemplate(t)
	checkTable(t, tpl, "StateTable", dynamo.StateTable("state"))
	checkTable(t, tpl, "AuditTable", dynamo.AuditTable("audit"))

	ttl := Map(tpl.Resources["StateTable"].Properties["TimeToLiveSpecification"])
	assert.Equal(t, dynamo.AttrTTL, Str(ttl["AttributeName"]), "state table TTL attribute (consumed tokens only)")
	assert.Equal(t, true, ttl["Enabled"])
	assert.Nil(t, tpl.Resources["AuditTable"].Properties["TimeToLiveSpecification"], "nothing ages out of the audit trail")
	assert.Equal(t, true, tpl.Resources["AuditTable"].Properties["DeletionProtectionEnabled"], "audit table deletion protection")

	// The environment names the tables the template defines.
	for _, fn := range config.Functions {
		env := tpl.FunctionEnvironment(LogicalID(fn))
		assert.Equal(t, map[string]any{"Ref": "StateTable"}, env["STATE_TABLE"], fn)
		assert.Equal(t, map[string]any{"Ref": "AuditTable"}, env["AUDIT_TABLE"], fn)
	}
}

func diff(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

func TestPoliciesAllowExactlyTheCalls(t *testing.T) {
	tpl := loadTemplate(t)
	require.ElementsMatch(t, config.Functions, slices.Collect(maps.Keys(Calls)), "Calls has one entry per function")
	for _, fn := range config.Functions {
		id := LogicalID(fn)
		t.Run(fn, func(t *testing.T) {
			stmts, err := tpl.FunctionStatements(id)
			require.NoError(t, err)
			got := AllowedActions(stmts)
			want := slices.Sorted(slices.Values(Calls[fn]))
			assert.Empty(t, diff(want, got), "%s: actions the code calls but the template does not allow", id)
			assert.Empty(t, diff(got, want), "%s: actions the template allows but the code does not call", id)
		})
	}
}

// methods lists the methods of the interface type I.
func methods[I any]() []string {
	it := reflect.TypeFor[I]()
	var out []string
	for i := range it.NumMethod() {
		out = append(out, it.Method(i).Name)
	}
	return out
}

func prefixed(prefix string, names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = prefix + n
	}
	slices.Sort(out)
	return out
}

// dynamoOperations reads the DynamoDB operations the store's client
// interface (unexported "api" in internal/dynamo) declares.
func dynamoOperations(t *testing.T) []string {
	t.Helper()
	fset := gotoken.NewFileSet()
	dir := filepath.Join(root, "internal", "dynamo")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var ops []string
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, parser.SkipObjectResolution)
		require.NoError(t, err)
		ast.Inspect(f, func(n ast.Node) bool {
			ts, ok := n.(*ast.TypeSpec)
			if !ok || ts.Name.Name != "api" {
				return true
			}
			if it, ok := ts.Type.(*ast.InterfaceType); ok {
				for _, m := range it.Methods.List {
					for _, name := range m.Names {
						ops = append(ops, name.Name)
					}
				}
			}
			return false
		})
	}
	require.NotEmpty(t, ops, "internal/dynamo declares its client interface as type api interface{...}")
	return ops
}

// dynamoActions maps DynamoDB operations to the IAM actions that authorise them.
var dynamoActions = map[string][]string{
	"TransactWriteItems": {"PutItem", "UpdateItem", "DeleteItem", "ConditionCheckItem"},
	"TransactGetItems":   {"GetItem"},
}

func TestCallsAreWhatTheAdaptersCall(t *testing.T) {
	iamOps := prefixed("iam:", methods[iamgrant.IAMAPI]())
	sesOps := prefixed("ses:", methods[email.SESAPI]())
	secretOps := prefixed("secretsmanager:", methods[token.SecretsManagerAPI]())
	schedOps := prefixed("scheduler:", methods[schedule.API]())
	var dynOps []string
	for _, op := range dynamoOperations(t) {
		parts, ok := dynamoActions[op]
		if !ok {
			parts = []string{op}
		}
		dynOps = append(dynOps, prefixed("dynamodb:", parts)...)
	}

	for _, fn := range config.Functions {
		calls := Calls[fn]
		byService := map[string][]string{}
		for _, a := range calls {
			svc, _, _ := strings.Cut(a, ":")
			byService[svc] = append(byService[svc], a)
		}
		// Every function may grant and revoke, so it has all the provider calls.
		var iamCalls []string
		for _, a := range byService["iam"] {
			if a != "iam:PassRole" {
				iamCalls = append(iamCalls, a)
			}
		}
		assert.ElementsMatch(t, iamOps, iamCalls, "%s: IAM actions vs iamgrant.IAMAPI", fn)
		assert.ElementsMatch(t, sesOps, byService["ses"], "%s: SES actions vs email.SESAPI", fn)
		assert.Empty(t, diff(byService["dynamodb"], dynOps), "%s: DynamoDB actions the store's client cannot call", fn)
		assert.Empty(t, diff(byService["scheduler"], schedOps), "%s: Scheduler actions schedule.API cannot call", fn)
		assert.Equal(t, slices.Contains(byService["scheduler"], "scheduler:CreateSchedule"), slices.Contains(calls, "iam:PassRole"),
			"%s: creating a schedule passes the scheduler role, and nothing else does", fn)

		wantSecrets := slices.Contains(config.Required[fn], "SIGNING_SECRET_ARN")
		if wantSecrets {
			assert.ElementsMatch(t, secretOps, byService["secretsmanager"], "%s: Secrets Manager actions vs token.SecretsManagerAPI", fn)
		} else {
			assert.Empty(t, byService["secretsmanager"], "%s reads no secret", fn)
		}
		for svc := range byService {
			assert.Contains(t, []string{"dynamodb", "iam", "ses", "secretsmanager", "scheduler"}, svc, "%s: unexpected service", fn)
		}
	}
}

func TestAuditTableIsAppendOnly(t *testing.T) {
	tpl := loadTemplate(t)
	all, err := tpl.AllStatements()
	require.NoError(t, err)
	require.NotEmpty(t, all)
	appends := 0
	for _, s := range all {
		if s.Effect != "Allow" {
			continue
		}
		for _, a := range s.Actions {
			assert.NotContains(t, a, "*", "%s %s: wildcard action %s", s.Source, s.Sid, a)
		}
		for _, r := range s.Resources {
			assert.NotEqual(t, "*", r, "%s %s: Resource \"*\"", s.Source, s.Sid)
		}
		if !RefersTo(s.Resources, "AuditTable") {
			continue
		}
		for _, a := range s.Actions {
			assert.Contains(t, AuditActions, a, "%s %s allows %s on the audit table", s.Source, s.Sid, a)
			if a == "dynamodb:PutItem" {
				appends++
				ops := Strings(Map(Map(s.Condition)["ForAnyValue:StringEquals"])["dynamodb:EnclosingOperation"])
				assert.Equal(t, []string{"TransactWriteItems"}, ops,
					"%s %s: audit records are put only inside the transaction of their state change", s.Source, s.Sid)
			}
		}
		for _, r := range s.Resources {
			if RefersTo(r, "AuditTable") {
				assert.NotContains(t, fmt.Sprint(r), "/index/", "%s %s: the audit table has no indexes", s.Source, s.Sid)
			}
		}
	}
	assert.Positive(t, appends, "some statement lets the functions append to the audit table")

	// Every function can append; only the ones that read trails can query.
	for _, fn := range config.Functions {
		stmts, err := tpl.FunctionStatements(LogicalID(fn))
		require.NoError(t, err)
		var onAudit []string
		for _, s := range stmts {
			if s.Effect == "Allow" && RefersTo(s.Resources, "AuditTable") {
				onAudit = append(onAudit, s.Actions...)
			}
		}
		assert.Contains(t, onAudit, "dynamodb:PutItem", fn)
		assert.Equal(t, fn == config.Intake, slices.Contains(onAudit, "dynamodb:Query"), "%s: only intake serves GET /requests/{id}/audit", fn)
	}
}

// indexRef matches the index name in "${StateTable.Arn}/index/<name>".
var indexRef = regexp.MustCompile(`/index/([A-Za-z0-9_.-]+)$`)

func TestPoliciesNameRealIndexes(t *testing.T) {
	tpl := loadTemplate(t)
	all, err := tpl.AllStatements()
	require.NoError(t, err)
	var names []string
	for _, g := range dynamo.StateTable("x").GlobalSecondaryIndexes {
		names = append(names, aws.ToString(g.IndexName))
	}
	for _, s := range all {
		for _, r := range s.Resources {
			if m := indexRef.FindStringSubmatch(Str(Map(r)["Fn::Sub"])); m != nil {
				assert.Contains(t, names, m[1], "%s %s names an index the state table does not have", s.Source, s.Sid)
			}
		}
	}
}

func TestSchedulerRole(t *testing.T) {
	tpl := loadTemplate(t)
	stmts, err := tpl.RoleStatements("SchedulerRole")
	require.NoError(t, err)
	assert.Equal(t, []string{"lambda:InvokeFunction", "sqs:SendMessage"}, AllowedActions(stmts))
	for _, s := range stmts {
		switch {
		case slices.Contains(s.Actions, "lambda:InvokeFunction"):
			var subs []string
			for _, r := range s.Resources {
				subs = append(subs, Str(Map(r)["Fn::Sub"]))
			}
			require.Len(t, subs, 2, "the scheduler may invoke the grant and revoke functions only")
			assert.True(t, strings.HasSuffix(subs[0], ":function:${AWS::StackName}-"+config.Grant), subs[0])
			assert.True(t, strings.HasSuffix(subs[1], ":function:${AWS::StackName}-"+config.Revoke), subs[1])
		case slices.Contains(s.Actions, "sqs:SendMessage"):
			assert.Equal(t, []any{map[string]any{"Fn::GetAtt": []any{"ScheduleDLQ", "Arn"}}}, s.Resources)
		}
	}
	trust := List(Map(tpl.Resources["SchedulerRole"].Properties["AssumeRolePolicyDocument"])["Statement"])
	require.Len(t, trust, 1)
	assert.Equal(t, "scheduler.amazonaws.com", Str(Map(Map(trust[0])["Principal"])["Service"]))
	assert.NotNil(t, Map(trust[0])["Condition"], "the trust is limited to this account's schedule group")

	for _, fn := range config.Functions {
		env := tpl.FunctionEnvironment(LogicalID(fn))
		assert.Equal(t, map[string]any{"Fn::GetAtt": []any{"SchedulerRole", "Arn"}}, env["SCHEDULER_ROLE_ARN"], fn)
		assert.Equal(t, map[string]any{"Fn::GetAtt": []any{"ScheduleDLQ", "Arn"}}, env["SCHEDULE_DLQ_ARN"], fn)
		assert.Equal(t, map[string]any{"Ref": "ScheduleGroup"}, env["SCHEDULE_GROUP"], fn)
	}
}

func TestRoutes(t *testing.T) {
	tpl := loadTemplate(t)
	integrations := map[string]string{} // integration id -> function id
	for id, r := range tpl.Resources {
		if r.Type == "AWS::ApiGatewayV2::Integration" {
			ga := List(Map(r.Properties["IntegrationUri"])["Fn::GetAtt"])
			require.NotEmpty(t, ga, "%s IntegrationUri is !GetAtt <function>.Arn", id)
			integrations[id] = Str(ga[0])
			assert.Equal(t, "2.0", Str(r.Properties["PayloadFormatVersion"]), id)
			assert.Equal(t, "AWS_PROXY", Str(r.Properties["IntegrationType"]), id)
		}
	}
	type route struct{ auth, authorizer, function string }
	got := map[string]route{}
	for id, r := range tpl.Resources {
		if r.Type != "AWS::ApiGatewayV2::Route" {
			continue
		}
		key := Str(r.Properties["RouteKey"])
		target := Str(Map(r.Properties["Target"])["Fn::Sub"])
		integration := strings.TrimSuffix(strings.TrimPrefix(target, "integrations/${"), "}")
		_, dup := got[key]
		assert.False(t, dup, "route %s defined twice", key)
		got[key] = route{
			auth:       Str(r.Properties["AuthorizationType"]),
			authorizer: Str(Map(r.Properties["AuthorizerId"])["Ref"]),
			function:   integrations[integration],
		}
		assert.NotEmpty(t, got[key].function, "route %s (%s) targets no known integration", key, id)
	}
	want := map[string]route{}
	for _, k := range api.IntakeRoutes {
		want[k] = route{"JWT", "JwtAuthorizer", LogicalID(config.Intake)}
	}
	for _, k := range api.ApprovalRoutes {
		want[k] = route{"NONE", "", LogicalID(config.Approve)}
	}
	assert.Equal(t, want, got)
	assert.Equal(t, "JWT", Str(tpl.Resources["JwtAuthorizer"].Properties["AuthorizerType"]))
}

// emittedMetrics finds the metric names internal/app counts.
func emittedMetrics(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "internal", "app", "*.go"))
	require.NoError(t, err)
	re := regexp.MustCompile(`Metrics\.(?:Count|Duration)\(ctx, "([A-Za-z]+)"`)
	var out []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			out = append(out, m[1])
		}
	}
	return out
}

func TestAlarmsWatchEmittedMetrics(t *testing.T) {
	tpl := loadTemplate(t)
	require.Equal(t, MetricNamespace, wire.MetricsNamespace, "the functions emit metrics where the alarms look")
	emitted := emittedMetrics(t)
	var alarmed []string
	for id, r := range tpl.Resources {
		if r.Type != "AWS::CloudWatch::Alarm" {
			continue
		}
		assert.NotEmpty(t, List(r.Properties["AlarmActions"]), "%s has no action", id)
		for _, m := range List(r.Properties["Metrics"]) {
			expr := Str(Map(m)["Expression"])
			q := regexp.MustCompile(`^SELECT SUM\(([A-Za-z]+)\) FROM ([A-Za-z]+)$`).FindStringSubmatch(expr)
			if assert.NotNil(t, q, "%s: unexpected expression %q", id, expr) {
				assert.Equal(t, MetricNamespace, q[2], id)
				assert.Contains(t, emitted, q[1], "%s alarms on %s, which internal/app never emits", id, q[1])
				alarmed = append(alarmed, q[1])
			}
		}
	}
	assert.ElementsMatch(t, Alarmed, alarmed)
	for _, q := range []string{"ScheduleDLQ", "InvokeFailureQueue"} {
		found := false
		for _, r := range tpl.Resources {
			if r.Type == "AWS::CloudWatch::Alarm" && RefersTo(r.Properties["Dimensions"], q) {
				found = true
			}
		}
		assert.True(t, found, "no alarm on %s", q)
	}
}

func TestCfnLint(t *testing.T) {
	if testing.Short() {
		t.Skip("cfn-lint is slow; make lint runs it too")
	}
	if _, err := exec.LookPath("cfn-lint"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("cfn-lint not found (pip install cfn-lint)")
		}
		t.Skip("cfn-lint not found (pip install cfn-lint); make lint runs it when installed")
	}
	cmd := exec.Command("cfn-lint", "template.yaml")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	assert.NoError(t, err, "cfn-lint template.yaml:\n%s", out)
}

func TestParseShortForms(t *testing.T) {
	tpl, err := ParseTemplate([]byte(`
Resources:
  A:
    Type: X
    Properties:
      R: !Ref B
      G: !GetAtt B.Arn
      S: !Sub "${B.Arn}/index/x"
      I: !If [C, !Ref B, !Ref AWS::NoValue]
      L: |
        two
        lines
`))
	require.NoError(t, err)
	p := tpl.Resources["A"].Properties
	assert.Equal(t, map[string]any{"Ref": "B"}, p["R"])
	assert.Equal(t, map[string]any{"Fn::GetAtt": []any{"B", "Arn"}}, p["G"])
	assert.Equal(t, map[string]any{"Fn::Sub": "${B.Arn}/index/x"}, p["S"])
	assert.Equal(t, map[string]any{"Fn::If": []any{"C", map[string]any{"Ref": "B"}, map[string]any{"Ref": "AWS::NoValue"}}}, p["I"])
	assert.Equal(t, "two\nlines\n", p["L"])
	for _, k := range []string{"R", "G", "S", "I"} {
		assert.True(t, RefersTo(p[k], "B"), k)
		assert.False(t, RefersTo(p[k], "Bx"), k)
	}

	_, err = ParseTemplate([]byte("A: !Unknown x\n"))
	assert.Error(t, err)
}

func TestMakefileRules(t *testing.T) {
	mk := ParseMakefile([]byte("X := a\nY ?= $(X) b\nY ?= ignored\n.PHONY: all\nbuild-%Function:\n\techo $* \\\n\t  more\nall: build-OneFunction\n\t@true\n"))
	assert.Equal(t, "a b", mk.Expand("$(Y)"))
	name, stem, recipe, ok := mk.Rule("build-IntakeFunction")
	require.True(t, ok)
	assert.Equal(t, "build-%Function", name)
	assert.Equal(t, "Intake", stem)
	assert.Len(t, recipe, 1)
	_, _, _, ok = mk.Rule("build-Intake")
	assert.False(t, ok)
	_, stem, _, ok = mk.Rule("all")
	assert.True(t, ok)
	assert.Empty(t, stem)
}
