package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"

	"github.com/jitaccess/jit/infra/bench"
	"github.com/jitaccess/jit/internal/app"
	"github.com/jitaccess/jit/internal/awstest"
	"github.com/jitaccess/jit/internal/catalog"
	"github.com/jitaccess/jit/internal/config"
	"github.com/jitaccess/jit/internal/dynamo"
	"github.com/jitaccess/jit/internal/schedule"
	"github.com/jitaccess/jit/internal/wire"
)

// Names of the benchmark's resources in moto.
const (
	stateTable    = "jit-state"
	auditTable    = "jit-audit"
	scheduleGroup = "jit"
	senderEmail   = "jit@example.com"
	secretName    = "jit/approval-link-key"
	adminsGroup   = bench.AdminsGroup
	lagGroup      = bench.LagGroup
	accountID     = awstest.AccountID
	lagUsers      = bench.LagUsers
)

var tables = dynamo.Tables{State: stateTable, Audit: auditTable}

// benchConfig is every function's configuration against moto at url.
func benchConfig(url string) config.Config {
	arn := func(kind, name string) string {
		return fmt.Sprintf("arn:aws:%s:us-east-1:%s:%s", kind, accountID, name)
	}
	return config.Config{
		StateTable: stateTable, AuditTable: auditTable, CatalogFile: "catalog.yaml",
		ScheduleGroup:     scheduleGroup,
		SchedulerRoleARN:  "arn:aws:iam::" + accountID + ":role/jit-scheduler",
		ScheduleDLQARN:    arn("sqs", "jit-schedule-dlq"),
		GrantFunctionARN:  arn("lambda", "function:jit-grant"),
		RevokeFunctionARN: arn("lambda", "function:jit-revoke"),
		SenderEmail:       senderEmail,
		BaseURL:           "https://jit.example.com",
		SigningSecretARN:  secretName,
		IdentityClaim:     "email",
		AWSEndpoint:       url,
	}
}

// awsConfig is an SDK config for moto with a connection pool sized for
// the load test (the default transport keeps only two idle connections).
func awsConfig(url string) aws.Config {
	return aws.Config{
		Region:       awstest.Region,
		Credentials:  credentials.NewStaticCredentialsProvider("testing", "testing", ""),
		BaseEndpoint: aws.String(url),
		HTTPClient: &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        128,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
		}},
	}
}

// world is moto with the system's resources in it.
type world struct {
	srv  *awstest.Server
	raw  aws.Config // not counted: the benchmark's own setup and checks
	conf config.Config
}

// reset empties moto and creates the tables, the signing secret, the
// schedule group, the sender identity, the IAM users of the catalog, the
// groups and the managed policies the benchmark catalog grants.
func (w *world) reset(ctx context.Context, users []string) error {
	if err := w.srv.Reset(); err != nil {
		return err
	}
	cfg := w.raw
	if err := dynamo.CreateTables(ctx, dynamodb.NewFromConfig(cfg), tables); err != nil {
		return err
	}
	if _, err := secretsmanager.NewFromConfig(cfg).CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String(secretName), SecretString: aws.String("bench-approval-link-key-0123456789abcdef"),
	}); err != nil {
		return fmt.Errorf("create secret: %w", err)
	}
	if err := schedule.EnsureGroup(ctx, scheduler.NewFromConfig(cfg), scheduleGroup); err != nil {
		return err
	}
	if _, err := sesv2.NewFromConfig(cfg).CreateEmailIdentity(ctx, &sesv2.CreateEmailIdentityInput{EmailIdentity: aws.String(senderEmail)}); err != nil {
		return fmt.Errorf("verify sender: %w", err)
	}
	ic := iam.NewFromConfig(cfg)
	for _, g := range []string{adminsGroup, lagGroup} {
		if _, err := ic.CreateGroup(ctx, &iam.CreateGroupInput{GroupName: aws.String(g)}); err != nil {
			return fmt.Errorf("create group: %w", err)
		}
	}
	for _, p := range []string{"JitBenchReadOnly", "JitBenchAdmin"} {
		if _, err := ic.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String(p),
			PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}`)}); err != nil {
			return fmt.Errorf("create policy: %w", err)
		}
	}
	return parallel(ctx, 4, len(users), func(i int) error {
		_, err := ic.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(users[i])})
		return err
	})
}

// parallel runs fn(0..n-1) on at most workers goroutines; the first error wins.
func parallel(ctx context.Context, workers, n int, fn func(i int) error) error {
	var (
		mu    sync.Mutex
		first error
		next  int
		wg    sync.WaitGroup
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if first != nil || next >= n || ctx.Err() != nil {
					mu.Unlock()
					return
				}
				i := next
				next++
				mu.Unlock()
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// benchCatalog is bench.CatalogYAML parsed, and the IAM users it names.
func benchCatalog() (*catalog.Catalog, []string) {
	src, users := bench.CatalogYAML()
	cat, err := catalog.Parse("bench-catalog.yaml", []byte(src))
	if err != nil {
		panic(err)
	}
	return cat, users
}

// clock is a settable clock shared by the services of one benchmark.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time)         { c.mu.Lock(); c.t = t.UTC(); c.mu.Unlock() }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type noMetrics struct{}

func (noMetrics) Count(context.Context, string, float64)          {}
func (noMetrics) Duration(context.Context, string, time.Duration) {}

var quiet = slog.New(slog.DiscardHandler)

// service builds function fn through wire.Service, as the Lambdas do, over
// cfg (which may carry the tracker's middleware).
func (w *world) service(fn string, cfg aws.Config, now app.Clock, cat *catalog.Catalog, tr *bench.Tracker) (*app.Service, error) {
	opt := wire.Options{Clock: now, Catalog: cat, Log: quiet, Metrics: noMetrics{}, Backoff: 10 * time.Millisecond}
	if tr != nil {
		opt.StoreOptions = []dynamo.Option{dynamo.WithConsumedCapacity(tr.Consumed)}
	}
	return wire.Service(fn, w.conf, cfg, opt)
}

// tracked is a copy of the raw config with tr's middleware installed and,
// with emulate, moto's transactions replaced by their writes
// (bench.EmulateTransactions) below the tracker.
func (w *world) tracked(tr *bench.Tracker, emulate bool) aws.Config {
	cfg := w.raw.Copy()
	if tr != nil {
		tr.Install(&cfg)
	}
	if emulate {
		bench.EmulateTransactions(&cfg, dynamodb.NewFromConfig(w.raw, func(o *dynamodb.Options) {
			if os.Getenv("JITBENCH_NORETRY") != "" {
				o.RetryMaxAttempts = 1
			}
		}))
	}
	return cfg
}

func newTracker() *bench.Tracker {
	return bench.NewTracker(dynamo.StateTable(stateTable), dynamo.AuditTable(auditTable))
}
