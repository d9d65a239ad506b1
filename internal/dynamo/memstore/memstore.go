// Package memstore is an in-memory store with the same contract as the
// DynamoDB store (see internal/dynamo and the storetest suite both pass),
// for unit tests of the app layer. It is safe for concurrent use.
package memstore

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jitaccess/jit/internal/access"
)

// Page sizes, as in the DynamoDB store: a limit of zero or less means
// DefaultLimit, and no page is larger than MaxLimit.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// timeLayout matches the DynamoDB store's fixed-width UTC layout, so that
// orderings built from it agree.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

type auditKey struct {
	id  string
	seq int
}

type ledger struct {
	holders     map[string]bool
	preExisting bool
	gen         int
}

// Store is the in-memory store.
type Store struct {
	mu       sync.Mutex
	requests map[string]access.Request
	audit    map[string][]access.AuditRecord
	seen     map[auditKey]bool
	inbox    map[string]map[string]bool // approver (lowercased) -> request ids
	ledger   map[string]*ledger
	tokens   map[string]time.Time
}

// New returns an empty store.
func New() *Store {
	return &Store{
		requests: map[string]access.Request{},
		audit:    map[string][]access.AuditRecord{},
		seen:     map[auditKey]bool{},
		inbox:    map[string]map[string]bool{},
		ledger:   map[string]*ledger{},
		tokens:   map[string]time.Time{},
	}
}

// clone copies r the way a round trip through DynamoDB would: slices are
// not shared, empty slices are nil and times are UTC.
func clone(r access.Request) access.Request {
	utc := func(t time.Time) time.Time {
		if t.IsZero() {
			return time.Time{}
		}
		return t.UTC()
	}
	r.Approvers = slices.Clone(r.Approvers)
	if len(r.Approvers) == 0 {
		r.Approvers = nil
	}
	if len(r.Approvals) == 0 {
		r.Approvals = nil
	} else {
		r.Approvals = slices.Clone(r.Approvals)
		for i := range r.Approvals {
			r.Approvals[i].At = utc(r.Approvals[i].At)
		}
	}
	for _, t := range []*time.Time{&r.RequestedAt, &r.StartAt, &r.EndAt, &r.ApprovalDeadline, &r.CreatedAt, &r.UpdatedAt} {
		*t = utc(*t)
	}
	return r
}

func cloneRecord(rec access.AuditRecord) access.AuditRecord {
	if rec.At.IsZero() {
		rec.At = time.Time{}
	} else {
		rec.At = rec.At.UTC()
	}
	return rec
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(timeLayout)
}

func createdKey(r access.Request) string { return formatTime(r.CreatedAt) + "#" + r.ID }

func dueKey(t time.Time) string { return t.UTC().Format(timeLayout) }

// inboxOf is who has an inbox entry for r: every approver who may still
// decide a PENDING manual request, lowercased.
func inboxOf(r access.Request) []string {
	if r.Status != access.StatusPending || r.Mode != access.ModeManual {
		return nil
	}
	var out []string
	for _, a := range r.Approvers {
		if r.IsApprover(a) && !r.HasDecided(a) && !slices.Contains(out, strings.ToLower(a)) {
			out = append(out, strings.ToLower(a))
		}
	}
	return out
}

func (s *Store) setInbox(prev, next access.Request) {
	before, after := inboxOf(prev), inboxOf(next)
	for _, a := range before {
		if !slices.Contains(after, a) {
			delete(s.inbox[a], prev.ID)
		}
	}
	for _, a := range after {
		if s.inbox[a] == nil {
			s.inbox[a] = map[string]bool{}
		}
		s.inbox[a][next.ID] = true
	}
}

// Create stores a new request with its first audit record; conflict if the id exists.
func (s *Store) Create(_ context.Context, r access.Request, rec access.AuditRecord) error {
	if r.ID == "" {
		return access.FieldErrorf("id", "is required")
	}
	if err := access.CheckWrite(access.Request{}, r, rec); err != nil {
		return access.Wrap(access.KindInternal, err, "memstore: create")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.requests[r.ID]; ok {
		return access.Errorf(access.KindConflict, "request %s already exists", r.ID)
	}
	if s.seen[auditKey{rec.RequestID, rec.Seq}] {
		return access.Errorf(access.KindConflict, "request %s already exists", r.ID)
	}
	s.requests[r.ID] = clone(r)
	s.appendAudit(rec)
	s.setInbox(access.Request{}, r)
	return nil
}

func (s *Store) appendAudit(rec access.AuditRecord) {
	s.seen[auditKey{rec.RequestID, rec.Seq}] = true
	trail := append(s.audit[rec.RequestID], cloneRecord(rec))
	slices.SortFunc(trail, func(a, b access.AuditRecord) int { return cmp.Compare(a.Seq, b.Seq) })
	s.audit[rec.RequestID] = trail
}

// Get returns a request; not found if there is none.
func (s *Store) Get(_ context.Context, id string) (access.Request, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.requests[id]
	if !ok {
		return access.Request{}, access.Errorf(access.KindNotFound, "request %s not found", id)
	}
	return clone(r), nil
}

// Transition writes next if prev.Version is still stored, with rec; conflict
// when another writer got there first.
func (s *Store) Transition(_ context.Context, prev, next access.Request, rec access.AuditRecord) error {
	if prev.ID == "" {
		return access.Errorf(access.KindInternal, "memstore: transition of a request without an id")
	}
	if err := access.CheckWrite(prev, next, rec); err != nil {
		return access.Wrap(access.KindInternal, err, "memstore: transition")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.requests[prev.ID]
	if !ok || cur.Version != prev.Version || s.seen[auditKey{rec.RequestID, rec.Seq}] {
		return access.Errorf(access.KindConflict, "request changed concurrently; reload and retry")
	}
	s.requests[next.ID] = clone(next)
	s.appendAudit(rec)
	s.setInbox(prev, next)
	return nil
}

func pageLimit(limit int) int {
	switch {
	case limit <= 0:
		return DefaultLimit
	case limit > MaxLimit:
		return MaxLimit
	}
	return limit
}

// page cuts one page out of the sorted matches; the cursor is an offset.
func page(all []access.Request, limit int, cursor string) ([]access.Request, string, error) {
	limit = pageLimit(limit)
	off := 0
	if cursor != "" {
		n, err := strconv.Atoi(cursor)
		if err != nil || n <= 0 {
			return nil, "", access.FieldErrorf("cursor", "is not a cursor of this listing")
		}
		off = n
	}
	if off > len(all) {
		off = len(all)
	}
	end := min(off+limit, len(all))
	next := ""
	if end < len(all) {
		next = strconv.Itoa(end)
	}
	return all[off:end], next, nil
}

func (s *Store) filter(keep func(access.Request) bool) []access.Request {
	var out []access.Request
	for _, r := range s.requests {
		if keep(r) {
			out = append(out, clone(r))
		}
	}
	return out
}

// ListByRequester returns the requester's requests, newest first.
func (s *Store) ListByRequester(_ context.Context, requester string, limit int, cursor string) ([]access.Request, string, error) {
	if requester == "" {
		return nil, "", access.FieldErrorf("requester", "is required")
	}
	s.mu.Lock()
	all := s.filter(func(r access.Request) bool { return r.Requester == requester })
	s.mu.Unlock()
	slices.SortFunc(all, func(a, b access.Request) int { return cmp.Compare(createdKey(b), createdKey(a)) })
	return page(all, limit, cursor)
}

// ListAwaiting returns up to limit PENDING requests that approver may still
// decide, oldest first, and whether there are more.
func (s *Store) ListAwaiting(_ context.Context, approver string, limit int) ([]access.Request, bool, error) {
	if approver == "" {
		return nil, false, access.FieldErrorf("approver", "is required")
	}
	s.mu.Lock()
	var out []access.Request
	for id := range s.inbox[strings.ToLower(approver)] {
		r, ok := s.requests[id]
		if ok && r.Status == access.StatusPending && r.IsApprover(approver) && !r.HasDecided(approver) {
			out = append(out, clone(r))
		}
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b access.Request) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	if limit = pageLimit(limit); len(out) > limit {
		return out[:limit], true, nil
	}
	return out, false, nil
}

// ListDue returns requests in status whose due time is at or before now,
// oldest due first.
func (s *Store) ListDue(_ context.Context, status access.Status, now time.Time, limit int, cursor string) ([]access.Request, string, error) {
	if status == "" {
		return nil, "", access.FieldErrorf("status", "is required")
	}
	bound := dueKey(now)
	s.mu.Lock()
	all := s.filter(func(r access.Request) bool {
		due, ok := r.DueAt()
		return ok && r.Status == status && dueKey(due) <= bound
	})
	s.mu.Unlock()
	key := func(r access.Request) string {
		due, _ := r.DueAt()
		return dueKey(due) + "|" + r.ID
	}
	slices.SortFunc(all, func(a, b access.Request) int { return cmp.Compare(key(a), key(b)) })
	// The cursor is the last key returned, as DynamoDB's is, not an offset:
	// items leave the index as the sweeper drives them, and an offset would
	// then skip the ones that moved up.
	if cursor != "" {
		after, ok := strings.CutPrefix(cursor, "due:")
		if !ok {
			return nil, "", access.FieldErrorf("cursor", "is not a cursor of this listing")
		}
		all = slices.DeleteFunc(all, func(r access.Request) bool { return key(r) <= after })
	}
	limit = pageLimit(limit)
	if len(all) <= limit {
		return all, "", nil
	}
	return all[:limit], "due:" + key(all[limit-1]), nil
}

// ListByTicket returns the requests bound to a ticket reference, oldest first.
func (s *Store) ListByTicket(_ context.Context, ticket string) ([]access.Request, error) {
	if ticket == "" {
		return nil, access.FieldErrorf("ticket", "is required")
	}
	s.mu.Lock()
	all := s.filter(func(r access.Request) bool { return r.Ticket == ticket })
	s.mu.Unlock()
	slices.SortFunc(all, func(a, b access.Request) int { return cmp.Compare(createdKey(a), createdKey(b)) })
	return all, nil
}

// Audit returns a request's trail in sequence order.
func (s *Store) Audit(_ context.Context, id string) ([]access.AuditRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.audit[id]), nil
}

// VerifyAudit checks a request's audit trail against the chain head the
// request points at.
func (s *Store) VerifyAudit(ctx context.Context, id string) error {
	r, err := s.Get(ctx, id)
	if err != nil {
		return err
	}
	recs, err := s.Audit(ctx, id)
	if err != nil {
		return err
	}
	return access.VerifyTrail(r, recs)
}

func (l *ledger) view(key string) access.Ledger {
	out := access.Ledger{Key: key, PreExisting: l.preExisting, Gen: l.gen}
	for h := range l.holders {
		out.Holders = append(out.Holders, h)
	}
	slices.Sort(out.Holders)
	return out
}

// HoldGrant adds requestID to the holders of key; as the first holder only
// if the entry is still at seenGen, recording preExisting.
func (s *Store) HoldGrant(_ context.Context, key, requestID string, preExisting bool, seenGen int) (access.Ledger, error) {
	if key == "" || requestID == "" {
		return access.Ledger{Key: key}, access.Errorf(access.KindInvalid, "a ledger key and a request id are required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.ledger[key]
	if !ok {
		l = &ledger{holders: map[string]bool{}}
		s.ledger[key] = l
	}
	if len(l.holders) == 0 {
		if l.gen != seenGen {
			return l.view(key), access.Errorf(access.KindConflict, "grant %s changed since it was read; read it again", key)
		}
		l.preExisting = preExisting
	}
	l.holders[requestID] = true
	l.gen++
	return l.view(key), nil
}

// ReleaseGrant removes requestID from the holders of key (idempotent) and
// returns the entry after. Entries stay, so their Gen never goes back.
func (s *Store) ReleaseGrant(_ context.Context, key, requestID string) (access.Ledger, error) {
	if key == "" || requestID == "" {
		return access.Ledger{Key: key}, access.Errorf(access.KindInvalid, "a ledger key and a request id are required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.ledger[key]
	if !ok {
		return access.Ledger{Key: key}, nil
	}
	if l.holders[requestID] {
		delete(l.holders, requestID)
		l.gen++
	}
	return l.view(key), nil
}

// ReleaseIfShared removes requestID from the holders of key only while
// another request still holds the access.
func (s *Store) ReleaseIfShared(_ context.Context, key, requestID string) (access.Ledger, bool, error) {
	if key == "" || requestID == "" {
		return access.Ledger{Key: key}, false, access.Errorf(access.KindInvalid, "a ledger key and a request id are required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.ledger[key]
	if !ok {
		return access.Ledger{Key: key}, false, nil
	}
	if !l.holders[requestID] || len(l.holders) < 2 {
		return l.view(key), false, nil
	}
	delete(l.holders, requestID)
	l.gen++
	return l.view(key), true, nil
}

// Ledger reads an entry; a missing entry is an empty Ledger.
func (s *Store) Ledger(_ context.Context, key string) (access.Ledger, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.ledger[key]; ok {
		return l.view(key), nil
	}
	return access.Ledger{Key: key}, nil
}

// ConsumeToken marks an approval token used; conflict if it already was.
func (s *Store) ConsumeToken(_ context.Context, tokenID string, expires time.Time) error {
	if tokenID == "" {
		return access.FieldErrorf("token", "is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.tokens[tokenID]; ok {
		return access.Errorf(access.KindConflict, "this approval link has already been used")
	}
	s.tokens[tokenID] = expires
	return nil
}

// ReleaseToken makes a consumed token usable again.
func (s *Store) ReleaseToken(_ context.Context, tokenID string) error {
	if tokenID == "" {
		return access.FieldErrorf("token", "is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tokens, tokenID)
	return nil
}

// AllRequests returns every stored request, by id.
func (s *Store) AllRequests() []access.Request {
	s.mu.Lock()
	all := s.filter(func(access.Request) bool { return true })
	s.mu.Unlock()
	slices.SortFunc(all, func(a, b access.Request) int { return cmp.Compare(a.ID, b.ID) })
	return all
}
