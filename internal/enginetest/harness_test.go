package enginetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	schedtypes "github.com/aws/aws-sdk-go-v2/service/scheduler/types"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/stretchr/testify/require"

	"github.com/jitaccess/jit/internal/access"
	"github.com/jitaccess/jit/internal/api"
	"github.com/jitaccess/jit/internal/app"
	"github.com/jitaccess/jit/internal/app/apptest"
	"github.com/jitaccess/jit/internal/awstest"
	"github.com/jitaccess/jit/internal/catalog"
	"github.com/jitaccess/jit/internal/config"
	"github.com/jitaccess/jit/internal/dynamo"
	"github.com/jitaccess/jit/internal/email/mototest"
	"github.com/jitaccess/jit/internal/faults"
	"github.com/jitaccess/jit/internal/iamgrant"
	"github.com/jitaccess/jit/internal/schedule"
	"github.com/jitaccess/jit/internal/wire"
)

func TestMain(m *testing.M) { awstest.Main(m) }

// The deployment the tests build, in moto's account.
const (
	stateTable = "jit-state"
	auditTable = "jit-audit"
	group      = "jit"
	sender     = "jit@example.com"
	baseURL    = "https://jit.example.com"
	account    = awstest.AccountID
	roleARN    = "arn:aws:iam::" + account + ":role/jit-scheduler"
	dlqARN     = "arn:aws:sqs:us-east-1:" + account + ":jit-dlq"
	grantARN   = "arn:aws:lambda:us-east-1:" + account + ":function:jit-grant"
	revokeARN  = "arn:aws:lambda:us-east-1:" + account + ":function:jit-revoke"
	readPolicy = "arn:aws:iam::" + account + ":policy/jit-read"
	opsGroup   = "jit-ops"
	admin      = "admin@example.com"
)

// Identities of the test catalog and the IAM principals they map to.
const (
	alice = "alice@example.com" // user/alice
	bob   = "bob@example.com"   // user/bob
	carol = "carol@example.com" // user/carol, a lead
	erin  = "erin@example.com"  // role/erin-ops
)

var (
	users = []string{"alice", "bob", "carol", "dave"}
	roles = []string{"erin-ops"}
)

// t0 is where every test clock starts; moto does not look at times.
var t0 = time.Date(2030, 1, 2, 9, 0, 0, 0, time.UTC)

// testCatalog is the policy the tests run under: one auto-approved role per
// provider, and a manual role for the approval-deadline tests.
const testCatalog = `version: 1
admins: [admin@example.com]
securityContacts: [secops@example.com]
groups:
  platform: [alice@example.com, bob@example.com]
  leads: [carol@example.com, dave@example.com]
principals:
  alice@example.com: user/alice
  bob@example.com: user/bob
  carol@example.com: user/carol
  dave@example.com: user/dave
  erin@example.com: role/erin-ops
  admin@example.com: user/admin
roles:
  - id: ops-group
    description: Membership of the jit-ops IAM group
    provider: iam-group
    target: {group: jit-ops}
    requesters: [group:platform, group:leads]
    approvers: [group:leads]
    duration: {default: 1h, max: 4h}
    ticket: {required: false, pattern: 'OPS-[0-9]+'}
    justification: {minLength: 5}
    autoApprove: true
  - id: read-policy
    description: The jit-read managed policy
    provider: iam-policy
    target: {policyArn: arn:aws:iam::123456789012:policy/jit-read}
    requesters: [group:platform, erin@example.com]
    approvers: [group:leads]
    duration: {default: 1h, max: 4h}
    ticket: {required: false, pattern: 'OPS-[0-9]+'}
    justification: {minLength: 5}
    autoApprove: true
  - id: reports-timeboxed
    description: Read the reports bucket until the end of the grant
    provider: iam-timeboxed-policy
    target:
      policy:
        Version: "2012-10-17"
        Statement:
          - Sid: ListReports
            Effect: Allow
            Action: s3:ListBucket
            Resource: arn:aws:s3:::example-reports
          - Sid: ReadReports
            Effect: Allow
            Action: [s3:GetObject, s3:GetObjectVersion]
            Resource: arn:aws:s3:::example-reports/*
            Condition:
              Bool: {'aws:SecureTransport': "true"}
    requesters: [group:platform, erin@example.com]
    approvers: [group:leads]
    duration: {default: 1h, max: 4h}
    ticket: {required: false, pattern: 'OPS-[0-9]+'}
    justification: {minLength: 5}
    autoApprove: true
  - id: ops-manual
    description: Membership of jit-ops, approved by a lead
    provider: iam-group
    target: {group: jit-ops}
    requesters: [group:platform]
    approvers: [carol@example.com]
    duration: {default: 1h, max: 4h}
    approvalDeadline: 1h
    justification: {minLength: 5}
`

const trustPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`

const readPolicyDocument = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}`

// fastRetryer is the SDK's standard retryer with few attempts, a 1ms
// backoff (throttling would otherwise wait a second) and no retry quota, so
// injected faults are retried quickly and deterministically.
var fastRetryer = faults.FastRetryer(3, time.Millisecond)

// ---------------------------------------------------------------------------
// SDK fault injection, through internal/faults: a thin layer that keeps the
// tests' own vocabulary.

// faultKind is what an injected fault looks like to the SDK and the app.
type faultKind = faults.Kind

const (
	// faultFail is a server error the SDK does not retry: the app's own
	// retry budget has to deal with it.
	faultFail = faults.Fail
	// faultThrottle is a Throttling error, which the SDK retryer retries.
	faultThrottle = faults.Throttle
	// faultTimeout is an HTTP timeout before the request reached the service.
	faultTimeout = faults.Timeout
	// faultLostResponse lets the call through, then loses the response as a
	// timeout: the service applied the change, the caller does not know.
	faultLostResponse = faults.LostResponse
)

// fault fails attempts of one operation.
type fault struct {
	op    string
	match func(params any) bool // nil: every call of op
	kind  faultKind
	skip  int // matching calls to let through before failing
	times int // attempts to fail after that; < 0 means every one

	installed *faults.Fault
}

// injector is the faults.Injector on every client built from the system's
// aws.Config: it counts calls per operation (and per DynamoDB index), fails
// the test on any DynamoDB Scan, and injects faults.
type injector struct{ *faults.Injector }

func newInjector(t testing.TB) *injector {
	return &injector{faults.New(faults.WithScanDetector(func(service string) {
		t.Errorf("the system called DynamoDB Scan (%s): due work must be found through the index", service)
	}))}
}

// add installs a fault; it stays until clear.
func (in *injector) add(f *fault) *fault {
	f.installed = in.Add(&faults.Fault{Op: f.op, Match: f.match, Kind: f.kind, Skip: f.skip, Times: f.times})
	return f
}

func (in *injector) clear()                { in.Clear() }
func (in *injector) count(op string) int   { return in.Calls(op) }
func (in *injector) resetCounts()          { in.ResetCounts() }
func (in *injector) timings() string       { return in.Timings() }
func (in *injector) install(c *aws.Config) { in.Install(c) }

func (f *fault) hitCount(*injector) int {
	if f.installed == nil {
		return 0
	}
	return f.installed.Hits()
}

// ---------------------------------------------------------------------------
// Crash points: decorators of the app ports that panic after (or before) a
// step, the way a Lambda dies mid-invocation.

type crashPoint string

const (
	crashAfterSchedule crashPoint = "after revoke schedule created"
	crashAfterHold     crashPoint = "after ledger hold"
	crashAfterGrant    crashPoint = "after provider grant"
	crashBeforeActive  crashPoint = "before ACTIVE state write"
)

var crashPoints = []crashPoint{crashAfterSchedule, crashAfterHold, crashAfterGrant, crashBeforeActive}

// Crash points of the revocation path.
const (
	crashAfterRevoke   crashPoint = "after provider revoke"
	crashBeforeExpired crashPoint = "before EXPIRED state write"
)

type crash struct{ at crashPoint }

// crasher is armed with one crash point and fires once.
type crasher struct{ armed atomic.Value }

func (c *crasher) arm(p crashPoint) { c.armed.Store(p) }

func (c *crasher) trip(p crashPoint) {
	if c.armed.CompareAndSwap(p, crashPoint("")) {
		panic(crash{p})
	}
}

type crashScheduler struct {
	app.Scheduler
	c *crasher
}

func (s crashScheduler) Schedule(ctx context.Context, action, id string, at time.Time) error {
	err := s.Scheduler.Schedule(ctx, action, id, at)
	if err == nil && action == app.ActionRevoke {
		s.c.trip(crashAfterSchedule)
	}
	return err
}

type crashStore struct {
	app.Store
	c *crasher
}

func (s crashStore) HoldGrant(ctx context.Context, key, id string, pre bool, gen int) (access.Ledger, error) {
	l, err := s.Store.HoldGrant(ctx, key, id, pre, gen)
	if err == nil {
		s.c.trip(crashAfterHold)
	}
	return l, err
}

func (s crashStore) Transition(ctx context.Context, prev, next access.Request, rec access.AuditRecord) error {
	if next.Status == access.StatusActive && prev.Status == access.StatusApproved {
		s.c.trip(crashBeforeActive)
	}
	if next.Status == access.StatusExpired {
		s.c.trip(crashBeforeExpired)
	}
	return s.Store.Transition(ctx, prev, next, rec)
}

type crashProvider struct {
	app.Provider
	c *crasher
}

func (p crashProvider) Grant(ctx context.Context, g access.Grant) error {
	err := p.Provider.Grant(ctx, g)
	if err == nil {
		p.c.trip(crashAfterGrant)
	}
	return err
}

func (p crashProvider) Revoke(ctx context.Context, g access.Grant) error {
	err := p.Provider.Revoke(ctx, g)
	if err == nil {
		p.c.trip(crashAfterRevoke)
	}
	return err
}

// survive runs fn and reports the crash point it died at, if any.
func survive(fn func()) (died crashPoint) {
	defer func() {
		if r := recover(); r != nil {
			c, ok := r.(crash)
			if !ok {
				panic(r)
			}
			died = c.at
		}
	}()
	fn()
	return ""
}

// ---------------------------------------------------------------------------
// Metrics

type recorder struct {
	mu        sync.Mutex
	counts    map[string]float64
	durations map[string][]time.Duration
}

func (r *recorder) Count(_ context.Context, name string, n float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.counts[name] += n
}

func (r *recorder) Duration(_ context.Context, name string, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.durations == nil {
		r.durations = map[string][]time.Duration{}
	}
	r.durations[name] = append(r.durations[name], d)
}

func (r *recorder) durationsOf(name string) []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Duration(nil), r.durations[name]...)
}

func (r *recorder) get(name string) float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts[name]
}

// ---------------------------------------------------------------------------
// The environment

// env is one system under test on a freshly reset moto.
type env struct {
	t      *testing.T
	ctx    context.Context
	srv    *awstest.Server
	clock  *apptest.Clock
	faults *injector
	crash  *crasher
	svc    *app.Service
	log    *slog.Logger
	m      *recorder

	// Clients and a store on a separate, fault-free config: what the test
	// itself reads and changes behind the system's back.
	iam   *iam.Client
	sched *scheduler.Client
	store *dynamo.Store

	mu  sync.Mutex
	ids []string // every request id the system created, in order
	// preExisting is access the principals had before any request.
	preExisting map[string]bool

	grant, revoke func(context.Context, json.RawMessage) error
	sweep         func(context.Context, json.RawMessage) (app.SweepReport, error)
}

type envOption func(*envConfig)

type envConfig struct {
	catalog string
}

func withCatalog(yaml string) envOption { return func(c *envConfig) { c.catalog = yaml } }

func testLogger() *slog.Logger {
	if os.Getenv("ENGINETEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// newEnv resets moto, creates the tables, the schedule group, the SES
// identity and the IAM users, roles, group and policy, and builds the
// system through wire.Service with a test clock and fault injection.
func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	ec := envConfig{catalog: testCatalog}
	for _, o := range opts {
		o(&ec)
	}
	srv := awstest.Require(t)
	ctx := awstest.Context(t)

	adminCfg := srv.Config()
	adminCfg.Retryer = fastRetryer
	e := &env{
		t: t, ctx: ctx, srv: srv,
		clock:       apptest.NewClock(t0),
		faults:      newInjector(t),
		crash:       &crasher{},
		log:         testLogger(),
		m:           &recorder{counts: map[string]float64{}},
		iam:         iam.NewFromConfig(adminCfg),
		sched:       scheduler.NewFromConfig(adminCfg),
		preExisting: map[string]bool{},
	}
	e.crash.arm("")
	tables := dynamo.Tables{State: stateTable, Audit: auditTable}
	db := dynamodb.NewFromConfig(adminCfg)
	require.NoError(t, dynamo.CreateTables(ctx, db, tables))
	e.store = dynamo.New(db, tables)
	require.NoError(t, schedule.EnsureGroup(ctx, e.sched, group))
	_, err := sesv2.NewFromConfig(adminCfg).CreateEmailIdentity(ctx, &sesv2.CreateEmailIdentityInput{EmailIdentity: aws.String(sender)})
	require.NoError(t, err)
	for _, u := range users {
		_, err := e.iam.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(u)})
		require.NoError(t, err)
	}
	for _, r := range roles {
		_, err := e.iam.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(r), AssumeRolePolicyDocument: aws.String(trustPolicy)})
		require.NoError(t, err)
	}
	_, err = e.iam.CreateGroup(ctx, &iam.CreateGroupInput{GroupName: aws.String(opsGroup)})
	require.NoError(t, err)
	pol, err := e.iam.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("jit-read"), PolicyDocument: aws.String(readPolicyDocument)})
	require.NoError(t, err)
	require.Equal(t, readPolicy, aws.ToString(pol.Policy.Arn))

	cat, err := catalog.Parse("enginetest-catalog.yaml", []byte(ec.catalog))
	require.NoError(t, err)

	sysCfg := srv.Config()
	sysCfg.Retryer = fastRetryer
	e.faults.install(&sysCfg)
	svc, err := wire.Service(config.Grant, config.Config{
		StateTable: stateTable, AuditTable: auditTable, ScheduleGroup: group,
		SchedulerRoleARN: roleARN, ScheduleDLQARN: dlqARN,
		GrantFunctionARN: grantARN, RevokeFunctionARN: revokeARN,
		SenderEmail: sender, BaseURL: baseURL,
	}, sysCfg, wire.Options{
		Clock: e.clock.Now, Catalog: cat, Log: e.log, Metrics: e.m,
		Backoff: time.Millisecond, CheckBudget: 20 * time.Millisecond,
	})
	require.NoError(t, err)
	newID := svc.NewID
	svc.NewID = func() string {
		id := newID()
		e.mu.Lock()
		e.ids = append(e.ids, id)
		e.mu.Unlock()
		return id
	}
	// The crash points sit between the real adapters and the app.
	svc.Scheduler = crashScheduler{svc.Scheduler, e.crash}
	svc.Store = crashStore{svc.Store, e.crash}
	for k, p := range svc.Providers {
		svc.Providers[k] = crashProvider{p, e.crash}
	}
	e.svc = svc
	e.grant = api.GrantHandler(svc, e.log)
	e.revoke = api.RevokeHandler(svc, e.log)
	e.sweep = api.SweepHandler(svc)
	return e
}

// useID makes the next request id the given one (for the sample events).
func (e *env) useID(id string) {
	next := e.svc.NewID
	used := false
	e.svc.NewID = func() string {
		if used {
			return next()
		}
		used = true
		e.mu.Lock()
		e.ids = append(e.ids, id)
		e.mu.Unlock()
		return id
	}
}

func (e *env) lastID() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	require.NotEmpty(e.t, e.ids, "no request was created")
	return e.ids[len(e.ids)-1]
}

func (e *env) allIDs() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.ids)
}

func justification(role string) string { return "needed for " + role + " work" }

// submit asks for role as identity, starting now, and expects no error.
func (e *env) submit(identity, role string, in app.SubmitInput) access.Request {
	e.t.Helper()
	in.RoleID = role
	if in.Justification == "" {
		in.Justification = justification(role)
	}
	r, err := e.svc.Submit(e.ctx, app.Caller{Identity: identity}, in)
	require.NoError(e.t, err)
	return r
}

func (e *env) get(id string) access.Request {
	e.t.Helper()
	r, err := e.store.Get(e.ctx, id)
	require.NoError(e.t, err)
	return r
}

func payload(action, id string) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"action":%q,"requestId":%q}`, action, id))
}

// actions lists the audit trail's events, and checks the hash chain.
func (e *env) actions(id string) []string {
	e.t.Helper()
	require.NoError(e.t, e.store.VerifyAudit(e.ctx, id), "audit chain of %s", id)
	recs, err := e.store.Audit(e.ctx, id)
	require.NoError(e.t, err)
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = string(r.Action)
	}
	return out
}

func (e *env) auditRecords(id string) []access.AuditRecord {
	e.t.Helper()
	recs, err := e.store.Audit(e.ctx, id)
	require.NoError(e.t, err)
	return recs
}

// ---------------------------------------------------------------------------
// What IAM says, read directly with the fault-free client.

// accessKey names one piece of access as the ledger does (Grant.LedgerKey).
func accessKey(kind access.ProviderKind, p access.Principal, what string) string {
	return string(kind) + "|" + p.String() + "|" + what
}

func user(name string) access.Principal {
	return access.Principal{Kind: access.PrincipalUser, Name: name}
}
func role(name string) access.Principal {
	return access.Principal{Kind: access.PrincipalRole, Name: name}
}

// iamAccess is every piece of access the test principals have in IAM.
func (e *env) iamAccess() map[string]bool {
	e.t.Helper()
	out := map[string]bool{}
	for _, u := range users {
		p := user(u)
		gs, err := e.iam.ListGroupsForUser(e.ctx, &iam.ListGroupsForUserInput{UserName: aws.String(u)})
		require.NoError(e.t, err)
		for _, g := range gs.Groups {
			out[accessKey(access.ProviderIAMGroup, p, aws.ToString(g.GroupName))] = true
		}
		ap, err := e.iam.ListAttachedUserPolicies(e.ctx, &iam.ListAttachedUserPoliciesInput{UserName: aws.String(u)})
		require.NoError(e.t, err)
		for _, a := range ap.AttachedPolicies {
			out[accessKey(access.ProviderIAMPolicy, p, aws.ToString(a.PolicyArn))] = true
		}
		ip, err := e.iam.ListUserPolicies(e.ctx, &iam.ListUserPoliciesInput{UserName: aws.String(u)})
		require.NoError(e.t, err)
		for _, n := range ip.PolicyNames {
			out[accessKey(access.ProviderIAMTimeboxedPolicy, p, strings.TrimPrefix(n, iamgrant.InlinePolicyPrefix))] = true
		}
	}
	for _, r := range roles {
		p := role(r)
		ap, err := e.iam.ListAttachedRolePolicies(e.ctx, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(r)})
		require.NoError(e.t, err)
		for _, a := range ap.AttachedPolicies {
			out[accessKey(access.ProviderIAMPolicy, p, aws.ToString(a.PolicyArn))] = true
		}
		ip, err := e.iam.ListRolePolicies(e.ctx, &iam.ListRolePoliciesInput{RoleName: aws.String(r)})
		require.NoError(e.t, err)
		for _, n := range ip.PolicyNames {
			out[accessKey(access.ProviderIAMTimeboxedPolicy, p, strings.TrimPrefix(n, iamgrant.InlinePolicyPrefix))] = true
		}
	}
	return out
}

// has reports whether the request's access is in IAM.
func (e *env) has(r access.Request) bool {
	e.t.Helper()
	return e.iamAccess()[r.Grant().LedgerKey()]
}

// addToGroup puts a user in the ops group behind the system's back; as
// pre-existing access it is remembered for the invariant.
func (e *env) addToGroup(u string, pre bool) {
	e.t.Helper()
	_, err := e.iam.AddUserToGroup(e.ctx, &iam.AddUserToGroupInput{GroupName: aws.String(opsGroup), UserName: aws.String(u)})
	require.NoError(e.t, err)
	if pre {
		e.preExisting[accessKey(access.ProviderIAMGroup, user(u), opsGroup)] = true
	}
}

func (e *env) removeFromGroup(u string) {
	e.t.Helper()
	_, err := e.iam.RemoveUserFromGroup(e.ctx, &iam.RemoveUserFromGroupInput{GroupName: aws.String(opsGroup), UserName: aws.String(u)})
	require.NoError(e.t, err)
}

func (e *env) inGroup(u string) bool {
	e.t.Helper()
	return e.iamAccess()[accessKey(access.ProviderIAMGroup, user(u), opsGroup)]
}

// schedule reads "<action>-<id>" from moto.
func (e *env) schedule(action, id string) (*scheduler.GetScheduleOutput, bool) {
	e.t.Helper()
	out, err := e.sched.GetSchedule(e.ctx, &scheduler.GetScheduleInput{Name: aws.String(action + "-" + id), GroupName: aws.String(group)})
	var nf *schedtypes.ResourceNotFoundException
	if errors.As(err, &nf) {
		return nil, false
	}
	require.NoError(e.t, err)
	return out, true
}

func (e *env) hasSchedule(action, id string) bool {
	e.t.Helper()
	_, ok := e.schedule(action, id)
	return ok
}

func (e *env) deleteSchedule(action, id string) {
	e.t.Helper()
	_, err := e.sched.DeleteSchedule(e.ctx, &scheduler.DeleteScheduleInput{Name: aws.String(action + "-" + id), GroupName: aws.String(group)})
	require.NoError(e.t, err)
}

// mailTo returns the subjects of the emails moto accepted for to.
func (e *env) mailTo(to string) []string {
	e.t.Helper()
	sent, err := mototest.SentMessages(e.srv.URL)
	require.NoError(e.t, err)
	var out []string
	for _, m := range sent {
		if slices.Contains(m.To, to) {
			out = append(out, m.Subject)
		}
	}
	return out
}

// told reports whether to was emailed about request id with a subject
// starting with prefix.
func (e *env) told(to, prefix, id string) bool {
	e.t.Helper()
	for _, s := range e.mailTo(to) {
		if strings.HasPrefix(s, prefix) && strings.Contains(s, id) {
			return true
		}
	}
	return false
}

// ---------------------------------------------------------------------------
// The invariant

// invariant checks, for every request the system created:
//   - no access is in IAM unless an ACTIVE request holds it (or the
//     principal had it before any request). With wayOut, access may also
//     belong to an APPROVED request whose activation died midway, or to a
//     FAILED or CANCELLED one whose undo failed, while its revoke schedule is there to take it away;
//   - every ACTIVE request has a revoke path: its revoke schedule in moto,
//     or its entry in the sweeper's due index at its end time.
//
// It returns the problems found (empty when the invariant holds).
func (e *env) invariant(wayOut bool) []string {
	e.t.Helper()
	byKey := map[string][]access.Request{}
	var problems []string
	for _, id := range e.allIDs() {
		r, err := e.store.Get(e.ctx, id)
		if access.IsKind(err, access.KindNotFound) {
			continue // the process died before the request was stored
		}
		require.NoError(e.t, err)
		byKey[r.Grant().LedgerKey()] = append(byKey[r.Grant().LedgerKey()], r)
		if r.Status != access.StatusActive {
			continue
		}
		if e.hasSchedule(app.ActionRevoke, r.ID) {
			continue
		}
		due, _, err := e.store.ListDue(e.ctx, access.StatusActive, r.EndAt, 1000, "")
		require.NoError(e.t, err)
		if !slices.ContainsFunc(due, func(d access.Request) bool { return d.ID == r.ID }) {
			problems = append(problems, fmt.Sprintf("ACTIVE request %s has no revoke schedule and is not in the due index", r.ID))
		}
	}
	for key := range e.iamAccess() {
		if e.preExisting[key] {
			continue
		}
		ok := false
		for _, r := range byKey[key] {
			switch {
			case r.Status == access.StatusActive:
				ok = true
			case wayOut && (r.Status == access.StatusApproved || r.Status == access.StatusFailed || r.Status == access.StatusCancelled) &&
				e.hasSchedule(app.ActionRevoke, r.ID):
				// an activation that stopped midway, or an undo that failed:
				// the revoke schedule will take it away
				ok = true
			}
		}
		if !ok {
			var st []string
			for _, r := range byKey[key] {
				st = append(st, r.ID+" "+string(r.Status))
			}
			problems = append(problems, fmt.Sprintf("access %s is in IAM without an ACTIVE request (requests: %v)", key, st))
		}
	}
	return problems
}

func (e *env) requireInvariant(wayOut bool) {
	e.t.Helper()
	require.Empty(e.t, e.invariant(wayOut), "invariant")
}
