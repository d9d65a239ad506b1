package deploy

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// Template is a parsed CloudFormation/SAM template. Short-form intrinsic
// functions (!Ref, !GetAtt, !Sub, ...) are turned into their long form
// ({"Ref": x}, {"Fn::GetAtt": [r, a]}, {"Fn::Sub": s}, ...), so the values
// are plain maps, slices and scalars.
type Template struct {
	Parameters map[string]map[string]any
	Conditions map[string]any
	Globals    map[string]any
	Resources  map[string]Resource
	Outputs    map[string]any
}

// Resource is one entry of the Resources section.
type Resource struct {
	Type           string
	Condition      string
	DeletionPolicy string
	Metadata       map[string]any
	Properties     map[string]any
}

// LoadTemplate reads and parses a template file.
func LoadTemplate(path string) (*Template, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	t, err := ParseTemplate(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// ParseTemplate parses a template from YAML (JSON is YAML too).
func ParseTemplate(data []byte) (*Template, error) {
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, err
	}
	if len(f.Docs) != 1 {
		return nil, fmt.Errorf("want one YAML document, got %d", len(f.Docs))
	}
	v, err := convert(f.Docs[0])
	if err != nil {
		return nil, err
	}
	root, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("template is not a mapping")
	}
	t := &Template{
		Parameters: map[string]map[string]any{},
		Conditions: Map(root["Conditions"]),
		Globals:    Map(root["Globals"]),
		Resources:  map[string]Resource{},
		Outputs:    Map(root["Outputs"]),
	}
	for name, p := range Map(root["Parameters"]) {
		t.Parameters[name] = Map(p)
	}
	for id, raw := range Map(root["Resources"]) {
		m := Map(raw)
		if m == nil {
			return nil, fmt.Errorf("resource %s is not a mapping", id)
		}
		t.Resources[id] = Resource{
			Type:           Str(m["Type"]),
			Condition:      Str(m["Condition"]),
			DeletionPolicy: Str(m["DeletionPolicy"]),
			Metadata:       Map(m["Metadata"]),
			Properties:     Map(m["Properties"]),
		}
	}
	return t, nil
}

// intrinsics maps the short-form tags to their long-form keys.
var intrinsics = map[string]string{
	"!Ref": "Ref", "!Condition": "Condition",
	"!GetAtt": "Fn::GetAtt", "!Sub": "Fn::Sub", "!Join": "Fn::Join", "!Select": "Fn::Select",
	"!Split": "Fn::Split", "!If": "Fn::If", "!Not": "Fn::Not", "!Equals": "Fn::Equals",
	"!And": "Fn::And", "!Or": "Fn::Or", "!FindInMap": "Fn::FindInMap", "!Base64": "Fn::Base64",
	"!Cidr": "Fn::Cidr", "!GetAZs": "Fn::GetAZs", "!ImportValue": "Fn::ImportValue",
	"!Transform": "Fn::Transform", "!Length": "Fn::Length", "!ToJsonString": "Fn::ToJsonString",
}

func convert(n ast.Node) (any, error) {
	switch n := n.(type) {
	case nil:
		return nil, nil
	case *ast.DocumentNode:
		return convert(n.Body)
	case *ast.CommentGroupNode, *ast.NullNode:
		return nil, nil
	case *ast.MappingNode:
		m := make(map[string]any, len(n.Values))
		for _, kv := range n.Values {
			if err := putPair(m, kv); err != nil {
				return nil, err
			}
		}
		return m, nil
	case *ast.MappingValueNode:
		m := map[string]any{}
		return m, putPair(m, n)
	case *ast.SequenceNode:
		s := make([]any, 0, len(n.Values))
		for _, e := range n.Values {
			v, err := convert(e)
			if err != nil {
				return nil, err
			}
			s = append(s, v)
		}
		return s, nil
	case *ast.TagNode:
		v, err := convert(n.Value)
		if err != nil {
			return nil, err
		}
		tag := n.Start.Value
		if strings.HasPrefix(tag, "!!") { // a standard YAML tag: keep the value
			return v, nil
		}
		key, ok := intrinsics[tag]
		if !ok {
			return nil, fmt.Errorf("line %d: unknown tag %s", n.Start.Position.Line, tag)
		}
		if s, isStr := v.(string); isStr && key == "Fn::GetAtt" {
			res, attr, _ := strings.Cut(s, ".")
			return map[string]any{key: []any{res, attr}}, nil
		}
		return map[string]any{key: v}, nil
	case *ast.LiteralNode: // | and > block scalars
		if n.Value == nil {
			return "", nil
		}
		return n.Value.Value, nil
	case *ast.AnchorNode:
		return convert(n.Value)
	case *ast.AliasNode, *ast.MergeKeyNode:
		return nil, fmt.Errorf("line %d: YAML aliases are not supported in templates", n.GetToken().Position.Line)
	case ast.ScalarNode:
		return n.GetValue(), nil
	}
	return nil, fmt.Errorf("line %d: unsupported YAML node %T", n.GetToken().Position.Line, n)
}

func putPair(m map[string]any, kv *ast.MappingValueNode) error {
	k, err := convert(kv.Key)
	if err != nil {
		return err
	}
	key := fmt.Sprint(k)
	if _, dup := m[key]; dup {
		return fmt.Errorf("line %d: duplicate key %q", kv.Key.GetToken().Position.Line, key)
	}
	v, err := convert(kv.Value)
	if err != nil {
		return err
	}
	m[key] = v
	return nil
}

// Map returns v as a mapping, or nil.
func Map(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// Str returns v as a string, or "".
func Str(v any) string {
	s, _ := v.(string)
	return s
}

// Strings returns v as a list of strings: a single string is a list of one
// (as in IAM's Action and Resource); anything else is left out.
func Strings(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// List returns v as a list: a single value is a list of one.
func List(v any) []any {
	switch v := v.(type) {
	case nil:
		return nil
	case []any:
		return v
	}
	return []any{v}
}

// FunctionProperty is a property of an AWS::Serverless::Function with the
// template's Globals applied: the resource's own value wins, except that
// mappings (Environment.Variables, ...) are merged, as SAM does.
func (t *Template) FunctionProperty(id, name string) any {
	own := t.Resources[id].Properties[name]
	global := Map(t.Globals["Function"])[name]
	if om, gm := Map(own), Map(global); om != nil && gm != nil {
		return mergeMaps(gm, om)
	}
	if own != nil {
		return own
	}
	return global
}

func mergeMaps(base, over map[string]any) map[string]any {
	out := maps.Clone(base)
	for k, v := range over {
		if bm, om := Map(out[k]), Map(v); bm != nil && om != nil {
			out[k] = mergeMaps(bm, om)
			continue
		}
		out[k] = v
	}
	return out
}

// FunctionEnvironment is a function's environment variables, Globals included.
func (t *Template) FunctionEnvironment(id string) map[string]any {
	return Map(Map(t.FunctionProperty(id, "Environment"))["Variables"])
}

// Statement is one IAM policy statement, with where it came from.
type Statement struct {
	Source    string // e.g. "IntakeFunction.Policies[2]" or "CorePolicy"
	Sid       string
	Effect    string
	Actions   []string
	Resources []any
	Condition any
	// When lists the template conditions under which the statement exists:
	// "C" inside the true branch of Fn::If [C, ...], "!C" inside the false
	// branch. Empty: always.
	When []string
}

// FunctionStatements returns every statement of a serverless function's
// Policies: inline policy documents, and managed policies defined in the
// template and referenced with !Ref. A policy the template cannot show
// (an ARN, a SAM policy template) is an error, because its actions cannot
// be checked.
func (t *Template) FunctionStatements(id string) ([]Statement, error) {
	r, ok := t.Resources[id]
	if !ok {
		return nil, fmt.Errorf("no resource %s", id)
	}
	if r.Properties["Role"] != nil {
		return nil, fmt.Errorf("%s: sets Role; the agreement tests read Policies", id)
	}
	var out []Statement
	for i, p := range List(r.Properties["Policies"]) {
		src := fmt.Sprintf("%s.Policies[%d]", id, i)
		m := Map(p)
		if ref := Str(m["Ref"]); ref != "" && len(m) == 1 {
			mp, ok := t.Resources[ref]
			if !ok || mp.Type != "AWS::IAM::ManagedPolicy" {
				return nil, fmt.Errorf("%s: !Ref %s is not a managed policy defined in the template", src, ref)
			}
			s, err := statements(ref, mp.Properties["PolicyDocument"])
			if err != nil {
				return nil, err
			}
			out = append(out, s...)
			continue
		}
		if m == nil || m["Statement"] == nil {
			return nil, fmt.Errorf("%s: only inline policy documents and !Ref to template managed policies can be checked", src)
		}
		s, err := statements(src, m)
		if err != nil {
			return nil, err
		}
		out = append(out, s...)
	}
	return out, nil
}

// RoleStatements returns the statements of an AWS::IAM::Role's inline
// Policies and of the template's managed policies it lists.
func (t *Template) RoleStatements(id string) ([]Statement, error) {
	r, ok := t.Resources[id]
	if !ok || r.Type != "AWS::IAM::Role" {
		return nil, fmt.Errorf("no role %s", id)
	}
	var out []Statement
	for i, p := range List(r.Properties["Policies"]) {
		s, err := statements(fmt.Sprintf("%s.Policies[%d]", id, i), Map(p)["PolicyDocument"])
		if err != nil {
			return nil, err
		}
		out = append(out, s...)
	}
	for i, arn := range List(r.Properties["ManagedPolicyArns"]) {
		ref := Str(Map(arn)["Ref"])
		mp, ok := t.Resources[ref]
		if !ok || mp.Type != "AWS::IAM::ManagedPolicy" {
			return nil, fmt.Errorf("%s.ManagedPolicyArns[%d]: not a managed policy defined in the template", id, i)
		}
		s, err := statements(ref, mp.Properties["PolicyDocument"])
		if err != nil {
			return nil, err
		}
		out = append(out, s...)
	}
	return out, nil
}

// AllStatements returns the statements of every policy the template defines:
// functions' Policies, roles' inline policies and managed policies.
func (t *Template) AllStatements() ([]Statement, error) {
	var out []Statement
	for _, id := range slices.Sorted(maps.Keys(t.Resources)) {
		r := t.Resources[id]
		var s []Statement
		var err error
		switch r.Type {
		case "AWS::Serverless::Function":
			s, err = t.FunctionStatements(id)
		case "AWS::IAM::Role":
			for i, p := range List(r.Properties["Policies"]) {
				ps, perr := statements(fmt.Sprintf("%s.Policies[%d]", id, i), Map(p)["PolicyDocument"])
				if perr != nil {
					return nil, perr
				}
				s = append(s, ps...)
			}
		case "AWS::IAM::ManagedPolicy", "AWS::IAM::Policy":
			s, err = statements(id, r.Properties["PolicyDocument"])
		}
		if err != nil {
			return nil, err
		}
		out = append(out, s...)
	}
	return out, nil
}

// statements reads a policy document. A statement (or the list) wrapped in
// Fn::If counts with both branches, so nothing conditional goes unchecked.
func statements(src string, doc any) ([]Statement, error) {
	d := Map(doc)
	if d == nil {
		return nil, fmt.Errorf("%s: no policy document", src)
	}
	var out []Statement
	var add func(v any, when []string) error
	add = func(v any, when []string) error {
		m := Map(v)
		if branches, ok := m["Fn::If"].([]any); ok && len(m) == 1 && len(branches) == 3 {
			cond := Str(branches[0])
			if err := add(branches[1], append(slices.Clone(when), cond)); err != nil {
				return err
			}
			return add(branches[2], append(slices.Clone(when), "!"+cond))
		}
		if list, ok := v.([]any); ok {
			for _, e := range list {
				if err := add(e, when); err != nil {
					return err
				}
			}
			return nil
		}
		if m == nil {
			return nil // AWS::NoValue and the like
		}
		if Map(m)["Ref"] == "AWS::NoValue" {
			return nil
		}
		if m["NotAction"] != nil || m["NotResource"] != nil {
			return fmt.Errorf("%s: NotAction/NotResource cannot be checked; list actions and resources", src)
		}
		out = append(out, Statement{
			Source:    src,
			Sid:       Str(m["Sid"]),
			Effect:    Str(m["Effect"]),
			Actions:   Strings(m["Action"]),
			Resources: List(m["Resource"]),
			Condition: m["Condition"],
			When:      when,
		})
		return nil
	}
	if err := add(d["Statement"], nil); err != nil {
		return nil, err
	}
	return out, nil
}

// AllowedActions is the sorted set of actions the Allow statements list.
func AllowedActions(stmts []Statement) []string {
	var out []string
	for _, s := range stmts {
		if s.Effect == "Allow" {
			out = append(out, s.Actions...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// subRef matches ${Name} and ${Name.Attr} in an Fn::Sub string.
var subRef = regexp.MustCompile(`\$\{([A-Za-z0-9:]+)(?:\.[A-Za-z0-9.]+)?\}`)

// RefersTo reports whether v refers to the resource id: through Ref,
// Fn::GetAtt or a ${id} or ${id.Attr} inside Fn::Sub, at any depth.
func RefersTo(v any, id string) bool {
	switch v := v.(type) {
	case []any:
		return slices.ContainsFunc(v, func(e any) bool { return RefersTo(e, id) })
	case map[string]any:
		if Str(v["Ref"]) == id {
			return true
		}
		if ga := List(v["Fn::GetAtt"]); len(ga) > 0 && Str(ga[0]) == id {
			return true
		}
		if sub, ok := v["Fn::Sub"]; ok {
			s := Str(sub)
			if l := List(sub); s == "" && len(l) > 0 {
				s = Str(l[0])
				if len(l) > 1 && RefersTo(l[1], id) {
					return true
				}
			}
			for _, m := range subRef.FindAllStringSubmatch(s, -1) {
				if m[1] == id {
					return true
				}
			}
			return false
		}
		for _, e := range v {
			if RefersTo(e, id) {
				return true
			}
		}
	}
	return false
}

// ConditionVariants returns a statement's Condition block per branch of a
// top-level Fn::If, keyed by the template condition that selects it ("C" or
// "!C"); a plain Condition is the single variant "". A branch that is
// AWS::NoValue is an empty (nil) block.
func ConditionVariants(c any) map[string]map[string]any {
	m := Map(c)
	if branches, ok := m["Fn::If"].([]any); ok && len(m) == 1 && len(branches) == 3 {
		cond := Str(branches[0])
		out := map[string]map[string]any{}
		for i, b := range branches[1:] {
			key := cond
			if i == 1 {
				key = "!" + cond
			}
			if Str(Map(b)["Ref"]) == "AWS::NoValue" {
				out[key] = nil
				continue
			}
			out[key] = Map(b)
		}
		return out
	}
	return map[string]map[string]any{"": m}
}

// pseudo are the pseudo parameters a ${...} in Fn::Sub may name.
var pseudo = map[string]string{
	"AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012",
	"AWS::StackName": "jit", "AWS::URLSuffix": "amazonaws.com",
}

// Resolve turns an ARN expression (a string, Ref, Fn::GetAtt or a plain
// Fn::Sub string) into a concrete string with the given parameter values
// and example pseudo parameters (account 123456789012, region us-east-1,
// stack "jit"). A resource of the template resolves to "<Id>" (Ref) or
// "<Id.Attr>" (GetAtt); a list parameter joins with ",". ok is false for
// anything else.
func (t *Template) Resolve(v any, params map[string]string) (string, bool) {
	if s, isStr := v.(string); isStr {
		return s, true
	}
	m := Map(v)
	if ref := Str(m["Ref"]); ref != "" && len(m) == 1 {
		if p, ok := pseudo[ref]; ok {
			return p, true
		}
		if p, ok := params[ref]; ok {
			return p, true
		}
		if _, ok := t.Resources[ref]; ok {
			return "<" + ref + ">", true
		}
		return "", false
	}
	if ga := Strings(m["Fn::GetAtt"]); len(ga) == 2 && len(m) == 1 {
		if _, ok := t.Resources[ga[0]]; ok {
			return "<" + ga[0] + "." + ga[1] + ">", true
		}
		return "", false
	}
	sub, isStr := m["Fn::Sub"].(string)
	if !isStr || len(m) != 1 {
		return "", false
	}
	ok := true
	out := subVar.ReplaceAllStringFunc(sub, func(ref string) string {
		name := ref[2 : len(ref)-1]
		if p, found := pseudo[name]; found {
			return p
		}
		if p, found := params[name]; found {
			return p
		}
		id, attr, hasAttr := strings.Cut(name, ".")
		if _, found := t.Resources[id]; found {
			if hasAttr {
				return "<" + id + "." + attr + ">"
			}
			return "<" + id + ">"
		}
		ok = false
		return ref
	})
	return out, ok
}

var subVar = regexp.MustCompile(`\$\{[A-Za-z0-9:.]+\}`)

// Defaults returns the template's parameter defaults, overridden by over.
func (t *Template) Defaults(over map[string]string) map[string]string {
	out := map[string]string{}
	for name, p := range t.Parameters {
		if d, ok := p["Default"]; ok {
			out[name] = fmt.Sprint(d)
		}
	}
	maps.Copy(out, over)
	return out
}

// GlobMatch reports whether s matches an IAM ARN pattern, where * matches
// any run of characters (including /) and ? any one character.
func GlobMatch(pattern, s string) bool {
	var re strings.Builder
	re.WriteString("^")
	for _, r := range pattern {
		switch r {
		case '*':
			re.WriteString(".*")
		case '?':
			re.WriteString(".")
		default:
			re.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	re.WriteString("$")
	return regexp.MustCompile(re.String()).MatchString(s)
}
