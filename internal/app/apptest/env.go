package apptest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jitaccess/jit/internal/access"
	"github.com/jitaccess/jit/internal/app"
	"github.com/jitaccess/jit/internal/catalog"
	"github.com/jitaccess/jit/internal/dynamo/memstore"
	"github.com/jitaccess/jit/internal/token"
)

// Catalog is a small catalog covering every mode and provider.
const Catalog = `
version: 1
admins: [admin@example.com]
securityContacts: [secops@example.com]
groups:
  leads: [carol@example.com, dave@example.com]
principals:
  alice@example.com: user/alice
  bob@example.com: user/bob
  carol@example.com: user/carol
  dave@example.com: user/dave
roles:
  - id: admin
    description: group admin
    provider: iam-group
    target: {group: admins}
    requesters: [alice@example.com, bob@example.com, carol@example.com]
    approvers: [group:leads, alice@example.com]
    duration: {default: 1h, max: 4h}
    approvalDeadline: 2h
  - id: quorum
    description: two leads
    provider: iam-group
    target: {group: admins}
    requesters: [alice@example.com]
    approvers: [group:leads]
    approvals: 2
    duration: {default: 1h, max: 4h}
  - id: auto
    description: auto
    provider: iam-policy
    target: {policyArn: "arn:aws:iam::aws:policy/ReadOnlyAccess"}
    requesters: [alice@example.com, bob@example.com]
    duration: {default: 1h, max: 4h}
    autoApprove: true
  - id: glass
    description: break glass
    provider: iam-policy
    target: {policyArn: "arn:aws:iam::aws:policy/AdministratorAccess"}
    requesters: [alice@example.com]
    approvers: [carol@example.com]
    duration: {default: 1h, max: 2h}
    breakGlass: true
  - id: ticketed
    description: needs a ticket
    provider: iam-timeboxed-policy
    target:
      policy:
        Version: "2012-10-17"
        Statement: [{Effect: Allow, Action: "s3:GetObject", Resource: "*"}]
    requesters: [alice@example.com]
    duration: {default: 1h, max: 4h}
    autoApprove: true
    ticket: {required: true, pattern: '^OPS-[0-9]+$'}
`

// T0 is the fake clock's start.
var T0 = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)

// SigningKey signs the approval links of Env.
var SigningKey = token.StaticKey([]byte("0123456789abcdef0123456789abcdef"))

// Env is a service over in-memory fakes.
type Env struct {
	Svc   *app.Service
	Store *memstore.Store
	Sched *Scheduler
	IAM   *Provider
	Mail  *Notifier
	Clock *Clock
}

// NewEnv builds a service on Catalog with fakes and a fake clock at T0.
func NewEnv(t testing.TB) *Env {
	t.Helper()
	cat, err := catalog.Parse("test.yaml", []byte(Catalog))
	require.NoError(t, err)
	e := &Env{Store: memstore.New(), Sched: &Scheduler{}, IAM: &Provider{}, Mail: &Notifier{}, Clock: NewClock(T0)}
	e.Svc = app.New(app.Service{
		Store: e.Store, Catalog: cat, Scheduler: e.Sched, Notifier: e.Mail, Clock: e.Clock.Now,
		Providers: map[access.ProviderKind]app.Provider{
			access.ProviderIAMGroup: e.IAM, access.ProviderIAMPolicy: e.IAM, access.ProviderIAMTimeboxedPolicy: e.IAM,
		},
		Tokens:  token.New(SigningKey),
		BaseURL: "https://jit.example.com",
		Log:     slog.New(slog.DiscardHandler),
		Sleep:   func(context.Context, time.Duration) error { return nil },
	})
	return e
}
