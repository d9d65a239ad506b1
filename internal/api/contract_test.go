package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jitaccess/jit/internal/access"
	"github.com/jitaccess/jit/internal/api"
	"github.com/jitaccess/jit/internal/app"
	"github.com/jitaccess/jit/internal/app/apptest"
)

const (
	pendingID = "01JPENDING0000000000000000"
	activeID  = "01JACTIVE00000000000000000"
)

// fixture is a service with alice's pending request (approvers carol and
// dave) and alice's active one, under the ids the sample events use.
type fixture struct {
	*apptest.Env
	token string // carol's approval link for the pending request
}

func newFixture(t testing.TB) *fixture {
	e := apptest.NewEnv(t)
	ids := []string{pendingID, activeID}
	next := 0
	e.Svc.NewID = func() string {
		if len(ids) == 0 {
			next++
			return fmt.Sprintf("01JNEW%020d", next)
		}
		id := ids[0]
		ids = ids[1:]
		return id
	}
	alice := app.Caller{Identity: "alice@example.com"}
	_, err := e.Svc.Submit(context.Background(), alice, app.SubmitInput{RoleID: "admin", Duration: 4 * time.Hour, Justification: "Rotate the production database credentials"})
	require.NoError(t, err)
	r, err := e.Svc.Submit(context.Background(), alice, app.SubmitInput{RoleID: "auto", Justification: "Read the billing dashboards"})
	require.NoError(t, err)
	require.Equal(t, access.StatusActive, r.Status)
	f := &fixture{Env: e}
	for _, n := range e.Mail.Sent(access.NoticeApprovalRequested) {
		if n.To[0] == "carol@example.com" {
			f.token = n.ActionURL[strings.LastIndex(n.ActionURL, "/")+1:]
		}
	}
	require.NotEmpty(t, f.token)
	return f
}

// wantStatus is what each sample event must get back; every file in
// events/ that is an HTTP event must be listed.
var wantStatus = map[string]int{
	"intake-get-catalog.json":                  200,
	"intake-list-requests.json":                200,
	"intake-create-request.json":               201,
	"intake-create-maintenance-window.json":    201,
	"intake-create-body-identity-refused.json": 400,
	"intake-create-bad-duration.json":          400,
	"intake-create-unauthenticated.json":       401,
	"intake-get-request.json":                  200,
	"intake-get-request-other-person.json":     404,
	"intake-approve.json":                      200,
	"intake-approve-own-request.json":          403,
	"intake-deny.json":                         200,
	"intake-cancel.json":                       200,
	"intake-revoke.json":                       200,
	"intake-audit.json":                        200,
	"approve-get-page.json":                    200,
	"approve-head-page.json":                   200,
	"approve-post-approve.json":                200,
	"approve-post-deny.json":                   200,
	"approve-post-forged.json":                 401, // right size, wrong signature
}

// TestContractEvents feeds every sample HTTP event through the real
// handler as the Lambda runtime would: raw JSON into lambda.NewHandler.
func TestContractEvents(t *testing.T) {
	files, err := filepath.Glob("../../events/*.json")
	require.NoError(t, err)
	seen := 0
	for _, file := range files {
		name := filepath.Base(file)
		var handler func(*app.Service) api.EventHandler
		switch {
		case strings.HasPrefix(name, "intake-"):
			handler = func(s *app.Service) api.EventHandler { return api.Lambda(api.Intake(s, api.Options{})) }
		case strings.HasPrefix(name, "approve-"):
			handler = func(s *app.Service) api.EventHandler { return api.Lambda(api.Approvals(s, api.Options{})) }
		default:
			continue // schedule and rule events: see the engine's contract tests
		}
		seen++
		t.Run(name, func(t *testing.T) {
			want, ok := wantStatus[name]
			require.True(t, ok, "add %s to wantStatus", name)
			f := newFixture(t)
			raw, err := os.ReadFile(file)
			require.NoError(t, err)
			raw = []byte(strings.ReplaceAll(string(raw), "{{TOKEN}}", f.token))

			out, err := lambda.NewHandler(handler(f.Svc)).Invoke(context.Background(), raw)
			require.NoError(t, err)
			var resp events.APIGatewayV2HTTPResponse
			require.NoError(t, json.Unmarshal(out, &resp))
			assert.Equal(t, want, resp.StatusCode, resp.Body)
			if strings.HasPrefix(name, "intake-") {
				assert.Equal(t, "application/json", resp.Headers["Content-Type"])
				assert.True(t, json.Valid([]byte(resp.Body)), resp.Body)
				if want >= 400 {
					var e struct {
						Error struct{ Code, Message string } `json:"error"`
					}
					require.NoError(t, json.Unmarshal([]byte(resp.Body), &e))
					assert.NotEmpty(t, e.Error.Code)
					assert.NotEmpty(t, e.Error.Message)
				}
			} else {
				assert.Contains(t, resp.Headers["Content-Type"], "text/html")
			}
		})
	}
	assert.Equal(t, len(wantStatus), seen, "every listed event has a file")
}
