package stack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"time"

	"github.com/jitaccess/jit/internal/access"
	"github.com/jitaccess/jit/internal/api"
)

// The portal drives the JSON API in-process through the gateway's event
// path (the intake function behind api.Gateway), as the signed-in identity,
// so what it shows is what the API does, errors included.

// Request is a request as the API returns it.
type Request struct {
	ID               string            `json:"id"`
	Requester        string            `json:"requester"`
	Principal        string            `json:"principal"`
	RoleID           string            `json:"roleId"`
	Provider         string            `json:"provider"`
	Justification    string            `json:"justification"`
	Ticket           string            `json:"ticket"`
	Status           access.Status     `json:"status"`
	Mode             access.Mode       `json:"mode"`
	StartAt          time.Time         `json:"startAt"`
	EndAt            time.Time         `json:"endAt"`
	ApprovalDeadline time.Time         `json:"approvalDeadline"`
	Approvers        []string          `json:"approvers"`
	Quorum           int               `json:"quorum"`
	Approvals        []access.Approval `json:"approvals"`
	ReviewRequired   bool              `json:"reviewRequired"`
	Version          int               `json:"version"`
	CreatedAt        time.Time         `json:"createdAt"`
	UpdatedAt        time.Time         `json:"updatedAt"`
	LastError        string            `json:"lastError"`
	RevokeAttempts   int               `json:"revokeAttempts"`
	EndedBy          string            `json:"endedBy"`
	EndReason        string            `json:"endReason"`
}

// Role is a catalog role as GET /catalog returns it.
type Role struct {
	ID               string `json:"id"`
	Description      string `json:"description"`
	Provider         string `json:"provider"`
	DefaultDuration  string `json:"defaultDuration"`
	MaxDuration      string `json:"maxDuration"`
	Approvals        int    `json:"approvals"`
	TicketRequired   bool   `json:"ticketRequired"`
	TicketPattern    string `json:"ticketPattern"`
	MinJustification int    `json:"minJustification"`
	AutoApprove      bool   `json:"autoApprove"`
	BreakGlass       bool   `json:"breakGlass"`
}

// Lists is GET /requests.
type Lists struct {
	Requests           []Request `json:"requests"`
	AwaitingMyApproval []Request `json:"awaitingMyApproval"`
	AwaitingMore       bool      `json:"awaitingMore"`
	Cursor             string    `json:"cursor"`
}

// Trail is GET /requests/{id}/audit.
type Trail struct {
	Records     []access.AuditRecord `json:"records"`
	Verified    bool                 `json:"verified"`
	VerifyError string               `json:"verifyError"`
}

// APIError is an error answer of the API.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("%d %s", e.Status, http.StatusText(e.Status))
	}
	return e.Message
}

// callAPI calls the intake function through the gateway as identity and
// decodes the JSON answer into out.
func (s *Stack) callAPI(ctx context.Context, identity, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req := httptest.NewRequestWithContext(ctx, method, path, rd)
	req.Host = strings.TrimPrefix(s.url, "http://")
	req.Header.Set(DevIdentityHeader, identity)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	s.intake.ServeHTTP(rec, req)
	if rec.Code >= 400 {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		_ = json.Unmarshal(rec.Body.Bytes(), &e)
		return &APIError{Status: rec.Code, Code: e.Error.Code, Message: e.Error.Message}
	}
	if out != nil {
		if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
			return fmt.Errorf("decode %s %s: %w", method, path, err)
		}
	}
	return nil
}

// requireIdentity sends anonymous visitors to the sign-in page.
func requireIdentity(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := identityOf(r)
	if id == "" {
		http.Redirect(w, r, "/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
	}
	return id, id != ""
}

type portalData struct {
	Roles    []Role
	Mine     []Request
	Awaiting []Request
	// AwaitingMore: more await than the page shows (the oldest come first).
	AwaitingMore bool
	Form         map[string]string
	Problem      string
}

func (s *Stack) portalData(ctx context.Context, id string) portalData {
	d := portalData{Form: map[string]string{}}
	var cat struct {
		Roles []Role `json:"roles"`
	}
	var lists Lists
	if err := s.callAPI(ctx, id, http.MethodGet, "/catalog", nil, &cat); err != nil {
		d.Problem = "GET /catalog: " + err.Error()
	}
	if err := s.callAPI(ctx, id, http.MethodGet, "/requests?limit=100", nil, &lists); err != nil {
		d.Problem = "GET /requests: " + err.Error()
	}
	d.Roles, d.Mine, d.Awaiting, d.AwaitingMore = cat.Roles, lists.Requests, lists.AwaitingMyApproval, lists.AwaitingMore
	return d
}

func (s *Stack) portalPage(w http.ResponseWriter, r *http.Request) {
	id, ok := requireIdentity(w, r)
	if !ok {
		return
	}
	d := s.portalData(r.Context(), id)
	f := takeFlash(w, r)
	if f != nil && f.Form != nil {
		d.Form = f.Form
	}
	s.render(w, r, http.StatusOK, "portal", page{Title: "Portal", Nav: "portal", Flash: f, Data: d})
}

// portalLive is the part of the portal that refreshes itself.
func (s *Stack) portalLive(w http.ResponseWriter, r *http.Request) {
	id := identityOf(r)
	if id == "" {
		http.Error(w, "sign in first", http.StatusUnauthorized)
		return
	}
	s.renderFragment(w, r, "portal", "live", page{Data: s.portalData(r.Context(), id)})
}

// startLayout is what <input type="datetime-local"> sends.
const startLayout = "2006-01-02T15:04"

func (s *Stack) portalCreate(w http.ResponseWriter, r *http.Request) {
	id, ok := requireIdentity(w, r)
	if !ok {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	_ = r.ParseForm()
	form := map[string]string{}
	for _, k := range []string{"roleId", "duration", "startAt", "justification", "ticket"} {
		form[k] = strings.TrimSpace(r.PostForm.Get(k))
	}
	body := api.CreateBody{RoleID: form["roleId"], Duration: form["duration"], Justification: form["justification"], Ticket: form["ticket"]}
	if v := form["startAt"]; v != "" {
		t, err := time.Parse(startLayout, v)
		if err != nil {
			t, err = time.Parse(startLayout+":05", v)
		}
		if err != nil {
			setFlash(w, flash{Kind: "error", Text: "Start: use the date and time picker (UTC), or leave it empty.", Form: form})
			http.Redirect(w, r, "/portal", http.StatusSeeOther)
			return
		}
		body.StartAt = t.UTC().Format(time.RFC3339)
	}
	var req Request
	if err := s.callAPI(r.Context(), id, http.MethodPost, "/requests", body, &req); err != nil {
		setFlash(w, flash{Kind: "error", Text: "The request was refused: " + err.Error(), Form: form})
		http.Redirect(w, r, "/portal", http.StatusSeeOther)
		return
	}
	msg := fmt.Sprintf("Requested %s for %s: it is %s.", req.RoleID, human(req.Duration()), req.Status)
	switch req.Status {
	case access.StatusPending:
		msg += fmt.Sprintf(" %d approval(s) needed; the approvers were emailed (see the mailbox).", req.Quorum)
	case access.StatusApproved:
		msg += " It starts at " + when(req.StartAt) + "."
	case access.StatusActive:
		msg += " Access is in place until " + when(req.EndAt) + "."
	}
	setFlash(w, flash{Kind: "ok", Text: msg})
	http.Redirect(w, r, "/portal", http.StatusSeeOther)
}

var actionText = map[string]string{
	"approve": "Approved", "deny": "Denied", "cancel": "Cancelled", "revoke": "Ended access of",
}

func (s *Stack) portalAction(w http.ResponseWriter, r *http.Request) {
	id, ok := requireIdentity(w, r)
	if !ok {
		return
	}
	reqID, action := r.PathValue("id"), r.PathValue("action")
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	_ = r.ParseForm()
	next := safeNext(r.PostForm.Get("next"))
	done, known := actionText[action]
	if !known {
		setFlash(w, flash{Kind: "error", Text: "Unknown action " + action + "."})
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	var req Request
	body := api.DecisionBody{Comment: strings.TrimSpace(r.PostForm.Get("comment"))}
	path := "/requests/" + url.PathEscape(reqID) + "/" + action
	if err := s.callAPI(r.Context(), id, http.MethodPost, path, body, &req); err != nil {
		setFlash(w, flash{Kind: "error", Text: fmt.Sprintf("Could not %s: %s", action, err.Error())})
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	msg := fmt.Sprintf("%s %s (%s for %s): it is now %s.", done, req.RoleID, req.ID, req.Requester, req.Status)
	if req.Status == access.StatusPending && action == "approve" {
		msg += fmt.Sprintf(" %d of %d approvals so far.", approvedCount(req), req.Quorum)
	}
	setFlash(w, flash{Kind: "ok", Text: msg})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

type requestData struct {
	Request Request
	Trail   Trail
	Problem string
}

func (s *Stack) requestPage(w http.ResponseWriter, r *http.Request) {
	id, ok := requireIdentity(w, r)
	if !ok {
		return
	}
	reqID := r.PathValue("id")
	var d requestData
	err := s.callAPI(r.Context(), id, http.MethodGet, "/requests/"+url.PathEscape(reqID), nil, &d.Request)
	if err == nil {
		err = s.callAPI(r.Context(), id, http.MethodGet, "/requests/"+url.PathEscape(reqID)+"/audit", nil, &d.Trail)
	}
	status := http.StatusOK
	if err != nil {
		d.Problem, status = err.Error(), http.StatusInternalServerError
		if e, ok := err.(*APIError); ok {
			status = e.Status
		}
	}
	if r.URL.Query().Get("fragment") != "" {
		s.renderFragment(w, r, "request", "detail", page{Data: d})
		return
	}
	title := "Request " + reqID
	if d.Request.RoleID != "" {
		title = d.Request.RoleID + " for " + d.Request.Requester
	}
	s.render(w, r, status, "request", page{Title: title, Nav: "portal", Data: d})
}

// Duration is the length of the access window.
func (r Request) Duration() time.Duration { return r.EndAt.Sub(r.StartAt) }

func approvedCount(r Request) int {
	n := 0
	for _, a := range r.Approvals {
		if a.Decision == access.DecisionApprove {
			n++
		}
	}
	return n
}
