package stack

import (
	"context"
	"html"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"

	"github.com/jitaccess/jit/internal/email/mototest"
)

// Mail is one sent email as the mailbox shows it.
type Mail struct {
	N       int // 1 for the first email sent
	From    string
	To      []string
	Subject string
	HTML    string // the HTML body with <base target="_top">, for a sandboxed iframe
	Text    string // the body, when it is not HTML
	Links   []Link
}

// Link is a link found in an email.
type Link struct {
	URL, Label string
}

var (
	anchorRe = regexp.MustCompile(`(?is)<a\s[^>]*?href\s*=\s*"([^"]*)"[^>]*>(.*?)</a>`)
	tagRe    = regexp.MustCompile(`(?s)<[^>]*>`)
	headRe   = regexp.MustCompile(`(?i)<head[^>]*>`)
)

// mailCache keeps what moto last said it sent: reading it means fetching
// moto's whole state (megabytes once AWS-managed IAM policies are loaded),
// so it is read again only after a function has sent another email.
type mailCache struct {
	mu    sync.Mutex
	sends int64 // the stack's send count when sent was read; -1: never
	sent  []mototest.Sent
}

// countSends counts every SendEmail a function's client completes, so the
// mailbox knows when moto has more to show.
func (s *Stack) countSends(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("jitLocalCountSends",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			out, md, err := next.HandleInitialize(ctx, in)
			if awsmiddleware.GetOperationName(ctx) == "SendEmail" {
				s.sends.Add(1)
			}
			return out, md, err
		}), middleware.After)
}

func (s *Stack) sentMessages() ([]mototest.Sent, error) {
	s.mail.mu.Lock()
	defer s.mail.mu.Unlock()
	n := s.sends.Load() // read first: a send during the fetch shows next time
	if n == s.mail.sends {
		return s.mail.sent, nil
	}
	sent, err := mototest.SentMessages(s.moto.url)
	if err != nil {
		return nil, err
	}
	s.mail.sends, s.mail.sent = n, sent
	return sent, nil
}

// Mailbox reads every email moto accepted, newest first; to, when set,
// keeps only those sent to that address.
func (s *Stack) Mailbox(to string) ([]Mail, error) {
	sent, err := s.sentMessages()
	if err != nil {
		return nil, err
	}
	out := make([]Mail, 0, len(sent))
	for i, m := range sent {
		if to != "" && !slices.ContainsFunc(m.To, func(a string) bool { return strings.EqualFold(a, to) }) {
			continue
		}
		mail := Mail{N: i + 1, From: m.From, To: m.To, Subject: m.Subject, Links: links(m.Body)}
		if looksHTML(m.Body) {
			mail.HTML = withBaseTarget(m.Body)
		} else {
			mail.Text = m.Body
		}
		out = append(out, mail)
	}
	slices.Reverse(out)
	return out, nil
}

func looksHTML(body string) bool {
	b := strings.ToLower(body)
	return strings.Contains(b, "<html") || strings.Contains(b, "<!doctype html")
}

// withBaseTarget makes links in the sandboxed iframe open in the page
// itself (the sandbox allows that only on a click).
func withBaseTarget(body string) string {
	const base = `<base target="_top">`
	if loc := headRe.FindStringIndex(body); loc != nil {
		return body[:loc[1]] + base + body[loc[1]:]
	}
	return base + body
}

// links lists the distinct http(s) links of an HTML body with their text.
func links(body string) []Link {
	var out []Link
	for _, m := range anchorRe.FindAllStringSubmatch(body, -1) {
		u := html.UnescapeString(m[1])
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			continue
		}
		if slices.ContainsFunc(out, func(l Link) bool { return l.URL == u }) {
			continue
		}
		label := strings.Join(strings.Fields(html.UnescapeString(tagRe.ReplaceAllString(m[2], " "))), " ")
		if label == "" || label == u {
			label = u
		}
		out = append(out, Link{URL: u, Label: label})
	}
	return out
}

func (s *Stack) mailboxPage(w http.ResponseWriter, r *http.Request) {
	to := strings.ToLower(strings.TrimSpace(r.URL.Query().Get("to")))
	mails, err := s.Mailbox(to)
	d := map[string]any{"Mails": mails, "To": to}
	if err != nil {
		d["Problem"] = err.Error()
	}
	s.render(w, r, http.StatusOK, "mailbox", page{Title: "Mailbox", Nav: "mailbox", Data: d})
}
