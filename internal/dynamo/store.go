package dynamo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/jitaccess/jit/internal/access"
)

// Page sizes of the paged listings: a limit of zero or less means
// DefaultLimit, and no page is larger than MaxLimit.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// TokenTTLMargin is how long a consumed-token item outlives the token's own
// expiry before DynamoDB TTL may age it out, so that no clock skew can let a
// still-valid token be consumed twice.
const TokenTTLMargin = 24 * time.Hour

// batchGetMax is BatchGetItem's limit of keys per call.
const batchGetMax = 100

// api is the part of the DynamoDB client the store uses.
type api interface {
	GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Query(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	BatchGetItem(context.Context, *dynamodb.BatchGetItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	TransactWriteItems(context.Context, *dynamodb.TransactWriteItemsInput, ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

// Store keeps requests, audit trails, the grant ledger and consumed tokens in
// DynamoDB. It satisfies app.Store.
type Store struct {
	db     api
	tables Tables
	onCC   func(op string, cc []types.ConsumedCapacity)
}

// Option configures a Store.
type Option func(*Store)

// WithConsumedCapacity makes every DynamoDB call ask for its consumed
// capacity (per table and index) and hands it to fn. op names the store
// method and the DynamoDB operation, e.g. "ListAwaiting.BatchGetItem".
// fn may be called from several goroutines at once.
func WithConsumedCapacity(fn func(op string, cc []types.ConsumedCapacity)) Option {
	return func(s *Store) { s.onCC = fn }
}

// New returns a store over the given tables.
func New(client *dynamodb.Client, t Tables, opts ...Option) *Store {
	s := &Store{db: client, tables: t}
	for _, o := range opts {
		o(s)
	}
	return s
}

func (s *Store) returnCC() types.ReturnConsumedCapacity {
	if s.onCC != nil {
		return types.ReturnConsumedCapacityIndexes
	}
	return ""
}

func (s *Store) consumed(op string, cc ...*types.ConsumedCapacity) {
	if s.onCC == nil {
		return
	}
	var all []types.ConsumedCapacity
	for _, c := range cc {
		if c != nil {
			all = append(all, *c)
		}
	}
	s.onCC(op, all)
}

func (s *Store) consumedList(op string, cc []types.ConsumedCapacity) {
	if s.onCC != nil {
		s.onCC(op, cc)
	}
}

func internal(err error, format string, args ...any) error {
	return access.Wrap(access.KindInternal, err, "dynamo: "+fmt.Sprintf(format, args...))
}

// Errors of the cancelled-transaction reasons that mean "someone else won".
const (
	reasonConditionalCheckFailed = "ConditionalCheckFailed"
	reasonTransactionConflict    = "TransactionConflict"
)

// lostRace reports whether a transaction failed because a condition did not
// hold or another transaction touched the same items.
func lostRace(err error) bool {
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) {
		for _, r := range tce.CancellationReasons {
			switch aws.ToString(r.Code) {
			case reasonConditionalCheckFailed, reasonTransactionConflict:
				return true
			}
		}
	}
	var tc *types.TransactionConflictException
	return errors.As(err, &tc)
}

func isConditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}

func conditional(cond expression.ConditionBuilder) (expression.Expression, error) {
	return expression.NewBuilder().WithCondition(cond).Build()
}

func (s *Store) txPut(table string, it item, cond expression.ConditionBuilder) (types.TransactWriteItem, error) {
	e, err := conditional(cond)
	if err != nil {
		return types.TransactWriteItem{}, err
	}
	return types.TransactWriteItem{Put: &types.Put{
		TableName: aws.String(table), Item: it, ConditionExpression: e.Condition(),
		ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values(),
	}}, nil
}

func notExists(attr string) expression.ConditionBuilder {
	return expression.AttributeNotExists(expression.Name(attr))
}

// inbox is who has an inbox item for r: every approver who may still decide
// a PENDING manual request, lowercased, without duplicates.
func inbox(r access.Request) []string {
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

func (s *Store) inboxPut(approver string, r access.Request) (types.TransactWriteItem, error) {
	it, err := attributevalue.MarshalMap(inboxItem{
		PK: prefixInbox + approver, SK: r.ID, CreatedAt: formatTime(r.CreatedAt),
	})
	return types.TransactWriteItem{Put: &types.Put{TableName: aws.String(s.tables.State), Item: it}}, err
}

func (s *Store) inboxDelete(approver, id string) types.TransactWriteItem {
	return types.TransactWriteItem{Delete: &types.Delete{
		TableName: aws.String(s.tables.State), Key: inboxKey(approver, id),
	}}
}

// Create stores a new request, its first audit record and the inbox items of
// its approvers in one transaction; conflict if the id exists.
func (s *Store) Create(ctx context.Context, r access.Request, rec access.AuditRecord) error {
	if r.ID == "" {
		return access.FieldErrorf("id", "is required")
	}
	if err := access.CheckWrite(access.Request{}, r, rec); err != nil {
		return access.Wrap(access.KindInternal, err, "dynamo: create")
	}
	reqItem, err := marshalRequest(r)
	if err != nil {
		return internal(err, "encode request %s", r.ID)
	}
	audItem, err := marshalAudit(rec)
	if err != nil {
		return internal(err, "encode audit record of %s", r.ID)
	}
	putReq, err := s.txPut(s.tables.State, reqItem, notExists(AttrPK))
	if err != nil {
		return internal(err, "build create of %s", r.ID)
	}
	putAudit, err := s.txPut(s.tables.Audit, audItem, notExists(AttrRequestID))
	if err != nil {
		return internal(err, "build create of %s", r.ID)
	}
	items := []types.TransactWriteItem{putReq, putAudit}
	for _, a := range inbox(r) {
		put, err := s.inboxPut(a, r)
		if err != nil {
			return internal(err, "encode inbox item of %s", r.ID)
		}
		items = append(items, put)
	}
	out, err := s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
		TransactItems: items, ReturnConsumedCapacity: s.returnCC(),
	})
	if err != nil {
		if lostRace(err) {
			return access.Wrap(access.KindConflict, err, fmt.Sprintf("request %s already exists", r.ID))
		}
		return internal(err, "create request %s", r.ID)
	}
	s.consumedList("Create.TransactWriteItems", out.ConsumedCapacity)
	return nil
}

// Get returns a request; not found if there is none.
func (s *Store) Get(ctx context.Context, id string) (access.Request, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.tables.State), Key: requestKey(id), ConsistentRead: aws.Bool(true),
		ReturnConsumedCapacity: s.returnCC(),
	})
	if err != nil {
		return access.Request{}, internal(err, "get request %s", id)
	}
	s.consumed("Get.GetItem", out.ConsumedCapacity)
	if len(out.Item) == 0 {
		return access.Request{}, access.Errorf(access.KindNotFound, "request %s not found", id)
	}
	r, err := unmarshalRequest(out.Item)
	if err != nil {
		return access.Request{}, internal(err, "read request %s", id)
	}
	return r, nil
}

// Transition writes next, conditional on prev.Version still being stored,
// with rec and the inbox changes in one transaction; conflict when another
// writer got there first.
func (s *Store) Transition(ctx context.Context, prev, next access.Request, rec access.AuditRecord) error {
	if prev.ID == "" {
		return access.Errorf(access.KindInternal, "dynamo: transition of a request without an id")
	}
	if err := access.CheckWrite(prev, next, rec); err != nil {
		return access.Wrap(access.KindInternal, err, "dynamo: transition")
	}
	reqItem, err := marshalRequest(next)
	if err != nil {
		return internal(err, "encode request %s", next.ID)
	}
	audItem, err := marshalAudit(rec)
	if err != nil {
		return internal(err, "encode audit record of %s", next.ID)
	}
	putReq, err := s.txPut(s.tables.State, reqItem,
		expression.Name(AttrVersion).Equal(expression.Value(prev.Version)))
	if err != nil {
		return internal(err, "build transition of %s", next.ID)
	}
	putAudit, err := s.txPut(s.tables.Audit, audItem, notExists(AttrRequestID))
	if err != nil {
		return internal(err, "build transition of %s", next.ID)
	}
	items := []types.TransactWriteItem{putReq, putAudit}
	before, after := inbox(prev), inbox(next)
	for _, a := range before {
		if !slices.Contains(after, a) {
			items = append(items, s.inboxDelete(a, prev.ID))
		}
	}
	for _, a := range after {
		if !slices.Contains(before, a) {
			put, err := s.inboxPut(a, next)
			if err != nil {
				return internal(err, "encode inbox item of %s", next.ID)
			}
			items = append(items, put)
		}
	}
	out, err := s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
		TransactItems: items, ReturnConsumedCapacity: s.returnCC(),
	})
	if err != nil {
		if lostRace(err) {
			return access.Wrap(access.KindConflict, err, "request changed concurrently; reload and retry")
		}
		return internal(err, "transition request %s", next.ID)
	}
	s.consumedList("Transition.TransactWriteItems", out.ConsumedCapacity)
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

// index names a secondary index and its key attributes, for paging.
type index struct{ name, hash, rng string }

var (
	byRequester = index{IndexByRequester, AttrRequester, AttrCreatedKey}
	byDue       = index{IndexDue, AttrDueStatus, AttrDueAt}
	byTicket    = index{IndexByTicket, AttrTicket, AttrCreatedKey}
)

// queryPage reads one page of requests from an index. It asks for one item
// more than the limit, so that the cursor is empty exactly when nothing
// follows (a bare LastEvaluatedKey would cost the caller an empty last page).
func (s *Store) queryPage(ctx context.Context, op string, idx index, hashValue string, key expression.KeyConditionBuilder,
	forward bool, limit int, cursor string,
) ([]access.Request, string, error) {
	limit = pageLimit(limit)
	start, err := decodeCursor(cursor, idx, hashValue)
	if err != nil {
		return nil, "", err
	}
	e, err := expression.NewBuilder().WithKeyCondition(key).Build()
	if err != nil {
		return nil, "", internal(err, "build %s query", idx.name)
	}
	out, err := s.db.Query(ctx, &dynamodb.QueryInput{
		TableName: aws.String(s.tables.State), IndexName: aws.String(idx.name),
		KeyConditionExpression: e.KeyCondition(), ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values(),
		ScanIndexForward: aws.Bool(forward), Limit: aws.Int32(int32(limit + 1)), ExclusiveStartKey: start,
		ReturnConsumedCapacity: s.returnCC(),
	})
	if err != nil {
		return nil, "", internal(err, "query %s", idx.name)
	}
	s.consumed(op+".Query", out.ConsumedCapacity)
	items, last := out.Items, out.LastEvaluatedKey
	if len(items) > limit {
		items = items[:limit]
		last = indexKey(items[limit-1], idx)
	}
	reqs := make([]access.Request, 0, len(items))
	for _, it := range items {
		r, err := unmarshalRequest(it)
		if err != nil {
			return nil, "", internal(err, "read %s", idx.name)
		}
		reqs = append(reqs, r)
	}
	next, err := encodeCursor(last)
	if err != nil {
		return nil, "", internal(err, "encode cursor of %s", idx.name)
	}
	return reqs, next, nil
}

// queryAll reads every page of a query.
func (s *Store) queryAll(ctx context.Context, op string, in *dynamodb.QueryInput) ([]item, error) {
	in.ReturnConsumedCapacity = s.returnCC()
	var all []item
	for {
		out, err := s.db.Query(ctx, in)
		if err != nil {
			return nil, err
		}
		s.consumed(op+".Query", out.ConsumedCapacity)
		all = append(all, out.Items...)
		if len(out.LastEvaluatedKey) == 0 {
			return all, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// ListByRequester returns the requester's requests, newest first.
func (s *Store) ListByRequester(ctx context.Context, requester string, limit int, cursor string) ([]access.Request, string, error) {
	if requester == "" {
		return nil, "", access.FieldErrorf("requester", "is required")
	}
	key := expression.Key(AttrRequester).Equal(expression.Value(requester))
	return s.queryPage(ctx, "ListByRequester", byRequester, requester, key, false, limit, cursor)
}

// ListDue returns requests in status whose due time is at or before now,
// oldest due first, through the sparse due-work index.
func (s *Store) ListDue(ctx context.Context, status access.Status, now time.Time, limit int, cursor string) ([]access.Request, string, error) {
	if status == "" {
		return nil, "", access.FieldErrorf("status", "is required")
	}
	key := expression.Key(AttrDueStatus).Equal(expression.Value(string(status))).
		And(expression.Key(AttrDueAt).LessThanEqual(expression.Value(dueKey(now))))
	return s.queryPage(ctx, "ListDue", byDue, string(status), key, true, limit, cursor)
}

// ListByTicket returns the requests bound to a ticket reference, oldest first.
func (s *Store) ListByTicket(ctx context.Context, ticket string) ([]access.Request, error) {
	if ticket == "" {
		return nil, access.FieldErrorf("ticket", "is required")
	}
	e, err := expression.NewBuilder().WithKeyCondition(expression.Key(AttrTicket).Equal(expression.Value(ticket))).Build()
	if err != nil {
		return nil, internal(err, "build ticket query")
	}
	items, err := s.queryAll(ctx, "ListByTicket", &dynamodb.QueryInput{
		TableName: aws.String(s.tables.State), IndexName: aws.String(IndexByTicket),
		KeyConditionExpression: e.KeyCondition(), ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values(),
	})
	if err != nil {
		return nil, internal(err, "query requests of ticket %s", ticket)
	}
	var reqs []access.Request
	for _, it := range items {
		r, err := unmarshalRequest(it)
		if err != nil {
			return nil, internal(err, "read requests of ticket %s", ticket)
		}
		reqs = append(reqs, r)
	}
	return reqs, nil
}

// ListAwaiting returns up to limit PENDING requests that approver may still
// decide, oldest first (inbox keys are request ids, which sort by time):
// the approver's inbox items, each request read back and checked, so a stale
// inbox item never shows; more says whether the inbox holds more. Bounded, so
// that an approver's backlog cannot make every list call read it all.
func (s *Store) ListAwaiting(ctx context.Context, approver string, limit int) ([]access.Request, bool, error) {
	if approver == "" {
		return nil, false, access.FieldErrorf("approver", "is required")
	}
	limit = pageLimit(limit)
	e, err := expression.NewBuilder().
		WithKeyCondition(expression.Key(AttrPK).Equal(expression.Value(prefixInbox + strings.ToLower(approver)))).
		WithProjection(expression.NamesList(expression.Name(AttrSK))).
		Build()
	if err != nil {
		return nil, false, internal(err, "build inbox query")
	}
	in := &dynamodb.QueryInput{
		TableName: aws.String(s.tables.State), ConsistentRead: aws.Bool(true),
		KeyConditionExpression: e.KeyCondition(), ProjectionExpression: e.Projection(),
		ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values(),
		Limit: aws.Int32(int32(limit + 1)), ReturnConsumedCapacity: s.returnCC(),
	}
	out, err := s.db.Query(ctx, in)
	if err != nil {
		return nil, false, internal(err, "query inbox of %s", approver)
	}
	s.consumed("ListAwaiting.Query", out.ConsumedCapacity)
	items := out.Items
	more := len(items) > limit
	if len(items) > limit {
		items = items[:limit]
	}
	ids := make([]string, 0, len(items))
	for _, it := range items {
		if sk, ok := it[AttrSK].(*types.AttributeValueMemberS); ok {
			ids = append(ids, sk.Value)
		}
	}
	reqs, err := s.batchGet(ctx, "ListAwaiting", ids)
	if err != nil {
		return nil, false, err
	}
	reqs = slices.DeleteFunc(reqs, func(r access.Request) bool {
		return r.Status != access.StatusPending || !r.IsApprover(approver) || r.HasDecided(approver)
	})
	sortOldestFirst(reqs)
	return reqs, more, nil
}

func sortOldestFirst(reqs []access.Request) {
	sort.Slice(reqs, func(i, j int) bool {
		if !reqs[i].CreatedAt.Equal(reqs[j].CreatedAt) {
			return reqs[i].CreatedAt.Before(reqs[j].CreatedAt)
		}
		return reqs[i].ID < reqs[j].ID
	})
}

// batchGet reads requests by id, in chunks of 100, retrying unprocessed keys
// with backoff. Missing requests are left out.
func (s *Store) batchGet(ctx context.Context, op string, ids []string) ([]access.Request, error) {
	var reqs []access.Request
	for chunk := range slices.Chunk(ids, batchGetMax) {
		keys := make([]item, 0, len(chunk))
		for _, id := range chunk {
			keys = append(keys, requestKey(id))
		}
		pending := map[string]types.KeysAndAttributes{
			s.tables.State: {Keys: keys, ConsistentRead: aws.Bool(true)},
		}
		for attempt := 0; len(pending) > 0; attempt++ {
			if attempt > 0 {
				if attempt > 8 {
					return nil, access.Errorf(access.KindInternal, "dynamo: batch read of requests left keys unprocessed after %d attempts", attempt)
				}
				select {
				case <-ctx.Done():
					return nil, internal(ctx.Err(), "batch read of requests")
				case <-time.After(time.Duration(1<<attempt) * 10 * time.Millisecond):
				}
			}
			out, err := s.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{
				RequestItems: pending, ReturnConsumedCapacity: s.returnCC(),
			})
			if err != nil {
				return nil, internal(err, "batch read of requests")
			}
			s.consumedList(op+".BatchGetItem", out.ConsumedCapacity)
			for _, it := range out.Responses[s.tables.State] {
				r, err := unmarshalRequest(it)
				if err != nil {
					return nil, internal(err, "read requests")
				}
				reqs = append(reqs, r)
			}
			pending = out.UnprocessedKeys
		}
	}
	return reqs, nil
}

// Audit returns a request's trail in sequence order (empty for an unknown
// request).
func (s *Store) Audit(ctx context.Context, id string) ([]access.AuditRecord, error) {
	if id == "" {
		return nil, nil // DynamoDB refuses an empty key; there is no such trail
	}
	e, err := expression.NewBuilder().
		WithKeyCondition(expression.Key(AttrRequestID).Equal(expression.Value(id))).Build()
	if err != nil {
		return nil, internal(err, "build audit query")
	}
	items, err := s.queryAll(ctx, "Audit", &dynamodb.QueryInput{
		TableName: aws.String(s.tables.Audit), ConsistentRead: aws.Bool(true), ScanIndexForward: aws.Bool(true),
		KeyConditionExpression: e.KeyCondition(), ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values(),
	})
	if err != nil {
		return nil, internal(err, "query audit trail of %s", id)
	}
	recs := make([]access.AuditRecord, 0, len(items))
	for _, it := range items {
		rec, err := unmarshalAudit(it)
		if err != nil {
			return nil, internal(err, "read audit trail of %s", id)
		}
		recs = append(recs, rec)
	}
	return recs, nil
}

// VerifyAudit checks a request's audit trail: complete, unmodified, in
// order, and ending at the record the request item points at.
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

func stringSet(v string) expression.ValueBuilder {
	return expression.Value(&types.AttributeValueMemberSS{Value: []string{v}})
}

// HoldGrant adds requestID to the holders of key. When the entry has no
// holders, this is the first hold: it records preExisting, and only if the
// entry is still at seenGen (what the caller read before it checked IAM);
// otherwise it joins the holders. A first hold whose entry changed meanwhile
// is a conflict: read the entry and IAM again.
func (s *Store) HoldGrant(ctx context.Context, key, requestID string, preExisting bool, seenGen int) (access.Ledger, error) {
	if key == "" || requestID == "" {
		return access.Ledger{Key: key}, access.Errorf(access.KindInvalid, "a ledger key and a request id are required")
	}
	holders, gen := expression.Name(AttrHolders), expression.Name(AttrGen)
	// A fresh UpdateBuilder each: their methods share the operation map.
	add := func() expression.UpdateBuilder {
		return expression.Add(holders, stringSet(requestID)).Add(gen, expression.Value(1))
	}
	atGen := expression.AttributeNotExists(gen)
	if seenGen != 0 {
		atGen = gen.Equal(expression.Value(seenGen))
	}
	first := expression.NewBuilder().
		WithUpdate(add().Set(expression.Name(AttrPreExisting), expression.Value(preExisting))).
		WithCondition(expression.AttributeNotExists(holders).And(atGen))
	join := expression.NewBuilder().
		WithUpdate(add()).
		WithCondition(expression.AttributeExists(holders))
	for _, b := range []expression.Builder{first, join} {
		l, ok, err := s.updateLedger(ctx, "HoldGrant", key, b)
		if err != nil || ok {
			return l, err
		}
	}
	return access.Ledger{Key: key}, access.Errorf(access.KindConflict, "grant %s changed since it was read; read it again", key)
}

// updateLedger applies one conditional update to a ledger entry and returns
// the entry after; ok is false when the condition did not hold.
func (s *Store) updateLedger(ctx context.Context, op, key string, b expression.Builder) (l access.Ledger, ok bool, err error) {
	l = access.Ledger{Key: key}
	e, err := b.Build()
	if err != nil {
		return l, false, internal(err, "build %s of %s", op, key)
	}
	out, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.tables.State), Key: grantKey(key),
		UpdateExpression: e.Update(), ConditionExpression: e.Condition(),
		ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values(),
		ReturnValues: types.ReturnValueAllNew, ReturnConsumedCapacity: s.returnCC(),
	})
	if isConditionFailed(err) {
		return l, false, nil
	}
	if err != nil {
		return l, false, internal(err, "%s %s", op, key)
	}
	s.consumed(op+".UpdateItem", out.ConsumedCapacity)
	if l, err = unmarshalLedger(key, out.Attributes); err != nil {
		return access.Ledger{Key: key}, false, internal(err, "read grant %s", key)
	}
	return l, true, nil
}

// ReleaseGrant removes requestID from the holders of key (idempotent) and
// returns the entry after. The entry stays, without holders: its Gen must
// never go back (see HoldGrant), and a retried revoke must still see
// pre-existing access. A missing entry is an empty Ledger.
func (s *Store) ReleaseGrant(ctx context.Context, key, requestID string) (access.Ledger, error) {
	if key == "" || requestID == "" {
		return access.Ledger{Key: key}, access.Errorf(access.KindInvalid, "a ledger key and a request id are required")
	}
	l, ok, err := s.updateLedger(ctx, "ReleaseGrant", key, expression.NewBuilder().
		WithUpdate(expression.Delete(expression.Name(AttrHolders), stringSet(requestID)).Add(expression.Name(AttrGen), expression.Value(1))).
		WithCondition(expression.Contains(expression.Name(AttrHolders), requestID)))
	if err == nil && !ok {
		return s.Ledger(ctx, key) // not a holder (any more): nothing to do
	}
	return l, err
}

// ReleaseIfShared removes requestID from the holders of key only while
// another request still holds the access, in one conditional update; the
// last holder must remove the access before it lets go.
func (s *Store) ReleaseIfShared(ctx context.Context, key, requestID string) (access.Ledger, bool, error) {
	if key == "" || requestID == "" {
		return access.Ledger{Key: key}, false, access.Errorf(access.KindInvalid, "a ledger key and a request id are required")
	}
	holders := expression.Name(AttrHolders)
	l, ok, err := s.updateLedger(ctx, "ReleaseIfShared", key, expression.NewBuilder().
		WithUpdate(expression.Delete(holders, stringSet(requestID)).Add(expression.Name(AttrGen), expression.Value(1))).
		WithCondition(expression.Contains(holders, requestID).And(expression.Size(holders).GreaterThan(expression.Value(1)))))
	if err == nil && !ok {
		l, err = s.Ledger(ctx, key)
	}
	return l, ok, err
}

// Ledger reads an entry; a missing entry is an empty Ledger.
func (s *Store) Ledger(ctx context.Context, key string) (access.Ledger, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.tables.State), Key: grantKey(key), ConsistentRead: aws.Bool(true),
		ReturnConsumedCapacity: s.returnCC(),
	})
	if err != nil {
		return access.Ledger{Key: key}, internal(err, "get grant %s", key)
	}
	s.consumed("Ledger.GetItem", out.ConsumedCapacity)
	l, err := unmarshalLedger(key, out.Item)
	if err != nil {
		return access.Ledger{Key: key}, internal(err, "read grant %s", key)
	}
	return l, nil
}

// ConsumeToken marks an approval token used; conflict if it already was.
// The item ages out through TTL some time after expires (plus
// TokenTTLMargin), when the token is useless anyway.
func (s *Store) ConsumeToken(ctx context.Context, tokenID string, expires time.Time) error {
	if tokenID == "" {
		return access.FieldErrorf("token", "is required")
	}
	it, err := attributevalue.MarshalMap(tokenItem{
		PK: prefixToken + tokenID, SK: skToken,
		ExpiresAt: formatTime(expires), TTL: expires.Add(TokenTTLMargin).Unix(),
	})
	if err != nil {
		return internal(err, "encode token")
	}
	e, err := conditional(notExists(AttrPK))
	if err != nil {
		return internal(err, "build token put")
	}
	out, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.tables.State), Item: it,
		ConditionExpression: e.Condition(), ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values(),
		ReturnConsumedCapacity: s.returnCC(),
	})
	if isConditionFailed(err) {
		return access.Wrap(access.KindConflict, err, "this approval link has already been used")
	}
	if err != nil {
		return internal(err, "consume token")
	}
	s.consumed("ConsumeToken.PutItem", out.ConsumedCapacity)
	return nil
}

// ReleaseToken deletes a consumed token's item, so its link works again.
func (s *Store) ReleaseToken(ctx context.Context, tokenID string) error {
	if tokenID == "" {
		return access.FieldErrorf("token", "is required")
	}
	out, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: aws.String(s.tables.State),
		Key: map[string]types.AttributeValue{
			AttrPK: &types.AttributeValueMemberS{Value: prefixToken + tokenID},
			AttrSK: &types.AttributeValueMemberS{Value: skToken},
		},
		ReturnConsumedCapacity: s.returnCC(),
	})
	if err != nil {
		return internal(err, "release token")
	}
	s.consumed("ReleaseToken.DeleteItem", out.ConsumedCapacity)
	return nil
}

func sortedUnique(ss []string) []string {
	out := slices.Clone(ss)
	slices.Sort(out)
	return slices.Compact(out)
}
