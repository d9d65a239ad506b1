package access

import (
	"strings"
	"time"
)

// Status is where a request is in its lifecycle.
type Status string

const (
	StatusPending   Status = "PENDING"
	StatusApproved  Status = "APPROVED"
	StatusActive    Status = "ACTIVE"
	StatusExpired   Status = "EXPIRED"
	StatusRevoked   Status = "REVOKED"
	StatusDenied    Status = "DENIED"
	StatusCancelled Status = "CANCELLED"
	StatusTimedOut  Status = "TIMED_OUT"
	StatusFailed    Status = "FAILED"
)

// AllStatuses lists every status, in lifecycle order.
var AllStatuses = []Status{
	StatusPending, StatusApproved, StatusActive, StatusExpired, StatusRevoked,
	StatusDenied, StatusCancelled, StatusTimedOut, StatusFailed,
}

// Terminal reports whether no further transition can leave this status.
func (s Status) Terminal() bool {
	switch s {
	case StatusExpired, StatusRevoked, StatusDenied, StatusCancelled, StatusTimedOut, StatusFailed:
		return true
	}
	return false
}

// Mode is how a request gets approved.
type Mode string

const (
	ModeManual     Mode = "manual"      // approvers decide, quorum counts
	ModeAuto       Mode = "auto"        // policy approves at intake
	ModeBreakGlass Mode = "break-glass" // approval skipped, everyone told, review afterwards
)

// ProviderKind names the mechanism that turns a role into IAM changes.
type ProviderKind string

const (
	ProviderIAMGroup           ProviderKind = "iam-group"
	ProviderIAMPolicy          ProviderKind = "iam-policy"
	ProviderIAMTimeboxedPolicy ProviderKind = "iam-timeboxed-policy"
)

// Providers lists the provider kinds this build supports.
var Providers = []ProviderKind{ProviderIAMGroup, ProviderIAMPolicy, ProviderIAMTimeboxedPolicy}

// PrincipalKind is the IAM entity type that receives access.
type PrincipalKind string

const (
	PrincipalUser PrincipalKind = "user"
	PrincipalRole PrincipalKind = "role"
)

// Principal is the IAM user or role that receives access.
type Principal struct {
	Kind PrincipalKind `json:"kind"`
	Name string        `json:"name"`
}

func (p Principal) String() string { return string(p.Kind) + "/" + p.Name }

// ParsePrincipal reads "user/<name>" or "role/<name>".
func ParsePrincipal(s string) (Principal, error) {
	kind, name, ok := strings.Cut(s, "/")
	if !ok || name == "" || strings.ContainsAny(name, "/ ") {
		return Principal{}, Errorf(KindInvalid, "principal %q must be user/<name> or role/<name>", s)
	}
	switch PrincipalKind(kind) {
	case PrincipalUser, PrincipalRole:
		return Principal{Kind: PrincipalKind(kind), Name: name}, nil
	}
	return Principal{}, Errorf(KindInvalid, "principal %q must be user/<name> or role/<name>", s)
}

// IsIAMName reports whether s is a valid IAM name of at most max
// characters: letters, digits and _+=,.@- (IAM's [\w+=,.@-]). A loop rather
// than a regexp: a bounded repetition costs every cold start its compile.
func IsIAMName(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("_+=,.@-", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// Target is what a provider grants: one of its fields is set, per provider.
type Target struct {
	Group          string `json:"group,omitempty"`          // iam-group
	PolicyARN      string `json:"policyArn,omitempty"`      // iam-policy
	PolicyDocument string `json:"policyDocument,omitempty"` // iam-timeboxed-policy, JSON
}

// Grant is one concrete piece of access: a provider applying a target to a
// principal on behalf of a request, until EndAt.
type Grant struct {
	RequestID string
	Provider  ProviderKind
	Principal Principal
	Target    Target
	EndAt     time.Time
}

// LedgerKey identifies the access itself, independent of which request holds
// it, so overlapping requests for the same access share one ledger entry.
// Timeboxed policies are per request, so each gets its own entry.
func (g Grant) LedgerKey() string {
	switch g.Provider {
	case ProviderIAMGroup:
		return string(g.Provider) + "|" + g.Principal.String() + "|" + g.Target.Group
	case ProviderIAMPolicy:
		return string(g.Provider) + "|" + g.Principal.String() + "|" + g.Target.PolicyARN
	default:
		return string(g.Provider) + "|" + g.Principal.String() + "|" + g.RequestID
	}
}

// Decision is an approver's verdict.
type Decision string

const (
	DecisionApprove Decision = "approve"
	DecisionDeny    Decision = "deny"
)

// Approval records one approver's decision.
type Approval struct {
	Approver string    `json:"approver"`
	Decision Decision  `json:"decision"`
	Comment  string    `json:"comment,omitempty"`
	At       time.Time `json:"at"`
}

// Request is one person's ask for one role for a bounded time.
type Request struct {
	ID            string
	Requester     string // caller identity, e.g. the JWT email claim
	Principal     Principal
	RoleID        string
	Provider      ProviderKind
	Target        Target // snapshot at submit, so revoke never depends on a changed catalog
	Justification string
	Ticket        string

	RequestedAt      time.Time
	StartAt          time.Time
	EndAt            time.Time
	ApprovalDeadline time.Time

	Mode           Mode
	Approvers      []string // who may decide (requester never among them)
	Quorum         int
	Approvals      []Approval
	ReviewRequired bool // break-glass: a human must look afterwards

	Status    Status
	Version   int // bumped by every transition; the optimistic-lock token
	CreatedAt time.Time
	UpdatedAt time.Time

	LastError      string
	RevokeAttempts int
	// RevokeRequestedBy and RevokeReason record an early revoke that failed:
	// the sweeper retries it at once, as this actor, instead of waiting for
	// the end time.
	RevokeRequestedBy string
	RevokeReason      string
	EndedBy           string
	EndReason         string
	AuditHead         string // hash of the newest audit record
}

// Duration is the length of the access window.
func (r Request) Duration() time.Duration { return r.EndAt.Sub(r.StartAt) }

// Grant is the access this request asks for.
func (r Request) Grant() Grant {
	return Grant{RequestID: r.ID, Provider: r.Provider, Principal: r.Principal, Target: r.Target, EndAt: r.EndAt}
}

// Approved counts distinct approvals.
func (r Request) Approved() int {
	n := 0
	for _, a := range r.Approvals {
		if a.Decision == DecisionApprove {
			n++
		}
	}
	return n
}

// SameIdentity compares identities the way every check must: ignoring case,
// as email addresses are, so "Alice@x" can never approve alice@x's request.
func SameIdentity(a, b string) bool { return strings.EqualFold(a, b) }

// IsApprover reports whether identity may decide this request.
func (r Request) IsApprover(identity string) bool {
	if identity == "" || SameIdentity(identity, r.Requester) {
		return false
	}
	for _, a := range r.Approvers {
		if SameIdentity(a, identity) {
			return true
		}
	}
	return false
}

// HasDecided reports whether identity already approved or denied.
func (r Request) HasDecided(identity string) bool {
	for _, a := range r.Approvals {
		if SameIdentity(a.Approver, identity) {
			return true
		}
	}
	return false
}

// DueAt is when the sweeper must look at this request next, if ever: the
// approval deadline while PENDING, the start while APPROVED, the end while
// ACTIVE. Terminal requests have no due time.
func (r Request) DueAt() (time.Time, bool) {
	switch r.Status {
	case StatusPending:
		return r.ApprovalDeadline, true
	case StatusApproved:
		return r.StartAt, true
	case StatusActive:
		if r.RevokeRequestedBy != "" && r.UpdatedAt.Before(r.EndAt) {
			return r.UpdatedAt, true // a failed early revoke: due now
		}
		return r.EndAt, true
	}
	return time.Time{}, false
}
