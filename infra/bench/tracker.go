package bench

import (
	"context"
	"errors"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// OpStats is what one operation ("Service.Operation") consumed.
type OpStats struct {
	Calls int
	// Items returned (reads) or written (writes), DynamoDB only.
	Items int
	// Scanned are the items a Query or Scan evaluated (ScannedCount):
	// what it is billed for, filtered out or not.
	Scanned int
	// Modelled request units (see capacity.go), DynamoDB only; IndexWrite
	// is the part of Write spent on global secondary indexes.
	Write, IndexWrite, Read float64
	// Request and response bytes on the wire, every attempt.
	BytesOut, BytesIn int64
	// Took is the time spent in the calls, retries included.
	Took time.Duration
	// CondFailed counts calls refused by their condition (which DynamoDB
	// still bills as writes).
	CondFailed int
}

func (o *OpStats) add(p OpStats) {
	o.Calls += p.Calls
	o.Items += p.Items
	o.Scanned += p.Scanned
	o.Write += p.Write
	o.IndexWrite += p.IndexWrite
	o.Read += p.Read
	o.BytesOut += p.BytesOut
	o.BytesIn += p.BytesIn
	o.Took += p.Took
	o.CondFailed += p.CondFailed
}

// Snapshot is what a Tracker counted since its last Reset.
type Snapshot struct {
	Ops map[string]OpStats
	// Reported is the capacity DynamoDB (here: moto) returned through
	// ReturnConsumedCapacity, by store operation.
	Reported map[string]float64
	// MaxItem is the largest item size seen per table.
	MaxItem map[string]int
}

// Calls is the number of calls of service (e.g. "DynamoDB"), all operations.
func (s Snapshot) Calls(service string) int {
	n := 0
	for op, o := range s.Ops {
		if strings.HasPrefix(op, service+".") {
			n += o.Calls
		}
	}
	return n
}

// Op is the stats of one "Service.Operation" (zero if none).
func (s Snapshot) Op(op string) OpStats { return s.Ops[op] }

// Total sums every operation of service ("" for all).
func (s Snapshot) Total(service string) OpStats {
	var t OpStats
	for op, o := range s.Ops {
		if service == "" || strings.HasPrefix(op, service+".") {
			t.add(o)
		}
	}
	return t
}

// ReportedTotal is the sum of the capacity the service reported.
func (s Snapshot) ReportedTotal() float64 {
	t := 0.0
	for _, v := range s.Reported {
		t += v
	}
	return t
}

// Names lists the operations seen, sorted.
func (s Snapshot) Names() []string { return slices.Sorted(maps.Keys(s.Ops)) }

type keySchema struct {
	hash, rng string
}

type indexDef struct {
	name string
	keySchema
}

type tableDef struct {
	keySchema
	indexes []indexDef
}

// Tracker counts AWS calls per service and operation (smithy middleware on
// the aws.Config), and models DynamoDB request units from the items in the
// requests and responses. To know the old item of a write (DynamoDB bills
// the larger of old and new) and whether an item was in an index before, it
// keeps a shadow copy of every item it has seen, by table and key.
type Tracker struct {
	mu       sync.Mutex
	ops      map[string]*OpStats
	reported map[string]float64
	maxItem  map[string]int
	tables   map[string]tableDef
	shadow   map[string]map[string]types.AttributeValue
	largest  map[string]int // the largest item learnt per table, kept over Reset
	// Observe, when set, is called for each DynamoDB call after it
	// returned, with its input and output, what it was modelled to cost and
	// how long it took (retries included), under no lock.
	Observe func(op string, in, out any, cost OpStats, took time.Duration)
}

// NewTracker returns a tracker that knows the key schemas and indexes of
// the given table definitions (the store's dynamo.StateTable and AuditTable).
func NewTracker(defs ...*dynamodb.CreateTableInput) *Tracker {
	t := &Tracker{tables: map[string]tableDef{}}
	for _, d := range defs {
		td := tableDef{keySchema: schemaOf(d.KeySchema)}
		for _, g := range d.GlobalSecondaryIndexes {
			td.indexes = append(td.indexes, indexDef{name: aws.ToString(g.IndexName), keySchema: schemaOf(g.KeySchema)})
		}
		t.tables[aws.ToString(d.TableName)] = td
	}
	t.Reset()
	t.shadow = map[string]map[string]types.AttributeValue{}
	t.largest = map[string]int{}
	return t
}

func schemaOf(ks []types.KeySchemaElement) keySchema {
	var s keySchema
	for _, k := range ks {
		if k.KeyType == types.KeyTypeHash {
			s.hash = aws.ToString(k.AttributeName)
		} else {
			s.rng = aws.ToString(k.AttributeName)
		}
	}
	return s
}

// Reset clears the counters; the shadow items are kept.
func (t *Tracker) Reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ops = map[string]*OpStats{}
	t.reported = map[string]float64{}
	t.maxItem = map[string]int{}
}

// Forget drops the shadow items too (after the emulator was reset).
func (t *Tracker) Forget() {
	t.mu.Lock()
	t.shadow = map[string]map[string]types.AttributeValue{}
	t.largest = map[string]int{}
	t.mu.Unlock()
	t.Reset()
}

// Snapshot copies the counters.
func (t *Tracker) Snapshot() Snapshot {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := Snapshot{Ops: map[string]OpStats{}, Reported: maps.Clone(t.reported), MaxItem: maps.Clone(t.maxItem)}
	for k, v := range t.ops {
		s.Ops[k] = *v
	}
	return s
}

// Consumed is a dynamo.WithConsumedCapacity callback: it adds what the
// service reported.
func (t *Tracker) Consumed(op string, cc []types.ConsumedCapacity) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range cc {
		t.reported[op] += aws.ToFloat64(c.CapacityUnits)
	}
}

func (t *Tracker) op(name string) *OpStats {
	o := t.ops[name]
	if o == nil {
		o = &OpStats{}
		t.ops[name] = o
	}
	return o
}

// Install adds the tracker's middleware to cfg (cfg.APIOptions), so every
// client made from cfg afterwards is counted.
func (t *Tracker) Install(cfg *aws.Config) {
	cfg.APIOptions = append(slices.Clone(cfg.APIOptions), t.middleware)
}

func (t *Tracker) middleware(stack *middleware.Stack) error {
	err := stack.Initialize.Add(middleware.InitializeMiddlewareFunc("benchCount",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			name := awsmiddleware.GetServiceID(ctx) + "." + awsmiddleware.GetOperationName(ctx)
			t.mu.Lock()
			t.op(name).Calls++
			t.mu.Unlock()
			t0 := time.Now()
			out, md, err := next.HandleInitialize(ctx, in)
			took := time.Since(t0)
			t.mu.Lock()
			t.op(name).Took += took
			t.mu.Unlock()
			if awsmiddleware.GetServiceID(ctx) == "DynamoDB" {
				cost := t.dynamo(name, in.Parameters, out.Result, err)
				if t.Observe != nil {
					t.Observe(name, in.Parameters, out.Result, cost, took)
				}
			}
			return out, md, err
		}), middleware.After)
	if err != nil {
		return err
	}
	return stack.Deserialize.Add(middleware.DeserializeMiddlewareFunc("benchBytes",
		func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
			name := awsmiddleware.GetServiceID(ctx) + "." + awsmiddleware.GetOperationName(ctx)
			var sent int64
			if req, ok := in.Request.(*smithyhttp.Request); ok && req.ContentLength > 0 {
				sent = req.ContentLength
			}
			out, md, err := next.HandleDeserialize(ctx, in)
			var got int64
			if resp, ok := out.RawResponse.(*smithyhttp.Response); ok && resp.ContentLength > 0 {
				got = resp.ContentLength
			}
			t.mu.Lock()
			o := t.op(name)
			o.BytesOut += sent
			o.BytesIn += got
			t.mu.Unlock()
			return out, md, err
		}), middleware.After)
}

func isConditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }

// dynamo models the request units of one call, adds them to the
// operation's stats and returns them.
func (t *Tracker) dynamo(name string, in, out any, err error) OpStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	var o OpStats
	t.model(&o, in, out, err)
	o.Calls = 0 // counted on the way in
	t.op(name).add(o)
	return o
}

func (t *Tracker) model(o *OpStats, in, out any, err error) {
	if err != nil && !isConditionFailed(err) {
		return // failed calls (other than conditions) are not billed here
	}
	if err != nil {
		o.CondFailed++
	}
	switch in := in.(type) {
	case *dynamodb.GetItemInput:
		var item map[string]types.AttributeValue
		if res, ok := out.(*dynamodb.GetItemOutput); ok && res != nil {
			item = res.Item
		}
		o.Read += ReadUnits(ItemSize(item), aws.ToBool(in.ConsistentRead))
		if len(item) > 0 {
			o.Items++
			t.learn(aws.ToString(in.TableName), item)
		}
	case *dynamodb.PutItemInput:
		table := aws.ToString(in.TableName)
		old := t.lookup(table, in.Item)
		if err != nil { // a failed condition still costs the write
			o.Write += WriteUnits(max(ItemSize(old), ItemSize(in.Item)))
			return
		}
		o.Items++
		t.write(o, table, old, in.Item, 1)
	case *dynamodb.UpdateItemInput:
		table := aws.ToString(in.TableName)
		old := t.lookup(table, in.Key)
		if err != nil {
			o.Write += WriteUnits(ItemSize(old))
			return
		}
		var item map[string]types.AttributeValue
		if res, ok := out.(*dynamodb.UpdateItemOutput); ok && res != nil && in.ReturnValues == types.ReturnValueAllNew {
			item = res.Attributes
		}
		if item == nil {
			item = old // unknown: assume the size did not change
		}
		o.Items++
		t.write(o, table, old, item, 1)
	case *dynamodb.DeleteItemInput:
		table := aws.ToString(in.TableName)
		old := t.lookup(table, in.Key)
		if err != nil {
			o.Write += WriteUnits(ItemSize(old))
			return
		}
		o.Items++
		t.write(o, table, old, nil, 1)
	case *dynamodb.TransactWriteItemsInput:
		if err != nil {
			return
		}
		for _, ti := range in.TransactItems {
			switch {
			case ti.Put != nil:
				table := aws.ToString(ti.Put.TableName)
				t.write(o, table, t.lookup(table, ti.Put.Item), ti.Put.Item, 2)
			case ti.Delete != nil:
				table := aws.ToString(ti.Delete.TableName)
				t.write(o, table, t.lookup(table, ti.Delete.Key), nil, 2)
			case ti.Update != nil:
				table := aws.ToString(ti.Update.TableName)
				old := t.lookup(table, ti.Update.Key)
				t.write(o, table, old, old, 2)
			case ti.ConditionCheck != nil:
				table := aws.ToString(ti.ConditionCheck.TableName)
				o.Write += 2 * WriteUnits(ItemSize(t.lookup(table, ti.ConditionCheck.Key)))
			}
			o.Items++
		}
	case *dynamodb.BatchWriteItemInput:
		for table, reqs := range in.RequestItems {
			for _, r := range reqs {
				switch {
				case r.PutRequest != nil:
					t.write(o, table, t.lookup(table, r.PutRequest.Item), r.PutRequest.Item, 1)
				case r.DeleteRequest != nil:
					t.write(o, table, t.lookup(table, r.DeleteRequest.Key), nil, 1)
				}
				o.Items++
			}
		}
	case *dynamodb.QueryInput:
		res, ok := out.(*dynamodb.QueryOutput)
		if !ok || res == nil {
			return
		}
		table := aws.ToString(in.TableName)
		size := 0
		for _, it := range res.Items {
			if full := t.lookup(table, it); in.ProjectionExpression != nil && full != nil {
				size += ItemSize(full) // a projection does not make the read cheaper
			} else {
				size += ItemSize(it)
				t.learn(table, it)
			}
		}
		size += t.filteredOut(table, size, len(res.Items), int(res.ScannedCount))
		o.Items += len(res.Items)
		o.Scanned += max(int(res.ScannedCount), len(res.Items))
		// Index reads are always eventually consistent.
		o.Read += ReadUnits(size, aws.ToBool(in.ConsistentRead) && in.IndexName == nil)
	case *dynamodb.ScanInput:
		res, ok := out.(*dynamodb.ScanOutput)
		if !ok || res == nil {
			return
		}
		table := aws.ToString(in.TableName)
		size := 0
		for _, it := range res.Items {
			size += ItemSize(it)
		}
		size += t.filteredOut(table, size, len(res.Items), int(res.ScannedCount))
		o.Items += len(res.Items)
		o.Scanned += max(int(res.ScannedCount), len(res.Items))
		o.Read += ReadUnits(size, aws.ToBool(in.ConsistentRead))
	case *dynamodb.BatchGetItemInput:
		res, ok := out.(*dynamodb.BatchGetItemOutput)
		if !ok || res == nil {
			return
		}
		for table, ka := range in.RequestItems {
			consistent := aws.ToBool(ka.ConsistentRead)
			got := res.Responses[table]
			for _, it := range got {
				o.Read += ReadUnits(ItemSize(it), consistent)
				t.learn(table, it)
			}
			o.Items += len(got)
			// Keys asked for and not found still cost the minimum.
			missing := len(ka.Keys) - len(got) - len(res.UnprocessedKeys[table].Keys)
			if missing > 0 {
				o.Read += float64(missing) * ReadUnits(0, consistent)
			}
		}
	}
}

// filteredOut estimates the size of the items a Query or Scan evaluated
// but did not return (ScannedCount beyond Count: a FilterExpression threw
// them away, and DynamoDB still bills reading them): each as large as the
// returned items on average, or, with none returned, as the largest item
// of the table the tracker has seen. Called with the lock held.
func (t *Tracker) filteredOut(table string, returnedSize, returned, scanned int) int {
	extra := scanned - returned
	if extra <= 0 {
		return 0
	}
	each := t.largest[table]
	if returned > 0 {
		each = returnedSize / returned
	}
	return extra * max(each, 1)
}

// write charges one item write (mult 2 in a transaction) plus its index
// writes, and updates the shadow. old or item may be nil (new, deleted).
func (t *Tracker) write(o *OpStats, table string, old, item map[string]types.AttributeValue, mult float64) {
	oldSize, newSize := ItemSize(old), ItemSize(item)
	o.Write += mult * WriteUnits(max(oldSize, newSize))
	t.maxItem[table] = max(t.maxItem[table], newSize)
	if td, ok := t.tables[table]; ok {
		for _, idx := range td.indexes {
			oldKey, inOld := indexKey(old, idx.keySchema)
			newKey, inNew := indexKey(item, idx.keySchema)
			var u float64
			switch {
			case inOld && inNew && oldKey != newKey:
				u = WriteUnits(oldSize) + WriteUnits(newSize)
			case inOld && inNew:
				if !reflect.DeepEqual(old, item) {
					u = WriteUnits(newSize) // projection ALL: any change is written
				}
			case inOld:
				u = WriteUnits(oldSize)
			case inNew:
				u = WriteUnits(newSize)
			}
			o.Write += u
			o.IndexWrite += u
		}
	}
	if item == nil {
		if k, ok := t.key(table, old); ok {
			delete(t.shadow, k)
		}
		return
	}
	t.learn(table, item)
}

func indexKey(item map[string]types.AttributeValue, ks keySchema) (string, bool) {
	if item == nil {
		return "", false
	}
	h, ok1 := item[ks.hash]
	r, ok2 := item[ks.rng]
	if !ok1 || (ks.rng != "" && !ok2) {
		return "", false
	}
	return scalar(h) + "\x00" + scalar(r), true
}

func scalar(v types.AttributeValue) string {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return "S" + v.Value
	case *types.AttributeValueMemberN:
		return "N" + v.Value
	case *types.AttributeValueMemberB:
		return "B" + string(v.Value)
	}
	return ""
}

func (t *Tracker) key(table string, item map[string]types.AttributeValue) (string, bool) {
	td, ok := t.tables[table]
	if !ok || item == nil {
		return "", false
	}
	k, ok := indexKey(item, td.keySchema)
	return table + "\x00" + k, ok
}

func (t *Tracker) lookup(table string, key map[string]types.AttributeValue) map[string]types.AttributeValue {
	if k, ok := t.key(table, key); ok {
		return t.shadow[k]
	}
	return nil
}

func (t *Tracker) learn(table string, item map[string]types.AttributeValue) {
	if k, ok := t.key(table, item); ok {
		t.shadow[k] = item
		t.largest[table] = max(t.largest[table], ItemSize(item))
	}
}

// SerializeTransactions makes every client built from cfg send its
// TransactWriteItems one at a time. moto_server (5.x) deep-copies every
// table a transaction touches before applying it, without a lock: two
// transactions at once make it answer HTTP 500 ("dictionary changed size
// during iteration") or restore a copy that loses the other's write.
// DynamoDB serializes transactions on the same items itself; this is only
// for the emulator.
func SerializeTransactions(cfg *aws.Config) {
	var mu sync.Mutex
	cfg.APIOptions = append(slices.Clone(cfg.APIOptions), func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("benchSerializeTransactions",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				if awsmiddleware.GetOperationName(ctx) == "TransactWriteItems" {
					mu.Lock()
					defer mu.Unlock()
				}
				return next.HandleInitialize(ctx, in)
			}), middleware.After)
	})
}
