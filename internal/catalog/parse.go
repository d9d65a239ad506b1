package catalog

import (
	"bytes"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"

	"github.com/jitaccess/jit/internal/access"
)

const (
	supportedVersion = 1

	defaultDuration         = time.Hour
	defaultApprovalDeadline = 24 * time.Hour
	defaultMinJustification = 10

	// maxDuration bounds every role: standing access for longer than a
	// working day is what this system exists to avoid, and a typo such as
	// 400h should not slip through.
	maxDuration = 12 * time.Hour

	// Upper bounds on request input, so that requests stay storable and
	// emails readable.
	maxJustification = 2000
	maxTicket        = 128
)

var (
	policyARNPattern = regexp.MustCompile(`^arn:aws(-cn|-us-gov)?:iam::(\d{12}|aws):policy/[\w+=,.@/-]+$`)

	// farFuture stands in for a grant's end time when sizing a timeboxed
	// policy; the timestamp has the same length whatever the date.
	farFuture = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
)

var (
	topFields           = []string{"version", "admins", "securityContacts", "groups", "principals", "roles"}
	roleFields          = []string{"id", "description", "provider", "target", "requesters", "approvers", "approvals", "duration", "approvalDeadline", "ticket", "justification", "autoApprove", "breakGlass"}
	targetFields        = []string{"group", "policyArn", "policy"}
	durationFields      = []string{"default", "max"}
	ticketFields        = []string{"required", "pattern"}
	justificationFields = []string{"minLength"}
	policyFields        = []string{"Version", "Id", "Statement"}
	statementFields     = []string{"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition"}
)

// targetField names the one target field each provider uses.
var targetField = map[access.ProviderKind]string{
	access.ProviderIAMGroup:           "group",
	access.ProviderIAMPolicy:          "policyArn",
	access.ProviderIAMTimeboxedPolicy: "policy",
}

// Parse reads and validates a catalog. filename is only used in problems.
// Any error is a *ValidationError listing every problem found.
func Parse(filename string, data []byte) (*Catalog, error) {
	d := newDecoder(filename)
	f := d.parseYAML(data)
	if f == nil {
		return nil, d.result()
	}
	var body ast.Node
	if len(f.Docs) > 0 && f.Docs[0] != nil {
		body = f.Docs[0].Body
	}
	if len(f.Docs) > 1 {
		var at ast.Node = f.Docs[1]
		if f.Docs[1].Start != nil {
			at = ast.String(f.Docs[1].Start) // points at the "---"
		}
		d.report(at, "", "the catalog must be a single YAML document")
	}
	c := d.catalog(body)
	if err := d.result(); err != nil {
		return nil, err
	}
	return c, nil
}

func (d *decoder) catalog(body ast.Node) *Catalog {
	c := &Catalog{Groups: map[string][]string{}, Principals: map[string]access.Principal{}, byID: map[string]int{}}
	top, ok := d.object(body, "", topFields...)
	if !ok {
		return c
	}

	if e, ok := top["version"]; !ok {
		d.report(body, "version", "is required (version: %d)", supportedVersion)
	} else if v, ok := d.integer(e); ok && v != supportedVersion {
		// A file for another version would drown in unrelated problems.
		d.report(e.value, e.path, "unsupported version %d; this build reads version %d", v, supportedVersion)
		return c
	}

	if e, ok := top["admins"]; ok {
		c.Admins = d.identities(e.value, e.path)
	}
	if e, ok := top["securityContacts"]; ok {
		c.SecurityContacts = d.identities(e.value, e.path)
	}
	if e, ok := top["groups"]; ok {
		d.groups(e, c)
	}
	if e, ok := top["principals"]; ok {
		d.principals(e, c)
	}

	e, ok := top["roles"]
	if !ok {
		d.report(body, "roles", "is required (list at least one role)")
		return c
	}
	n := d.resolve(e.value, e.path)
	seq, isSeq := n.(*ast.SequenceNode)
	switch {
	case isNull(n) || isSeq && len(seq.Values) == 0:
		d.report(e.keyAt, e.path, "list at least one role")
		return c
	case !isSeq:
		d.report(e.value, e.path, "must be a list of roles, not %s", describe(n))
		return c
	}
	firstLine := map[string]int{}
	for i, rn := range seq.Values {
		path := index(e.path, i)
		r, idAt := d.role(rn, path, c)
		if r.ID != "" {
			if line, dup := firstLine[r.ID]; dup {
				d.report(idAt, path+".id", "duplicate role id %q (first defined on line %d)", r.ID, line)
				continue
			}
			firstLine[r.ID], _ = position(idAt)
			c.byID[r.ID] = len(c.Roles)
		}
		c.Roles = append(c.Roles, r)
	}
	return c
}

// identity checks that an item looks like an email address, the JWT claim
// callers are known by, and returns it lowercase.
func (d *decoder) identity(it item) (string, bool) {
	s := normalize(it.value)
	if strings.HasPrefix(s, groupPrefix) {
		d.report(it.at, it.path, "%q: a group cannot be used here, list identities", it.value)
		return "", false
	}
	local, domain, ok := strings.Cut(s, "@")
	if !ok || local == "" || domain == "" || strings.ContainsAny(domain, "@") || strings.ContainsFunc(s, isSpaceOrControl) {
		d.report(it.at, it.path, "%q is not an email address", it.value)
		return "", false
	}
	return s, true
}

func isSpaceOrControl(r rune) bool { return r <= ' ' || r == 0x7f }

func (d *decoder) identities(n ast.Node, path string) []string {
	var out []string
	for _, it := range d.list(n, path) {
		if s, ok := d.identity(it); ok && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func (d *decoder) groups(e entry, c *Catalog) {
	es, _ := d.entries(e.value, e.path)
	for _, g := range es {
		if !isID(g.key) {
			d.report(g.keyAt, g.path, "group name %q must be lowercase letters, digits and dashes", g.key)
		}
		c.Groups[g.key] = d.identities(g.value, g.path)
	}
}

func (d *decoder) principals(e entry, c *Catalog) {
	es, _ := d.entries(e.value, e.path)
	firstLine := map[string]int{}
	for _, p := range es {
		id, ok := d.identity(item{value: p.key, at: p.keyAt, path: p.path})
		if !ok {
			continue
		}
		if line, dup := firstLine[id]; dup {
			d.report(p.keyAt, p.path, "%s is mapped twice (first on line %d; identities ignore case)", id, line)
			continue
		}
		firstLine[id], _ = position(p.keyAt)
		s, ok := d.str(p)
		if !ok {
			continue
		}
		pr, err := access.ParsePrincipal(strings.TrimSpace(s))
		if err != nil {
			d.report(p.value, p.path, "%s", access.PublicMessage(err))
			continue
		}
		c.Principals[id] = pr
	}
}

// role reads one role. It returns the role however incomplete (problems
// are reported as found) and where its id is, for duplicate reports.
func (d *decoder) role(n ast.Node, path string, c *Catalog) (Role, ast.Node) {
	r := Role{Quorum: 1, ApprovalDeadline: defaultApprovalDeadline, MinJustification: defaultMinJustification}
	f, ok := d.object(n, path, roleFields...)
	if !ok {
		return r, n
	}
	at := d.resolve(n, path) // where to point for missing fields

	id, idAt, ok := d.requiredString(f, "id", path, at, "")
	if ok {
		if isID(id) {
			r.ID = id
		} else {
			d.report(idAt, path+".id", "%q must be 1-63 lowercase letters, digits and dashes, starting with a letter or digit", id)
		}
	}
	if e, ok := f["description"]; ok {
		s, _ := d.str(e)
		r.Description = strings.TrimSpace(s)
	}

	provider, providerAt, ok := d.requiredString(f, "provider", path, at, " (one of "+providers()+")")
	r.Provider = access.ProviderKind(provider)
	if ok && !slices.Contains(access.Providers, r.Provider) {
		d.report(providerAt, path+".provider", "unknown provider %q (one of %s)", provider, providers())
	}

	if e, ok := f["requesters"]; ok {
		before := len(d.problems)
		var n int
		r.Requesters, n = d.refs(e, c)
		if n == 0 && len(d.problems) == before {
			d.report(e.keyAt, e.path, "list at least one identity or group")
		}
	} else {
		d.report(at, path+".requesters", "is required")
	}
	approversOK := true // so that a bad entry is not also reported as missing
	if e, ok := f["approvers"]; ok {
		before := len(d.problems)
		r.Approvers, _ = d.refs(e, c)
		approversOK = len(d.problems) == before
	}

	if e, ok := f["target"]; ok {
		r.Target = d.target(e, r, c)
	} else {
		d.report(at, path+".target", "is required")
	}

	if e, ok := f["approvals"]; ok {
		if q, ok := d.integer(e); ok {
			r.Quorum = q
			if q < 1 {
				d.report(e.value, e.path, "must be at least 1")
			}
		}
	}

	d.durations(f, path, at, &r)

	if e, ok := f["approvalDeadline"]; ok {
		if v, ok := d.duration(e); ok {
			r.ApprovalDeadline = v
			if v <= 0 {
				d.report(e.value, e.path, "must be positive")
			}
		}
	}

	if e, ok := f["ticket"]; ok {
		d.ticket(e, &r)
	}

	if e, ok := f["justification"]; ok {
		d.justification(e, &r)
	}

	if e, ok := f["autoApprove"]; ok {
		r.AutoApprove, _ = d.boolean(e)
	}
	if e, ok := f["breakGlass"]; ok {
		r.BreakGlass, _ = d.boolean(e)
	}
	if r.AutoApprove && r.BreakGlass {
		d.report(f["breakGlass"].value, path+".breakGlass", "autoApprove and breakGlass cannot both be true")
	}

	approvers := c.Members(r.Approvers)
	switch {
	case r.BreakGlass:
		if len(approvers) == 0 && len(c.SecurityContacts) == 0 {
			d.report(f["breakGlass"].value, path+".breakGlass", "nobody would be told: list approvers or securityContacts")
		}
	case r.AutoApprove, !approversOK:
	case len(approvers) == 0:
		d.report(at, path+".approvers", "list at least one approver, or set autoApprove or breakGlass")
	case len(approvers) > MaxApprovers:
		d.report(f["approvers"].keyAt, path+".approvers", "lists %d approvers; at most %d (each one's inbox entry is written in the request's one DynamoDB transaction)", len(approvers), MaxApprovers)
	case r.Quorum > len(approvers):
		qAt := at
		if e, ok := f["approvals"]; ok {
			qAt = e.value
		}
		d.report(qAt, path+".approvals", "needs %d approval(s) but only %d distinct approver(s) are listed", r.Quorum, len(approvers))
	}
	return r, idAt
}

func (d *decoder) justification(e entry, r *Role) {
	jf, ok := d.object(e.value, e.path, justificationFields...)
	if !ok {
		return
	}
	m, ok := jf["minLength"]
	if !ok {
		return
	}
	v, ok := d.integer(m)
	if !ok {
		return
	}
	r.MinJustification = v
	switch {
	case v < 0:
		d.report(m.value, m.path, "must not be negative")
	case v > maxJustification:
		d.report(m.value, m.path, "must be at most %d, the longest justification accepted", maxJustification)
	}
}

// requiredString reads a string field that must be present and not empty;
// ok is false when it is not (already reported).
func (d *decoder) requiredString(f map[string]entry, key, path string, at ast.Node, hint string) (string, ast.Node, bool) {
	e, present := f[key]
	if !present {
		d.report(at, join(path, key), "is required%s", hint)
		return "", at, false
	}
	s, ok := d.str(e)
	s = strings.TrimSpace(s)
	if ok && s == "" {
		d.report(e.value, e.path, "is required%s", hint)
		ok = false
	}
	return s, e.value, ok
}

func providers() string {
	names := make([]string, len(access.Providers))
	for i, p := range access.Providers {
		names[i] = string(p)
	}
	return strings.Join(names, ", ")
}

// refs reads requesters or approvers: identities and "group:<name>". It
// also returns how many entries the list had, valid or not.
func (d *decoder) refs(e entry, c *Catalog) ([]string, int) {
	items := d.list(e.value, e.path)
	var out []string
	for _, it := range items {
		ref := strings.TrimSpace(it.value)
		if name, isGroup := strings.CutPrefix(ref, groupPrefix); isGroup {
			if _, known := c.Groups[name]; !known {
				d.report(it.at, it.path, "unknown group %q", name)
				continue
			}
		} else {
			var ok bool
			if ref, ok = d.identity(it); !ok {
				continue
			}
		}
		if !slices.Contains(out, ref) {
			out = append(out, ref)
		}
	}
	return out, len(items)
}

func (d *decoder) durations(f map[string]entry, path string, at ast.Node, r *Role) {
	e, ok := f["duration"]
	if !ok {
		d.report(at, path+".duration", "is required (e.g. duration: {default: 1h, max: 4h})")
		return
	}
	df, ok := d.object(e.value, e.path, durationFields...)
	if !ok {
		return
	}
	check := func(key string) (time.Duration, bool) {
		x, ok := df[key]
		if !ok {
			return 0, false
		}
		v, ok := d.duration(x)
		switch {
		case !ok:
		case v <= 0:
			d.report(x.value, x.path, "must be positive")
		case v < access.MinDuration:
			d.report(x.value, x.path, "%s is under the %s minimum (access ends on a one-minute schedule)", short(v), short(access.MinDuration))
		case v > maxDuration:
			d.report(x.value, x.path, "%s is over the %s limit for any role", short(v), short(maxDuration))
		default:
			return v, true
		}
		return 0, false
	}
	maxV, maxOK := check("max")
	defV, defOK := check("default")
	if _, ok := df["max"]; !ok {
		d.report(e.value, e.path+".max", "is required")
	}
	r.MaxDuration = maxV
	if _, ok := df["default"]; ok {
		r.DefaultDuration = defV
		if defOK && maxOK && defV > maxV {
			d.report(df["max"].value, e.path+".max", "%s is less than default %s", short(maxV), short(defV))
		}
	} else if maxOK {
		r.DefaultDuration = min(defaultDuration, maxV)
	}
}

func (d *decoder) ticket(e entry, r *Role) {
	tf, ok := d.object(e.value, e.path, ticketFields...)
	if !ok {
		return
	}
	if x, ok := tf["required"]; ok {
		r.TicketRequired, _ = d.boolean(x)
	}
	x, ok := tf["pattern"]
	if !ok {
		return
	}
	p, ok := d.str(x)
	if !ok || p == "" {
		return
	}
	re, err := compileTicketPattern(p)
	if err != nil {
		d.report(x.value, x.path, "invalid regular expression: %v", err)
		return
	}
	r.TicketPattern, r.ticketRe = p, re
}

// target reads the one target field the provider needs and rejects the rest.
func (d *decoder) target(e entry, r Role, c *Catalog) access.Target {
	var t access.Target
	provider := r.Provider
	tf, ok := d.object(e.value, e.path, targetFields...)
	if !ok {
		return t
	}
	want, known := targetField[provider]
	if !known {
		return t // the unknown provider is already reported
	}
	for key, x := range tf {
		if key != want {
			d.report(x.keyAt, x.path, "is not used by provider %s (it takes target.%s)", provider, want)
		}
	}
	x, ok := tf[want]
	if !ok {
		d.report(e.value, join(e.path, want), "is required for provider %s", provider)
		return t
	}
	if want == "policy" {
		if t.PolicyDocument = d.policy(x); t.PolicyDocument != "" {
			d.policySize(x, t.PolicyDocument, r, c)
		}
		return t
	}
	s, ok := d.str(x)
	s = strings.TrimSpace(s)
	switch {
	case !ok:
	case s == "":
		d.report(x.value, x.path, "must not be empty")
	case want == "group" && !access.IsIAMName(s, 128):
		d.report(x.value, x.path, "%q is not a valid IAM group name", s)
	case want == "policyArn" && !policyARNPattern.MatchString(s):
		d.report(x.value, x.path, "%q is not a managed policy ARN (arn:aws:iam::<account id or aws>:policy/<name>)", s)
	case want == "group":
		t.Group = s
	default:
		t.PolicyARN = s
	}
	return t
}

// policy checks an inline IAM policy document, statement by statement so
// that problems point at the right line, and returns it as compact JSON, or
// "" if it has problems.
func (d *decoder) policy(e entry) string {
	before := len(d.problems)
	pf, ok := d.object(e.value, e.path, policyFields...)
	if !ok {
		return ""
	}
	if v, ok := pf["Version"]; ok {
		if s, _ := d.str(v); s != "2012-10-17" && s != "2008-10-17" {
			d.report(v.value, v.path, "must be \"2012-10-17\"")
		}
	}
	st, ok := pf["Statement"]
	if !ok {
		d.report(e.value, e.path+".Statement", "is required")
		return ""
	}
	var stmts []ast.Node
	paths := []string{st.path}
	switch n := d.resolve(st.value, st.path).(type) {
	case *ast.MappingNode:
		stmts = []ast.Node{n}
	case *ast.SequenceNode:
		stmts, paths = n.Values, nil
		for i := range n.Values {
			paths = append(paths, index(st.path, i))
		}
		if len(stmts) == 0 {
			d.report(st.keyAt, st.path, "list at least one statement")
		}
	default:
		d.report(st.value, st.path, "must be a statement or a list of statements, not %s", describe(n))
	}
	for i, sn := range stmts {
		d.statement(sn, paths[i])
	}
	v, _ := d.value(e.value, e.path, 0)
	if len(d.problems) > before {
		return ""
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		d.report(e.value, e.path, "cannot be written as JSON: %v", err)
		return ""
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

// statement checks what IAM requires of an identity-based policy statement.
// Principal is rejected as an unknown field: IAM refuses it here.
func (d *decoder) statement(n ast.Node, path string) {
	sf, ok := d.object(n, path, statementFields...)
	if !ok {
		return
	}
	at := d.resolve(n, path)
	if x, ok := sf["Effect"]; !ok {
		d.report(at, path+".Effect", "is required (Allow or Deny)")
	} else if s, _ := d.str(x); s != "Allow" && s != "Deny" {
		d.report(x.value, x.path, "must be Allow or Deny")
	}
	for _, pair := range [][2]string{{"Action", "NotAction"}, {"Resource", "NotResource"}} {
		_, has := sf[pair[0]]
		not, hasNot := sf[pair[1]]
		switch {
		case !has && !hasNot:
			d.report(at, path+"."+pair[0], "is required")
		case has && hasNot:
			d.report(not.keyAt, not.path, "cannot be used together with %s", pair[0])
		}
	}
	for _, key := range []string{"Action", "NotAction", "Resource", "NotResource"} {
		if x, ok := sf[key]; ok {
			d.stringOrList(x)
		}
	}
	if x, ok := sf["Condition"]; ok {
		// Condition maps operators to {key: value or values}.
		ops, _ := d.entries(x.value, x.path)
		for _, op := range ops {
			keys, _ := d.entries(op.value, op.path)
			for _, k := range keys {
				// Every IAM condition key has a service prefix; one without
				// is usually "{aws:Key: v}" misread, see flowHint.
				if !strings.Contains(k.key, ":") {
					d.report(k.keyAt, k.path, "condition key %q has no prefix such as aws:%s", k.key, flowHint)
				}
			}
		}
	}
}

// stringOrList checks an IAM element that is a string or a list of strings.
func (d *decoder) stringOrList(e entry) {
	n := d.resolve(e.value, e.path)
	if seq, ok := n.(*ast.SequenceNode); ok {
		if len(seq.Values) == 0 {
			d.report(e.value, e.path, "must not be empty")
		}
		d.list(e.value, e.path)
		return
	}
	if s, ok := scalar(n); !ok || s == "" {
		d.report(e.value, e.path, "must be a string or a list of strings%s", hintFor(n))
	}
}

// policySize checks that the policy still fits IAM's inline limit once the
// time condition is added. Users have the smaller limit; the larger role
// limit is used only when every mapped requester receives access on a role.
func (d *decoder) policySize(e entry, doc string, r Role, c *Catalog) {
	doc, err := access.TimeboxPolicy(doc, farFuture)
	if err != nil {
		d.report(e.value, e.path, "%s", access.PublicMessage(err))
		return
	}
	limit, kind := access.MaxUserInlinePolicySize, "IAM users"
	users, roles := 0, 0
	for _, id := range c.Members(r.Requesters) {
		if p, ok := c.Principals[id]; ok {
			if p.Kind == access.PrincipalUser {
				users++
			} else {
				roles++
			}
		}
	}
	if users == 0 && roles > 0 {
		limit, kind = access.MaxRoleInlinePolicySize, "IAM roles"
	}
	if size := access.PolicySize(doc); size > limit {
		d.report(e.keyAt, e.path, "role %s: the timeboxed policy is %d characters with its time condition (whitespace excluded), over the %d limit for inline policies on %s", r.ID, size, limit, kind)
	}
}

// isID is a role or group id: lowercase letters, digits and dashes, not
// starting with a dash, at most 63 characters (no regexp: see access.IsIAMName).
func isID(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
