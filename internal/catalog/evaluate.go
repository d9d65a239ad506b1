package catalog

import (
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jitaccess/jit/internal/access"
)

// Input is one caller's ask, before it becomes a request.
type Input struct {
	Identity, RoleID, Ticket, Justification string
	Duration                                time.Duration // 0 means the role's default
}

// Decision is what the catalog says about an Input: everything the request
// needs from policy.
type Decision struct {
	Role             Role
	Principal        access.Principal
	Duration         time.Duration
	Mode             access.Mode
	Approvers        []string // expanded, lowercase, the requester removed
	Quorum           int      // approvals needed; only manual mode counts them
	ApprovalDeadline time.Duration
	Notify           []string // break-glass: approvers and security contacts; otherwise the approvers
}

// Evaluate checks an Input against the catalog. Errors are *access.Error:
// not found for an unknown role, forbidden when policy says no, and invalid,
// naming the field, for bad input.
func (c *Catalog) Evaluate(in Input) (Decision, error) {
	role, ok := c.Role(in.RoleID)
	if !ok {
		return Decision{}, access.Errorf(access.KindNotFound, "unknown role %q", in.RoleID)
	}
	identity := normalize(in.Identity)
	if identity == "" {
		return Decision{}, access.Errorf(access.KindUnauthorized, "no caller identity")
	}
	if !slices.Contains(c.Members(role.Requesters), identity) {
		return Decision{}, access.Errorf(access.KindForbidden, "%s may not request role %s", identity, role.ID)
	}
	principal, ok := c.PrincipalFor(identity)
	if !ok {
		return Decision{}, access.Errorf(access.KindForbidden, "no IAM principal is mapped to %s in the catalog; ask an admin to add one under principals", identity)
	}
	if role.Provider == access.ProviderIAMGroup && principal.Kind != access.PrincipalUser {
		return Decision{}, access.Errorf(access.KindForbidden, "role %s adds an IAM user to a group, but %s receives access on %s, which is not an IAM user", role.ID, identity, principal)
	}

	mode := role.Mode()
	// The file may list the requester as an approver; they never are one.
	approvers := slices.DeleteFunc(c.Members(role.Approvers), func(a string) bool { return a == identity })
	quorum := max(role.Quorum, 1)
	if mode == access.ModeManual && len(approvers) < quorum {
		return Decision{}, access.Errorf(access.KindForbidden, "not enough approvers other than you: role %s needs %d approval(s) and has %d other approver(s)", role.ID, quorum, len(approvers))
	}

	duration := in.Duration
	if duration == 0 {
		duration = role.DefaultDuration
	}
	switch {
	case duration <= 0:
		return Decision{}, access.FieldErrorf("duration", "must be positive")
	case duration < access.MinDuration:
		return Decision{}, access.FieldErrorf("duration", "must be at least %s", short(access.MinDuration))
	case duration > role.MaxDuration:
		return Decision{}, access.FieldErrorf("duration", "%s is over the maximum of %s for role %s", short(duration), short(role.MaxDuration), role.ID)
	}

	ticket := strings.TrimSpace(in.Ticket)
	re, err := role.ticketRegexp()
	switch {
	case err != nil:
		return Decision{}, access.Wrap(access.KindInternal, err, "role "+role.ID+" has an invalid ticket pattern")
	case utf8.RuneCountInString(ticket) > maxTicket:
		return Decision{}, access.FieldErrorf("ticket", "must be at most %d characters", maxTicket)
	case ticket == "" && role.TicketRequired:
		return Decision{}, access.FieldErrorf("ticket", "role %s requires a ticket reference", role.ID)
	case ticket != "" && re != nil && !re.MatchString(ticket):
		return Decision{}, access.FieldErrorf("ticket", "%q does not match the pattern %s required by role %s", ticket, role.TicketPattern, role.ID)
	}

	n := utf8.RuneCountInString(strings.TrimSpace(in.Justification))
	switch {
	case n < role.MinJustification:
		return Decision{}, access.FieldErrorf("justification", "must be at least %d characters (got %d)", role.MinJustification, n)
	case n > maxJustification:
		return Decision{}, access.FieldErrorf("justification", "must be at most %d characters (got %d)", maxJustification, n)
	}

	notify := slices.Clone(approvers)
	if mode == access.ModeBreakGlass {
		notify = c.Members(append(notify, c.SecurityContacts...))
	}
	return Decision{
		Role:             role,
		Principal:        principal,
		Duration:         duration,
		Mode:             mode,
		Approvers:        approvers,
		Quorum:           quorum,
		ApprovalDeadline: role.ApprovalDeadline,
		Notify:           notify,
	}, nil
}
