// Package stack is the local stack: the whole system on one machine with no
// AWS account. It starts moto_server (DynamoDB, IAM, Scheduler, SES and
// Secrets Manager over the real AWS wire protocol), creates the resources
// from the same definitions the template uses, builds every function's
// service through wire.Service exactly as the Lambdas do, and serves:
//
//   - the JSON API and the email-link approval pages through the local
//     gateway, which turns each HTTP request into an HTTP API v2 event (with
//     the dev sign-in's identity as the JWT claims) and calls the very
//     handlers the Lambdas run;
//   - a portal, a dev sign-in and a mailbox of every email sent;
//   - a schedule dispatcher firing the one-shot schedules (package dispatch)
//     and the sweeper on its rate.
//
// State lives in moto's memory and is gone when the stack stops.
package stack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"

	"github.com/jitaccess/jit/infra/local/dispatch"
	"github.com/jitaccess/jit/internal/api"
	"github.com/jitaccess/jit/internal/app"
	"github.com/jitaccess/jit/internal/awstest"
	"github.com/jitaccess/jit/internal/catalog"
	"github.com/jitaccess/jit/internal/config"
	"github.com/jitaccess/jit/internal/dynamo"
	"github.com/jitaccess/jit/internal/metrics"
	"github.com/jitaccess/jit/internal/schedule"
	"github.com/jitaccess/jit/internal/wire"
)

// Defaults.
const (
	DefaultAddr          = "127.0.0.1:8080"
	DefaultCatalogPath   = "infra/catalog.example.yaml"
	DefaultSweepInterval = 5 * time.Minute
	// DevIdentityHeader carries the caller's identity for scripts and tests,
	// in place of a signed-in cookie. Local only: nothing checks it.
	DevIdentityHeader = "X-Dev-Identity"
)

// The names of the local resources; ARNs of things moto does not run
// (functions, the scheduler's role, the DLQ) are fakes in moto's account.
const (
	StateTable       = "jit-state"
	AuditTable       = "jit-audit"
	ScheduleGroup    = "jit"
	SenderEmail      = "jit@example.com"
	SigningSecret    = "jit/approval-link-key"
	GrantFunctionARN = "arn:aws:lambda:" + awstest.Region + ":" + AccountID + ":function:jit-grant"
	RevokeARN        = "arn:aws:lambda:" + awstest.Region + ":" + AccountID + ":function:jit-revoke"
	SchedulerRoleARN = "arn:aws:iam::" + AccountID + ":role/jit-scheduler"
	ScheduleDLQARN   = "arn:aws:sqs:" + awstest.Region + ":" + AccountID + ":jit-schedule-dlq"
)

// Options configure a Stack; the zero value is `make run`.
type Options struct {
	// Addr is the gateway's listen address (DefaultAddr); port 0 picks a free one.
	Addr string
	// MotoPort is moto_server's port on 127.0.0.1; 0 picks a free one.
	MotoPort int
	// MotoPath is the moto_server binary; empty looks it up on PATH.
	MotoPath string
	// MotoLog receives moto_server's own output; nil discards it.
	MotoLog io.Writer
	// CatalogPath is the policy catalog file (DefaultCatalogPath), unless
	// Catalog is given already parsed.
	CatalogPath string
	Catalog     *catalog.Catalog
	// Clock tells the time to every service and the dispatcher, so tests
	// can move it forward; nil means time.Now.
	Clock func() time.Time
	// Precision is how exactly schedules fire: time.Minute (zero; like the
	// service, within the at() minute) or time.Second (-fast-schedules).
	Precision time.Duration
	// Poll is how often the dispatcher lists schedules (10s, or 1s with second precision).
	Poll time.Duration
	// RetryBackoff is the dispatcher's first wait before retrying a failed
	// target (1s); later waits double.
	RetryBackoff time.Duration
	// SweepInterval is the sweeper's rate (DefaultSweepInterval); negative disables it.
	SweepInterval time.Duration
	// Log receives the functions', dispatcher's and gateway's logs; nil means os.Stderr.
	Log io.Writer
	// Progress is told about each startup step as it completes.
	Progress func(step, detail string)

	// ConfigureAWS, when set, changes the SDK configuration the functions'
	// clients are built from (and only theirs: the stack's own setup, the
	// dispatcher standing in for the Scheduler service and AWSConfig stay
	// as they are). The soak run installs fault-injection middleware here.
	ConfigureAWS func(*aws.Config)
	// Metrics, when set, receives every function's metrics instead of
	// discarding them.
	Metrics app.Metrics
	// WrapTarget, when set, wraps the handler the dispatcher invokes for a
	// schedule target (GrantFunctionARN, RevokeARN), e.g. to deliver some
	// schedules twice, as the at-least-once Scheduler may.
	WrapTarget func(arn string, h dispatch.Handler) dispatch.Handler
}

// Stack is a running local system.
type Stack struct {
	opt      Options
	clock    func() time.Time
	log      *slog.Logger
	moto     *moto
	listener net.Listener
	server   *http.Server
	url      string
	cfg      config.Config
	awsCfg   aws.Config
	catalog  *catalog.Catalog
	catName  string
	demo     DemoIAM
	services map[string]*app.Service
	disp     *dispatch.Dispatcher
	sweep    func(context.Context, json.RawMessage) (app.SweepReport, error)

	intake    http.Handler // the intake function behind the gateway
	approvals http.Handler // the approve function behind the gateway
	handler   http.Handler // everything the gateway serves

	sends atomic.Int64 // emails the functions sent (see mailCache)
	mail  mailCache

	cancel    context.CancelFunc
	bg        sync.WaitGroup
	closeOnce sync.Once
	started   time.Time
}

// Start brings the whole system up. On error everything started so far is
// stopped again; the error is one line per problem.
func Start(ctx context.Context, opt Options) (s *Stack, err error) {
	if opt.Addr == "" {
		opt.Addr = DefaultAddr
	}
	if opt.CatalogPath == "" {
		opt.CatalogPath = DefaultCatalogPath
	}
	if opt.Precision <= 0 {
		opt.Precision = time.Minute
	}
	if opt.SweepInterval == 0 {
		opt.SweepInterval = DefaultSweepInterval
	}
	if opt.Log == nil {
		opt.Log = os.Stderr
	}
	if opt.Progress == nil {
		opt.Progress = func(string, string) {}
	}
	s = &Stack{opt: opt, clock: opt.Clock, started: time.Now(), mail: mailCache{sends: -1}}
	if s.clock == nil {
		s.clock = time.Now
	}
	s.log = slog.New(slog.NewTextHandler(opt.Log, &slog.HandlerOptions{Level: slog.LevelInfo}))
	defer func() {
		if err != nil {
			s.Close()
			s = nil
		}
	}()

	// Cheap checks first, so that a busy port or a bad catalog fails at once.
	if s.listener, err = listen(opt.Addr); err != nil {
		return s, err
	}
	s.url = "http://" + dialable(s.listener.Addr())
	if err = s.loadCatalog(); err != nil {
		return s, err
	}
	opt.Progress("catalog", fmt.Sprintf("%s: %d roles, %d identities", s.catName, len(s.catalog.Roles), len(Identities(s.catalog))))

	t := time.Now()
	port := opt.MotoPort
	if port == 0 {
		if port, err = freePort("127.0.0.1"); err != nil {
			return s, fmt.Errorf("find a free port for moto_server: %w", err)
		}
	}
	managed := usesAWSManagedPolicies(s.catalog)
	if s.moto, err = startMoto(ctx, opt.MotoPath, "127.0.0.1", port, managed, opt.MotoLog); err != nil {
		return s, err
	}
	opt.Progress("moto_server", fmt.Sprintf("%s (pid %d) %s", s.moto.url, s.moto.pid(), since(t)))
	s.awsCfg = awstest.Config(s.moto.url)

	// IAM goes first and in the background: with AWS-managed policies, moto
	// spends a few seconds loading them on the first IAM call.
	type iamResult struct {
		demo DemoIAM
		err  error
		took time.Duration
	}
	iamDone := make(chan iamResult, 1)
	go func() {
		t := time.Now()
		d, err := createDemoIAM(ctx, iam.NewFromConfig(s.awsCfg), s.catalog)
		iamDone <- iamResult{d, err, time.Since(t)}
	}()
	iamWaited := false
	iamWait := func() iamResult { iamWaited = true; return <-iamDone }
	defer func() {
		if err != nil && !iamWaited { // let it finish before moto goes
			select {
			case <-iamDone:
			case <-time.After(30 * time.Second):
			}
		}
	}()

	t = time.Now()
	tables := dynamo.Tables{State: StateTable, Audit: AuditTable}
	if err = dynamo.CreateTables(ctx, dynamodb.NewFromConfig(s.awsCfg), tables); err != nil {
		return s, err
	}
	opt.Progress("dynamodb", fmt.Sprintf("tables %s, %s %s", StateTable, AuditTable, since(t)))

	if err = schedule.EnsureGroup(ctx, scheduler.NewFromConfig(s.awsCfg), ScheduleGroup); err != nil {
		return s, err
	}
	opt.Progress("scheduler", "schedule group "+ScheduleGroup)

	if err = createSender(ctx, sesv2.NewFromConfig(s.awsCfg), SenderEmail); err != nil {
		return s, err
	}
	opt.Progress("ses", "sender identity "+SenderEmail)

	secretARN, err := createSigningSecret(ctx, secretsmanager.NewFromConfig(s.awsCfg), SigningSecret)
	if err != nil {
		return s, err
	}
	opt.Progress("secrets", "approval-link key "+secretARN)

	res := iamWait()
	if err = res.err; err != nil {
		return s, err
	}
	s.demo = res.demo
	opt.Progress("iam", fmt.Sprintf("%s (%s)", s.demo, res.took.Round(10*time.Millisecond)))
	for _, w := range s.demo.Warnings {
		opt.Progress("warning", w)
	}

	s.cfg = config.Config{
		StateTable: StateTable, AuditTable: AuditTable, CatalogFile: s.catName,
		ScheduleGroup: ScheduleGroup, SchedulerRoleARN: SchedulerRoleARN, ScheduleDLQARN: ScheduleDLQARN,
		GrantFunctionARN: GrantFunctionARN, RevokeFunctionARN: RevokeARN,
		SenderEmail: SenderEmail, BaseURL: s.url, SigningSecretARN: secretARN,
		IdentityClaim: "email", AWSEndpoint: s.moto.url,
	}
	fnCfg := s.awsCfg.Copy()
	fnCfg.APIOptions = slices.Clone(fnCfg.APIOptions)
	if opt.ConfigureAWS != nil {
		opt.ConfigureAWS(&fnCfg)
	}
	// After ConfigureAWS, so that no configuration can drop it.
	fnCfg.APIOptions = append(fnCfg.APIOptions, s.countSends)
	var m app.Metrics = metrics.New(io.Discard, wire.MetricsNamespace, nil)
	if opt.Metrics != nil {
		m = opt.Metrics
	}
	s.services = map[string]*app.Service{}
	for _, fn := range config.Functions {
		svc, err := wire.Service(fn, s.cfg, fnCfg, wire.Options{
			Clock:       s.clock,
			Catalog:     s.catalog,
			Log:         s.log.With("fn", fn),
			Metrics:     m,
			Backoff:     100 * time.Millisecond,
			CheckBudget: 500 * time.Millisecond,
		})
		if err != nil {
			return s, fmt.Errorf("build function %s: %w", fn, err)
		}
		s.services[fn] = svc
	}
	opt.Progress("functions", strings.Join(config.Functions, ", ")+" (built by wire.Service, as the Lambdas are)")

	targets := map[string]dispatch.Handler{
		GrantFunctionARN: dispatch.Handler(api.GrantHandler(s.services[config.Grant], s.log.With("fn", config.Grant))),
		RevokeARN:        dispatch.Handler(api.RevokeHandler(s.services[config.Revoke], s.log.With("fn", config.Revoke))),
	}
	if opt.WrapTarget != nil {
		for arn, h := range targets {
			targets[arn] = opt.WrapTarget(arn, h)
		}
	}
	s.disp, err = dispatch.New(scheduler.NewFromConfig(s.awsCfg), dispatch.Options{
		Group:     ScheduleGroup,
		Targets:   targets,
		Clock:     s.clock,
		Precision: opt.Precision,
		Poll:      opt.Poll,
		Backoff:   opt.RetryBackoff,
		Log:       s.log.With("fn", "dispatcher"),
	})
	if err != nil {
		return s, err
	}
	s.sweep = api.SweepHandler(s.services[config.Sweep])

	s.handler = s.routes()
	s.server = &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second}
	var bg context.Context
	bg, s.cancel = context.WithCancel(context.Background())
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		if err := s.server.Serve(s.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("gateway stopped", "error", err)
		}
	}()
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		s.disp.Run(bg)
	}()
	precision := "within the at() minute, like the service"
	if opt.Precision < time.Minute {
		precision = "at the exact " + opt.Precision.String() + " (-fast-schedules)"
	}
	opt.Progress("dispatcher", fmt.Sprintf("lists group %s every %s and fires %s", ScheduleGroup, s.disp.Poll(), precision))
	if opt.SweepInterval > 0 {
		s.bg.Add(1)
		go func() {
			defer s.bg.Done()
			s.runSweeper(bg)
		}()
		opt.Progress("sweeper", "every "+opt.SweepInterval.String())
	} else {
		opt.Progress("sweeper", "off")
	}
	opt.Progress("gateway", s.url)
	return s, nil
}

func since(t time.Time) string {
	return "in " + time.Since(t).Round(10*time.Millisecond).String()
}

// listen opens the gateway's address, naming a busy port plainly.
func listen(addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err == nil {
		return l, nil
	}
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("gateway address %s is already in use (is another make run going?); pick another with -addr", addr)
	}
	return nil, fmt.Errorf("gateway address %s: %v", addr, err)
}

// dialable turns a listener address into one a browser can open.
func dialable(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// CatalogError is a catalog that cannot be loaded; its message is one line
// per problem, each naming the file and line.
type CatalogError struct {
	Path string
	Err  error
}

func (e *CatalogError) Error() string {
	var v *catalog.ValidationError
	if errors.As(e.Err, &v) {
		lines := make([]string, len(v.Problems))
		for i, p := range v.Problems {
			lines[i] = "bad catalog: " + p.String()
		}
		return strings.Join(lines, "\n")
	}
	if errors.Is(e.Err, os.ErrNotExist) {
		return fmt.Sprintf("catalog %s not found (run from the repository root, or pass -catalog)", e.Path)
	}
	return fmt.Sprintf("catalog %s: %v", e.Path, e.Err)
}

func (e *CatalogError) Unwrap() error { return e.Err }

func (s *Stack) loadCatalog() error {
	if s.opt.Catalog != nil {
		s.catalog, s.catName = s.opt.Catalog, "(given)"
		return nil
	}
	c, err := catalog.Load(s.opt.CatalogPath)
	if err != nil {
		return &CatalogError{Path: s.opt.CatalogPath, Err: err}
	}
	s.catalog, s.catName = c, s.opt.CatalogPath
	return nil
}

func (s *Stack) runSweeper(ctx context.Context) {
	t := time.NewTicker(s.opt.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := s.SweepNow(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("sweep failed", "fn", config.Sweep, "error", err)
			}
		}
	}
}

// SweepNow runs the sweep function once, as its rate rule would.
func (s *Stack) SweepNow(ctx context.Context) (app.SweepReport, error) {
	return s.sweep(ctx, []byte(`{"source":"aws.events","detail-type":"Scheduled Event"}`))
}

// DispatchNow lists the schedules once, fires the due ones and waits for them.
func (s *Stack) DispatchNow(ctx context.Context) (int, error) { return s.disp.RunOnce(ctx) }

// Close stops the gateway, the dispatcher and the sweeper, then moto. It is
// safe to call more than once.
func (s *Stack) Close() {
	s.closeOnce.Do(func() {
		if s.server != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = s.server.Shutdown(ctx)
			cancel()
		} else if s.listener != nil {
			_ = s.listener.Close()
		}
		if s.cancel != nil {
			s.cancel()
		}
		s.bg.Wait()
		if s.moto != nil {
			s.moto.stop()
		}
	})
}

// URL is the gateway's base URL, e.g. http://127.0.0.1:8080.
func (s *Stack) URL() string { return s.url }

// MotoURL is moto_server's endpoint.
func (s *Stack) MotoURL() string { return s.moto.url }

// MotoPID is moto_server's process id.
func (s *Stack) MotoPID() int { return s.moto.pid() }

// AWSConfig is an SDK configuration pointed at moto, for looking behind the system.
func (s *Stack) AWSConfig() aws.Config { return s.awsCfg }

// Config is the functions' configuration.
func (s *Stack) Config() config.Config { return s.cfg }

// Catalog is the loaded policy catalog.
func (s *Stack) Catalog() *catalog.Catalog { return s.catalog }

// DemoIAM says what was created in IAM for the catalog.
func (s *Stack) DemoIAM() DemoIAM { return s.demo }

// Service returns the service of function fn (config.Intake, ...).
func (s *Stack) Service(fn string) *app.Service { return s.services[fn] }

// Dispatcher is the schedule dispatcher.
func (s *Stack) Dispatcher() *dispatch.Dispatcher { return s.disp }

// Handler is everything the gateway serves, for in-process tests.
func (s *Stack) Handler() http.Handler { return s.handler }

// Store is the DynamoDB store the functions use, for verifying audit trails.
func (s *Stack) Store() *dynamo.Store {
	return dynamo.New(dynamodb.NewFromConfig(s.awsCfg), dynamo.Tables{State: StateTable, Audit: AuditTable})
}

// Now is the stack's clock.
func (s *Stack) Now() time.Time { return s.clock() }

// Started is when Start began.
func (s *Stack) Started() time.Time { return s.started }
