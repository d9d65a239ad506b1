// Package wire is the composition root: it builds the app service of one
// function from its configuration and one aws.Config. Functions, the local
// stack and the end-to-end tests all build the system through it.
package wire

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"

	"github.com/jitaccess/jit/internal/access"
	"github.com/jitaccess/jit/internal/app"
	"github.com/jitaccess/jit/internal/catalog"
	"github.com/jitaccess/jit/internal/config"
	"github.com/jitaccess/jit/internal/dynamo"
	"github.com/jitaccess/jit/internal/email"
	"github.com/jitaccess/jit/internal/iamgrant"
	"github.com/jitaccess/jit/internal/metrics"
	"github.com/jitaccess/jit/internal/schedule"
	"github.com/jitaccess/jit/internal/token"
)

// MetricsNamespace is where the functions' EMF metrics (and the alarms) live.
const MetricsNamespace = "JitAccess"

// AWSConfig builds the SDK configuration from the variables Lambda sets
// (region and the execution role's credentials), pointed at the local
// emulator when AWS_ENDPOINT_URL is set. It does not use
// config.LoadDefaultConfig: that links the SSO, SSO-OIDC, STS and sign-in
// clients into every function, whose package initialisation alone was a
// third of the cold start (docs/performance.md), for credential sources a
// Lambda never uses. Clients get the SDK's standard retryer by default.
func AWSConfig(_ context.Context, c config.Config) (aws.Config, error) {
	region := cmp.Or(os.Getenv("AWS_REGION"), os.Getenv("AWS_DEFAULT_REGION"))
	key, secret := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	var missing []string
	if region == "" {
		missing = append(missing, "AWS_REGION")
	}
	if key == "" || secret == "" {
		missing = append(missing, "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
	}
	if len(missing) > 0 {
		return aws.Config{}, fmt.Errorf("aws config: missing %s (Lambda sets them)", strings.Join(missing, ", "))
	}
	cfg := aws.Config{
		Region:      region,
		Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(key, secret, os.Getenv("AWS_SESSION_TOKEN"))),
	}
	if c.AWSEndpoint != "" {
		cfg.BaseEndpoint = aws.String(c.AWSEndpoint)
	}
	return cfg, nil
}

// Options tune a build for tests and the local stack; the zero value is production.
type Options struct {
	Clock   app.Clock
	Catalog *catalog.Catalog // instead of reading CatalogFile
	Log     *slog.Logger
	Metrics app.Metrics
	// Backoff overrides the retry wait of the app (tests make it short).
	Backoff time.Duration
	// CheckBudget overrides how long IAM read-backs re-read.
	CheckBudget time.Duration
	// StoreOptions are passed to the DynamoDB store.
	StoreOptions []dynamo.Option
}

// Service builds function fn's service.
func Service(fn string, c config.Config, cfg aws.Config, opt Options) (*app.Service, error) {
	cat := opt.Catalog
	if cat == nil {
		var err error
		if cat, err = catalog.Load(c.CatalogFile); err != nil {
			return nil, err
		}
	}
	log := opt.Log
	if log == nil {
		log = slog.Default()
	}
	clock := opt.Clock
	if clock == nil {
		clock = time.Now
	}
	m := opt.Metrics
	if m == nil {
		m = metrics.New(os.Stdout, MetricsNamespace, map[string]string{"Function": fn})
	}

	sched, err := schedule.New(scheduler.NewFromConfig(cfg), schedule.Config{
		Group: c.ScheduleGroup, RoleARN: c.SchedulerRoleARN, DLQARN: c.ScheduleDLQARN,
		Targets: map[string]string{app.ActionGrant: c.GrantFunctionARN, app.ActionRevoke: c.RevokeFunctionARN},
	}, clock)
	if err != nil {
		return nil, err
	}
	providers := map[access.ProviderKind]app.Provider{}
	for kind, p := range iamgrant.Providers(iam.NewFromConfig(cfg), iamgrant.Config{CheckBudget: opt.CheckBudget}) {
		providers[kind] = p
	}
	svc := app.Service{
		Store:     dynamo.New(dynamodb.NewFromConfig(cfg), dynamo.Tables{State: c.StateTable, Audit: c.AuditTable}, opt.StoreOptions...),
		Catalog:   cat,
		Scheduler: sched,
		Providers: providers,
		Notifier:  email.New(sesv2.NewFromConfig(cfg), c.SenderEmail, c.BaseURL),
		Metrics:   m,
		Clock:     clock,
		Log:       log,
		BaseURL:   c.BaseURL,
		Backoff:   opt.Backoff,
	}
	if c.SigningSecretARN != "" {
		// The key is read on first use and cached for the container's life.
		svc.Tokens = token.New(token.NewSecretsManagerKey(secretsmanager.NewFromConfig(cfg), c.SigningSecretARN))
	}
	return app.New(svc), nil
}
