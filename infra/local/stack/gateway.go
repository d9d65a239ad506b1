package stack

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/jitaccess/jit/internal/api"
	"github.com/jitaccess/jit/internal/catalog"
	"github.com/jitaccess/jit/internal/config"
)

// identityCookie holds the dev sign-in's identity. It is not signed: the
// local stack trusts whoever can reach it, as the dev sign-in is only a
// stand-in for the JWT authorizer.
const identityCookie = "jit_dev_identity"

// flashCookie carries one message (and, after a refused form, its values)
// across a POST-redirect-GET.
const flashCookie = "jit_flash"

// routes is everything the gateway serves: the API and approval pages
// through the same event path API Gateway uses, and the dev pages.
func (s *Stack) routes() http.Handler {
	opts := api.Options{IdentityClaim: s.cfg.IdentityClaim}
	opts.Log = s.log.With("fn", config.Intake)
	s.intake = api.Gateway(api.Lambda(api.Intake(s.services[config.Intake], opts)), s.claims)
	opts.Log = s.log.With("fn", config.Approve)
	// The approval pages are public: API Gateway runs no authorizer on them.
	s.approvals = api.Gateway(api.Lambda(api.Approvals(s.services[config.Approve], opts)), noClaims)

	// Whole prefixes, as API Gateway routes them: the functions' own muxes
	// answer unknown routes and methods, in their own (JSON or HTML) way.
	mux := http.NewServeMux()
	mux.Handle("/catalog", s.intake)
	mux.Handle("/requests", s.intake)
	mux.Handle("/requests/", s.intake)
	mux.Handle("/approvals/", s.approvals)
	mux.HandleFunc("GET /{$}", s.home)
	mux.HandleFunc("GET /signin", s.signinPage)
	mux.HandleFunc("POST /signin", s.signin)
	mux.HandleFunc("POST /signout", s.signout)
	mux.HandleFunc("GET /portal", s.portalPage)
	mux.HandleFunc("GET /portal/live", s.portalLive)
	mux.HandleFunc("POST /portal/requests", s.portalCreate)
	mux.HandleFunc("GET /portal/requests/{id}", s.requestPage)
	mux.HandleFunc("POST /portal/requests/{id}/{action}", s.portalAction)
	mux.HandleFunc("GET /mailbox", s.mailboxPage)
	mux.HandleFunc("GET /assets/{file}", assets)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.render(w, r, http.StatusNotFound, "notfound", page{Title: "Not found"})
	})
	return s.accessLog(mux)
}

// claims stands in for the JWT authorizer: the X-Dev-Identity header (for
// scripts and tests) or the dev sign-in cookie become the token's claims.
func (s *Stack) claims(r *http.Request) map[string]string {
	id := identityOf(r)
	if id == "" {
		return nil
	}
	return map[string]string{"email": id, "sub": id}
}

func noClaims(*http.Request) map[string]string { return nil }

// identityOf is who the request is from: the header wins over the cookie.
func identityOf(r *http.Request) string {
	if h := strings.TrimSpace(r.Header.Get(DevIdentityHeader)); h != "" {
		return strings.ToLower(h)
	}
	if c, err := r.Cookie(identityCookie); err == nil {
		if v, err := url.QueryUnescape(c.Value); err == nil {
			return strings.ToLower(strings.TrimSpace(v))
		}
	}
	return ""
}

func (s *Stack) home(w http.ResponseWriter, r *http.Request) {
	if identityOf(r) == "" {
		http.Redirect(w, r, "/signin", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/portal", http.StatusSeeOther)
}

// Identity is one demo identity the sign-in page offers.
type Identity struct {
	Email     string
	Principal string   // the IAM principal it receives access on, if any
	Requests  []string // roles it may request
	Approves  []string // roles it may approve
	Admin     bool
	Security  bool
}

// Identities lists every identity the catalog names (principals, group
// members, requesters, approvers, admins, security contacts), sorted.
func Identities(c *catalog.Catalog) []Identity {
	seen := map[string]*Identity{}
	add := func(id string) *Identity {
		id = strings.ToLower(strings.TrimSpace(id))
		if id == "" || strings.HasPrefix(id, "group:") {
			return nil
		}
		if seen[id] == nil {
			seen[id] = &Identity{Email: id}
		}
		return seen[id]
	}
	for id, p := range c.Principals {
		add(id).Principal = p.String()
	}
	for _, members := range c.Groups {
		for _, m := range members {
			add(m)
		}
	}
	for _, a := range c.Admins {
		add(a).Admin = true
	}
	for _, a := range c.SecurityContacts {
		add(a).Security = true
	}
	for _, r := range c.Roles {
		for _, m := range c.Members(r.Requesters) {
			i := add(m)
			i.Requests = append(i.Requests, r.ID)
		}
		for _, m := range c.Members(r.Approvers) {
			i := add(m)
			i.Approves = append(i.Approves, r.ID)
		}
	}
	out := make([]Identity, 0, len(seen))
	for _, k := range slices.Sorted(maps.Keys(seen)) {
		out = append(out, *seen[k])
	}
	return out
}

func (s *Stack) signinPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "signin", page{Title: "Sign in", Data: map[string]any{
		"Identities": Identities(s.catalog),
		"Next":       safeNext(r.URL.Query().Get("next")),
	}})
}

func (s *Stack) signin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	_ = r.ParseForm()
	id := strings.ToLower(strings.TrimSpace(r.PostForm.Get("identity")))
	if id == "" {
		id = strings.ToLower(strings.TrimSpace(r.PostForm.Get("other")))
	}
	if id == "" || len(id) > 254 || strings.ContainsAny(id, " \t\r\n;,") {
		setFlash(w, flash{Kind: "error", Text: "Pick an identity, or type one without spaces."})
		http.Redirect(w, r, "/signin", http.StatusSeeOther)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: identityCookie, Value: url.QueryEscape(id), Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	setFlash(w, flash{Kind: "ok", Text: "Signed in as " + id + "."})
	http.Redirect(w, r, safeNext(r.PostForm.Get("next")), http.StatusSeeOther)
}

func (s *Stack) signout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: identityCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	setFlash(w, flash{Kind: "ok", Text: "Signed out."})
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}

// safeNext keeps redirects on this site: a local path or /portal.
func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return "/portal"
	}
	return next
}

// flash is a one-time message shown after a redirect; Form keeps the
// values of a refused form so they can be filled in again.
type flash struct {
	Kind string            `json:"k"` // ok | error
	Text string            `json:"t"`
	Form map[string]string `json:"f,omitempty"`
}

func setFlash(w http.ResponseWriter, f flash) {
	b, _ := json.Marshal(f)
	v := base64.RawURLEncoding.EncodeToString(b)
	if len(v) > 3500 { // stay under the cookie size limit: drop the form
		f.Form = nil
		b, _ = json.Marshal(f)
		v = base64.RawURLEncoding.EncodeToString(b)
	}
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: v, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

// takeFlash reads and clears the flash.
func takeFlash(w http.ResponseWriter, r *http.Request) *flash {
	c, err := r.Cookie(flashCookie)
	if err != nil || c.Value == "" {
		return nil
	}
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	b, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil {
		return nil
	}
	var f flash
	if json.Unmarshal(b, &f) != nil || f.Text == "" {
		return nil
	}
	return &f
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// accessLog logs every request but the assets, with who made it.
func (s *Stack) accessLog(h http.Handler) http.Handler {
	log := s.log.With("fn", "gateway")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		if strings.HasPrefix(r.URL.Path, "/assets/") || r.URL.Path == "/portal/live" || r.URL.Path == "/healthz" {
			return
		}
		path := r.URL.Path
		if strings.HasPrefix(path, "/approvals/") {
			path = "/approvals/…" // the token is a credential
		}
		log.Info(fmt.Sprintf("%s %s", r.Method, path), "status", rec.status, "identity", identityOf(r), "took", time.Since(t).Round(time.Millisecond).String())
	})
}
