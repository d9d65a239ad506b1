package dynamo_test

import (
	"context"
	"maps"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jitaccess/jit/internal/access"
	"github.com/jitaccess/jit/internal/app"
	"github.com/jitaccess/jit/internal/awstest"
	"github.com/jitaccess/jit/internal/dynamo"
	"github.com/jitaccess/jit/internal/dynamo/storetest"
)

func TestMain(m *testing.M) { awstest.Main(m) }

var _ app.Store = (*dynamo.Store)(nil)

var tables = dynamo.Tables{State: "jit-state", Audit: "jit-audit"}

// opGuard watches the operations a client sends: it fails the test on any
// Scan (the store must only ever query) and, for moto's sake, runs
// TransactWriteItems one at a time (see serializeTransactions).
func opGuard(t *testing.T) func(*middleware.Stack) error {
	var mu sync.Mutex
	return func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("opGuard",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				switch awsmiddleware.GetOperationName(ctx) {
				case "Scan":
					t.Errorf("the store scanned a table")
				case "TransactWriteItems":
					mu.Lock()
					defer mu.Unlock()
				}
				return next.HandleInitialize(ctx, in)
			}), middleware.Before)
	}
}

// newClient resets moto and creates the tables.
//
// moto quirk: moto_server handles requests on several threads, and its
// TransactWriteItems neither locks nor rolls back precisely: it checks the
// conditions, writes, and on a failed condition restores a deep copy of the
// tables taken when the transaction began, wiping out any transaction that
// committed in between. DynamoDB serializes transactions on the same items,
// so the test client sends its TransactWriteItems one at a time; the
// goroutines of the concurrency test still race each other for the
// version condition, which is what the test is about.
func newClient(t *testing.T) *dynamodb.Client {
	t.Helper()
	srv := awstest.Require(t)
	client := dynamodb.NewFromConfig(srv.Config(), func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, opGuard(t))
	})
	require.NoError(t, dynamo.CreateTables(awstest.Context(t), client, tables))
	return client
}

func newStore(t *testing.T, opts ...dynamo.Option) (*dynamo.Store, *dynamodb.Client) {
	client := newClient(t)
	return dynamo.New(client, tables, opts...), client
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) app.Store {
		s, _ := newStore(t)
		return s
	})
}

func TestCreateTables(t *testing.T) {
	client := newClient(t)
	ctx := awstest.Context(t)
	require.NoError(t, dynamo.CreateTables(ctx, client, tables), "creating existing tables is a no-op")

	out, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(tables.State)})
	require.NoError(t, err)
	var indexes []string
	for _, g := range out.Table.GlobalSecondaryIndexes {
		indexes = append(indexes, aws.ToString(g.IndexName))
		assert.Equal(t, types.ProjectionTypeAll, g.Projection.ProjectionType)
	}
	assert.ElementsMatch(t, []string{dynamo.IndexByRequester, dynamo.IndexDue, dynamo.IndexByTicket}, indexes)

	ttl, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(tables.State)})
	require.NoError(t, err)
	assert.Equal(t, dynamo.AttrTTL, aws.ToString(ttl.TimeToLiveDescription.AttributeName))
	assert.Equal(t, types.TimeToLiveStatusEnabled, ttl.TimeToLiveDescription.TimeToLiveStatus)

	audit, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(tables.Audit)})
	require.NoError(t, err)
	assert.Equal(t, dynamo.AttrRequestID, aws.ToString(audit.Table.KeySchema[0].AttributeName))
	assert.Equal(t, dynamo.AttrSeq, aws.ToString(audit.Table.KeySchema[1].AttributeName))

	require.Error(t, dynamo.CreateTables(ctx, client, dynamo.Tables{State: "x"}))
}

func getRaw(t *testing.T, client *dynamodb.Client, table, pk, sk string) map[string]types.AttributeValue {
	t.Helper()
	out, err := client.GetItem(awstest.Context(t), &dynamodb.GetItemInput{
		TableName: aws.String(table),
		Key: map[string]types.AttributeValue{
			dynamo.AttrPK: &types.AttributeValueMemberS{Value: pk},
			dynamo.AttrSK: &types.AttributeValueMemberS{Value: sk},
		},
	})
	require.NoError(t, err)
	return out.Item
}

func s(t *testing.T, av types.AttributeValue) string {
	t.Helper()
	v, ok := av.(*types.AttributeValueMemberS)
	require.True(t, ok, "%T is not a string", av)
	return v.Value
}

func TestStoredItems(t *testing.T) {
	st, client := newStore(t)
	ctx := awstest.Context(t)
	r, rec := storetest.Submit(t, "req-1", "alice", []string{"Bob", "carol"}, 1, storetest.T0.Add(30*time.Minute))
	require.NoError(t, st.Create(ctx, r, rec))

	it := getRaw(t, client, tables.State, "REQ#req-1", "REQ")
	require.NotNil(t, it)
	assert.Equal(t, "PENDING", s(t, it[dynamo.AttrDueStatus]))
	assert.Equal(t, "2031-03-04T05:36:07.123456789Z", s(t, it[dynamo.AttrDueAt]))
	assert.Equal(t, "2031-03-04T05:06:07.123456789Z#req-1", s(t, it[dynamo.AttrCreatedKey]))
	assert.NotContains(t, it, dynamo.AttrTicket, "no ticket, not in the ticket index")
	assert.Equal(t, &types.AttributeValueMemberN{Value: "1"}, it[dynamo.AttrVersion])
	assert.NotNil(t, getRaw(t, client, tables.State, "INBOX#bob", "req-1"), "inbox keys are lowercased")
	assert.NotNil(t, getRaw(t, client, tables.State, "INBOX#carol", "req-1"))

	next := storetest.Apply(t, st, r, access.Event{Type: access.EventDeny, Actor: "carol"}, storetest.T0.Add(time.Minute))
	it = getRaw(t, client, tables.State, "REQ#req-1", "REQ")
	assert.NotContains(t, it, dynamo.AttrDueStatus, "terminal requests leave the due index")
	assert.NotContains(t, it, dynamo.AttrDueAt)
	assert.Equal(t, &types.AttributeValueMemberN{Value: "2"}, it[dynamo.AttrVersion])
	assert.Nil(t, getRaw(t, client, tables.State, "INBOX#bob", "req-1"))
	assert.Nil(t, getRaw(t, client, tables.State, "INBOX#carol", "req-1"))
	require.NoError(t, st.VerifyAudit(ctx, next.ID))

	require.NoError(t, st.ConsumeToken(ctx, "tok", time.Unix(1_900_000_000, 0)))
	tok := getRaw(t, client, tables.State, "TOKEN#tok", "TOKEN")
	assert.Equal(t, &types.AttributeValueMemberN{Value: "1900086400"}, tok[dynamo.AttrTTL])

	_, err := st.HoldGrant(ctx, "k", "req-1", true, 0)
	require.NoError(t, err)
	g := getRaw(t, client, tables.State, "GRANT#k", "GRANT")
	assert.Equal(t, &types.AttributeValueMemberSS{Value: []string{"req-1"}}, g[dynamo.AttrHolders])
	assert.Equal(t, &types.AttributeValueMemberBOOL{Value: true}, g[dynamo.AttrPreExisting])
}

func TestVerifyAuditDetectsTampering(t *testing.T) {
	type trail = []map[string]types.AttributeValue
	put := func(t *testing.T, c *dynamodb.Client, it map[string]types.AttributeValue) {
		_, err := c.PutItem(awstest.Context(t), &dynamodb.PutItemInput{TableName: aws.String(tables.Audit), Item: it})
		require.NoError(t, err)
	}
	del := func(t *testing.T, c *dynamodb.Client, it map[string]types.AttributeValue) {
		_, err := c.DeleteItem(awstest.Context(t), &dynamodb.DeleteItemInput{TableName: aws.String(tables.Audit), Key: map[string]types.AttributeValue{
			dynamo.AttrRequestID: it[dynamo.AttrRequestID], dynamo.AttrSeq: it[dynamo.AttrSeq],
		}})
		require.NoError(t, err)
	}
	// withoutKey is a record's content: everything but its key.
	withoutKey := func(it map[string]types.AttributeValue) map[string]types.AttributeValue {
		c := maps.Clone(it)
		delete(c, dynamo.AttrRequestID)
		delete(c, dynamo.AttrSeq)
		return c
	}
	tests := []struct {
		name    string
		give    func(t *testing.T, c *dynamodb.Client, recs trail)
		wantErr string
	}{
		{name: "untouched", give: func(*testing.T, *dynamodb.Client, trail) {}},
		{
			name: "detail modified",
			give: func(t *testing.T, c *dynamodb.Client, recs trail) {
				it := maps.Clone(recs[1])
				it["detail"] = &types.AttributeValueMemberS{Value: "approved by the CEO"}
				put(t, c, it)
			},
			wantErr: "audit record 2 was modified",
		},
		{
			name:    "middle record deleted",
			give:    func(t *testing.T, c *dynamodb.Client, recs trail) { del(t, c, recs[2]) },
			wantErr: "audit record 3 has sequence 4",
		},
		{
			name:    "last record deleted",
			give:    func(t *testing.T, c *dynamodb.Client, recs trail) { del(t, c, recs[len(recs)-1]) },
			wantErr: "request points at a later record",
		},
		{
			name: "last record deleted and the request's head removed",
			give: func(t *testing.T, c *dynamodb.Client, recs trail) {
				del(t, c, recs[len(recs)-1])
				_, err := c.UpdateItem(awstest.Context(t), &dynamodb.UpdateItemInput{
					TableName: aws.String(tables.State),
					Key: map[string]types.AttributeValue{
						dynamo.AttrPK: &types.AttributeValueMemberS{Value: "REQ#req-1"},
						dynamo.AttrSK: &types.AttributeValueMemberS{Value: "REQ"},
					},
					UpdateExpression: aws.String("REMOVE auditHead"),
				})
				require.NoError(t, err)
			},
			wantErr: "points at no audit record",
		},
		{
			name: "two records swapped",
			give: func(t *testing.T, c *dynamodb.Client, recs trail) {
				a, b := recs[1], recs[2]
				swappedA, swappedB := withoutKey(b), withoutKey(a)
				swappedA[dynamo.AttrRequestID], swappedA[dynamo.AttrSeq] = a[dynamo.AttrRequestID], a[dynamo.AttrSeq]
				swappedB[dynamo.AttrRequestID], swappedB[dynamo.AttrSeq] = b[dynamo.AttrRequestID], b[dynamo.AttrSeq]
				put(t, c, swappedA)
				put(t, c, swappedB)
			},
			wantErr: "audit record 2 does not link to record 1",
		},
		{
			name: "record rewritten with its hash recomputed",
			give: func(t *testing.T, c *dynamodb.Client, recs trail) {
				it := maps.Clone(recs[1])
				it["actor"] = &types.AttributeValueMemberS{Value: "mallory"}
				it["hash"] = &types.AttributeValueMemberS{Value: decodeAudit(t, it).ComputeHash()}
				put(t, c, it)
			},
			wantErr: "audit record 3 does not link to record 2",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, client := newStore(t)
			ctx := awstest.Context(t)
			r, rec := storetest.Submit(t, "req-1", "alice", []string{"bob", "carol"}, 2, storetest.T0.Add(time.Hour))
			require.NoError(t, st.Create(ctx, r, rec))
			r = storetest.Apply(t, st, r, access.Event{Type: access.EventApprove, Actor: "bob", Comment: "ok"}, storetest.T0.Add(time.Minute))
			r = storetest.Apply(t, st, r, access.Event{Type: access.EventApprove, Actor: "carol"}, storetest.T0.Add(2*time.Minute))
			r = storetest.Apply(t, st, r, access.Event{Type: access.EventActivate, Actor: "system:grant"}, storetest.T0.Add(time.Hour))
			storetest.Apply(t, st, r, access.Event{Type: access.EventRevoke, Actor: "alice"}, storetest.T0.Add(90*time.Minute))
			require.NoError(t, st.VerifyAudit(ctx, r.ID))

			out, err := client.Query(ctx, &dynamodb.QueryInput{
				TableName:              aws.String(tables.Audit),
				KeyConditionExpression: aws.String("requestId = :id"),
				ExpressionAttributeValues: map[string]types.AttributeValue{
					":id": &types.AttributeValueMemberS{Value: r.ID},
				},
			})
			require.NoError(t, err)
			require.Len(t, out.Items, 5)
			tt.give(t, client, out.Items)

			err = st.VerifyAudit(ctx, r.ID)
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Equal(t, access.KindConflict, access.KindOf(err))
			assert.Contains(t, err.Error(), tt.wantErr)
		})
	}
}

// TestAuditRecordsAreNeverOverwritten: a transition whose version condition
// holds still fails, and changes nothing, when its audit record's key is
// taken (the audit put is conditional on the record not existing).
func TestAuditRecordsAreNeverOverwritten(t *testing.T) {
	st, client := newStore(t)
	ctx := awstest.Context(t)
	r, rec := storetest.Submit(t, "req-1", "alice", []string{"bob"}, 1, storetest.T0.Add(time.Hour))
	require.NoError(t, st.Create(ctx, r, rec))
	next, rec2, err := access.Apply(r, access.Event{Type: access.EventApprove, Actor: "bob"}, storetest.T0.Add(time.Minute))
	require.NoError(t, err)

	// Plant record 2 by hand: a copy of record 1 under seq 2.
	out, err := client.Query(ctx, &dynamodb.QueryInput{
		TableName:                 aws.String(tables.Audit),
		KeyConditionExpression:    aws.String("requestId = :id"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":id": &types.AttributeValueMemberS{Value: r.ID}},
	})
	require.NoError(t, err)
	require.Len(t, out.Items, 1)
	item := maps.Clone(out.Items[0])
	item[dynamo.AttrSeq] = &types.AttributeValueMemberN{Value: "2"}
	item["actor"] = &types.AttributeValueMemberS{Value: "mallory"}
	_, err = client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(tables.Audit), Item: item})
	require.NoError(t, err)

	err = st.Transition(ctx, r, next, rec2)
	require.Error(t, err)
	assert.Equal(t, access.KindConflict, access.KindOf(err))
	got, err := st.Get(ctx, r.ID)
	require.NoError(t, err)
	assert.Equal(t, r, got, "the state item did not move")
	recs, err := st.Audit(ctx, r.ID)
	require.NoError(t, err)
	require.Len(t, recs, 2)
	assert.Equal(t, "mallory", recs[1].Actor, "the existing record was not overwritten")
}

func TestConsumedCapacity(t *testing.T) {
	var mu sync.Mutex
	ops := map[string]int{}
	st, _ := newStore(t, dynamo.WithConsumedCapacity(func(op string, cc []types.ConsumedCapacity) {
		mu.Lock()
		defer mu.Unlock()
		ops[op]++
	}))
	ctx := awstest.Context(t)
	r, rec := storetest.Submit(t, "req-1", "alice", []string{"bob"}, 1, storetest.T0.Add(time.Hour))
	require.NoError(t, st.Create(ctx, r, rec))
	_, err := st.Get(ctx, r.ID)
	require.NoError(t, err)
	_, _, err = st.ListAwaiting(ctx, "bob", 10)
	require.NoError(t, err)
	_, _, err = st.ListDue(ctx, access.StatusPending, storetest.T0.Add(time.Hour), 10, "")
	require.NoError(t, err)
	storetest.Apply(t, st, r, access.Event{Type: access.EventApprove, Actor: "bob"}, storetest.T0)
	_, err = st.HoldGrant(ctx, "k", r.ID, false, 0)
	require.NoError(t, err)
	_, err = st.ReleaseGrant(ctx, "k", r.ID)
	require.NoError(t, err)

	for _, op := range []string{
		"Create.TransactWriteItems", "Get.GetItem", "ListAwaiting.Query", "ListAwaiting.BatchGetItem",
		"ListDue.Query", "Transition.TransactWriteItems", "HoldGrant.UpdateItem", "ReleaseGrant.UpdateItem",
	} {
		assert.Equal(t, 1, ops[op], op)
	}
}

// decodeAudit reads a raw audit item the way the store does.
func decodeAudit(t *testing.T, it map[string]types.AttributeValue) access.AuditRecord {
	t.Helper()
	str := func(name string) string {
		if v, ok := it[name].(*types.AttributeValueMemberS); ok {
			return v.Value
		}
		return ""
	}
	at, err := time.Parse(dynamo.TimeLayout, str("at"))
	require.NoError(t, err)
	seq, err := strconv.Atoi(it[dynamo.AttrSeq].(*types.AttributeValueMemberN).Value)
	require.NoError(t, err)
	return access.AuditRecord{
		RequestID: str(dynamo.AttrRequestID), Seq: seq, At: at, Actor: str("actor"),
		Action: access.EventType(str("action")), From: access.Status(str("from")), To: access.Status(str("to")),
		Detail: str("detail"), PrevHash: str("prevHash"), Hash: str("hash"),
	}
}
