package api

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"

	"github.com/jitaccess/jit/internal/access"
	"github.com/jitaccess/jit/internal/app"
	"github.com/jitaccess/jit/internal/schedule"
)

// The non-HTTP entry points: schedules, the sweeper's rate rule and the
// work-finished event rule. Their rule: bad input is logged and dropped
// (returning an error would make the caller redeliver it forever); a failure
// worth retrying is returned, so Scheduler and EventBridge retry it.

// GrantHandler serves the grant schedule.
func GrantHandler(svc *app.Service, log *slog.Logger) func(context.Context, json.RawMessage) error {
	return func(ctx context.Context, raw json.RawMessage) error {
		p, err := schedule.ParsePayload(raw)
		if err != nil || p.Action != app.ActionGrant {
			log.ErrorContext(ctx, "grant: ignoring malformed event", "error", errString(err), "action", p.Action)
			return nil
		}
		return retryable(svc.Activate(ctx, p.RequestID))
	}
}

// TicketEventDetail is the detail of a work-finished event; either field
// binds it to grants.
type TicketEventDetail struct {
	Ticket    string `json:"ticket"`
	RequestID string `json:"requestId"`
}

type eventEnvelope struct {
	Source     string          `json:"source"`
	DetailType string          `json:"detail-type"`
	Detail     json.RawMessage `json:"detail"`
}

// RevokeHandler serves the revoke schedule and the work-finished rule.
func RevokeHandler(svc *app.Service, log *slog.Logger) func(context.Context, json.RawMessage) error {
	return func(ctx context.Context, raw json.RawMessage) error {
		var env eventEnvelope
		if json.Unmarshal(raw, &env) == nil && env.DetailType != "" {
			return endWork(ctx, svc, log, env)
		}
		p, err := schedule.ParsePayload(raw)
		if err != nil || p.Action != app.ActionRevoke {
			log.ErrorContext(ctx, "revoke: ignoring malformed event", "error", errString(err), "action", p.Action)
			return nil
		}
		return retryable(svc.Expire(ctx, p.RequestID))
	}
}

func endWork(ctx context.Context, svc *app.Service, log *slog.Logger, env eventEnvelope) error {
	var d TicketEventDetail
	if err := json.Unmarshal(env.Detail, &d); err != nil || (strings.TrimSpace(d.Ticket) == "" && strings.TrimSpace(d.RequestID) == "") ||
		len(d.Ticket) > 128 || len(d.RequestID) > 64 || len(env.Source) > 128 {
		log.ErrorContext(ctx, "revoke: ignoring event without a usable ticket or requestId", "source", env.Source, "detailType", env.DetailType)
		return nil
	}
	ended, err := svc.EndWork(ctx, app.TicketEvent{Source: env.Source + "/" + env.DetailType, Ticket: strings.TrimSpace(d.Ticket), RequestID: strings.TrimSpace(d.RequestID)})
	log.InfoContext(ctx, "work finished", "source", env.Source, "ticket", d.Ticket, "requestId", d.RequestID, "ended", len(ended), "error", errString(err))
	if access.KindOf(err) == access.KindInternal {
		return err
	}
	return nil
}

// SweepHandler serves the rate(5 minutes) rule.
func SweepHandler(svc *app.Service) func(context.Context, json.RawMessage) (app.SweepReport, error) {
	return func(ctx context.Context, _ json.RawMessage) (app.SweepReport, error) {
		return svc.Sweep(ctx)
	}
}

// retryable passes on only the errors a redelivery could fix.
func retryable(_ access.Request, err error) error {
	switch access.KindOf(err) {
	case "", access.KindNotFound, access.KindConflict, access.KindInvalid, access.KindForbidden:
		return nil
	}
	return err
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
