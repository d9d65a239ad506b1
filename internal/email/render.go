package email

import (
	"bytes"
	_ "embed"
	htmltemplate "html/template"
	"net/url"
	"strconv"
	"strings"
	texttemplate "text/template"
	"time"
	"unicode"

	"github.com/jitaccess/jit/internal/access"
)

// Message is a rendered notice, ready to send or to show.
type Message struct {
	To      []string
	Subject string
	Text    string
	HTML    string
}

// maxSubject keeps subjects readable in a mail client list, in runes.
const maxSubject = 200

// timeLayout is RFC 1123 without seconds: times are shown in UTC.
const timeLayout = "Mon, 02 Jan 2006 15:04 MST"

var (
	//go:embed templates/notice.html
	htmlSource string
	//go:embed templates/notice.txt
	textSource string

	htmlTmpl = htmltemplate.Must(htmltemplate.New("notice.html").Parse(htmlSource))
	textTmpl = texttemplate.Must(texttemplate.New("notice.txt").Funcs(texttemplate.FuncMap{
		"field": textField,
	}).Parse(textSource))
)

// view is what the templates render; every string in it is plain text, and
// html/template escapes it on the way into the HTML body.
type view struct {
	Subject     string
	Alert       string // loud banner, for break-glass and failing revokes
	Heading     string
	Intro       string
	Facts       []fact
	Decisions   []decision
	ActionURL   string
	ActionLabel string
	ActionNote  string
	PortalURL   string
}

type fact struct {
	Label, Value string
}

type decision struct {
	Approver, Decision, At, Comment string
}

// Render builds the email for n. baseURL, when set, adds a link to the
// request in the portal. An approval request carries a personal link, so it
// must go to exactly one person; Render refuses anything else.
func Render(n access.Notice, baseURL string) (Message, error) {
	to := recipients(n.To)
	r := n.Request
	v := view{PortalURL: portalURL(baseURL, r.ID)}
	what := r.RoleID + " on " + r.Principal.String()

	switch n.Kind {
	case access.NoticeApprovalRequested:
		if len(to) > 1 {
			return Message{}, access.Errorf(access.KindInternal, "approval request for %s addressed to %d people: its link is personal", r.ID, len(to))
		}
		if n.ActionURL == "" {
			return Message{}, access.Errorf(access.KindInternal, "approval request for %s has no approval link", r.ID)
		}
		v.Subject = "Approval needed: " + r.Requester + " requests " + what + " for " + humanDuration(r.Duration())
		v.Heading = "Approval needed"
		v.Intro = r.Requester + " asks for temporary AWS access, and you are one of the approvers."
		v.Facts = append(requestFacts(r),
			fact{"Decide by", formatTime(r.ApprovalDeadline)},
			fact{"Approvals", quorum(r)},
		)
		v.ActionURL = n.ActionURL
		v.ActionLabel = "Review and decide"
		v.ActionNote = "This link is personal to you: do not forward it. It opens a page that shows exactly what would be granted, " +
			"where you confirm with Approve or Deny; opening the link decides nothing. It works once, until " + formatTime(r.ApprovalDeadline) + "."
	case access.NoticeBreakGlass:
		v.Subject = "[BREAK-GLASS] " + r.Requester + " took " + what + " for " + humanDuration(r.Duration())
		v.Alert = "Break-glass access was granted without approval. Review required."
		v.Heading = "Break-glass access: review required"
		v.Intro = r.Requester + " used break-glass to get " + what + " without approval. " +
			"A human must review it: check the justification and what was done with the access, and revoke it if it was not warranted."
		v.Facts = requestFacts(r)
	case access.NoticeApproved:
		v.Subject = "Approved: " + what + " (" + r.ID + ")"
		v.Heading = "Request approved"
		v.Intro = "The request of " + r.Requester + " for " + what + " was approved. Access starts " + formatTime(r.StartAt) + "."
		v.Facts = shortFacts(r, n)
	case access.NoticeDenied:
		v.Subject = "Denied: " + what + " (" + r.ID + ")"
		v.Heading = "Request denied"
		v.Intro = "The request of " + r.Requester + " for " + what + " was denied."
		v.Facts = shortFacts(r, n)
	case access.NoticeTimedOut:
		v.Subject = "Timed out: " + what + " (" + r.ID + ")"
		v.Heading = "Request timed out"
		v.Intro = "The request of " + r.Requester + " for " + what + " got no decision by " + formatTime(r.ApprovalDeadline) + " and has lapsed."
		v.Facts = shortFacts(r, n)
	case access.NoticeCancelled:
		v.Subject = "Cancelled: " + what + " (" + r.ID + ")"
		v.Heading = "Request cancelled"
		v.Intro = "The request of " + r.Requester + " for " + what + " was cancelled."
		v.Facts = shortFacts(r, n)
	case access.NoticeActive:
		v.Subject = "Active: " + what + " until " + formatTime(r.EndAt)
		v.Heading = "Access active"
		v.Intro = r.Principal.String() + " now has " + r.RoleID + " until " + formatTime(r.EndAt) + ", when it is removed automatically."
		v.Facts = shortFacts(r, n)
	case access.NoticeEnded:
		v.Subject = "Ended: " + what + " (" + r.ID + ")"
		v.Heading = "Access ended"
		v.Intro = "The access of " + r.Principal.String() + " to " + r.RoleID + " has ended (" + strings.ToLower(string(r.Status)) + ")."
		v.Facts = shortFacts(r, n)
	case access.NoticeFailed:
		v.Subject = "Failed: " + what + " (" + r.ID + ")"
		v.Heading = "Request failed"
		v.Intro = "The request of " + r.Requester + " for " + what + " failed."
		v.Facts = shortFacts(r, n)
	case access.NoticeRevokeFailing:
		v.Subject = "[ACTION NEEDED] Revoke failing: " + what + " (" + r.ID + ")"
		v.Alert = "Access could not be removed and may still be in place."
		v.Heading = "Revoke failing"
		v.Intro = "Removing " + what + " has failed " + strconv.Itoa(r.RevokeAttempts) + " time(s). " +
			"The system keeps retrying; check the principal and remove the access by hand if needed."
		v.Facts = shortFacts(r, n)
	default:
		return Message{}, access.Errorf(access.KindInternal, "no email for notice kind %q", n.Kind)
	}
	v.Subject = cleanSubject(v.Subject)
	for _, a := range r.Approvals {
		v.Decisions = append(v.Decisions, decision{Approver: a.Approver, Decision: string(a.Decision), At: formatTime(a.At), Comment: a.Comment})
	}

	var html, text bytes.Buffer
	if err := htmlTmpl.Execute(&html, v); err != nil {
		return Message{}, access.Wrap(access.KindInternal, err, "render html email")
	}
	if err := textTmpl.Execute(&text, v); err != nil {
		return Message{}, access.Wrap(access.KindInternal, err, "render text email")
	}
	return Message{To: to, Subject: v.Subject, Text: text.String(), HTML: html.String()}, nil
}

// requestFacts is everything an approver or reviewer needs to judge a request.
func requestFacts(r access.Request) []fact {
	return []fact{
		{"Requester", r.Requester},
		{"Role", r.RoleID},
		{"Principal", r.Principal.String()},
		{"Duration", humanDuration(r.Duration())},
		{"Starts", formatTime(r.StartAt)},
		{"Ends", formatTime(r.EndAt)},
		{"Justification", orNone(r.Justification)},
		{"Ticket", orNone(r.Ticket)},
		{"Request", r.ID},
	}
}

// shortFacts is the status line of a decision or lifecycle notice, with who
// and why when known.
func shortFacts(r access.Request, n access.Notice) []fact {
	fs := []fact{
		{"Status", string(r.Status)},
		{"Requester", r.Requester},
		{"Role", r.RoleID},
		{"Principal", r.Principal.String()},
		{"Window", formatTime(r.StartAt) + " to " + formatTime(r.EndAt)},
	}
	optional := []fact{
		{"Ended by", r.EndedBy},
		{"Reason", r.EndReason},
		{"Error", r.LastError},
		{"Details", n.Detail},
	}
	if n.Kind == access.NoticeRevokeFailing {
		optional = append(optional, fact{"Attempts", strconv.Itoa(r.RevokeAttempts)})
	}
	for _, f := range optional {
		if f.Value != "" {
			fs = append(fs, f)
		}
	}
	return append(fs, fact{"Request", r.ID})
}

func quorum(r access.Request) string {
	s := strconv.Itoa(r.Quorum) + " needed, " + strconv.Itoa(r.Approved()) + " so far"
	if len(r.Approvers) > 0 {
		s += ", from " + strconv.Itoa(len(r.Approvers)) + " approvers"
	}
	return s
}

// recipients drops blanks and case-insensitive duplicates, keeping order.
func recipients(to []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, addr := range to {
		addr = strings.TrimSpace(addr)
		key := strings.ToLower(addr)
		if addr == "" || seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, addr)
	}
	return out
}

func portalURL(baseURL, id string) string {
	if baseURL == "" || id == "" {
		return ""
	}
	return strings.TrimRight(baseURL, "/") + "/portal/requests/" + url.PathEscape(id)
}

// cleanSubject turns control characters (CR and LF above all: header
// injection) into spaces, collapses runs of space and caps the length.
func cleanSubject(s string) string {
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool {
		return unicode.IsControl(r) || unicode.IsSpace(r)
	}), " ")
	if r := []rune(s); len(r) > maxSubject {
		s = string(r[:maxSubject-1]) + "…"
	}
	return s
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "not set"
	}
	return t.UTC().Format(timeLayout)
}

// humanDuration writes d as days, hours and minutes, e.g. "1d 2h 30m".
func humanDuration(d time.Duration) string {
	d = d.Round(time.Minute)
	if d <= 0 {
		return "0m"
	}
	days, d := d/(24*time.Hour), d%(24*time.Hour)
	hours, mins := d/time.Hour, (d%time.Hour)/time.Minute
	var parts []string
	if days > 0 {
		parts = append(parts, strconv.Itoa(int(days))+"d")
	}
	if hours > 0 {
		parts = append(parts, strconv.Itoa(int(hours))+"h")
	}
	if mins > 0 {
		parts = append(parts, strconv.Itoa(int(mins))+"m")
	}
	return strings.Join(parts, " ")
}

func orNone(s string) string {
	if strings.TrimSpace(s) == "" {
		return "none"
	}
	return s
}

// textField writes "Label: value". A multi-line value goes below the label
// with every line quoted, so user text cannot pose as lines of our own (a
// fake "Approve here:" line, say).
func textField(label, value string) string {
	value = strings.TrimRight(newlines.Replace(value), "\n")
	if !strings.Contains(value, "\n") {
		return label + ": " + value
	}
	return label + ":\n  > " + strings.ReplaceAll(value, "\n", "\n  > ")
}

var newlines = strings.NewReplacer("\r\n", "\n", "\r", "\n")
