package api

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/awslabs/aws-lambda-go-api-proxy/core"

	"github.com/jitaccess/jit/internal/access"
	"github.com/jitaccess/jit/internal/app"
)

// Options configure the handlers.
type Options struct {
	// IdentityClaim is the JWT claim that names the caller (e.g. email).
	IdentityClaim string
	Log           *slog.Logger
}

// IntakeRoutes are the routes the intake function serves (all behind the JWT authorizer).
var IntakeRoutes = []string{
	"GET /catalog",
	"GET /requests",
	"POST /requests",
	"GET /requests/{id}",
	"POST /requests/{id}/approve",
	"POST /requests/{id}/deny",
	"POST /requests/{id}/cancel",
	"POST /requests/{id}/revoke",
	"GET /requests/{id}/audit",
}

// ApprovalRoutes are the public, token-authenticated email-link routes.
var ApprovalRoutes = []string{
	"GET /approvals/{token}",
	"HEAD /approvals/{token}",
	"POST /approvals/{token}",
}

type intake struct {
	svc   *app.Service
	claim string
	log   *slog.Logger
}

// Intake is the handler of the intake function.
func Intake(svc *app.Service, opt Options) http.Handler {
	h := &intake{svc: svc, claim: opt.IdentityClaim, log: opt.Log}
	if h.claim == "" {
		h.claim = "email"
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	mux := http.NewServeMux()
	handle := map[string]func(http.ResponseWriter, *http.Request, app.Caller) error{
		"GET /catalog":                h.catalog,
		"GET /requests":               h.list,
		"POST /requests":              h.create,
		"GET /requests/{id}":          h.get,
		"POST /requests/{id}/approve": h.decide(access.DecisionApprove),
		"POST /requests/{id}/deny":    h.decide(access.DecisionDeny),
		"POST /requests/{id}/cancel":  h.cancel,
		"POST /requests/{id}/revoke":  h.revoke,
		"GET /requests/{id}/audit":    h.audit,
	}
	for _, route := range IntakeRoutes {
		fn := handle[route]
		mux.HandleFunc(route, func(w http.ResponseWriter, r *http.Request) {
			caller, err := CallerOf(r.Context(), h.claim)
			if err == nil {
				err = fn(w, r, caller)
			}
			if err != nil {
				writeError(w, r, h.log, err)
			}
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, h.log, access.Errorf(access.KindNotFound, "no route for %s %s", r.Method, r.URL.Path))
	})
	return mux
}

// CallerOf reads the caller's identity from the JWT authorizer's claims in
// the API Gateway v2 event, never from the body.
func CallerOf(ctx context.Context, claim string) (app.Caller, error) {
	rc, ok := core.GetAPIGatewayV2ContextFromContext(ctx)
	if !ok || rc.Authorizer == nil || rc.Authorizer.JWT == nil {
		return app.Caller{}, access.Errorf(access.KindUnauthorized, "sign in first: no verified identity on this request")
	}
	id := strings.ToLower(strings.TrimSpace(rc.Authorizer.JWT.Claims[claim]))
	if id == "" || len(id) > 254 || strings.ContainsAny(id, " \t\r\n") {
		return app.Caller{}, access.Errorf(access.KindUnauthorized, "the token carries no usable %q claim", claim)
	}
	// An email the identity provider says it has not verified is anyone's
	// to type in. (Providers that never send email_verified are trusted.)
	if v, ok := rc.Authorizer.JWT.Claims["email_verified"]; ok && claim == "email" && !strings.EqualFold(strings.TrimSpace(v), "true") {
		return app.Caller{}, access.Errorf(access.KindUnauthorized, "the identity provider has not verified this email address")
	}
	return app.Caller{Identity: id}, nil
}

func (h *intake) catalog(w http.ResponseWriter, r *http.Request, c app.Caller) error {
	roles := h.svc.Roles(c)
	out := make([]roleView, 0, len(roles))
	for _, role := range roles {
		out = append(out, newRoleView(role))
	}
	writeJSON(w, http.StatusOK, map[string]any{"roles": out})
	return nil
}

func (h *intake) create(w http.ResponseWriter, r *http.Request, c app.Caller) error {
	in, err := DecodeCreate(r.Body)
	if err != nil {
		return err
	}
	req, err := h.svc.Submit(r.Context(), c, in)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/requests/"+req.ID)
	writeJSON(w, http.StatusCreated, newRequestView(req))
	return nil
}

func (h *intake) list(w http.ResponseWriter, r *http.Request, c app.Caller) error {
	limit := 0
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 100 {
			return access.FieldErrorf("limit", "must be a number from 1 to 100")
		}
		limit = n
	}
	lists, err := h.svc.List(r.Context(), c, limit, r.URL.Query().Get("cursor"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"requests": views(lists.Mine), "awaitingMyApproval": views(lists.Awaiting), "awaitingMore": lists.AwaitingMore, "cursor": lists.Cursor,
	})
	return nil
}

func (h *intake) get(w http.ResponseWriter, r *http.Request, c app.Caller) error {
	id, err := requestID(r)
	if err != nil {
		return err
	}
	req, err := h.svc.Get(r.Context(), c, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newRequestView(req))
	return nil
}

func (h *intake) decide(d access.Decision) func(http.ResponseWriter, *http.Request, app.Caller) error {
	return func(w http.ResponseWriter, r *http.Request, c app.Caller) error {
		id, err := requestID(r)
		if err != nil {
			return err
		}
		comment, err := commentOf(r)
		if err != nil {
			return err
		}
		if _, err := h.svc.Get(r.Context(), c, id); err != nil {
			return err
		}
		req, err := h.svc.Decide(r.Context(), c, app.DecideInput{RequestID: id, Decision: d, Comment: comment})
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, newRequestView(req))
		return nil
	}
}

func (h *intake) cancel(w http.ResponseWriter, r *http.Request, c app.Caller) error {
	return h.end(w, r, c, h.svc.Cancel)
}

func (h *intake) revoke(w http.ResponseWriter, r *http.Request, c app.Caller) error {
	return h.end(w, r, c, h.svc.RevokeEarly)
}

func (h *intake) end(w http.ResponseWriter, r *http.Request, c app.Caller,
	do func(context.Context, app.Caller, string, string) (access.Request, error)) error {
	id, err := requestID(r)
	if err != nil {
		return err
	}
	reason, err := commentOf(r)
	if err != nil {
		return err
	}
	if _, err := h.svc.Get(r.Context(), c, id); err != nil {
		return err
	}
	req, err := do(r.Context(), c, id, reason)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newRequestView(req))
	return nil
}

func (h *intake) audit(w http.ResponseWriter, r *http.Request, c app.Caller) error {
	id, err := requestID(r)
	if err != nil {
		return err
	}
	trail, err := h.svc.Audit(r.Context(), c, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"records": trail.Records, "verified": trail.Verified, "verifyError": trail.VerifyError})
	return nil
}

// requestID validates the {id} path value before it reaches a store key.
func requestID(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if id == "" || len(id) > 64 {
		return "", access.FieldErrorf("id", "is not a request id")
	}
	for _, c := range id {
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '-' || c == '_') {
			return "", access.FieldErrorf("id", "is not a request id")
		}
	}
	return id, nil
}
