package access

// NoticeKind says why people are being told something about a request.
type NoticeKind string

const (
	NoticeApprovalRequested NoticeKind = "approval-requested" // to each approver, with a personal link
	NoticeBreakGlass        NoticeKind = "break-glass"        // to approvers and security contacts
	NoticeApproved          NoticeKind = "approved"
	NoticeDenied            NoticeKind = "denied"
	NoticeTimedOut          NoticeKind = "timed-out"
	NoticeCancelled         NoticeKind = "cancelled"
	NoticeActive            NoticeKind = "active"
	NoticeEnded             NoticeKind = "ended" // expired or revoked
	NoticeFailed            NoticeKind = "failed"
	NoticeRevokeFailing     NoticeKind = "revoke-failing" // to admins
)

// Notice is one message about a request to a set of people. ActionURL is the
// personal approval link for NoticeApprovalRequested and empty otherwise.
type Notice struct {
	Kind      NoticeKind
	To        []string
	Request   Request
	ActionURL string
	Detail    string
}
