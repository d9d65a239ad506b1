package bench

import (
	"context"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"
)

// EmulateTransactions makes every client built from cfg execute a
// TransactWriteItems as its individual conditional writes, sent through
// exec (a client without this middleware), and answer as DynamoDB would: an
// empty output, or a TransactionCanceledException whose reason names the
// failed condition. Only for moto_server, whose TransactWriteItems
// deep-copies every table it touches first, so that one transaction takes
// time proportional to the table (seconds at 20,000 items): with it the
// benchmarks measure the system, not that copy. The writes are not atomic;
// use it only where transactions do not race (with SerializeTransactions).
// Middleware installed before it (a Tracker) still sees, counts and prices
// the one TransactWriteItems call.
func EmulateTransactions(cfg *aws.Config, exec *dynamodb.Client) {
	cfg.APIOptions = append(slices.Clone(cfg.APIOptions), func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("benchEmulateTransactions",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				tx, ok := in.Parameters.(*dynamodb.TransactWriteItemsInput)
				if !ok || awsmiddleware.GetOperationName(ctx) != "TransactWriteItems" {
					return next.HandleInitialize(ctx, in)
				}
				return middleware.InitializeOutput{Result: &dynamodb.TransactWriteItemsOutput{}}, middleware.Metadata{}, runTransaction(ctx, exec, tx)
			}), middleware.After)
	})
}

func runTransaction(ctx context.Context, exec *dynamodb.Client, tx *dynamodb.TransactWriteItemsInput) error {
	for i, it := range tx.TransactItems {
		var err error
		switch {
		case it.Put != nil:
			p := it.Put
			_, err = exec.PutItem(ctx, &dynamodb.PutItemInput{TableName: p.TableName, Item: p.Item,
				ConditionExpression: p.ConditionExpression, ExpressionAttributeNames: p.ExpressionAttributeNames, ExpressionAttributeValues: p.ExpressionAttributeValues})
		case it.Delete != nil:
			d := it.Delete
			_, err = exec.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: d.TableName, Key: d.Key,
				ConditionExpression: d.ConditionExpression, ExpressionAttributeNames: d.ExpressionAttributeNames, ExpressionAttributeValues: d.ExpressionAttributeValues})
		case it.Update != nil:
			u := it.Update
			_, err = exec.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: u.TableName, Key: u.Key, UpdateExpression: u.UpdateExpression,
				ConditionExpression: u.ConditionExpression, ExpressionAttributeNames: u.ExpressionAttributeNames, ExpressionAttributeValues: u.ExpressionAttributeValues})
		default:
			err = fmt.Errorf("bench: transaction item %d: only Put, Delete and Update are emulated", i)
		}
		if err == nil {
			continue
		}
		var ccf *types.ConditionalCheckFailedException
		if !errorsAs(err, &ccf) {
			return err
		}
		reasons := make([]types.CancellationReason, len(tx.TransactItems))
		for j := range reasons {
			reasons[j].Code = aws.String("None")
		}
		reasons[i].Code = aws.String("ConditionalCheckFailed")
		return &types.TransactionCanceledException{
			Message:             aws.String("Transaction cancelled, please refer cancellation reasons for specific reasons [emulated]"),
			CancellationReasons: reasons,
		}
	}
	return nil
}
