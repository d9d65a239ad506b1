package access

import "time"

// Ledger is the record of one piece of access (a Grant's LedgerKey): which
// active requests hold it, and whether the principal had it before we first
// granted it, in which case no revoke may take it away.
type Ledger struct {
	Key         string
	Holders     []string
	PreExisting bool
	// Gen counts the entry's changes (every hold and release). A first
	// hold is conditional on the Gen its caller read before it looked at
	// IAM, so that a grant and release by another request in between can
	// never make our own access look pre-existing. Entries are never
	// deleted, so Gen never goes back.
	Gen int
}

// ApprovalClaims is what an email approval link proves: this approver may
// decide this request until ExpiresAt. TokenID makes each link single-use.
type ApprovalClaims struct {
	TokenID   string
	RequestID string
	Approver  string
	ExpiresAt time.Time
}
