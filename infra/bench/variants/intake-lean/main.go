// Command intake-lean is an experiment of the cold-start benchmark, not a
// function to deploy: functions/intake with the one change the benchmark's
// findings propose, to measure what it would save. It builds the aws.Config
// from the variables Lambda sets (region, the execution role's credentials)
// instead of config.LoadDefaultConfig, and composes the service as
// wire.Service does (copied here, because importing package wire links
// aws-sdk-go-v2/config, and with it the SSO, SSO-OIDC, STS and sign-in
// clients, whose package initialisation is part of every cold start).
package main

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"

	"github.com/jitaccess/jit/internal/access"
	"github.com/jitaccess/jit/internal/api"
	"github.com/jitaccess/jit/internal/app"
	"github.com/jitaccess/jit/internal/catalog"
	"github.com/jitaccess/jit/internal/config"
	"github.com/jitaccess/jit/internal/dynamo"
	"github.com/jitaccess/jit/internal/email"
	"github.com/jitaccess/jit/internal/iamgrant"
	"github.com/jitaccess/jit/internal/logging"
	"github.com/jitaccess/jit/internal/metrics"
	"github.com/jitaccess/jit/internal/schedule"
	"github.com/jitaccess/jit/internal/token"
)

func main() {
	log := logging.New(os.Stdout, config.Intake)
	slog.SetDefault(log)
	svc, c, err := build(log)
	if err != nil {
		log.Error("startup failed", "error", err.Error())
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	lambda.Start(api.Lambda(api.Intake(svc, api.Options{IdentityClaim: c.IdentityClaim, Log: log})))
}

func build(log *slog.Logger) (*app.Service, config.Config, error) {
	c, err := config.Load(config.Intake, os.Getenv)
	if err != nil {
		return nil, c, err
	}
	cfg := aws.Config{
		Region: os.Getenv("AWS_REGION"),
		Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(
			os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), os.Getenv("AWS_SESSION_TOKEN"))),
	}
	if c.AWSEndpoint != "" {
		cfg.BaseEndpoint = aws.String(c.AWSEndpoint)
	}
	cat, err := catalog.Load(c.CatalogFile)
	if err != nil {
		return nil, c, err
	}
	sched, err := schedule.New(scheduler.NewFromConfig(cfg), schedule.Config{
		Group: c.ScheduleGroup, RoleARN: c.SchedulerRoleARN, DLQARN: c.ScheduleDLQARN,
		Targets: map[string]string{app.ActionGrant: c.GrantFunctionARN, app.ActionRevoke: c.RevokeFunctionARN},
	}, time.Now)
	if err != nil {
		return nil, c, err
	}
	providers := map[access.ProviderKind]app.Provider{}
	for kind, p := range iamgrant.Providers(iam.NewFromConfig(cfg), iamgrant.Config{}) {
		providers[kind] = p
	}
	svc := app.Service{
		Store:     dynamo.New(dynamodb.NewFromConfig(cfg), dynamo.Tables{State: c.StateTable, Audit: c.AuditTable}),
		Catalog:   cat,
		Scheduler: sched,
		Providers: providers,
		Notifier:  email.New(sesv2.NewFromConfig(cfg), c.SenderEmail, c.BaseURL),
		Metrics:   metrics.New(os.Stdout, "JitAccess", map[string]string{"Function": config.Intake}),
		Log:       log,
		BaseURL:   c.BaseURL,
	}
	if c.SigningSecretARN != "" {
		svc.Tokens = token.New(token.NewSecretsManagerKey(secretsmanager.NewFromConfig(cfg), c.SigningSecretARN))
	}
	return app.New(svc), c, nil
}
