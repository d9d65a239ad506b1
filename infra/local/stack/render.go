package stack

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/jitaccess/jit/internal/access"
)

//go:embed templates assets
var files embed.FS

// page is what every page template gets.
type page struct {
	Title    string
	Nav      string // portal | mailbox | signin
	Identity string
	Flash    *flash
	Now      time.Time
	Data     any
}

var pageNames = []string{"signin", "portal", "request", "mailbox", "notfound"}

var pages = func() map[string]*template.Template {
	m := map[string]*template.Template{}
	for _, name := range pageNames {
		m[name] = template.Must(template.New(name).Funcs(funcs).ParseFS(files, "templates/layout.html", "templates/"+name+".html"))
	}
	return m
}()

var funcs = template.FuncMap{
	"when":  when,
	"clock": func(t time.Time) string { return t.UTC().Format("15:04:05") },
	"join":  func(ss []string) string { return strings.Join(ss, ", ") },
	"lower": strings.ToLower,
	"short": func(h string) string {
		if len(h) > 12 {
			return h[:12] + "…"
		}
		return h
	},
	"dur": func(r Request) string { return human(r.Duration()) },
	"hdur": func(s string) string { // a Go duration from the API, for people
		if d, err := time.ParseDuration(s); err == nil {
			return human(d)
		}
		return s
	},
	"approved": approvedCount,
	"terminal": func(s access.Status) bool { return s.Terminal() },
	"canCancel": func(s access.Status) bool {
		return s == access.StatusPending || s == access.StatusApproved
	},
	"isActive": func(s access.Status) bool { return s == access.StatusActive },
	"mode": func(r Role) string {
		switch {
		case r.BreakGlass:
			return "break-glass: granted at once, everyone told, reviewed afterwards"
		case r.AutoApprove:
			return "approved automatically by policy"
		case r.Approvals > 1:
			return fmt.Sprintf("needs %d approvals", r.Approvals)
		}
		return "needs 1 approval"
	},
	"isSelf": func(a, b string) bool { return strings.EqualFold(a, b) },
	"left":   timeLeft,
}

// when formats a time for people: UTC, to the minute.
func when(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("Mon 2 Jan 15:04 UTC")
}

// human formats a duration for people: 1h 5m, 42m, 30s.
func human(d time.Duration) string {
	neg := d < 0
	if neg {
		d = -d
	}
	var s string
	switch {
	case d < time.Minute:
		s = fmt.Sprintf("%ds", int(d.Round(time.Second)/time.Second))
	case d < time.Hour:
		s = fmt.Sprintf("%dm", int(d.Round(time.Minute)/time.Minute))
	default:
		d = d.Round(time.Minute)
		h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
		s = fmt.Sprintf("%dh", h)
		if m > 0 {
			s += fmt.Sprintf(" %dm", m)
		}
	}
	if neg {
		return "-" + s
	}
	return s
}

// timeLeft says where a request stands in time, by the stack's clock.
func timeLeft(r Request, now time.Time) string {
	switch r.Status {
	case access.StatusPending:
		if now.Before(r.ApprovalDeadline) {
			return fmt.Sprintf("%d of %d approvals; decide within %s", approvedCount(r), r.Quorum, human(r.ApprovalDeadline.Sub(now)))
		}
		return "approval deadline passed"
	case access.StatusApproved:
		if now.Before(r.StartAt) {
			return "starts in " + human(r.StartAt.Sub(now))
		}
		return "starting…"
	case access.StatusActive:
		if now.Before(r.EndAt) {
			return human(r.EndAt.Sub(now)) + " left"
		}
		return "ending…"
	}
	if r.EndReason != "" {
		return r.EndReason
	}
	if !r.UpdatedAt.IsZero() {
		return "since " + when(r.UpdatedAt)
	}
	return "—"
}

const csp = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
	"frame-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func (s *Stack) setHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	// The mailbox holds approval links, whose tokens are credentials.
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", csp)
}

// render writes a whole page; the template runs into a buffer first, so a
// template error is a clean 500.
func (s *Stack) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	if p.Identity == "" {
		p.Identity = identityOf(r)
	}
	if p.Flash == nil {
		p.Flash = takeFlash(w, r)
	}
	p.Now = s.clock()
	var buf bytes.Buffer
	if err := pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		s.log.Error("render page", "page", name, "error", err)
		http.Error(w, "could not render the page", http.StatusInternalServerError)
		return
	}
	s.setHeaders(w)
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// renderFragment writes one named block of a page, for the live refresh.
func (s *Stack) renderFragment(w http.ResponseWriter, r *http.Request, name, block string, p page) {
	p.Identity = identityOf(r)
	p.Now = s.clock()
	var buf bytes.Buffer
	if err := pages[name].ExecuteTemplate(&buf, block, p); err != nil {
		s.log.Error("render fragment", "page", name, "block", block, "error", err)
		http.Error(w, "could not render", http.StatusInternalServerError)
		return
	}
	s.setHeaders(w)
	_, _ = w.Write(buf.Bytes())
}

var assetTypes = map[string]string{".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}

func assets(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	b, err := files.ReadFile("assets/" + name)
	if err != nil || strings.Contains(name, "/") {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", assetTypes[path.Ext(name)])
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(b)
}
