// Package dynamo is the DynamoDB adapter: it stores requests, their
// append-only audit trail, the grant ledger and consumed approval tokens, and
// satisfies the app.Store port without importing app.
//
// Two tables. The state table holds, under a generic pk/sk key:
//
//	request        pk "REQ#<id>"               sk "REQ"
//	approver inbox pk "INBOX#<approver, lower>" sk "<request id>"
//	grant ledger   pk "GRANT#<ledger key>"     sk "GRANT"   holders (SS), preExisting (BOOL)
//	used token     pk "TOKEN#<token id>"       sk "TOKEN"   ttl (N, epoch seconds)
//
// with three global secondary indexes over the request items: byRequester
// (requester, createdKey), the sparse due-work index due (dueStatus, dueAt),
// which only holds requests that are not terminal, and byTicket (ticket,
// createdKey), which only holds requests with a ticket. The audit table is
// keyed by requestId and seq and is only ever written with conditional puts.
package dynamo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Tables names the two tables the store uses.
type Tables struct {
	State string
	Audit string
}

// Index names of the state table.
const (
	IndexByRequester = "byRequester"
	IndexDue         = "due"
	IndexByTicket    = "byTicket"
)

// Attribute names of the state table.
const (
	AttrPK          = "pk"
	AttrSK          = "sk"
	AttrRequester   = "requester"   // byRequester partition key
	AttrCreatedKey  = "createdKey"  // byRequester and byTicket sort key
	AttrDueStatus   = "dueStatus"   // due partition key; absent on terminal requests
	AttrDueAt       = "dueAt"       // due sort key; absent on terminal requests
	AttrTicket      = "ticket"      // byTicket partition key; absent without a ticket
	AttrVersion     = "version"     // optimistic-lock token of a request item
	AttrHolders     = "holders"     // grant ledger: string set of request ids
	AttrPreExisting = "preExisting" // grant ledger: access was there before us
	AttrGen         = "gen"         // grant ledger: bumped by every hold and release
	AttrTTL         = "ttl"         // consumed tokens: epoch seconds, the table's TTL attribute
)

// Attribute names of the audit table.
const (
	AttrRequestID = "requestId"
	AttrSeq       = "seq"
)

// TimeLayout is how every time is stored: UTC, fixed width, nanoseconds
// padded, so that string order is time order (the due index sorts on it).
const TimeLayout = "2006-01-02T15:04:05.000000000Z"

func str(name string, t types.ScalarAttributeType) types.AttributeDefinition {
	return types.AttributeDefinition{AttributeName: aws.String(name), AttributeType: t}
}

func keys(hash, rng string) []types.KeySchemaElement {
	return []types.KeySchemaElement{
		{AttributeName: aws.String(hash), KeyType: types.KeyTypeHash},
		{AttributeName: aws.String(rng), KeyType: types.KeyTypeRange},
	}
}

func gsi(name, hash, rng string) types.GlobalSecondaryIndex {
	return types.GlobalSecondaryIndex{
		IndexName:  aws.String(name),
		KeySchema:  keys(hash, rng),
		Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
	}
}

// StateTable is the definition of the state table (requests, inbox, grant
// ledger, consumed tokens). Its TTL on AttrTTL is set separately, by
// CreateTables (and by the template).
func StateTable(name string) *dynamodb.CreateTableInput {
	return &dynamodb.CreateTableInput{
		TableName:   aws.String(name),
		BillingMode: types.BillingModePayPerRequest,
		KeySchema:   keys(AttrPK, AttrSK),
		AttributeDefinitions: []types.AttributeDefinition{
			str(AttrPK, types.ScalarAttributeTypeS),
			str(AttrSK, types.ScalarAttributeTypeS),
			str(AttrRequester, types.ScalarAttributeTypeS),
			str(AttrCreatedKey, types.ScalarAttributeTypeS),
			str(AttrDueStatus, types.ScalarAttributeTypeS),
			str(AttrDueAt, types.ScalarAttributeTypeS),
			str(AttrTicket, types.ScalarAttributeTypeS),
		},
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{
			gsi(IndexByRequester, AttrRequester, AttrCreatedKey),
			gsi(IndexDue, AttrDueStatus, AttrDueAt),
			gsi(IndexByTicket, AttrTicket, AttrCreatedKey),
		},
	}
}

// AuditTable is the definition of the append-only audit table.
func AuditTable(name string) *dynamodb.CreateTableInput {
	return &dynamodb.CreateTableInput{
		TableName:   aws.String(name),
		BillingMode: types.BillingModePayPerRequest,
		KeySchema:   keys(AttrRequestID, AttrSeq),
		AttributeDefinitions: []types.AttributeDefinition{
			str(AttrRequestID, types.ScalarAttributeTypeS),
			str(AttrSeq, types.ScalarAttributeTypeN),
		},
	}
}

// CreateTables creates both tables (tables that already exist are left as
// they are), waits until they are active and turns on TTL for consumed
// tokens on the state table.
func CreateTables(ctx context.Context, client *dynamodb.Client, t Tables) error {
	if t.State == "" || t.Audit == "" {
		return errors.New("dynamo: both table names are required")
	}
	for _, in := range []*dynamodb.CreateTableInput{StateTable(t.State), AuditTable(t.Audit)} {
		_, err := client.CreateTable(ctx, in)
		var inUse *types.ResourceInUseException
		if err != nil && !errors.As(err, &inUse) {
			return fmt.Errorf("dynamo: create table %s: %w", *in.TableName, err)
		}
	}
	waiter := dynamodb.NewTableExistsWaiter(client, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = 200*time.Millisecond, 5*time.Second
	})
	for _, name := range []string{t.State, t.Audit} {
		if err := waiter.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, 5*time.Minute); err != nil {
			return fmt.Errorf("dynamo: wait for table %s: %w", name, err)
		}
	}
	return enableTTL(ctx, client, t.State)
}

func enableTTL(ctx context.Context, client *dynamodb.Client, table string) error {
	out, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(table)})
	if err != nil {
		return fmt.Errorf("dynamo: describe TTL of %s: %w", table, err)
	}
	if d := out.TimeToLiveDescription; d != nil && aws.ToString(d.AttributeName) == AttrTTL &&
		(d.TimeToLiveStatus == types.TimeToLiveStatusEnabled || d.TimeToLiveStatus == types.TimeToLiveStatusEnabling) {
		return nil
	}
	_, err = client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(table),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: aws.String(AttrTTL),
			Enabled:       aws.Bool(true),
		},
	})
	if err != nil {
		return fmt.Errorf("dynamo: enable TTL on %s: %w", table, err)
	}
	return nil
}
