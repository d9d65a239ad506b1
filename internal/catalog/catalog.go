// Package catalog reads the policy catalog: the YAML file that says which
// roles exist, who may request and approve them, for how long, and which IAM
// principal each caller identity receives access on. The file is validated
// in full at load, and every problem is reported with its file, line, column
// and field.
package catalog

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jitaccess/jit/internal/access"
)

// groupPrefix marks a reference to a named group in requesters and approvers.
const groupPrefix = "group:"

// MaxApprovers bounds a role's approvers: a request's inbox entries (one per
// approver) are written in the same DynamoDB transaction as the request,
// which takes at most 100 items.
const MaxApprovers = 50

// Catalog is a validated policy catalog. Identities are stored lowercase.
type Catalog struct {
	Admins, SecurityContacts []string
	Groups                   map[string][]string
	Principals               map[string]access.Principal
	Roles                    []Role

	byID map[string]int // role id -> index in Roles
}

// Role is one requestable role.
type Role struct {
	ID, Description       string
	Provider              access.ProviderKind
	Target                access.Target // PolicyDocument holds the policy as compact JSON
	Requesters, Approvers []string      // as written (identities lowercased), e.g. "group:platform"
	Quorum                int
	DefaultDuration       time.Duration
	MaxDuration           time.Duration
	ApprovalDeadline      time.Duration
	TicketRequired        bool
	TicketPattern         string // "" if none; the whole ticket must match
	MinJustification      int
	AutoApprove           bool
	BreakGlass            bool

	ticketRe *regexp.Regexp
}

// Mode is how requests for the role get approved.
func (r Role) Mode() access.Mode {
	switch {
	case r.BreakGlass:
		return access.ModeBreakGlass
	case r.AutoApprove:
		return access.ModeAuto
	}
	return access.ModeManual
}

func (r Role) clone() Role {
	r.Requesters = slices.Clone(r.Requesters)
	r.Approvers = slices.Clone(r.Approvers)
	return r
}

// ticketRegexp returns the compiled ticket pattern, compiling it when the
// role was built by hand rather than parsed.
func (r Role) ticketRegexp() (*regexp.Regexp, error) {
	if r.ticketRe != nil || r.TicketPattern == "" {
		return r.ticketRe, nil
	}
	return compileTicketPattern(r.TicketPattern)
}

// compileTicketPattern anchors the pattern so that "OPS-[0-9]+" cannot be
// satisfied by a ticket that merely contains a match.
func compileTicketPattern(p string) (*regexp.Regexp, error) {
	if _, err := regexp.Compile(p); err != nil {
		return nil, err // this error quotes the pattern as written
	}
	return regexp.Compile("^(?:" + p + ")$")
}

// Problem is one thing wrong with a catalog file.
type Problem struct {
	File         string
	Line, Column int
	Field        string
	Message      string
}

func (p Problem) String() string {
	if p.Field == "" {
		return fmt.Sprintf("%s:%d:%d: %s", p.File, p.Line, p.Column, p.Message)
	}
	return fmt.Sprintf("%s:%d:%d: %s: %s", p.File, p.Line, p.Column, p.Field, p.Message)
}

// ValidationError lists every problem found in a catalog file, in file order.
type ValidationError struct {
	Problems []Problem
}

func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Load reads and parses the catalog file at path.
func Load(path string) (*Catalog, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	return Parse(path, data)
}

// Role returns the role with the given id.
func (c *Catalog) Role(id string) (Role, bool) {
	if c.byID != nil {
		if i, ok := c.byID[id]; ok {
			return c.Roles[i].clone(), true
		}
		return Role{}, false
	}
	for _, r := range c.Roles { // a catalog built by hand has no index
		if r.ID == id {
			return r.clone(), true
		}
	}
	return Role{}, false
}

// RolesFor returns the roles identity is listed as a requester of, in file
// order. Evaluate still has the last word (principal mapping, approvers).
func (c *Catalog) RolesFor(identity string) []Role {
	id := normalize(identity)
	if id == "" {
		return nil
	}
	var out []Role
	for _, r := range c.Roles {
		if slices.Contains(c.Members(r.Requesters), id) {
			out = append(out, r.clone())
		}
	}
	return out
}

// IsAdmin reports whether identity may revoke, cancel and read anything.
func (c *Catalog) IsAdmin(identity string) bool {
	id := normalize(identity)
	return id != "" && slices.ContainsFunc(c.Admins, func(a string) bool { return normalize(a) == id })
}

// PrincipalFor returns the IAM principal identity receives access on.
func (c *Catalog) PrincipalFor(identity string) (access.Principal, bool) {
	id := normalize(identity)
	if id == "" {
		return access.Principal{}, false
	}
	if p, ok := c.Principals[id]; ok {
		return p, true
	}
	for k, p := range c.Principals {
		if normalize(k) == id {
			return p, true
		}
	}
	return access.Principal{}, false
}

// Members expands group references and identities into a sorted, deduplicated
// list of lowercase identities. Unknown groups expand to nobody.
func (c *Catalog) Members(refs []string) []string {
	var out []string
	for _, ref := range refs {
		if name, ok := strings.CutPrefix(strings.TrimSpace(ref), groupPrefix); ok {
			for _, m := range c.Groups[name] {
				if m := normalize(m); m != "" {
					out = append(out, m)
				}
			}
			continue
		}
		if m := normalize(ref); m != "" {
			out = append(out, m)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func normalize(identity string) string {
	return strings.ToLower(strings.TrimSpace(identity))
}
