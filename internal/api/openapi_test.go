package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/goccy/go-yaml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jitaccess/jit/internal/access"
	"github.com/jitaccess/jit/internal/api"
	"github.com/jitaccess/jit/internal/app/apptest"
	"github.com/jitaccess/jit/internal/token"
)

// The OpenAPI document is checked against the code, not the other way
// round: routes against the router, body schemas against the Go types, and
// response schemas and statuses against what the handlers really answer.

const openAPIFile = "../../infra/openapi.yaml"

// obj is a JSON object of the parsed document.
type obj = map[string]any

type openAPI struct{ doc obj }

func loadOpenAPI(t *testing.T) *openAPI {
	t.Helper()
	raw, err := os.ReadFile(openAPIFile)
	require.NoError(t, err)
	js, err := yaml.YAMLToJSON(raw)
	require.NoError(t, err, "%s is valid YAML", openAPIFile)
	var doc obj
	require.NoError(t, json.Unmarshal(js, &doc))
	require.Equal(t, "3.0.3", doc["openapi"])
	return &openAPI{doc: doc}
}

// at walks the document by keys.
func (o *openAPI) at(keys ...string) obj {
	cur := o.doc
	for _, k := range keys {
		next, _ := cur[k].(obj)
		if next == nil {
			return nil
		}
		cur = next
	}
	return cur
}

// deref follows a local $ref ("#/components/...") until it reaches a node
// that is not a reference.
func (o *openAPI) deref(t *testing.T, n obj) obj {
	t.Helper()
	for range 10 {
		ref, ok := n["$ref"].(string)
		if !ok {
			return n
		}
		require.True(t, strings.HasPrefix(ref, "#/"), "only local references: %s", ref)
		n = o.at(strings.Split(strings.TrimPrefix(ref, "#/"), "/")...)
		require.NotNil(t, n, "reference %s resolves", ref)
	}
	t.Fatalf("reference loop")
	return nil
}

func (o *openAPI) schema(t *testing.T, name string) obj {
	t.Helper()
	s := o.at("components", "schemas", name)
	require.NotNil(t, s, "schema %s is documented", name)
	return s
}

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// operations are the document's operations by route ("METHOD /path").
func (o *openAPI) operations() map[string]obj {
	ops := map[string]obj{}
	for path, item := range o.at("paths") {
		for _, m := range httpMethods {
			if op, ok := item.(obj)[m].(obj); ok {
				ops[strings.ToUpper(m)+" "+path] = op
			}
		}
	}
	return ops
}

// parameters of an operation: the path item's, overridden by the operation's.
func (o *openAPI) parameters(t *testing.T, route string) []obj {
	method, path, _ := strings.Cut(route, " ")
	item := o.at("paths", path)
	var out []obj
	for _, src := range []any{item["parameters"], item[strings.ToLower(method)].(obj)["parameters"]} {
		list, _ := src.([]any)
		for _, p := range list {
			out = append(out, o.deref(t, p.(obj)))
		}
	}
	return out
}

func allRoutes() []string {
	return slices.Concat(api.IntakeRoutes, api.ApprovalRoutes)
}

// TestOpenAPIRoutesMatchTheRouter: every route the handlers serve is
// documented, and nothing else is; intake routes need the JWT, the
// approval routes explicitly none; every path parameter is described.
func TestOpenAPIRoutesMatchTheRouter(t *testing.T) {
	o := loadOpenAPI(t)
	ops := o.operations()
	assert.ElementsMatch(t, allRoutes(), slices.Collect(maps.Keys(ops)), "documented routes = api.IntakeRoutes + api.ApprovalRoutes")

	// The global requirement is the JWT; every scheme it names exists.
	global, _ := o.doc["security"].([]any)
	require.NotEmpty(t, global, "the API requires a token by default")
	schemes := o.at("components", "securitySchemes")
	for _, req := range global {
		for name := range req.(obj) {
			require.Contains(t, schemes, name)
		}
	}
	assert.Equal(t, "bearer", schemes["jwt"].(obj)["scheme"])
	assert.Equal(t, "JWT", schemes["jwt"].(obj)["bearerFormat"])
	assert.Equal(t, "openIdConnect", schemes["oidc"].(obj)["type"])

	operationIDs := map[string]string{}
	for route, op := range ops {
		id, _ := op["operationId"].(string)
		require.NotEmpty(t, id, route)
		require.NotContains(t, operationIDs, id, "operationId %s of %s is unique", id, route)
		operationIDs[id] = route

		sec, has := op["security"]
		if slices.Contains(api.ApprovalRoutes, route) {
			assert.True(t, has, "%s: the email-link routes say security: []", route)
			assert.Empty(t, sec, "%s: the token in the path is the credential, not a JWT", route)
		} else {
			assert.False(t, has, "%s: intake routes keep the global JWT requirement", route)
		}

		_, path, _ := strings.Cut(route, " ")
		var want []string
		for _, m := range regexp.MustCompile(`\{([^}]+)\}`).FindAllStringSubmatch(path, -1) {
			want = append(want, m[1])
		}
		var got []string
		for _, p := range o.parameters(t, route) {
			if p["in"] != "path" {
				continue
			}
			got = append(got, p["name"].(string))
			assert.Equal(t, true, p["required"], "%s: path parameter %s is required", route, p["name"])
			s, _ := p["schema"].(obj)
			require.NotNil(t, s, "%s: %s has a schema", route, p["name"])
			assert.NotEmpty(t, s["pattern"], "%s: %s has a pattern", route, p["name"])
			if p["name"] == "id" {
				assert.Equal(t, "^[0-9A-Za-z_-]{1,64}$", s["pattern"], "%s: the request id pattern is what requestID accepts", route)
			}
		}
		assert.ElementsMatch(t, want, got, "%s: every path parameter is documented", route)
	}
}

// errorKinds are every access.Kind, in the order of the status table.
var errorKinds = []access.Kind{
	access.KindInvalid, access.KindUnauthorized, access.KindForbidden, access.KindNotFound,
	access.KindConflict, access.KindTooMany, access.KindInternal,
}

// TestOpenAPIErrorResponses: every error status of every operation is
// documented with its body: the Error schema (JSON) for the intake routes,
// the HTML page for the approval routes; and the Error schema's codes are
// exactly the error kinds.
func TestOpenAPIErrorResponses(t *testing.T) {
	o := loadOpenAPI(t)

	e := o.schema(t, "Error")
	assert.Equal(t, []any{"error"}, e["required"])
	inner := e["properties"].(obj)["error"].(obj)
	assert.ElementsMatch(t, []any{"code", "message"}, inner["required"])
	assert.ElementsMatch(t, []string{"code", "message"}, slices.Collect(maps.Keys(inner["properties"].(obj))))
	var kinds []any
	statuses := map[int]bool{}
	for _, k := range errorKinds {
		kinds = append(kinds, string(k))
		statuses[api.Status(access.Errorf(k, "x"))] = true
	}
	assert.ElementsMatch(t, kinds, inner["properties"].(obj)["code"].(obj)["enum"], "error codes = access kinds")
	allowed := []int{400, 401, 403, 404, 409, 429, 500}
	assert.ElementsMatch(t, allowed, slices.Collect(maps.Keys(statuses)), "api.Status maps the kinds to these statuses")

	for route, op := range o.operations() {
		responses, _ := op["responses"].(obj)
		require.NotEmpty(t, responses, route)
		for _, must := range []string{"401", "429", "500"} {
			assert.Contains(t, responses, must, "%s documents %s (JWT or link, API Gateway throttling, internal)", route, must)
		}
		for code, r := range responses {
			status, err := strconv.Atoi(code)
			require.NoError(t, err, "%s: response %q is a status", route, code)
			if status < 400 {
				continue
			}
			assert.Contains(t, allowed, status, "%s: %d is a status the API produces", route, status)
			resp := o.deref(t, r.(obj))
			assert.NotEmpty(t, resp["description"], "%s %d has a description", route, status)
			content, _ := resp["content"].(obj)
			if slices.Contains(api.ApprovalRoutes, route) {
				html, _ := content["text/html"].(obj)
				require.NotNil(t, html, "%s %d: the approval pages answer errors with HTML", route, status)
				assert.Equal(t, "#/components/schemas/HTMLPage", html["schema"].(obj)["$ref"], "%s %d", route, status)
				continue
			}
			js, _ := content["application/json"].(obj)
			require.NotNil(t, js, "%s %d has a JSON body", route, status)
			assert.True(t, usesSchema(js["schema"].(obj), "Error"), "%s %d is documented with the Error schema", route, status)
		}
	}
}

// usesSchema reports whether s is a reference to the named schema or a
// oneOf that has it among its choices.
func usesSchema(s obj, name string) bool {
	ref := "#/components/schemas/" + name
	if s["$ref"] == ref {
		return true
	}
	choices, _ := s["oneOf"].([]any)
	return slices.ContainsFunc(choices, func(c any) bool { return c.(obj)["$ref"] == ref })
}

// jsonFields are the JSON names of a struct's fields and which of them are
// omitted when empty.
func jsonFields(t *testing.T, v any) (names []string, omitempty map[string]bool) {
	t.Helper()
	typ := reflect.TypeOf(v)
	omitempty = map[string]bool{}
	for i := range typ.NumField() {
		f := typ.Field(i)
		tag, ok := f.Tag.Lookup("json")
		require.True(t, ok, "%s.%s has a json tag", typ.Name(), f.Name)
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		names = append(names, name)
		omitempty[name] = slices.Contains(strings.Split(opts, ","), "omitempty")
	}
	return names, omitempty
}

func keysOf(m any) []string {
	o, _ := m.(obj)
	return slices.Sorted(maps.Keys(o))
}

func requiredOf(s obj) []string {
	var out []string
	req, _ := s["required"].([]any)
	for _, r := range req {
		out = append(out, r.(string))
	}
	slices.Sort(out)
	return out
}

// TestOpenAPIBodiesMatchTheGoTypes: the request bodies and the records the
// handlers pass through unchanged are documented field for field.
func TestOpenAPIBodiesMatchTheGoTypes(t *testing.T) {
	o := loadOpenAPI(t)

	t.Run("CreateBody", func(t *testing.T) {
		s := o.schema(t, "CreateBody")
		names, _ := jsonFields(t, api.CreateBody{})
		assert.ElementsMatch(t, names, keysOf(s["properties"]), "CreateBody schema properties = api.CreateBody json tags")
		assert.Equal(t, []string{"roleId"}, requiredOf(s))
		assert.Equal(t, false, s["additionalProperties"], "unknown fields are refused")
		props := s["properties"].(obj)
		assert.Equal(t, "date-time", props["startAt"].(obj)["format"])
		re := regexp.MustCompile(props["duration"].(obj)["pattern"].(string))
		for _, d := range []string{"30m", "2h", "1h30m", "90m", "1.5h", "1m"} {
			_, err := time.ParseDuration(d)
			require.NoError(t, err)
			assert.True(t, re.MatchString(d), "the duration pattern accepts %q", d)
		}
		for _, d := range []string{"1 fortnight", "-1h", "", "10", "tomorrow"} {
			assert.False(t, re.MatchString(d), "the duration pattern refuses %q", d)
		}
	})
	t.Run("DecisionBody", func(t *testing.T) {
		s := o.schema(t, "DecisionBody")
		names, _ := jsonFields(t, api.DecisionBody{})
		assert.ElementsMatch(t, names, keysOf(s["properties"]))
		assert.Nil(t, s["required"], "every field is optional")
		assert.Equal(t, false, s["additionalProperties"])
		for _, route := range []string{"approve", "deny", "cancel", "revoke"} {
			rb := o.deref(t, o.at("paths", "/requests/{id}/"+route, "post", "requestBody"))
			assert.Equal(t, false, rb["required"], "%s: the body is optional", route)
			assert.Equal(t, "#/components/schemas/DecisionBody", rb["content"].(obj)["application/json"].(obj)["schema"].(obj)["$ref"], route)
		}
	})
	t.Run("approval form", func(t *testing.T) {
		rb := o.at("paths", "/approvals/{token}", "post", "requestBody", "content", "application/x-www-form-urlencoded", "schema")
		require.NotNil(t, rb, "the approval POST takes the page's form")
		s := o.deref(t, rb)
		assert.ElementsMatch(t, []string{"decision", "comment"}, keysOf(s["properties"]))
		assert.ElementsMatch(t, []any{"approve", "deny"}, s["properties"].(obj)["decision"].(obj)["enum"])
	})
	for name, v := range map[string]any{"AuditRecord": access.AuditRecord{}, "Approval": access.Approval{}} {
		t.Run(name, func(t *testing.T) {
			s := o.schema(t, name)
			names, omit := jsonFields(t, v)
			assert.ElementsMatch(t, names, keysOf(s["properties"]), "%s schema properties = json tags", name)
			var req []string
			for _, n := range names {
				if !omit[n] {
					req = append(req, n)
				}
			}
			assert.ElementsMatch(t, req, requiredOf(s), "%s: required = the fields never omitted", name)
		})
	}
	t.Run("enums", func(t *testing.T) {
		var statuses, providers []any
		for _, s := range access.AllStatuses {
			statuses = append(statuses, string(s))
		}
		for _, p := range access.Providers {
			providers = append(providers, string(p))
		}
		assert.ElementsMatch(t, statuses, o.schema(t, "Status")["enum"])
		assert.ElementsMatch(t, providers, o.schema(t, "Provider")["enum"])
		assert.ElementsMatch(t, []any{string(access.ModeManual), string(access.ModeAuto), string(access.ModeBreakGlass)}, o.schema(t, "Mode")["enum"])
		assert.ElementsMatch(t, []any{string(access.DecisionApprove), string(access.DecisionDeny)}, o.schema(t, "Decision")["enum"])
	})
}

// TestOpenAPIRequestSchemaIsWhatTheHandlerWrites: the Request schema's
// properties are exactly the keys GET /requests/{id} writes, over requests
// that between them have every optional field set; its required ones are
// those present every time.
func TestOpenAPIRequestSchemaIsWhatTheHandlerWrites(t *testing.T) {
	o := loadOpenAPI(t)
	f := newFixture(t)
	srv := f.server(t)

	// A ticket: a ticketed request.
	status, body := do(t, srv, call{"POST", "/requests", "alice@example.com", `{"roleId":"ticketed","ticket":"OPS-7","justification":"Investigate the failing nightly export"}`})
	require.Equal(t, 201, status, body)
	var created struct{ ID string }
	require.NoError(t, json.Unmarshal([]byte(body), &created))
	// lastError and revokeAttempts: a revoke that IAM refuses.
	f.IAM.Fail("Revoke", -1)
	status, body = do(t, srv, call{"POST", "/requests/" + activeID + "/revoke", "alice@example.com", ""})
	require.Equal(t, 500, status, body)
	f.IAM.Fail("Revoke", 0)
	// endedBy, endReason and an approval with a comment: a denial.
	status, body = do(t, srv, call{"POST", "/requests/" + pendingID + "/deny", "carol@example.com", `{"comment":"not during the freeze"}`})
	require.Equal(t, 200, status, body)

	var union, always []string
	for i, id := range []string{pendingID, activeID, created.ID} {
		status, body := do(t, srv, call{"GET", "/requests/" + id, "alice@example.com", ""})
		require.Equal(t, 200, status, body)
		var m obj
		require.NoError(t, json.Unmarshal([]byte(body), &m))
		keys := keysOf(m)
		for _, k := range keys {
			if !slices.Contains(union, k) {
				union = append(union, k)
			}
		}
		if i == 0 {
			always = keys
		} else {
			always = slices.DeleteFunc(always, func(k string) bool { return !slices.Contains(keys, k) })
		}
	}
	s := o.schema(t, "Request")
	assert.ElementsMatch(t, union, keysOf(s["properties"]), "Request schema properties = the keys GET /requests/{id} writes")
	assert.ElementsMatch(t, always, requiredOf(s), "Request schema required = the keys it always writes")
}

// TestOpenAPIResponsesMatchTheHandlers drives every route through the
// local gateway path and checks each answer against the document: the
// status is documented for the route, the content type is one documented
// for that status, documented headers are there with their documented
// values, and a JSON body validates against its schema, with no key the
// schema does not name. Over the whole run, every property of every
// response schema was seen, and the required ones are exactly those seen
// every time.
func TestOpenAPIResponsesMatchTheHandlers(t *testing.T) {
	o := loadOpenAPI(t)
	v := &validator{o: o, seen: map[string][][]string{}}
	covered := map[string]bool{}

	issue := func(requestID, approver string, exp time.Time) string {
		tok, err := token.New(apptest.SigningKey).Issue(context.Background(), access.ApprovalClaims{RequestID: requestID, Approver: approver, ExpiresAt: exp})
		require.NoError(t, err)
		return tok
	}
	form := func(vals ...string) string {
		u := url.Values{}
		for i := 0; i+1 < len(vals); i += 2 {
			u.Set(vals[i], vals[i+1])
		}
		return u.Encode()
	}
	const why = `"justification":"Rotate the production database credentials"`
	newID := "01JNEW" + strings.Repeat("0", 19) + "1"

	scenarios := []struct {
		name  string
		setup func(f *fixture)
		calls func(f *fixture) []expect
	}{
		{"reads", nil, func(f *fixture) []expect {
			return []expect{
				{call{"GET", "/catalog", "alice@example.com", ""}, 200},
				{call{"POST", "/requests", "alice@example.com", `{"roleId":"ticketed","ticket":"OPS-7","justification":"Investigate the failing nightly export"}`}, 201},
				{call{"GET", "/catalog", "eve@example.com", ""}, 200},
				{call{"GET", "/catalog", "", ""}, 401},
				{call{"GET", "/requests", "alice@example.com", ""}, 200},
				{call{"GET", "/requests?limit=1", "alice@example.com", ""}, 200},
				{call{"GET", "/requests?limit=1&cursor=1", "alice@example.com", ""}, 200},
				{call{"GET", "/requests", "carol@example.com", ""}, 200},
				{call{"GET", "/requests?limit=0", "alice@example.com", ""}, 400},
				{call{"GET", "/requests?limit=101", "alice@example.com", ""}, 400},
				{call{"GET", "/requests?cursor=zzz", "alice@example.com", ""}, 400},
				{call{"GET", "/requests", "", ""}, 401},
				{call{"GET", "/requests/" + pendingID, "alice@example.com", ""}, 200},
				{call{"GET", "/requests/" + pendingID, "carol@example.com", ""}, 200},
				{call{"GET", "/requests/" + pendingID, "bob@example.com", ""}, 404},
				{call{"GET", "/requests/a.b", "alice@example.com", ""}, 400},
				{call{"GET", "/requests/" + pendingID, "", ""}, 401},
				{call{"GET", "/requests/" + activeID + "/audit", "alice@example.com", ""}, 200},
				{call{"GET", "/requests/" + pendingID + "/audit", "bob@example.com", ""}, 404},
				{call{"GET", "/requests/" + strings.Repeat("a", 65) + "/audit", "alice@example.com", ""}, 400},
				{call{"GET", "/requests/" + pendingID + "/audit", "", ""}, 401},
			}
		}},
		{"create", nil, func(f *fixture) []expect {
			return []expect{
				{call{"POST", "/requests", "alice@example.com", `{"roleId":"admin","duration":"90m",` + why + `}`}, 201},
				{call{"POST", "/requests", "alice@example.com", `{"roleId":"admin","duration":"1 fortnight",` + why + `}`}, 400},
				{call{"POST", "/requests", "alice@example.com", `{"roleId":"admin","requester":"carol@example.com",` + why + `}`}, 400},
				{call{"POST", "/requests", "alice@example.com", ``}, 400},
				{call{"POST", "/requests", "eve@example.com", `{"roleId":"admin",` + why + `}`}, 403},
				{call{"POST", "/requests", "alice@example.com", `{"roleId":"root",` + why + `}`}, 404},
				{call{"POST", "/requests", "", `{"roleId":"admin",` + why + `}`}, 401},
			}
		}},
		{"approve, then revoke", nil, func(f *fixture) []expect {
			return []expect{
				{call{"POST", "/requests/" + pendingID + "/approve", "alice@example.com", `{}`}, 403},
				{call{"POST", "/requests/" + pendingID + "/approve", "admin@example.com", ``}, 403},
				{call{"POST", "/requests/" + pendingID + "/approve", "bob@example.com", ``}, 404},
				{call{"POST", "/requests/" + pendingID + "/approve", "carol@example.com", `{}`}, 200},
				{call{"POST", "/requests/" + pendingID + "/approve", "dave@example.com", ``}, 409},
				{call{"POST", "/requests/" + pendingID + "/approve", "dave@example.com", `{"comment":5}`}, 400},
				{call{"POST", "/requests/a.b/approve", "dave@example.com", ``}, 400},
				{call{"POST", "/requests/" + pendingID + "/approve", "", ``}, 401},
				{call{"POST", "/requests/" + pendingID + "/cancel", "alice@example.com", ``}, 409},
				{call{"POST", "/requests/" + pendingID + "/revoke", "dave@example.com", `{"comment":"done"}`}, 200},
				{call{"POST", "/requests/" + pendingID + "/revoke", "alice@example.com", ``}, 409}, // already ended: no change, no success
				{call{"POST", "/requests/" + pendingID + "/revoke", "bob@example.com", ``}, 404},
				{call{"POST", "/requests/" + pendingID + "/revoke", "alice@example.com", `{"reason":"x"}`}, 400},
				{call{"POST", "/requests/" + pendingID + "/revoke", "", ``}, 401},
				{call{"GET", "/requests/" + pendingID + "/audit", "dave@example.com", ""}, 200},
			}
		}},
		{"deny and cancel", nil, func(f *fixture) []expect {
			return []expect{
				{call{"POST", "/requests/" + pendingID + "/deny", "alice@example.com", ``}, 403},
				{call{"POST", "/requests/" + pendingID + "/deny", "dave@example.com", `{"comment":"not during the freeze"}`}, 200},
				{call{"POST", "/requests/" + pendingID + "/deny", "carol@example.com", ``}, 409},
				{call{"POST", "/requests/" + pendingID + "/deny", "bob@example.com", ``}, 404},
				{call{"POST", "/requests/" + pendingID + "/deny", "carol@example.com", `[]`}, 400},
				{call{"POST", "/requests/" + pendingID + "/deny", "", ``}, 401},
				{call{"POST", "/requests", "alice@example.com", `{"roleId":"admin",` + why + `}`}, 201},
				{call{"POST", "/requests/" + newID + "/revoke", "alice@example.com", ``}, 409},
				{call{"POST", "/requests/" + newID + "/cancel", "carol@example.com", ``}, 403},
				{call{"POST", "/requests/" + newID + "/cancel", "bob@example.com", ``}, 404},
				{call{"POST", "/requests/" + newID + "/cancel", "alice@example.com", `{"comment":` + strconv.Quote(strings.Repeat("x", 1001)) + `}`}, 400},
				{call{"POST", "/requests/" + newID + "/cancel", "alice@example.com", `{"comment":"not needed after all"}`}, 200},
				{call{"POST", "/requests/" + newID + "/cancel", "alice@example.com", ``}, 409},
				{call{"POST", "/requests/" + newID + "/cancel", "", ``}, 401},
				{call{"GET", "/requests/" + newID + "/audit", "alice@example.com", ""}, 200},
				{call{"GET", "/requests", "alice@example.com", ""}, 200},
			}
		}},
		{"internal errors", func(f *fixture) {
			f.Svc.Store = failingStore{f.Store}
			f.IAM.Fail("Revoke", -1)
		}, func(f *fixture) []expect {
			return []expect{
				{call{"GET", "/requests", "alice@example.com", ""}, 500},
				{call{"POST", "/requests/" + activeID + "/revoke", "alice@example.com", ""}, 500},
				{call{"GET", "/requests/" + activeID, "alice@example.com", ""}, 200},
			}
		}},
		{"approval links", nil, func(f *fixture) []expect {
			exp := f.Clock.Now().Add(time.Hour)
			forged := f.token[:strings.Index(f.token, ".")+1] + strings.Repeat("A", 43)
			return []expect{
				{call{"GET", "/approvals/" + f.token, "", ""}, 200},
				{call{"HEAD", "/approvals/" + f.token, "", ""}, 200},
				{call{"POST", "/approvals/" + f.token, "", form("decision", "maybe")}, 400},
				{call{"POST", "/approvals/" + f.token, "", form("decision", "approve", "comment", strings.Repeat("x", 1001))}, 400},
				{call{"POST", "/approvals/" + f.token, "", form("decision", "approve", "comment", "ok")}, 200},
				{call{"GET", "/requests/" + pendingID, "alice@example.com", ""}, 200},
				{call{"POST", "/approvals/" + f.token, "", form("decision", "approve")}, 409},
				{call{"GET", "/approvals/" + f.token, "", ""}, 200},
				{call{"GET", "/approvals/eyJ2IjoxfQ.Zm9yZ2Vk", "", ""}, 400},
				{call{"POST", "/approvals/eyJ2IjoxfQ.Zm9yZ2Vk", "", form("decision", "deny")}, 400},
				{call{"GET", "/approvals/" + forged, "", ""}, 401},
				{call{"POST", "/approvals/" + forged, "", form("decision", "deny")}, 401},
				{call{"GET", "/approvals/" + issue(pendingID, "carol@example.com", f.Clock.Now().Add(-time.Minute)), "", ""}, 401},
				{call{"GET", "/approvals/" + issue(pendingID, "eve@example.com", exp), "", ""}, 403},
				{call{"POST", "/approvals/" + issue(pendingID, "alice@example.com", exp), "", form("decision", "approve")}, 403},
				{call{"GET", "/approvals/" + issue("01JNOSUCHREQUEST", "carol@example.com", exp), "", ""}, 404},
				{call{"POST", "/approvals/" + issue("01JNOSUCHREQUEST", "carol@example.com", exp), "", form("decision", "deny")}, 404},
			}
		}},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			f := newFixture(t)
			if sc.setup != nil {
				sc.setup(f)
			}
			srv := f.server(t)
			for _, e := range sc.calls(f) {
				route := routeOf(t, e.method, e.path)
				covered[route] = true
				t.Run(fmt.Sprintf("%s %s as %q", e.method, e.path, e.who), func(t *testing.T) {
					resp, body := send(t, srv, e.call)
					require.Equal(t, e.want, resp.StatusCode, body)
					v.checkResponse(t, route, resp, body)
				})
			}
		})
	}
	assert.ElementsMatch(t, allRoutes(), slices.Collect(maps.Keys(covered)), "every route was exercised")

	// Over the run, each response schema was seen with every property it
	// documents, and an optional property was absent at least once.
	for _, name := range []string{"Catalog", "Role", "RequestList", "Request", "Approval", "AuditTrail", "AuditRecord", "Error"} {
		instances := v.seen[name]
		require.NotEmpty(t, instances, "schema %s was seen in a response", name)
		union := map[string]bool{}
		always := slices.Clone(instances[0])
		for _, keys := range instances {
			for _, k := range keys {
				union[k] = true
			}
			always = slices.DeleteFunc(always, func(k string) bool { return !slices.Contains(keys, k) })
		}
		s := o.schema(t, name)
		assert.ElementsMatch(t, keysOf(s["properties"]), slices.Collect(maps.Keys(union)), "%s: every documented property is written by some response", name)
		assert.ElementsMatch(t, requiredOf(s), always, "%s: required = the properties every response writes", name)
	}
}

type expect struct {
	call
	want int
}

func send(t *testing.T, srv *httptest.Server, c call) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader(c.body))
	require.NoError(t, err)
	if c.who != "" {
		req.Header.Set("X-Identity", c.who)
	}
	switch {
	case strings.HasPrefix(c.path, "/approvals/") && c.method == http.MethodPost:
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	case c.body != "":
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

// routeOf finds the router's route ("METHOD /pattern") that serves a call.
func routeOf(t *testing.T, method, target string) string {
	t.Helper()
	path, _, _ := strings.Cut(target, "?")
	segs := strings.Split(path, "/")
	for _, route := range allRoutes() {
		m, pattern, _ := strings.Cut(route, " ")
		psegs := strings.Split(pattern, "/")
		if m != method || len(psegs) != len(segs) {
			continue
		}
		match := true
		for i, p := range psegs {
			if !strings.HasPrefix(p, "{") && p != segs[i] {
				match = false
			}
		}
		if match {
			return route
		}
	}
	t.Fatalf("no route serves %s %s", method, target)
	return ""
}

// validator checks response bodies against the document's schemas, and
// records the keys of every object it validates against a named schema.
type validator struct {
	o    *openAPI
	seen map[string][][]string // schema name -> key sets seen
}

func (v *validator) checkResponse(t *testing.T, route string, resp *http.Response, body string) {
	t.Helper()
	method, path, _ := strings.Cut(route, " ")
	op := v.o.at("paths", path, strings.ToLower(method))
	documented, ok := op["responses"].(obj)[strconv.Itoa(resp.StatusCode)].(obj)
	require.True(t, ok, "%s documents status %d (body %s)", route, resp.StatusCode, body)
	r := v.o.deref(t, documented)

	for name, h := range r["headers"].(obj) {
		got := resp.Header.Get(name)
		assert.NotEmpty(t, got, "%s %d sends the documented header %s", route, resp.StatusCode, name)
		hs := v.o.deref(t, h.(obj))
		if enum, ok := hs["schema"].(obj)["enum"].([]any); ok {
			assert.Contains(t, enum, got, "%s %d: header %s", route, resp.StatusCode, name)
		}
	}
	if loc := resp.Header.Get("Location"); resp.StatusCode == http.StatusCreated {
		var created struct{ ID string }
		require.NoError(t, json.Unmarshal([]byte(body), &created))
		assert.Equal(t, "/requests/"+created.ID, loc)
	}

	ct, _, _ := strings.Cut(resp.Header.Get("Content-Type"), ";")
	media, ok := r["content"].(obj)[strings.TrimSpace(ct)].(obj)
	require.True(t, ok, "%s %d documents content type %q", route, resp.StatusCode, ct)
	if ct == "text/html" {
		if resp.Request.Method != http.MethodHead {
			assert.Contains(t, body, "<h1>", "%s %d is a page", route, resp.StatusCode)
		} else {
			assert.Empty(t, body, "HEAD has no body")
		}
		return
	}
	var x any
	require.NoError(t, json.Unmarshal([]byte(body), &x), body)
	var errs []string
	v.validate("$", media["schema"].(obj), x, &errs, true)
	assert.Empty(t, errs, "%s %d: the body matches its schema:\n%s", route, resp.StatusCode, body)
}

// validate checks x against schema s (the subset of OpenAPI schemas this
// document uses), appending what does not match to errs. Only when record
// is set are key sets recorded, so that trying the choices of a oneOf does
// not count the failing ones.
func (v *validator) validate(at string, s obj, x any, errs *[]string, record bool) {
	fail := func(format string, args ...any) { *errs = append(*errs, at+": "+fmt.Sprintf(format, args...)) }
	if ref, ok := s["$ref"].(string); ok {
		name := strings.TrimPrefix(ref, "#/components/schemas/")
		target := v.o.at("components", "schemas", name)
		if target == nil {
			fail("unresolved %s", ref)
			return
		}
		if m, ok := x.(obj); ok && record {
			v.seen[name] = append(v.seen[name], keysOf(m))
		}
		v.validate(at, target, x, errs, record)
		return
	}
	if choices, ok := s["oneOf"].([]any); ok {
		var fits []obj
		for _, c := range choices {
			var e []string
			v.validate(at, c.(obj), x, &e, false)
			if len(e) == 0 {
				fits = append(fits, c.(obj))
			}
		}
		if len(fits) != 1 {
			fail("matches %d of the oneOf choices, want 1", len(fits))
			return
		}
		v.validate(at, fits[0], x, errs, record)
		return
	}
	if all, ok := s["allOf"].([]any); ok {
		for _, c := range all {
			v.validate(at, c.(obj), x, errs, record)
		}
	}
	if x == nil {
		if s["nullable"] != true {
			fail("null")
		}
		return
	}
	if enum, ok := s["enum"].([]any); ok && !slices.Contains(enum, x) {
		fail("%v is not one of %v", x, enum)
	}
	switch s["type"] {
	case "object":
		m, ok := x.(obj)
		if !ok {
			fail("not an object")
			return
		}
		props, _ := s["properties"].(obj)
		req, _ := s["required"].([]any)
		for _, r := range req {
			if _, ok := m[r.(string)]; !ok {
				fail("required %q is missing", r)
			}
		}
		for k, val := range m {
			ps, ok := props[k].(obj)
			if !ok {
				fail("%q is not documented", k)
				continue
			}
			v.validate(at+"."+k, ps, val, errs, record)
		}
	case "array":
		a, ok := x.([]any)
		if !ok {
			fail("not an array")
			return
		}
		for i, el := range a {
			v.validate(fmt.Sprintf("%s[%d]", at, i), s["items"].(obj), el, errs, record)
		}
	case "string":
		str, ok := x.(string)
		if !ok {
			fail("not a string")
			return
		}
		if p, ok := s["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(str) {
			fail("%q does not match %s", str, p)
		}
		if n, ok := s["maxLength"].(float64); ok && utf8.RuneCountInString(str) > int(n) {
			fail("longer than %v", n)
		}
		if s["format"] == "date-time" {
			if _, err := time.Parse(time.RFC3339Nano, str); err != nil {
				fail("%q is not a date-time", str)
			}
		}
	case "integer", "number":
		n, ok := x.(float64)
		if !ok || (s["type"] == "integer" && n != math.Trunc(n)) {
			fail("%v is not an %s", x, s["type"])
			return
		}
		if lo, ok := s["minimum"].(float64); ok && n < lo {
			fail("%v < %v", n, lo)
		}
		if hi, ok := s["maximum"].(float64); ok && n > hi {
			fail("%v > %v", n, hi)
		}
	case "boolean":
		if _, ok := x.(bool); !ok {
			fail("not a boolean")
		}
	case nil:
	default:
		fail("unknown schema type %v", s["type"])
	}
}
