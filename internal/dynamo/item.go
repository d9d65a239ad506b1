package dynamo

import (
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/jitaccess/jit/internal/access"
)

// Key prefixes and fixed sort keys of the state table's item kinds.
const (
	prefixRequest = "REQ#"
	prefixInbox   = "INBOX#"
	prefixGrant   = "GRANT#"
	prefixToken   = "TOKEN#"
	skRequest     = "REQ"
	skGrant       = "GRANT"
	skToken       = "TOKEN"
)

type item = map[string]types.AttributeValue

func primaryKey(pk, sk string) item {
	return item{
		AttrPK: &types.AttributeValueMemberS{Value: pk},
		AttrSK: &types.AttributeValueMemberS{Value: sk},
	}
}

func requestKey(id string) item { return primaryKey(prefixRequest+id, skRequest) }

func inboxKey(approver, id string) item {
	return primaryKey(prefixInbox+strings.ToLower(approver), id)
}

func grantKey(key string) item { return primaryKey(prefixGrant+key, skGrant) }

// formatTime renders t in TimeLayout; the zero time is the empty string
// (and so an absent attribute).
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(TimeLayout)
}

func parseTime(field, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(TimeLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("stored %s %q: %w", field, s, err)
	}
	return t, nil
}

// dueKey is the due index's sort key for a due time.
func dueKey(t time.Time) string { return t.UTC().Format(TimeLayout) }

// createdKey sorts requests by creation time, then id.
func createdKey(r access.Request) string { return formatTime(r.CreatedAt) + "#" + r.ID }

type approvalItem struct {
	Approver string `dynamodbav:"approver"`
	Decision string `dynamodbav:"decision"`
	Comment  string `dynamodbav:"comment,omitempty"`
	At       string `dynamodbav:"at,omitempty"`
}

// requestItem is a request as stored. Index key attributes are omitempty:
// DynamoDB refuses empty strings in them, and an absent one keeps the item
// out of that (sparse) index.
type requestItem struct {
	PK         string `dynamodbav:"pk"`
	SK         string `dynamodbav:"sk"`
	Requester  string `dynamodbav:"requester,omitempty"`
	CreatedKey string `dynamodbav:"createdKey,omitempty"`
	DueStatus  string `dynamodbav:"dueStatus,omitempty"`
	DueAt      string `dynamodbav:"dueAt,omitempty"`
	Ticket     string `dynamodbav:"ticket,omitempty"`
	Version    int    `dynamodbav:"version"`

	ID                   string         `dynamodbav:"id"`
	PrincipalKind        string         `dynamodbav:"principalKind,omitempty"`
	PrincipalName        string         `dynamodbav:"principalName,omitempty"`
	RoleID               string         `dynamodbav:"roleId,omitempty"`
	Provider             string         `dynamodbav:"provider,omitempty"`
	TargetGroup          string         `dynamodbav:"targetGroup,omitempty"`
	TargetPolicyARN      string         `dynamodbav:"targetPolicyArn,omitempty"`
	TargetPolicyDocument string         `dynamodbav:"targetPolicyDocument,omitempty"`
	Justification        string         `dynamodbav:"justification,omitempty"`
	RequestedAt          string         `dynamodbav:"requestedAt,omitempty"`
	StartAt              string         `dynamodbav:"startAt,omitempty"`
	EndAt                string         `dynamodbav:"endAt,omitempty"`
	ApprovalDeadline     string         `dynamodbav:"approvalDeadline,omitempty"`
	Mode                 string         `dynamodbav:"mode,omitempty"`
	Approvers            []string       `dynamodbav:"approvers,omitempty"`
	Quorum               int            `dynamodbav:"quorum,omitempty"`
	Approvals            []approvalItem `dynamodbav:"approvals,omitempty"`
	ReviewRequired       bool           `dynamodbav:"reviewRequired,omitempty"`
	Status               string         `dynamodbav:"status"`
	CreatedAt            string         `dynamodbav:"createdAt,omitempty"`
	UpdatedAt            string         `dynamodbav:"updatedAt,omitempty"`
	LastError            string         `dynamodbav:"lastError,omitempty"`
	RevokeAttempts       int            `dynamodbav:"revokeAttempts,omitempty"`
	RevokeRequestedBy    string         `dynamodbav:"revokeRequestedBy,omitempty"`
	RevokeReason         string         `dynamodbav:"revokeReason,omitempty"`
	EndedBy              string         `dynamodbav:"endedBy,omitempty"`
	EndReason            string         `dynamodbav:"endReason,omitempty"`
	AuditHead            string         `dynamodbav:"auditHead,omitempty"`
}

func marshalRequest(r access.Request) (item, error) {
	it := requestItem{
		PK: prefixRequest + r.ID, SK: skRequest,
		Requester: r.Requester, CreatedKey: createdKey(r), Ticket: r.Ticket, Version: r.Version,
		ID: r.ID, PrincipalKind: string(r.Principal.Kind), PrincipalName: r.Principal.Name,
		RoleID: r.RoleID, Provider: string(r.Provider),
		TargetGroup: r.Target.Group, TargetPolicyARN: r.Target.PolicyARN, TargetPolicyDocument: r.Target.PolicyDocument,
		Justification: r.Justification,
		RequestedAt:   formatTime(r.RequestedAt), StartAt: formatTime(r.StartAt), EndAt: formatTime(r.EndAt),
		ApprovalDeadline: formatTime(r.ApprovalDeadline),
		Mode:             string(r.Mode), Approvers: r.Approvers, Quorum: r.Quorum, ReviewRequired: r.ReviewRequired,
		Status: string(r.Status), CreatedAt: formatTime(r.CreatedAt), UpdatedAt: formatTime(r.UpdatedAt),
		LastError: r.LastError, RevokeAttempts: r.RevokeAttempts, EndedBy: r.EndedBy, EndReason: r.EndReason,
		RevokeRequestedBy: r.RevokeRequestedBy, RevokeReason: r.RevokeReason,
		AuditHead: r.AuditHead,
	}
	if r.Requester == "" {
		it.CreatedKey = "" // out of byRequester entirely
	}
	if due, ok := r.DueAt(); ok {
		// A zero due time formats as year 1: still in the index, first due.
		it.DueStatus, it.DueAt = string(r.Status), dueKey(due)
	}
	for _, a := range r.Approvals {
		it.Approvals = append(it.Approvals, approvalItem{
			Approver: a.Approver, Decision: string(a.Decision), Comment: a.Comment, At: formatTime(a.At),
		})
	}
	return attributevalue.MarshalMap(it)
}

func unmarshalRequest(av item) (access.Request, error) {
	var it requestItem
	if err := attributevalue.UnmarshalMap(av, &it); err != nil {
		return access.Request{}, fmt.Errorf("decode request item: %w", err)
	}
	r := access.Request{
		ID: it.ID, Requester: it.Requester,
		Principal: access.Principal{Kind: access.PrincipalKind(it.PrincipalKind), Name: it.PrincipalName},
		RoleID:    it.RoleID, Provider: access.ProviderKind(it.Provider),
		Target:        access.Target{Group: it.TargetGroup, PolicyARN: it.TargetPolicyARN, PolicyDocument: it.TargetPolicyDocument},
		Justification: it.Justification, Ticket: it.Ticket,
		Mode: access.Mode(it.Mode), Approvers: it.Approvers, Quorum: it.Quorum, ReviewRequired: it.ReviewRequired,
		Status: access.Status(it.Status), Version: it.Version,
		LastError: it.LastError, RevokeAttempts: it.RevokeAttempts, EndedBy: it.EndedBy, EndReason: it.EndReason,
		RevokeRequestedBy: it.RevokeRequestedBy, RevokeReason: it.RevokeReason,
		AuditHead: it.AuditHead,
	}
	if len(r.Approvers) == 0 {
		r.Approvers = nil
	}
	var err error
	for _, f := range []struct {
		name string
		s    string
		t    *time.Time
	}{
		{"requestedAt", it.RequestedAt, &r.RequestedAt},
		{"startAt", it.StartAt, &r.StartAt},
		{"endAt", it.EndAt, &r.EndAt},
		{"approvalDeadline", it.ApprovalDeadline, &r.ApprovalDeadline},
		{"createdAt", it.CreatedAt, &r.CreatedAt},
		{"updatedAt", it.UpdatedAt, &r.UpdatedAt},
	} {
		if *f.t, err = parseTime(f.name, f.s); err != nil {
			return access.Request{}, err
		}
	}
	for _, a := range it.Approvals {
		at, err := parseTime("approval time", a.At)
		if err != nil {
			return access.Request{}, err
		}
		r.Approvals = append(r.Approvals, access.Approval{
			Approver: a.Approver, Decision: access.Decision(a.Decision), Comment: a.Comment, At: at,
		})
	}
	return r, nil
}

// auditItem is an audit record as stored in the audit table.
type auditItem struct {
	RequestID string `dynamodbav:"requestId"`
	Seq       int    `dynamodbav:"seq"`
	At        string `dynamodbav:"at,omitempty"`
	Actor     string `dynamodbav:"actor,omitempty"`
	Action    string `dynamodbav:"action,omitempty"`
	From      string `dynamodbav:"from,omitempty"`
	To        string `dynamodbav:"to,omitempty"`
	Detail    string `dynamodbav:"detail,omitempty"`
	PrevHash  string `dynamodbav:"prevHash,omitempty"`
	Hash      string `dynamodbav:"hash,omitempty"`
}

func marshalAudit(rec access.AuditRecord) (item, error) {
	return attributevalue.MarshalMap(auditItem{
		RequestID: rec.RequestID, Seq: rec.Seq, At: formatTime(rec.At), Actor: rec.Actor,
		Action: string(rec.Action), From: string(rec.From), To: string(rec.To),
		Detail: rec.Detail, PrevHash: rec.PrevHash, Hash: rec.Hash,
	})
}

func unmarshalAudit(av item) (access.AuditRecord, error) {
	var it auditItem
	if err := attributevalue.UnmarshalMap(av, &it); err != nil {
		return access.AuditRecord{}, fmt.Errorf("decode audit item: %w", err)
	}
	at, err := parseTime("audit time", it.At)
	if err != nil {
		return access.AuditRecord{}, err
	}
	return access.AuditRecord{
		RequestID: it.RequestID, Seq: it.Seq, At: at, Actor: it.Actor, Action: access.EventType(it.Action),
		From: access.Status(it.From), To: access.Status(it.To), Detail: it.Detail, PrevHash: it.PrevHash, Hash: it.Hash,
	}, nil
}

// ledgerItem is a grant-ledger entry as stored.
type ledgerItem struct {
	Holders     []string `dynamodbav:"holders,stringset,omitempty"`
	PreExisting bool     `dynamodbav:"preExisting"`
	Gen         int      `dynamodbav:"gen,omitempty"`
}

func unmarshalLedger(key string, av item) (access.Ledger, error) {
	l := access.Ledger{Key: key}
	if len(av) == 0 {
		return l, nil
	}
	var it ledgerItem
	if err := attributevalue.UnmarshalMap(av, &it); err != nil {
		return l, fmt.Errorf("decode ledger item: %w", err)
	}
	l.PreExisting, l.Gen = it.PreExisting, it.Gen
	if len(it.Holders) > 0 {
		l.Holders = sortedUnique(it.Holders)
	}
	return l, nil
}

// tokenItem marks a consumed approval token.
type tokenItem struct {
	PK        string `dynamodbav:"pk"`
	SK        string `dynamodbav:"sk"`
	ExpiresAt string `dynamodbav:"expiresAt"`
	TTL       int64  `dynamodbav:"ttl"`
}

// inboxItem tells an approver that a request awaits their decision.
type inboxItem struct {
	PK        string `dynamodbav:"pk"`
	SK        string `dynamodbav:"sk"`
	CreatedAt string `dynamodbav:"createdAt,omitempty"`
}
