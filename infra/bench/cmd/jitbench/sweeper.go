package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/smithy-go/middleware"

	"github.com/jitaccess/jit/infra/bench"
	"github.com/jitaccess/jit/internal/access"
	"github.com/jitaccess/jit/internal/app"
	"github.com/jitaccess/jit/internal/config"
	"github.com/jitaccess/jit/internal/dynamo"
	"github.com/jitaccess/jit/internal/faults"
)

const dueCount = 50

// queryStats is what one kind of due-index query cost in a sweep.
type queryStats struct {
	Calls, Items int
	Scanned      int // items evaluated (ScannedCount), what the reads are billed for
	Read         float64
	Took         time.Duration
}

// sweepRep is one measured sweep.
type sweepRep struct {
	Wall      time.Duration
	Due       queryStats // the three ListDue queries of due work
	Drift     queryStats // the drift batch's query of ACTIVE grants
	Report    app.SweepReport
	Snap      bench.Snapshot
	ReadUnits float64 // every read of the sweep, modelled
}

// sweepSize is part 3 at one table size.
type sweepSize struct {
	Background int
	LoadMethod string
	Load       time.Duration
	Reps       []sweepRep
}

type sweepResult struct {
	Sizes []*sweepSize
	Reps  int
}

// captureCreates returns a store whose TransactWriteItems never leave the
// process: each Create hands its items to keep instead, so the benchmark can
// bulk-load exactly what the store would have written.
func captureCreates(w *world, keep func(types.TransactWriteItem)) *dynamo.Store {
	client := dynamodb.NewFromConfig(w.raw, func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Initialize.Add(middleware.InitializeMiddlewareFunc("capture",
				func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
					if awsmiddleware.GetOperationName(ctx) != "TransactWriteItems" {
						return next.HandleInitialize(ctx, in)
					}
					for _, it := range in.Parameters.(*dynamodb.TransactWriteItemsInput).TransactItems {
						keep(it)
					}
					return middleware.InitializeOutput{Result: &dynamodb.TransactWriteItemsOutput{}}, middleware.Metadata{}, nil
				}), middleware.Before)
		})
	})
	return dynamo.New(client, tables)
}

// activeRequest is an ACTIVE iam-group request of principal ending at end.
func activeRequest(id, user string, now, end time.Time) (access.Request, access.AuditRecord) {
	r := access.Request{
		ID: id, Requester: "alice@example.com",
		Principal: access.Principal{Kind: access.PrincipalUser, Name: user},
		RoleID:    "one-approver", Provider: access.ProviderIAMGroup, Target: access.Target{Group: adminsGroup},
		Justification: "Rotate the production database credentials",
		RequestedAt:   now.Add(-time.Hour), StartAt: now.Add(-time.Hour), EndAt: end,
		ApprovalDeadline: now.Add(-30 * time.Minute),
		Mode:             access.ModeManual, Approvers: []string{"carol@example.com"}, Quorum: 1,
		Approvals: []access.Approval{{Approver: "carol@example.com", Decision: access.DecisionApprove, Comment: "ok", At: now.Add(-time.Hour)}},
		Status:    access.StatusActive, Version: 3,
		CreatedAt: now.Add(-time.Hour), UpdatedAt: now.Add(-time.Hour),
	}
	rec := access.AuditRecord{RequestID: id, Seq: 3, At: r.UpdatedAt, Actor: app.ActorGrant, Action: access.EventActivate,
		From: access.StatusApproved, To: access.StatusActive, Detail: "access verified in IAM"}
	rec.Hash = rec.ComputeHash()
	r.AuditHead = rec.Hash
	return r, rec
}

// loadBackground writes n ACTIVE requests that are not due. byStore uses
// Store.Create (one transaction each, with its audit record); otherwise the
// request items are built by the store itself (captured Creates) and
// written with BatchWriteItem, 25 at a time.
func loadBackground(ctx context.Context, w *world, n int, now time.Time, byStore bool) error {
	mk := func(i int) (access.Request, access.AuditRecord) {
		return activeRequest(fmt.Sprintf("01BG%022d", i), "alice", now, now.Add(time.Hour+time.Duration(i)*time.Second))
	}
	if byStore {
		store := dynamo.New(dynamodb.NewFromConfig(w.tracked(nil, true)), tables)
		return parallel(ctx, 4, n, func(i int) error {
			r, rec := mk(i)
			return store.Create(ctx, r, rec)
		})
	}
	var puts []types.WriteRequest
	capture := captureCreates(w, func(it types.TransactWriteItem) {
		if it.Put != nil && aws.ToString(it.Put.TableName) == stateTable {
			puts = append(puts, types.WriteRequest{PutRequest: &types.PutRequest{Item: it.Put.Item}})
		}
	})
	for i := range n {
		r, rec := mk(i)
		if err := capture.Create(ctx, r, rec); err != nil {
			return err
		}
	}
	client := dynamodb.NewFromConfig(w.raw)
	batches := (len(puts) + 24) / 25
	return parallel(ctx, 4, batches, func(b int) error {
		pending := map[string][]types.WriteRequest{stateTable: puts[b*25 : min(len(puts), (b+1)*25)]}
		for attempt := 0; len(pending[stateTable]) > 0; attempt++ {
			if attempt > 10 {
				return fmt.Errorf("batch %d: items left unprocessed", b)
			}
			out, err := client.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: pending})
			if err != nil {
				return err
			}
			pending = out.UnprocessedItems
		}
		return nil
	})
}

// addDue creates dueCount ACTIVE requests past their end, each granted for
// real (a distinct IAM user in the group, held in the ledger).
func addDue(ctx context.Context, w *world, rep int, now time.Time) error {
	store := dynamo.New(dynamodb.NewFromConfig(w.tracked(nil, true)), tables)
	ic := iam.NewFromConfig(w.raw)
	return parallel(ctx, 4, dueCount, func(i int) error {
		user := fmt.Sprintf("due%02d", i)
		if rep == 0 {
			if _, err := ic.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(user)}); err != nil {
				return err
			}
		}
		r, rec := activeRequest(fmt.Sprintf("01DUE%d%020d", rep, i), user, now, now.Add(-time.Minute-time.Duration(i)*time.Second))
		if err := store.Create(ctx, r, rec); err != nil {
			return err
		}
		if _, err := ic.AddUserToGroup(ctx, &iam.AddUserToGroupInput{GroupName: aws.String(adminsGroup), UserName: aws.String(user)}); err != nil {
			return err
		}
		// As app.hold does: a first hold names the entry's generation.
		l, err := store.Ledger(ctx, r.Grant().LedgerKey())
		if err != nil {
			return err
		}
		_, err = store.HoldGrant(ctx, r.Grant().LedgerKey(), r.ID, false, l.Gen)
		return err
	})
}

func sweeperScaling(ctx context.Context, w *world, sizes []int, reps int, logf func(string, ...any)) (*sweepResult, error) {
	res := &sweepResult{Reps: reps}
	cat, _ := benchCatalog()
	for _, n := range sizes {
		if err := w.reset(ctx, []string{"alice"}); err != nil {
			return nil, err
		}
		if _, err := iam.NewFromConfig(w.raw).AddUserToGroup(ctx, &iam.AddUserToGroupInput{GroupName: aws.String(adminsGroup), UserName: aws.String("alice")}); err != nil {
			return nil, err
		}
		now := time.Now().UTC().Truncate(time.Second)
		sz := &sweepSize{Background: n, LoadMethod: "BatchWriteItem of items built by Store.Create (captured)"}
		byStore := n <= 1000
		if byStore {
			sz.LoadMethod = "Store.Create, 4 in parallel"
		}
		t0 := time.Now()
		if err := loadBackground(ctx, w, n, now, byStore); err != nil {
			return nil, fmt.Errorf("load %d: %w", n, err)
		}
		sz.Load = time.Since(t0)
		logf("sweeper: loaded %d ACTIVE requests in %s (%s)", n, sz.Load.Round(time.Millisecond), sz.LoadMethod)

		tr := newTracker()
		var (
			cur      *sweepRep
			mu       sync.Mutex
			problems []string
		)
		tr.Observe = func(op string, in, _ any, cost bench.OpStats, took time.Duration) {
			q, ok := in.(*dynamodb.QueryInput)
			if !ok || cur == nil {
				return
			}
			if aws.ToString(q.IndexName) != dynamo.IndexDue {
				mu.Lock()
				problems = append(problems, fmt.Sprintf("a query of index %q (the sweeper only queries %q)", aws.ToString(q.IndexName), dynamo.IndexDue))
				mu.Unlock()
				return
			}
			if msg := dueQueryProblem(q); msg != "" {
				mu.Lock()
				problems = append(problems, msg)
				mu.Unlock()
			}
			s := &cur.Due
			if isDriftQuery(q, now) {
				s = &cur.Drift
			}
			s.Calls++
			s.Items += cost.Items
			s.Scanned += cost.Scanned
			s.Read += cost.Read
			s.Took += took
		}
		// Any Scan is refused and counted: due work must come from the index.
		var scans atomic.Int64
		inj := faults.New(faults.WithScanDetector(func(string) { scans.Add(1) }))
		cfg := w.tracked(tr, true)
		inj.Install(&cfg)
		clk := &clock{}
		clk.Set(now)
		svc, err := w.service(config.Sweep, cfg, clk.Now, cat, tr)
		if err != nil {
			return nil, err
		}
		for rep := range reps {
			if err := addDue(ctx, w, rep, now); err != nil {
				return nil, fmt.Errorf("due items: %w", err)
			}
			tr.Reset()
			cur = &sweepRep{}
			t0 := time.Now()
			rpt, err := svc.Sweep(ctx)
			cur.Wall = time.Since(t0)
			if err != nil {
				return nil, err
			}
			if k := scans.Load(); k > 0 {
				return nil, fmt.Errorf("sweep over %d made %d DynamoDB Scan calls: due work must come from the %s index", n, k, dynamo.IndexDue)
			}
			if len(problems) > 0 {
				return nil, fmt.Errorf("sweep over %d: %s", n, strings.Join(problems, "; "))
			}
			if rpt.Expired != dueCount {
				return nil, fmt.Errorf("sweep over %d expired %d of %d due grants (%+v)", n, rpt.Expired, dueCount, rpt)
			}
			cur.Report = rpt
			cur.Snap = tr.Snapshot()
			cur.ReadUnits = cur.Snap.Total("DynamoDB").Read
			sz.Reps = append(sz.Reps, *cur)
		}
		res.Sizes = append(res.Sizes, sz)
		logf("sweeper: %d background, %d sweeps", n, reps)
	}
	return res, nil
}

// dueQueryProblem says what is wrong with a due-index query, if anything:
// it must bound the sort key (dueAt) in its key condition, so that it reads
// only due items, and carry no FilterExpression, which would read and bill
// items only to throw them away.
func dueQueryProblem(q *dynamodb.QueryInput) string {
	if q.FilterExpression != nil {
		return fmt.Sprintf("a due-index query with a FilterExpression (%s): it reads and bills what it filters out", aws.ToString(q.FilterExpression))
	}
	key := aws.ToString(q.KeyConditionExpression)
	for placeholder, name := range q.ExpressionAttributeNames {
		key = strings.ReplaceAll(key, placeholder, name)
	}
	if !strings.Contains(key, dynamo.AttrDueAt) {
		return fmt.Sprintf("a due-index query without a %s key condition (%q): it reads every item of the status", dynamo.AttrDueAt, key)
	}
	return ""
}

// isDriftQuery tells the drift batch's query (every ACTIVE grant, due up to
// a century ahead) from the due-work queries (due up to now).
func isDriftQuery(q *dynamodb.QueryInput, now time.Time) bool {
	for _, v := range q.ExpressionAttributeValues {
		s, ok := v.(*types.AttributeValueMemberS)
		if !ok || len(s.Value) < 4 {
			continue
		}
		if y, err := strconv.Atoi(s.Value[:4]); err == nil && strings.Contains(s.Value, "T") && y > now.Year()+10 {
			return true
		}
	}
	return false
}
