package api

import (
	"html/template"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jitaccess/jit/internal/access"
	"github.com/jitaccess/jit/internal/app"
)

type approvals struct {
	svc *app.Service
	log *slog.Logger
}

// Approvals is the handler of the approve function: the public pages behind
// the email links. GET and HEAD only show; only a POST from the page's
// buttons decides, because mail scanners open (and sometimes submit) links.
func Approvals(svc *app.Service, opt Options) http.Handler {
	h := &approvals{svc: svc, log: opt.Log}
	if h.log == nil {
		h.log = slog.Default()
	}
	mux := http.NewServeMux()
	handle := map[string]http.HandlerFunc{
		"GET /approvals/{token}":  h.show,
		"HEAD /approvals/{token}": h.show,
		"POST /approvals/{token}": h.decide,
	}
	// Built from ApprovalRoutes, so the OpenAPI agreement test sees exactly
	// what is served.
	for _, route := range ApprovalRoutes {
		mux.HandleFunc(route, handle[route])
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.page(w, r, http.StatusNotFound, pageData{Title: "Not found", Message: "There is nothing here."})
	})
	return mux
}

type pageData struct {
	Title   string
	Message string
	Request *access.Request
	Claims  *access.ApprovalClaims
	Form    bool
	Status  access.Status
}

func (h *approvals) show(w http.ResponseWriter, r *http.Request) {
	v, err := h.svc.ViewApproval(r.Context(), r.PathValue("token"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	d := pageData{Title: "Approve access?", Request: &v.Request, Claims: &v.Claims, Status: v.Request.Status}
	switch {
	case v.Request.Status != access.StatusPending:
		d.Title, d.Message = "Already decided", "This request is "+string(v.Request.Status)+"; it needs no decision."
	case v.Request.HasDecided(v.Claims.Approver):
		d.Title, d.Message = "Already decided", "You have already decided this request."
	default:
		d.Form = true
	}
	h.page(w, r, http.StatusOK, d)
}

func (h *approvals) decide(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	if err := r.ParseForm(); err != nil {
		h.fail(w, r, access.Errorf(access.KindInvalid, "the form could not be read"))
		return
	}
	if len(r.PostForm["decision"]) != 1 || len(r.PostForm["comment"]) > 1 {
		// decision=approve&decision=deny must not count as either.
		h.fail(w, r, access.FieldErrorf("decision", "press Approve or Deny, once"))
		return
	}
	var d access.Decision
	switch r.PostForm.Get("decision") {
	case "approve":
		d = access.DecisionApprove
	case "deny":
		d = access.DecisionDeny
	default:
		h.fail(w, r, access.FieldErrorf("decision", "press Approve or Deny"))
		return
	}
	comment := strings.TrimSpace(r.PostForm.Get("comment"))
	if utf8.RuneCountInString(comment) > 1000 {
		h.fail(w, r, access.FieldErrorf("comment", "must be at most 1000 characters"))
		return
	}
	req, err := h.svc.DecideByLink(r.Context(), r.PathValue("token"), d, comment)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	msg := "You approved this request."
	if d == access.DecisionDeny {
		msg = "You denied this request."
	}
	if req.Status == access.StatusPending {
		msg += " It still needs more approvals."
	} else {
		msg += " It is now " + string(req.Status) + "."
	}
	h.page(w, r, http.StatusOK, pageData{Title: "Decision recorded", Message: msg, Request: &req, Status: req.Status})
}

func (h *approvals) fail(w http.ResponseWriter, r *http.Request, err error) {
	status := Status(err)
	title := map[int]string{400: "This link is not valid", 401: "This link is not valid", 403: "Not allowed",
		404: "Request not found", 409: "Nothing to decide", 429: "Too many attempts"}[status]
	if title == "" {
		title = "Something went wrong"
		h.log.ErrorContext(r.Context(), "approval page failed", "error", err.Error())
	}
	h.page(w, r, status, pageData{Title: title, Message: access.PublicMessage(err)})
}

func (h *approvals) page(w http.ResponseWriter, r *http.Request, status int, d pageData) {
	// The token is in the URL: never leak it through a Referer, a cache or a frame.
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	if err := approvalPage.Execute(w, d); err != nil {
		h.log.ErrorContext(r.Context(), "render approval page", "error", err)
	}
}

var approvalPage = template.Must(template.New("approval").Funcs(template.FuncMap{
	"when": func(t time.Time) string { return t.UTC().Format("Mon 2 Jan 2006 15:04 MST") },
	"dur":  func(r *access.Request) string { return r.Duration().String() },
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="robots" content="noindex"><title>{{.Title}} · JIT access</title>
<style>
body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;color:#1b1b1b}
h1{font-size:1.4rem} dl{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem}
dt{font-weight:600} dd{margin:0;overflow-wrap:anywhere} .msg{padding:.75rem;background:#f3f4f6;border-radius:6px}
textarea{width:100%;min-height:4rem;font:inherit} .buttons{display:flex;gap:1rem;margin-top:1rem}
button{font:inherit;padding:.5rem 1.5rem;border-radius:6px;border:1px solid #555;cursor:pointer}
button.approve{background:#166534;color:#fff} button.deny{background:#991b1b;color:#fff}
button:focus-visible{outline:3px solid #2563eb;outline-offset:2px}
</style></head><body><main>
<h1>{{.Title}}</h1>
{{with .Message}}<p class="msg" role="status">{{.}}</p>{{end}}
{{with .Request}}
<dl>
<dt>Requested by</dt><dd>{{.Requester}}</dd>
<dt>Role</dt><dd>{{.RoleID}} ({{.Provider}})</dd>
<dt>Granted to</dt><dd>{{.Principal}}</dd>
<dt>For</dt><dd>{{dur .}}</dd>
<dt>From</dt><dd>{{when .StartAt}}</dd>
<dt>Until</dt><dd>{{when .EndAt}}</dd>
<dt>Why</dt><dd>{{.Justification}}</dd>
{{if .Ticket}}<dt>Ticket</dt><dd>{{.Ticket}}</dd>{{end}}
<dt>Approvals</dt><dd>{{.Approved}} of {{.Quorum}} needed</dd>
<dt>Decide by</dt><dd>{{when .ApprovalDeadline}}</dd>
<dt>Status</dt><dd>{{.Status}}</dd>
</dl>
{{end}}
{{if .Form}}
<form method="post">
<label for="comment">Comment (optional)</label>
<textarea id="comment" name="comment" maxlength="1000"></textarea>
<div class="buttons">
<button class="approve" type="submit" name="decision" value="approve">Approve</button>
<button class="deny" type="submit" name="decision" value="deny">Deny</button>
</div>
</form>
<p><small>Signed in as {{.Claims.Approver}} by this personal link. Opening it decided nothing.</small></p>
{{end}}
</main></body></html>`))
