// Package app holds the use cases (submit, decide, activate, revoke, sweep)
// and the ports they need. Adapters satisfy the ports without importing app.
package app

import (
	"context"
	"time"

	"github.com/jitaccess/jit/internal/access"
)

// Store persists requests, their audit trail, the grant ledger and consumed
// approval tokens.
type Store interface {
	// Create stores a new request with its first audit record; conflict if the id exists.
	Create(ctx context.Context, r access.Request, rec access.AuditRecord) error
	// Get returns a request; not found if there is none.
	Get(ctx context.Context, id string) (access.Request, error)
	// Transition writes next (conditional on prev.Version still being stored)
	// and rec in one transaction; conflict when another writer got there first.
	Transition(ctx context.Context, prev, next access.Request, rec access.AuditRecord) error
	// ListByRequester returns the requester's requests, newest first.
	ListByRequester(ctx context.Context, requester string, limit int, cursor string) ([]access.Request, string, error)
	// ListAwaiting returns up to limit PENDING requests that approver may
	// decide, oldest first, and whether the inbox holds more.
	ListAwaiting(ctx context.Context, approver string, limit int) (reqs []access.Request, more bool, err error)
	// ListDue returns requests in status whose due time is at or before now,
	// oldest due first, through the sparse due-work index.
	ListDue(ctx context.Context, status access.Status, now time.Time, limit int, cursor string) ([]access.Request, string, error)
	// ListByTicket returns the requests bound to a ticket reference.
	ListByTicket(ctx context.Context, ticket string) ([]access.Request, error)
	// Audit returns a request's trail in sequence order.
	Audit(ctx context.Context, id string) ([]access.AuditRecord, error)

	// HoldGrant adds requestID to the holders of key and returns the entry
	// after. When the entry has no holders, preExisting (a fresh look at
	// IAM) is recorded, but only while the entry is still at seenGen, the
	// Gen read before that look; otherwise a conflict: read again.
	HoldGrant(ctx context.Context, key, requestID string, preExisting bool, seenGen int) (access.Ledger, error)
	// ReleaseGrant removes requestID from the holders of key (idempotent) and
	// returns the entry after. An entry left with no holders is deleted,
	// unless it records pre-existing access: a duplicate or retried revoke
	// must still see that, and never take such access away.
	ReleaseGrant(ctx context.Context, key, requestID string) (access.Ledger, error)
	// ReleaseIfShared removes requestID from the holders of key only while
	// another request still holds the access (one atomic, conditional
	// write); released says whether it did. The last holder must remove
	// the access before it releases.
	ReleaseIfShared(ctx context.Context, key, requestID string) (l access.Ledger, released bool, err error)
	// Ledger reads an entry; a missing entry is an empty Ledger, not an error.
	Ledger(ctx context.Context, key string) (access.Ledger, error)

	// ConsumeToken marks an approval token used; conflict if it already was.
	ConsumeToken(ctx context.Context, tokenID string, expires time.Time) error
	// ReleaseToken makes a consumed token usable again (the decision it was
	// spent on could not be recorded); releasing an unused one is no error.
	ReleaseToken(ctx context.Context, tokenID string) error
}

// Schedule actions; schedules are named "<action>-<requestId>".
const (
	ActionGrant  = "grant"
	ActionRevoke = "revoke"
)

// Scheduler creates one-shot schedules that call back into the system.
type Scheduler interface {
	// Schedule creates "<action>-<requestID>" at the given time; an existing
	// schedule of that name counts as success.
	Schedule(ctx context.Context, action, requestID string, at time.Time) error
	// Reschedule moves an existing schedule (or creates it) to a new time.
	Reschedule(ctx context.Context, action, requestID string, at time.Time) error
	// Unschedule deletes the schedule; a missing one counts as success.
	Unschedule(ctx context.Context, action, requestID string) error
}

// Provider turns a grant into IAM changes. Grant and Revoke are idempotent.
type Provider interface {
	Grant(ctx context.Context, g access.Grant) error
	Revoke(ctx context.Context, g access.Grant) error
	// Check reads whether the access is in place, re-reading briefly (IAM is
	// eventually consistent) until it sees want or its small budget ends,
	// and returns what it saw last.
	Check(ctx context.Context, g access.Grant, want bool) (bool, error)
}

// Notifier tells people about a request (email in production).
type Notifier interface {
	Notify(ctx context.Context, n access.Notice) error
}

// Tokens issues and verifies the signed personal approval links.
type Tokens interface {
	Issue(ctx context.Context, c access.ApprovalClaims) (string, error)
	// Verify checks signature and expiry; it does not consume the token.
	Verify(ctx context.Context, token string, now time.Time) (access.ApprovalClaims, error)
}

// Metrics records numbers for dashboards and alarms.
type Metrics interface {
	Count(ctx context.Context, name string, n float64)
	Duration(ctx context.Context, name string, d time.Duration)
}

// Clock tells the time; tests inject their own.
type Clock func() time.Time
