package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"

	"github.com/jitaccess/jit/infra/bench"
	"github.com/jitaccess/jit/internal/access"
	"github.com/jitaccess/jit/internal/api"
	"github.com/jitaccess/jit/internal/app"
	"github.com/jitaccess/jit/internal/config"
	"github.com/jitaccess/jit/internal/dynamo"
	"github.com/jitaccess/jit/internal/email/mototest"
)

// invocation is one Lambda invocation of a lifecycle.
type invocation struct {
	Fn  string
	Dur time.Duration
}

// lifecycleRun is part 2 for one approval mode.
type lifecycleRun struct {
	Mode, Flow   string
	Snap         bench.Snapshot
	Invocations  []invocation
	Fired        int // scheduler invocations
	AuditRecords int
	Final        access.Status
	Usage        bench.Usage
	Err          string
	// RequestReads counts the GetItem calls of request items (not ledger).
	RequestReads int
}

// Per-mode figures that follow from the snapshot.
func (r *lifecycleRun) transactions() int { return r.Snap.Op("DynamoDB.TransactWriteItems").Calls }

func (r *lifecycleRun) otherWrites() int {
	n := 0
	for _, op := range []string{"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"} {
		n += r.Snap.Op("DynamoDB." + op).Calls
	}
	return n
}

func (r *lifecycleRun) reads() int {
	n := 0
	for _, op := range []string{"GetItem", "Query", "BatchGetItem", "Scan"} {
		n += r.Snap.Op("DynamoDB." + op).Calls
	}
	return n
}

func (r *lifecycleRun) writeUnits() float64 {
	t := 0.0
	for _, op := range []string{"TransactWriteItems", "PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"} {
		t += r.Snap.Op("DynamoDB." + op).Write
	}
	return t
}

func (r *lifecycleRun) indexWriteUnits() float64 { return r.Snap.Total("DynamoDB").IndexWrite }
func (r *lifecycleRun) readUnits() float64       { return r.Snap.Total("DynamoDB").Read }

// minWriteUnits is the design's floor: one transaction of the state item and
// its audit record (both under 1 KB, 2 units each as transactional writes)
// per audit record, index propagation not counted.
func (r *lifecycleRun) minWriteUnits() float64 { return float64(4 * r.AuditRecords) }

// lifecycleEnv drives the functions' handlers in process, as Lambda would.
type lifecycleEnv struct {
	w       *world
	tr      *bench.Tracker
	clk     *clock
	intake  api.EventHandler
	approve api.EventHandler
	grant   func(context.Context, json.RawMessage) error
	revoke  func(context.Context, json.RawMessage) error
	store   *dynamo.Store     // untracked, for checks
	sched   *scheduler.Client // untracked: plays the Scheduler service
	run     *lifecycleRun
}

func newLifecycleEnv(ctx context.Context, w *world, tr *bench.Tracker, clk *clock) (*lifecycleEnv, error) {
	cat, _ := benchCatalog()
	cfg := w.tracked(tr, false)
	e := &lifecycleEnv{w: w, tr: tr, clk: clk,
		store: dynamo.New(dynamodb.NewFromConfig(w.raw), tables),
		sched: scheduler.NewFromConfig(w.raw)}
	svc := map[string]*app.Service{}
	for _, fn := range config.Functions {
		s, err := w.service(fn, cfg, clk.Now, cat, tr)
		if err != nil {
			return nil, err
		}
		svc[fn] = s
	}
	e.intake = api.Lambda(api.Intake(svc[config.Intake], api.Options{Log: quiet}))
	e.approve = api.Lambda(api.Approvals(svc[config.Approve], api.Options{Log: quiet}))
	e.grant = api.GrantHandler(svc[config.Grant], quiet)
	e.revoke = api.RevokeHandler(svc[config.Revoke], quiet)
	return e, nil
}

func claimsOf(r *http.Request) map[string]string {
	if u := r.Header.Get("X-Bench-User"); u != "" {
		return map[string]string{"email": u}
	}
	return nil
}

// call invokes an HTTP function with the event API Gateway would send.
func (e *lifecycleEnv) call(ctx context.Context, fn string, h api.EventHandler, method, path, body, user string, want int) (events.APIGatewayV2HTTPResponse, error) {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if strings.HasPrefix(body, "{") {
		req.Header.Set("Content-Type", "application/json")
	} else if body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if user != "" {
		req.Header.Set("X-Bench-User", user)
	}
	ev, err := api.EventFromHTTP(req, claimsOf)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	t0 := time.Now()
	resp, err := h(ctx, ev)
	e.run.Invocations = append(e.run.Invocations, invocation{Fn: fn, Dur: time.Since(t0)})
	if err == nil && resp.StatusCode != want {
		err = fmt.Errorf("%s %s: status %d, want %d: %.300s", method, path, resp.StatusCode, want, resp.Body)
	}
	return resp, err
}

// fire plays EventBridge Scheduler: the schedule must exist; it is deleted
// (ActionAfterCompletion DELETE) and its target invoked with its payload.
func (e *lifecycleEnv) fire(ctx context.Context, action, id string) error {
	name := action + "-" + id
	out, err := e.sched.GetSchedule(ctx, &scheduler.GetScheduleInput{Name: aws.String(name), GroupName: aws.String(scheduleGroup)})
	if err != nil {
		return fmt.Errorf("schedule %s: %w", name, err)
	}
	if _, err := e.sched.DeleteSchedule(ctx, &scheduler.DeleteScheduleInput{Name: aws.String(name), GroupName: aws.String(scheduleGroup)}); err != nil {
		return err
	}
	payload := json.RawMessage(aws.ToString(out.Target.Input))
	h, fn := e.revoke, config.Revoke
	if action == app.ActionGrant {
		h, fn = e.grant, config.Grant
	}
	e.run.Fired++
	t0 := time.Now()
	err = h(ctx, payload)
	e.run.Invocations = append(e.run.Invocations, invocation{Fn: fn, Dur: time.Since(t0)})
	return err
}

func (e *lifecycleEnv) submit(ctx context.Context, body string) (access.Request, error) {
	resp, err := e.call(ctx, config.Intake, e.intake, http.MethodPost, "/requests", body, "alice@example.com", http.StatusCreated)
	if err != nil {
		return access.Request{}, err
	}
	var v struct{ ID string }
	if err := json.Unmarshal([]byte(resp.Body), &v); err != nil || v.ID == "" {
		return access.Request{}, fmt.Errorf("create: no id in %.200s", resp.Body)
	}
	return e.store.Get(ctx, v.ID)
}

var approvalLink = regexp.MustCompile(`/approvals/([A-Za-z0-9_.~-]+)`)

// approveByLink reads approver's latest approval email in moto, opens the
// page (GET) and presses Approve (POST), through the approve function.
func (e *lifecycleEnv) approveByLink(ctx context.Context, approver string) error {
	sent, err := mototest.SentMessages(e.w.srv.URL)
	if err != nil {
		return err
	}
	token := ""
	for _, m := range sent {
		if len(m.To) == 1 && m.To[0] == approver {
			if mm := approvalLink.FindStringSubmatch(m.Body); mm != nil {
				token = mm[1]
			}
		}
	}
	if token == "" {
		return fmt.Errorf("no approval link for %s", approver)
	}
	if _, err := e.call(ctx, config.Approve, e.approve, http.MethodGet, "/approvals/"+token, "", "", http.StatusOK); err != nil {
		return err
	}
	_, err = e.call(ctx, config.Approve, e.approve, http.MethodPost, "/approvals/"+token, "decision=approve&comment=ok", "", http.StatusOK)
	return err
}

func (e *lifecycleEnv) expect(ctx context.Context, id string, want access.Status) error {
	r, err := e.store.Get(ctx, id)
	if err != nil {
		return err
	}
	if r.Status != want {
		return fmt.Errorf("request %s is %s, want %s (%s)", id, r.Status, want, r.LastError)
	}
	return nil
}

// expire moves the clock past the end and fires the revoke schedule.
func (e *lifecycleEnv) expire(ctx context.Context, r access.Request) error {
	e.clk.Set(r.EndAt.Add(time.Second))
	if err := e.fire(ctx, app.ActionRevoke, r.ID); err != nil {
		return err
	}
	return e.expect(ctx, r.ID, access.StatusExpired)
}

const justification = `"justification":"Rotate the production database credentials"`

type lifecycleMode struct {
	name, flow string
	run        func(ctx context.Context, e *lifecycleEnv) (string, error)
}

var lifecycleModes = []lifecycleMode{
	{"one approver", "intake POST /requests; approver opens the email link (GET) and approves (POST): activation in the approve function; revoke schedule fires at the end",
		func(ctx context.Context, e *lifecycleEnv) (string, error) {
			r, err := e.submit(ctx, `{"roleId":"one-approver","duration":"1h",`+justification+`}`)
			if err != nil {
				return "", err
			}
			if err := e.approveByLink(ctx, "carol@example.com"); err != nil {
				return r.ID, err
			}
			if err := e.expect(ctx, r.ID, access.StatusActive); err != nil {
				return r.ID, err
			}
			return r.ID, e.expire(ctx, r)
		}},
	{"quorum of two", "as one approver, with two approvers each opening and approving their link",
		func(ctx context.Context, e *lifecycleEnv) (string, error) {
			r, err := e.submit(ctx, `{"roleId":"quorum","duration":"1h",`+justification+`}`)
			if err != nil {
				return "", err
			}
			for _, a := range []string{"carol@example.com", "dave@example.com"} {
				if err := e.approveByLink(ctx, a); err != nil {
					return r.ID, err
				}
			}
			if err := e.expect(ctx, r.ID, access.StatusActive); err != nil {
				return r.ID, err
			}
			return r.ID, e.expire(ctx, r)
		}},
	{"auto-approve", "intake POST /requests approves by policy and activates; revoke schedule fires at the end",
		func(ctx context.Context, e *lifecycleEnv) (string, error) {
			r, err := e.submit(ctx, `{"roleId":"auto","duration":"1h",`+justification+`}`)
			if err != nil {
				return "", err
			}
			if err := e.expect(ctx, r.ID, access.StatusActive); err != nil {
				return r.ID, err
			}
			return r.ID, e.expire(ctx, r)
		}},
	{"break-glass", "intake POST /requests skips approval, tells approvers and security contacts, activates; revoke schedule fires at the end",
		func(ctx context.Context, e *lifecycleEnv) (string, error) {
			r, err := e.submit(ctx, `{"roleId":"glass","duration":"1h","justification":"Production is down and nobody can approve right now"}`)
			if err != nil {
				return "", err
			}
			if err := e.expect(ctx, r.ID, access.StatusActive); err != nil {
				return r.ID, err
			}
			return r.ID, e.expire(ctx, r)
		}},
	{"future start", "one approver, start two hours ahead: approval schedules the grant; grant schedule fires at the start, revoke schedule at the end",
		func(ctx context.Context, e *lifecycleEnv) (string, error) {
			start := e.clk.Now().Add(2 * time.Hour).Truncate(time.Second)
			r, err := e.submit(ctx, `{"roleId":"one-approver","duration":"1h","startAt":"`+start.Format(time.RFC3339)+`",`+justification+`}`)
			if err != nil {
				return "", err
			}
			if err := e.approveByLink(ctx, "carol@example.com"); err != nil {
				return r.ID, err
			}
			if err := e.expect(ctx, r.ID, access.StatusApproved); err != nil {
				return r.ID, err
			}
			e.clk.Set(start.Add(time.Second))
			if err := e.fire(ctx, app.ActionGrant, r.ID); err != nil {
				return r.ID, err
			}
			if err := e.expect(ctx, r.ID, access.StatusActive); err != nil {
				return r.ID, err
			}
			r, err = e.store.Get(ctx, r.ID)
			if err != nil {
				return r.ID, err
			}
			return r.ID, e.expire(ctx, r)
		}},
	{"early revoke", "auto-approve, then the requester's POST /requests/{id}/revoke (\"I'm done\") after 10 minutes; the revoke schedule is deleted, never fires",
		func(ctx context.Context, e *lifecycleEnv) (string, error) {
			r, err := e.submit(ctx, `{"roleId":"auto","duration":"1h",`+justification+`}`)
			if err != nil {
				return "", err
			}
			e.clk.Advance(10 * time.Minute)
			if _, err := e.call(ctx, config.Intake, e.intake, http.MethodPost, "/requests/"+r.ID+"/revoke", `{"comment":"done"}`, "alice@example.com", http.StatusOK); err != nil {
				return r.ID, err
			}
			if err := e.expect(ctx, r.ID, access.StatusRevoked); err != nil {
				return r.ID, err
			}
			_, err = e.sched.GetSchedule(ctx, &scheduler.GetScheduleInput{Name: aws.String("revoke-" + r.ID), GroupName: aws.String(scheduleGroup)})
			if err == nil {
				return r.ID, errors.New("the revoke schedule is still there after an early revoke")
			}
			return r.ID, nil
		}},
}

// traceCall prints one DynamoDB call (JITBENCH_TRACE=1), to see where the
// calls of a lifecycle come from.
func traceCall(op string, in, _ any, cost bench.OpStats, took time.Duration) {
	what := ""
	switch in := in.(type) {
	case *dynamodb.GetItemInput:
		what = fmt.Sprint(in.Key["pk"])
	case *dynamodb.UpdateItemInput:
		what = fmt.Sprint(in.Key["pk"], " ", aws.ToString(in.UpdateExpression))
	case *dynamodb.TransactWriteItemsInput:
		what = fmt.Sprint(len(in.TransactItems), " items")
	}
	fmt.Fprintf(os.Stderr, "trace %s %s W=%v R=%v items=%d %s\n", op, what, cost.Write, cost.Read, cost.Items, took.Round(time.Microsecond))
}

type lifecycleResult struct {
	Runs     []*lifecycleRun
	Reported bool // whether moto reported any capacity
}

func lifecycles(ctx context.Context, w *world, logf func(string, ...any)) (*lifecycleResult, error) {
	_, users := benchCatalog()
	if err := w.reset(ctx, users[:5]); err != nil {
		return nil, err
	}
	tr := newTracker()
	trace := os.Getenv("JITBENCH_TRACE") != ""
	var e *lifecycleEnv
	tr.Observe = func(op string, in, out any, cost bench.OpStats, took time.Duration) {
		if trace {
			traceCall(op, in, out, cost, took)
		}
		if g, ok := in.(*dynamodb.GetItemInput); ok && e != nil && e.run != nil {
			if pk, ok := g.Key[dynamo.AttrPK].(*types.AttributeValueMemberS); ok && strings.HasPrefix(pk.Value, "REQ#") {
				e.run.RequestReads++ // lifecycles run one at a time
			}
		}
	}
	clk := &clock{}
	clk.Set(time.Now().Truncate(time.Second))
	var err error
	e, err = newLifecycleEnv(ctx, w, tr, clk)
	if err != nil {
		return nil, err
	}
	// Warm containers: the signing key is read once per container, and
	// moto loads each service on first use.
	for _, m := range []lifecycleMode{lifecycleModes[0], lifecycleModes[2]} {
		e.run = &lifecycleRun{}
		if _, err := m.run(ctx, e); err != nil {
			return nil, fmt.Errorf("warm-up %s: %w", m.name, err)
		}
		clk.Advance(24 * time.Hour)
	}
	res := &lifecycleResult{}
	for _, m := range lifecycleModes {
		tr.Reset()
		e.run = &lifecycleRun{Mode: m.name, Flow: m.flow}
		id, err := m.run(ctx, e)
		run := e.run
		run.Snap = tr.Snapshot()
		if err != nil {
			run.Err = err.Error()
		}
		if id != "" {
			if recs, aerr := e.store.Audit(ctx, id); aerr == nil {
				run.AuditRecords = len(recs)
			}
			if r, gerr := e.store.Get(ctx, id); gerr == nil {
				run.Final = r.Status
			}
		}
		if run.Snap.ReportedTotal() > 0 {
			res.Reported = true
		}
		run.Usage = bench.Usage{
			WriteUnits: run.writeUnits(), ReadUnits: run.readUnits(),
			SchedulerInvocations: run.Fired,
			Emails:               run.Snap.Op("SESv2.SendEmail").Calls,
			LambdaInvocations:    len(run.Invocations),
			LambdaMemoryMB:       128,
			SecretsCalls:         run.Snap.Calls("Secrets Manager"),
		}
		for _, inv := range run.Invocations {
			run.Usage.LambdaBilledMs += bench.BilledMs(float64(inv.Dur) / float64(time.Millisecond))
		}
		res.Runs = append(res.Runs, run)
		clk.Advance(24 * time.Hour)
	}
	logf("lifecycles: %d modes", len(res.Runs))
	return res, nil
}
