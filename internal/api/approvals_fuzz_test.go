package api_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/jitaccess/jit/internal/access"
	"github.com/jitaccess/jit/internal/api"
	"github.com/jitaccess/jit/internal/app"
	"github.com/jitaccess/jit/internal/app/apptest"
	"github.com/jitaccess/jit/internal/token"
)

// consumeCounter counts the approval tokens the service consumes.
type consumeCounter struct {
	app.Store
	n atomic.Int32
}

func (c *consumeCounter) ConsumeToken(ctx context.Context, tokenID string, expires time.Time) error {
	c.n.Add(1)
	return c.Store.ConsumeToken(ctx, tokenID, expires)
}

// approvalsFuzz is the fixture behind the approval pages, with every
// approval link it issued and a way to tell whether anything changed.
type approvalsFuzz struct {
	fx       *fixture
	store    *consumeCounter
	h        api.EventHandler
	links    map[string]string // placeholder -> token
	valid    []string          // every token that may be accepted
	pristine bool
}

// fixedTokenID is the jti of a link the fuzz target signs itself with the
// fixture's key, so that a valid token can be spelled out in the corpus and
// mutated byte by byte (the fixture's own links have random ids).
const fixedTokenID = "0123456789abcdef0123456789abcdef"

func newApprovalsFuzz(t testing.TB) *approvalsFuzz {
	fx := newFixture(t)
	store := &consumeCounter{Store: fx.Store}
	svc := *fx.Svc
	svc.Store = store
	a := &approvalsFuzz{fx: fx, store: store, h: api.Lambda(api.Approvals(&svc, api.Options{})), links: map[string]string{}, pristine: true}
	for _, n := range fx.Mail.Sent(access.NoticeApprovalRequested) {
		tok := n.ActionURL[strings.LastIndex(n.ActionURL, "/")+1:]
		a.links["{{"+strings.ToUpper(strings.SplitN(n.To[0], "@", 2)[0])+"}}"] = tok
	}
	if a.links["{{CAROL}}"] != a.fx.token || a.links["{{DAVE}}"] == "" {
		t.Fatalf("expected approval links for carol and dave, got %v", a.links)
	}
	for _, v := range a.links {
		a.valid = append(a.valid, v)
	}
	a.valid = append(a.valid, fixedToken(t, fx))
	return a
}

// fixedToken is carol's link for the pending request, with a fixed id.
func fixedToken(t testing.TB, fx *fixture) string {
	r, err := fx.Store.Get(context.Background(), pendingID)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := token.New(apptest.SigningKey).Issue(context.Background(),
		access.ApprovalClaims{TokenID: fixedTokenID, RequestID: pendingID, Approver: "carol@example.com", ExpiresAt: r.ApprovalDeadline})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// state is everything a refused or read-only call must leave as it was.
type state struct {
	versions  string
	consumed  int32
	notices   int
	schedules string
	grants    int
	iamCalls  int
}

func (a *approvalsFuzz) state() state {
	var v []string
	for _, r := range a.fx.Store.AllRequests() {
		v = append(v, fmt.Sprintf("%s@%d", r.ID, r.Version))
	}
	slices.Sort(v)
	return state{
		versions:  strings.Join(v, ","),
		consumed:  a.store.n.Load(),
		notices:   len(a.fx.Mail.Sent("")),
		schedules: strings.Join(a.fx.Sched.Names(), ","),
		grants:    a.fx.IAM.Count(),
		iamCalls:  a.fx.IAM.Calls("Grant") + a.fx.IAM.Calls("Revoke"),
	}
}

// FuzzApprovals sends arbitrary tokens and form bodies to GET, HEAD and
// POST /approvals/{token} through the real handler chain (the Lambda
// adapter and the approve function's handler). In the token, {{CAROL}} and
// {{DAVE}} stand for the real links of the fixture's pending request, and
// the corpus spells out a link signed with the fixture's key (fixedTokenID)
// and tampered copies of it, so the fuzzer mutates valid tokens too.
//
// Never a panic or a 5xx; every page carries the headers that keep the
// token out of caches and Referers; GET and HEAD never change anything; a
// POST that is refused changes nothing and consumes no token; and only a
// link the service issued, exactly as issued, is ever accepted.
func FuzzApprovals(f *testing.F) {
	for _, seed := range []struct {
		method      uint8
		token       string
		contentType string
		body        string
	}{
		{0, "{{CAROL}}", "", ""},
		{1, "{{CAROL}}", "", ""},
		{2, "{{CAROL}}", "application/x-www-form-urlencoded", "decision=approve&comment=ok"},
		{2, "{{DAVE}}", "application/x-www-form-urlencoded", "decision=deny&comment=not+during+the+freeze"},
	} { // more in testdata/fuzz/FuzzApprovals
		f.Add(seed.method, seed.token, seed.contentType, []byte(seed.body))
	}
	a := newApprovalsFuzz(f)
	fixed := a.valid[len(a.valid)-1]
	f.Add(uint8(2), fixed, "application/x-www-form-urlencoded", []byte("decision=approve"))
	f.Add(uint8(0), fixed, "", []byte(nil))
	f.Fuzz(func(t *testing.T, method uint8, tok, contentType string, body []byte) {
		if !a.pristine {
			a = newApprovalsFuzz(t)
		}
		for k, v := range a.links {
			tok = strings.ReplaceAll(tok, k, v)
		}
		m := []string{http.MethodGet, http.MethodHead, http.MethodPost}[int(method)%3]
		ev := approvalEvent(m, tok, contentType, body)
		before := a.state()

		resp, err := a.h(context.Background(), ev)
		if err != nil {
			t.Fatalf("%s %q: handler error %v", m, tok, err)
		}
		if resp.StatusCode >= 500 || resp.StatusCode < 200 {
			t.Fatalf("%s %q %q: status %d: %s", m, tok, body, resp.StatusCode, resp.Body)
		}
		if resp.StatusCode < 300 || resp.StatusCode >= 400 { // the mux's own redirects (of "." and "..") are plain
			for k, want := range map[string]string{"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"} {
				if got := resp.Headers[k]; got != want {
					t.Fatalf("%s %q: status %d with %s %q, want %q", m, tok, resp.StatusCode, k, got, want)
				}
			}
		}
		if m == http.MethodHead && resp.Body != "" {
			t.Fatalf("HEAD %q answered with a body", tok)
		}
		if strings.Contains(strings.ToLower(resp.Body), "<script") {
			t.Fatalf("%s %q: the page carries a script: %s", m, tok, resp.Body)
		}
		issued := slices.Contains(a.valid, tok)
		if resp.StatusCode == http.StatusOK && !issued {
			t.Fatalf("%s %q: accepted a link the service never issued", m, tok)
		}

		after := a.state()
		if m != http.MethodPost || resp.StatusCode != http.StatusOK {
			if after != before {
				t.Fatalf("%s %q %q (status %d) changed state:\n before %+v\n after  %+v", m, tok, body, resp.StatusCode, before, after)
			}
			return
		}
		// A decision was recorded: exactly one token consumed, and the pending
		// request shows that one decision. The next input gets a fresh fixture.
		a.pristine = false
		if after.consumed != before.consumed+1 {
			t.Fatalf("POST %q decided but consumed %d tokens", tok, after.consumed-before.consumed)
		}
		r, err := a.fx.Store.Get(context.Background(), pendingID)
		if err != nil {
			t.Fatal(err)
		}
		if r.Version == 1 || len(r.Approvals) != 1 || !r.HasDecided("carol@example.com") && !r.HasDecided("dave@example.com") {
			t.Fatalf("POST %q answered 200 but the request shows no decision: %+v", tok, r)
		}
		if d := r.Approvals[0].Decision; (d == access.DecisionDeny) != (r.Status == access.StatusDenied) {
			t.Fatalf("POST %q: decision %s left the request %s", tok, d, r.Status)
		}
	})
}

// approvalEvent is the HTTP API v2 event API Gateway sends for a request
// to /approvals/<tok>: the token arrives percent-encoded in the raw path.
func approvalEvent(method, tok, contentType string, body []byte) events.APIGatewayV2HTTPRequest {
	path := "/approvals/" + url.PathEscape(tok)
	ev := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: "$default", RawPath: path,
		Headers: map[string]string{"host": "abc123.execute-api.us-east-1.amazonaws.com"},
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			AccountID: "123456789012", Stage: "$default", RequestID: "fuzz", DomainName: "abc123.execute-api.us-east-1.amazonaws.com",
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: path, Protocol: "HTTP/1.1", SourceIP: "203.0.113.7"},
		},
	}
	if contentType != "" {
		ev.Headers["content-type"] = contentType
	}
	if utf8.Valid(body) {
		ev.Body = string(body)
	} else {
		ev.Body, ev.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
	}
	return ev
}
