package catalog

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// The catalog is read by walking the YAML syntax tree by hand rather than by
// unmarshalling into structs: a strict decoder stops at the first unknown
// field or type mismatch, and we want every problem, each with its position.

// aliasBudget bounds alias expansions, so "billion laughs" documents and
// self-referencing anchors end with a problem instead of a hang.
const aliasBudget = 10_000

// maxDepth bounds nesting inside free-form values (the policy documents).
const maxDepth = 64

type decoder struct {
	file       string
	problems   []Problem
	anchors    map[string]ast.Node
	budget     int
	overBudget bool
}

// entry is one key of a mapping, merge keys resolved.
type entry struct {
	key   string
	keyAt ast.Node
	value ast.Node // unresolved: may be an alias, anchor or tag
	path  string
}

func newDecoder(file string) *decoder {
	return &decoder{file: file, anchors: map[string]ast.Node{}, budget: aliasBudget}
}

// parseYAML turns bytes into a syntax tree. Duplicate keys are allowed here
// because the decoder reports them itself, together with everything else.
func (d *decoder) parseYAML(data []byte) (f *ast.File) {
	defer func() {
		// The parser is third-party code; a panic on odd input must not take
		// the process down with it.
		if r := recover(); r != nil {
			d.problems = append(d.problems, Problem{File: d.file, Line: 1, Column: 1, Message: fmt.Sprintf("cannot parse YAML: %v", r)})
			f = nil
		}
	}()
	f, err := parser.ParseBytes(data, 0, parser.AllowDuplicateMapKey())
	if err != nil {
		p := Problem{File: d.file, Line: 1, Column: 1, Message: "YAML syntax error: " + err.Error()}
		var ye yaml.Error
		if errors.As(err, &ye) {
			p.Message = "YAML syntax error: " + ye.GetMessage()
			if tk := ye.GetToken(); tk != nil && tk.Position != nil {
				p.Line, p.Column = max(tk.Position.Line, 1), max(tk.Position.Column, 1)
			}
		}
		d.problems = append(d.problems, p)
		return nil
	}
	d.collectAnchors(f)
	return f
}

// anchorCollector maps anchor names to their values. A name defined twice
// keeps its last definition, where YAML would use the nearest preceding one;
// catalogs have no reason to reuse names.
type anchorCollector map[string]ast.Node

func (a anchorCollector) Visit(n ast.Node) ast.Visitor {
	if an, ok := n.(*ast.AnchorNode); ok && an.Name != nil && an.Value != nil {
		a[tokenValue(an.Name)] = an.Value
	}
	return a
}

func (d *decoder) collectAnchors(f *ast.File) {
	for _, doc := range f.Docs {
		if doc != nil && doc.Body != nil {
			ast.Walk(anchorCollector(d.anchors), doc.Body)
		}
	}
}

// report records a problem at n's position.
func (d *decoder) report(n ast.Node, field, format string, args ...any) {
	line, col := position(n)
	d.problems = append(d.problems, Problem{
		File: d.file, Line: line, Column: col, Field: field, Message: fmt.Sprintf(format, args...),
	})
}

// result returns the problems in file order, each reported once: a node
// resolved twice on the same path would otherwise be reported twice.
func (d *decoder) result() *ValidationError {
	if len(d.problems) == 0 {
		return nil
	}
	ps := slices.Clone(d.problems)
	slices.SortStableFunc(ps, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
	})
	ps = slices.CompactFunc(ps, func(a, b Problem) bool {
		return a == b
	})
	return &ValidationError{Problems: ps}
}

// position is where a node starts. A block mapping's own token is the colon
// of its first entry, so its first key is a better place to point at.
func position(n ast.Node) (line, col int) {
	switch v := n.(type) {
	case *ast.MappingNode:
		if len(v.Values) > 0 && v.Values[0] != nil && v.Values[0].Key != nil {
			return position(v.Values[0].Key)
		}
	case *ast.MappingValueNode:
		if v.Key != nil {
			return position(v.Key)
		}
	}
	if n != nil {
		if tk := n.GetToken(); tk != nil && tk.Position != nil {
			return max(tk.Position.Line, 1), max(tk.Position.Column, 1)
		}
	}
	return 1, 1
}

func tokenValue(n ast.Node) string {
	if n == nil {
		return ""
	}
	if tk := n.GetToken(); tk != nil {
		return tk.Value
	}
	return ""
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// short formats a duration the way it is written in the file: 4h, not 4h0m0s.
func short(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// resolve looks through anchors, tags and aliases. It returns nil for an
// alias that cannot be followed (reported) so callers treat it as absent.
func (d *decoder) resolve(n ast.Node, path string) ast.Node {
	for {
		switch v := n.(type) {
		case *ast.AnchorNode:
			n = v.Value
		case *ast.TagNode:
			n = v.Value
		case *ast.MappingKeyNode:
			n = v.Value
		case *ast.AliasNode:
			if d.budget--; d.budget < 0 {
				if !d.overBudget {
					d.overBudget = true
					d.report(v, path, "too many alias expansions (more than %d)", aliasBudget)
				}
				return nil
			}
			target, ok := d.anchors[tokenValue(v.Value)]
			if !ok {
				d.report(v, path, "unknown anchor %q", tokenValue(v.Value))
				return nil
			}
			n = target
		default:
			return n
		}
	}
}

func isNull(n ast.Node) bool {
	if n == nil {
		return true
	}
	_, ok := n.(*ast.NullNode)
	return ok
}

// entries lists a mapping's keys, merge keys (<<) expanded; explicit keys win
// over merged ones. A null value is an empty mapping. ok is false (and the
// problem reported) when n is not a mapping.
func (d *decoder) entries(n ast.Node, path string) (out []entry, ok bool) {
	return d.entriesDepth(n, path, 0)
}

func (d *decoder) entriesDepth(n ast.Node, path string, depth int) (out []entry, ok bool) {
	at := n
	n = d.resolve(n, path)
	if isNull(n) {
		return nil, true
	}
	m, isMap := n.(*ast.MappingNode)
	if !isMap {
		d.report(at, path, "must be a mapping, not %s", describe(n))
		return nil, false
	}
	if depth > maxDepth {
		d.report(at, path, "merge keys nested too deeply")
		return nil, false
	}
	seen := map[string]ast.Node{}
	var merges []ast.Node
	for _, mv := range m.Values {
		if mv == nil || mv.Key == nil {
			continue
		}
		if _, isMerge := mv.Key.(*ast.MergeKeyNode); isMerge {
			merges = append(merges, mv.Value)
			continue
		}
		key, ok := scalar(d.resolve(mv.Key, path))
		if !ok {
			d.report(mv.Key, path, "keys must be plain scalars")
			continue
		}
		p := join(path, key)
		if first, dup := seen[key]; dup {
			line, _ := position(first)
			d.report(mv.Key, p, "duplicate key %q (first on line %d)", key, line)
			continue
		}
		seen[key] = mv.Key
		out = append(out, entry{key: key, keyAt: mv.Key, value: mv.Value, path: p})
	}
	for _, src := range merges {
		// "<<: *a" or "<<: [*a, *b]"; earlier sources win over later ones.
		srcs := []ast.Node{src}
		if seq, isSeq := d.resolve(src, path).(*ast.SequenceNode); isSeq {
			srcs = seq.Values
		}
		for _, s := range srcs {
			merged, _ := d.entriesDepth(s, path, depth+1)
			for _, e := range merged {
				if _, dup := seen[e.key]; !dup {
					seen[e.key] = e.keyAt
					out = append(out, e)
				}
			}
		}
	}
	return out, true
}

// object reads a mapping whose keys must come from fields, reporting every
// other key, and returns the known entries by key.
func (d *decoder) object(n ast.Node, path string, fields ...string) (map[string]entry, bool) {
	es, ok := d.entries(n, path)
	if !ok {
		return nil, false
	}
	out := make(map[string]entry, len(es))
	for _, e := range es {
		if !slices.Contains(fields, e.key) {
			d.report(e.keyAt, e.path, "unknown field %q%s", e.key, suggest(e.key, fields))
			continue
		}
		out[e.key] = e
	}
	return out, true
}

// suggest catches the usual slips: case, snake_case, kebab-case.
func suggest(key string, fields []string) string {
	fold := func(s string) string {
		return strings.ToLower(strings.NewReplacer("_", "", "-", "").Replace(s))
	}
	for _, f := range fields {
		if fold(f) == fold(key) {
			return fmt.Sprintf(" (did you mean %q?)", f)
		}
	}
	return fmt.Sprintf(" (known fields: %s)", strings.Join(fields, ", "))
}

// scalar is the text of a scalar node. Numbers and booleans count, so that
// "description: 2024" is not an error; their source text is kept.
func scalar(n ast.Node) (string, bool) {
	switch v := n.(type) {
	case *ast.StringNode:
		return v.Value, true
	case *ast.LiteralNode:
		if v.Value == nil {
			return "", true
		}
		return v.Value.Value, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode:
		return tokenValue(v), true
	}
	return "", false
}

// str reads a string value; null reads as "".
func (d *decoder) str(e entry) (string, bool) {
	n := d.resolve(e.value, e.path)
	if isNull(n) {
		return "", true
	}
	s, ok := scalar(n)
	if !ok {
		d.report(e.value, e.path, "must be a string, not %s", describe(n))
	}
	return s, ok
}

func (d *decoder) integer(e entry) (int, bool) {
	n := d.resolve(e.value, e.path)
	v, isInt := n.(*ast.IntegerNode)
	if !isInt {
		d.report(e.value, e.path, "must be a whole number, not %s", describe(n))
		return 0, false
	}
	switch x := v.GetValue().(type) {
	case int64:
		if x >= math.MinInt32 && x <= math.MaxInt32 {
			return int(x), true
		}
	case uint64:
		if x <= math.MaxInt32 {
			return int(x), true
		}
	}
	d.report(e.value, e.path, "number %s is out of range", tokenValue(v))
	return 0, false
}

func (d *decoder) boolean(e entry) (bool, bool) {
	n := d.resolve(e.value, e.path)
	v, isBool := n.(*ast.BoolNode)
	if !isBool {
		d.report(e.value, e.path, "must be true or false, not %s", describe(n))
		return false, false
	}
	return v.Value, true
}

func (d *decoder) duration(e entry) (time.Duration, bool) {
	n := d.resolve(e.value, e.path)
	s, isStr := n.(*ast.StringNode)
	if !isStr {
		d.report(e.value, e.path, "must be a duration such as 30m or 4h, not %s", describe(n))
		return 0, false
	}
	v, err := time.ParseDuration(s.Value)
	if err != nil {
		d.report(e.value, e.path, "%q is not a duration (use e.g. 30m, 4h, 1h30m)", s.Value)
		return 0, false
	}
	return v, true
}

// item is one element of a list of strings.
type item struct {
	value string
	at    ast.Node
	path  string
}

// list reads a list of strings; null reads as an empty list.
func (d *decoder) list(n ast.Node, path string) []item {
	at := n
	n = d.resolve(n, path)
	if isNull(n) {
		return nil
	}
	seq, ok := n.(*ast.SequenceNode)
	if !ok {
		d.report(at, path, "must be a list, not %s", describe(n))
		return nil
	}
	var out []item
	for i, v := range seq.Values {
		p := index(path, i)
		x := d.resolve(v, p)
		s, ok := scalar(x)
		if !ok {
			d.report(v, p, "must be a string%s", hintFor(x))
			continue
		}
		out = append(out, item{value: s, at: v, path: p})
	}
	return out
}

// value converts a free-form YAML value (a policy document) to what
// encoding/json marshals.
func (d *decoder) value(n ast.Node, path string, depth int) (any, bool) {
	at := n
	n = d.resolve(n, path)
	if depth > maxDepth {
		d.report(at, path, "nested too deeply")
		return nil, false
	}
	switch v := n.(type) {
	case nil, *ast.NullNode:
		return nil, true
	case *ast.MappingNode:
		es, ok := d.entriesDepth(v, path, depth)
		out := make(map[string]any, len(es))
		for _, e := range es {
			x, xok := d.value(e.value, e.path, depth+1)
			ok = ok && xok
			out[e.key] = x
		}
		return out, ok
	case *ast.SequenceNode:
		out := make([]any, 0, len(v.Values))
		ok := true
		for i, x := range v.Values {
			y, yok := d.value(x, index(path, i), depth+1)
			ok = ok && yok
			out = append(out, y)
		}
		return out, ok
	case *ast.StringNode:
		return v.Value, true
	case *ast.LiteralNode:
		s, _ := scalar(v)
		return s, true
	case *ast.BoolNode:
		return v.Value, true
	case *ast.IntegerNode:
		return v.GetValue(), true
	case *ast.FloatNode:
		if math.IsInf(v.Value, 0) || math.IsNaN(v.Value) {
			break
		}
		return v.Value, true
	}
	d.report(at, path, "%s cannot be part of a JSON policy", describe(n))
	return nil, false
}

// flowHint explains a YAML trap: inside {...} the parser reads a colon even
// without a following space as a key separator, so "{Action: [s3:GetObject]}"
// holds a mapping, not the string "s3:GetObject".
const flowHint = "; inside {...} quote values that contain ':', e.g. 's3:GetObject'"

func hintFor(n ast.Node) string {
	if _, ok := n.(*ast.MappingNode); ok {
		return flowHint
	}
	return ""
}

// describe names a node's kind for messages.
func describe(n ast.Node) string {
	switch n.(type) {
	case nil, *ast.NullNode:
		return "empty"
	case *ast.MappingNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.StringNode, *ast.LiteralNode:
		return "a string"
	case *ast.IntegerNode, *ast.FloatNode:
		return "a number"
	case *ast.BoolNode:
		return "a boolean"
	}
	return strings.ToLower(n.Type().String())
}
