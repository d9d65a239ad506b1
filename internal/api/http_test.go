package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jitaccess/jit/internal/access"
	"github.com/jitaccess/jit/internal/api"
	"github.com/jitaccess/jit/internal/app"
	"github.com/jitaccess/jit/internal/email"
	"github.com/jitaccess/jit/internal/token"
)

// server runs the fixture's handlers behind the local gateway path: HTTP
// in, an API Gateway v2 event with the X-Identity header as JWT claim, the
// Lambda adapter, the handler.
func (f *fixture) server(t *testing.T) *httptest.Server {
	claims := func(r *http.Request) map[string]string {
		if id := r.Header.Get("X-Identity"); id != "" {
			return map[string]string{"email": id}
		}
		return nil
	}
	mux := http.NewServeMux()
	mux.Handle("/approvals/", api.Gateway(api.Lambda(api.Approvals(f.Svc, api.Options{})), func(*http.Request) map[string]string { return nil }))
	mux.Handle("/", api.Gateway(api.Lambda(api.Intake(f.Svc, api.Options{})), claims))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

type call struct {
	method, path, who, body string
}

func do(t *testing.T, srv *httptest.Server, c call) (int, string) {
	t.Helper()
	req, err := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader(c.body))
	require.NoError(t, err)
	if c.who != "" {
		req.Header.Set("X-Identity", c.who)
	}
	if strings.HasPrefix(c.path, "/approvals/") && c.method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestBadInputIsRefusedAndChangesNothing(t *testing.T) {
	const okWhy = `"justification":"Rotate the production database credentials"`
	tests := []struct {
		name      string
		give      call
		want      int
		wantField string
	}{
		{"no identity", call{"POST", "/requests", "", `{"roleId":"admin",` + okWhy + `}`}, 401, ""},
		{"empty body", call{"POST", "/requests", "alice@example.com", ``}, 400, ""},
		{"not json", call{"POST", "/requests", "alice@example.com", `roleId=admin`}, 400, ""},
		{"array", call{"POST", "/requests", "alice@example.com", `[]`}, 400, ""},
		{"truncated", call{"POST", "/requests", "alice@example.com", `{"roleId":"admin"`}, 400, ""},
		{"unknown field", call{"POST", "/requests", "alice@example.com", `{"roleId":"admin","admin":true,` + okWhy + `}`}, 400, "admin"},
		{"identity in body", call{"POST", "/requests", "alice@example.com", `{"roleId":"admin","requester":"carol@example.com",` + okWhy + `}`}, 400, "requester"},
		{"wrong type", call{"POST", "/requests", "alice@example.com", `{"roleId":7,` + okWhy + `}`}, 400, "roleId"},
		{"field name in other case", call{"POST", "/requests", "alice@example.com", `{"ROLEID":"admin",` + okWhy + `}`}, 400, "ROLEID"},
		{"field given twice", call{"POST", "/requests", "alice@example.com", `{"roleId":"admin","roleId":"auto",` + okWhy + `}`}, 400, "roleId"},
		{"bad duration", call{"POST", "/requests", "alice@example.com", `{"roleId":"admin","duration":"1 fortnight",` + okWhy + `}`}, 400, "duration"},
		{"negative duration", call{"POST", "/requests", "alice@example.com", `{"roleId":"admin","duration":"-1h",` + okWhy + `}`}, 400, "duration"},
		{"duration under a minute", call{"POST", "/requests", "alice@example.com", `{"roleId":"admin","duration":"1s",` + okWhy + `}`}, 400, "duration"},
		{"duration of nanoseconds", call{"POST", "/requests", "alice@example.com", `{"roleId":"admin","duration":"1ns",` + okWhy + `}`}, 400, "duration"},
		{"duration in fractions of a second", call{"POST", "/requests", "alice@example.com", `{"roleId":"admin","duration":"90m500ms",` + okWhy + `}`}, 400, "duration"},
		{"duration over max", call{"POST", "/requests", "alice@example.com", `{"roleId":"admin","duration":"9h",` + okWhy + `}`}, 400, "duration"},
		{"bad start", call{"POST", "/requests", "alice@example.com", `{"roleId":"admin","startAt":"tomorrow",` + okWhy + `}`}, 400, "startAt"},
		{"start in the past", call{"POST", "/requests", "alice@example.com", `{"roleId":"admin","startAt":"2020-01-01T00:00:00Z",` + okWhy + `}`}, 400, "startAt"},
		{"trailing data", call{"POST", "/requests", "alice@example.com", `{"roleId":"admin",` + okWhy + `} {}`}, 400, ""},
		{"too large", call{"POST", "/requests", "alice@example.com", `{"roleId":"admin","justification":"` + strings.Repeat("a", api.MaxBodyBytes) + `"}`}, 400, ""},
		{"unknown role", call{"POST", "/requests", "alice@example.com", `{"roleId":"root",` + okWhy + `}`}, 404, ""},
		{"not allowed to request", call{"POST", "/requests", "eve@example.com", `{"roleId":"admin",` + okWhy + `}`}, 403, ""},
		{"bad id", call{"GET", "/requests/a!b", "alice@example.com", ``}, 400, "id"},
		{"long id", call{"GET", "/requests/" + strings.Repeat("a", 65), "alice@example.com", ``}, 400, "id"},
		{"bad limit", call{"GET", "/requests?limit=1000", "alice@example.com", ``}, 400, "limit"},
		{"bad cursor", call{"GET", "/requests?cursor=zzz", "alice@example.com", ``}, 400, ""},
		{"unknown route", call{"DELETE", "/requests", "alice@example.com", ``}, 404, ""},
		{"comment wrong type", call{"POST", "/requests/" + pendingID + "/approve", "carol@example.com", `{"comment":5}`}, 400, "comment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			before := f.Store.AllRequests()
			status, body := do(t, f.server(t), tt.give)
			assert.Equal(t, tt.want, status, body)
			{
				var e struct {
					Error struct{ Code, Message string } `json:"error"`
				}
				require.NoError(t, json.Unmarshal([]byte(body), &e), body)
				assert.NotEmpty(t, e.Error.Message)
				if tt.wantField != "" {
					assert.True(t, strings.HasPrefix(e.Error.Message, tt.wantField+":"), "message %q names the field %q", e.Error.Message, tt.wantField)
				}
			}
			assert.Equal(t, before, f.Store.AllRequests(), "bad input changes nothing")
		})
	}
}

func TestSecurity(t *testing.T) {
	t.Run("self approval refused although the catalog lists the requester", func(t *testing.T) {
		f := newFixture(t)
		status, _ := do(t, f.server(t), call{"POST", "/requests/" + pendingID + "/approve", "alice@example.com", `{}`})
		assert.Equal(t, 403, status)
		r, _ := f.Store.Get(context.Background(), pendingID)
		assert.Empty(t, r.Approvals)
	})
	t.Run("identity comes from the token only", func(t *testing.T) {
		f := newFixture(t)
		srv := f.server(t)
		status, body := do(t, srv, call{"POST", "/requests", "bob@example.com", `{"roleId":"auto","justification":"Read the billing dashboards"}`})
		require.Equal(t, 201, status, body)
		var v struct{ Requester, Principal string }
		require.NoError(t, json.Unmarshal([]byte(body), &v))
		assert.Equal(t, "bob@example.com", v.Requester)
		assert.Equal(t, "user/bob", v.Principal)
	})
	t.Run("another person's request is invisible", func(t *testing.T) {
		f := newFixture(t)
		srv := f.server(t)
		for _, p := range []string{"/requests/" + pendingID, "/requests/" + pendingID + "/audit"} {
			status, _ := do(t, srv, call{"GET", p, "bob@example.com", ""})
			assert.Equal(t, 404, status, p)
		}
		for _, p := range []string{"/cancel", "/revoke", "/approve", "/deny"} {
			status, _ := do(t, srv, call{"POST", "/requests/" + activeID + p, "bob@example.com", ""})
			assert.Equal(t, 404, status, p)
		}
	})
	t.Run("script in a justification is escaped in the page and the email", func(t *testing.T) {
		f := newFixture(t)
		srv := f.server(t)
		status, body := do(t, srv, call{"POST", "/requests", "alice@example.com", `{"roleId":"admin","justification":"<script>alert(1)</script> please, it is urgent"}`})
		require.Equal(t, 201, status, body)
		asks := f.Mail.Sent(access.NoticeApprovalRequested)
		n := asks[len(asks)-1]
		msg, err := email.Render(n, "https://jit.example.com")
		require.NoError(t, err)
		assert.NotContains(t, msg.HTML, "<script>alert(1)</script>")
		assert.Contains(t, msg.HTML, "&lt;script&gt;")
		tok := n.ActionURL[strings.LastIndex(n.ActionURL, "/")+1:]
		status, page := do(t, srv, call{"GET", "/approvals/" + tok, "", ""})
		require.Equal(t, 200, status)
		assert.NotContains(t, page, "<script>alert(1)</script>")
		assert.Contains(t, page, "&lt;script&gt;alert(1)&lt;/script&gt;")
	})
}

func TestApprovalLinks(t *testing.T) {
	signer := token.New(token.StaticKey([]byte("0123456789abcdef0123456789abcdef")))
	otherKey := token.New(token.StaticKey([]byte("ffffffffffffffffffffffffffffffff")))
	issue := func(t *testing.T, s *token.Signer, approver string, exp time.Time) string {
		tok, err := s.Issue(context.Background(), access.ApprovalClaims{RequestID: pendingID, Approver: approver, ExpiresAt: exp})
		require.NoError(t, err)
		return tok
	}
	approve := url.Values{"decision": {"approve"}}.Encode()

	t.Run("an ambiguous form decides nothing", func(t *testing.T) {
		f := newFixture(t)
		srv := f.server(t)
		for _, body := range []string{
			"decision=approve&decision=deny",
			"decision=deny&decision=approve",
			"decision=approve&comment=a&comment=b",
			"",
		} {
			status, _ := do(t, srv, call{"POST", "/approvals/" + f.token, "", body})
			assert.Equal(t, 400, status, body)
		}
		r, _ := f.Store.Get(context.Background(), pendingID)
		assert.Equal(t, 1, r.Version, "nothing decided")
		status, _ := do(t, srv, call{"POST", "/approvals/" + f.token, "", approve})
		assert.Equal(t, 200, status, "and the link was not spent")
	})

	t.Run("GET and HEAD change nothing; POST decides once", func(t *testing.T) {
		f := newFixture(t)
		srv := f.server(t)
		for _, m := range []string{"GET", "HEAD", "GET"} {
			status, page := do(t, srv, call{m, "/approvals/" + f.token, "", ""})
			assert.Equal(t, 200, status)
			if m == "GET" {
				assert.Contains(t, page, "alice@example.com")
				assert.Contains(t, page, "user/alice")
				assert.Contains(t, page, `value="approve"`)
			}
		}
		r, _ := f.Store.Get(context.Background(), pendingID)
		assert.Equal(t, 1, r.Version, "opening a link decides nothing")

		status, page := do(t, srv, call{"POST", "/approvals/" + f.token, "", approve})
		assert.Equal(t, 200, status, page)
		r, _ = f.Store.Get(context.Background(), pendingID)
		assert.Equal(t, access.StatusActive, r.Status)

		status, _ = do(t, srv, call{"POST", "/approvals/" + f.token, "", approve})
		assert.Equal(t, 409, status, "a replay is refused")
		after, _ := f.Store.Get(context.Background(), pendingID)
		assert.Equal(t, r.Version, after.Version)
	})

	refused := []struct {
		name string
		tok  func(f *fixture) string
		want int
	}{
		{"made up", func(*fixture) string { return "eyJ2IjoxfQ.Zm9yZ2Vk" }, 400},
		{"forged signature", func(f *fixture) string {
			return f.token[:strings.Index(f.token, ".")+1] + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
		}, 401},
		{"garbage", func(*fixture) string { return "%3Cscript%3E" }, 400},
		{"tampered", func(f *fixture) string { return f.token[:10] + flip(f.token[10]) + f.token[11:] }, 0},
		{"wrong key", func(f *fixture) string {
			return issue(t, otherKey, "carol@example.com", f.Clock.Now().Add(time.Hour))
		}, 401},
		{"expired", func(f *fixture) string { return issue(t, signer, "carol@example.com", f.Clock.Now().Add(-time.Minute)) }, 401},
		{"not an approver of this request", func(f *fixture) string {
			return issue(t, signer, "eve@example.com", f.Clock.Now().Add(time.Hour))
		}, 403},
		{"requester's own link", func(f *fixture) string {
			return issue(t, signer, "alice@example.com", f.Clock.Now().Add(time.Hour))
		}, 403},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			srv := f.server(t)
			tok := tt.tok(f)
			for _, m := range []string{"GET", "POST"} {
				status, page := do(t, srv, call{m, "/approvals/" + tok, "", approve})
				if tt.want != 0 {
					assert.Equal(t, tt.want, status, page)
				} else {
					assert.Contains(t, []int{400, 401}, status, page)
				}
				assert.Contains(t, page, "<h1>")
				assert.NotContains(t, page, `value="approve"`)
			}
			r, _ := f.Store.Get(context.Background(), pendingID)
			assert.Equal(t, 1, r.Version, "nothing changes")
		})
	}
}

func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

func TestErrorStatusTable(t *testing.T) {
	tests := []struct {
		give error
		want int
	}{
		{access.Errorf(access.KindInvalid, "x"), 400},
		{access.Errorf(access.KindUnauthorized, "x"), 401},
		{access.Errorf(access.KindForbidden, "x"), 403},
		{access.Errorf(access.KindNotFound, "x"), 404},
		{access.Errorf(access.KindConflict, "x"), 409},
		{access.Errorf(access.KindTooMany, "x"), 429},
		{access.Errorf(access.KindInternal, "x"), 500},
		{errors.New("db password is hunter2"), 500},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, api.Status(tt.give), tt.give.Error())
	}
}

// failingStore makes every read fail, to see what an internal error shows.
type failingStore struct{ app.Store }

func (failingStore) ListByRequester(context.Context, string, int, string) ([]access.Request, string, error) {
	return nil, "", errors.New("dynamodb: secret table name exploded")
}

func TestInternalErrorsAreGeneric(t *testing.T) {
	f := newFixture(t)
	f.Svc.Store = failingStore{f.Store}
	var logs strings.Builder
	h := api.Intake(f.Svc, api.Options{Log: slog.New(slog.NewJSONHandler(&logs, nil))})
	srv := httptest.NewServer(api.Gateway(api.Lambda(h), func(*http.Request) map[string]string { return map[string]string{"email": "alice@example.com"} }))
	defer srv.Close()
	status, body := do(t, srv, call{"GET", "/requests", "", ""})
	assert.Equal(t, 500, status)
	assert.JSONEq(t, `{"error":{"code":"internal","message":"internal error"}}`, body)
	assert.Contains(t, logs.String(), "secret table name exploded", "the detail goes to the log")
}
