package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/require"

	"github.com/jitaccess/jit/internal/api"
)

// FuzzDecodeCreate sends arbitrary bodies to POST /requests through the
// whole handler: never a panic, never a 5xx, and a refused body stores nothing.
func FuzzDecodeCreate(f *testing.F) {
	for _, seed := range []string{
		`{"roleId":"admin","justification":"Rotate the production database credentials"}`,
		`{"roleId":"auto","duration":"90m","startAt":"2026-12-03T22:00:00Z","justification":"Planned maintenance window"}`,
		`{"roleId":"ticketed","ticket":"OPS-1","justification":"Reading the exported reports"}`,
		`{"roleId":"admin","duration":"-5s","justification":"x"}`,
		`{"roleId":null}`, `[]`, `{}`, ``, `{"roleId":"admin"} trailing`, "\x00\xff",
	} {
		f.Add([]byte(seed))
	}
	fx := newFixture(f)
	h := api.Lambda(api.Intake(fx.Svc, api.Options{}))
	f.Fuzz(func(t *testing.T, body []byte) {
		_, decodeErr := api.DecodeCreate(bytes.NewReader(body))
		before := len(fx.Store.AllRequests())
		req := httptest.NewRequest(http.MethodPost, "/requests", bytes.NewReader(body))
		ev, err := api.EventFromHTTP(req, func(*http.Request) map[string]string { return map[string]string{"email": "alice@example.com"} })
		require.NoError(t, err)
		resp, err := h(context.Background(), ev)
		require.NoError(t, err)
		if resp.StatusCode >= 500 {
			t.Fatalf("status %d for %q: %s", resp.StatusCode, body, resp.Body)
		}
		if resp.StatusCode >= 400 && len(fx.Store.AllRequests()) != before {
			t.Fatalf("a refused body (%d) stored a request: %q", resp.StatusCode, body)
		}
		if decodeErr != nil && resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("decoder refused %q (%v) but the handler answered %d", body, decodeErr, resp.StatusCode)
		}
		requireJSONError(t, resp)
	})
}

func requireJSONError(t *testing.T, resp events.APIGatewayV2HTTPResponse) {
	if resp.StatusCode < 400 {
		return
	}
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal([]byte(resp.Body), &e); err != nil || e.Error.Code == "" {
		t.Fatalf("error body is not {error:{code,message}}: %s", resp.Body)
	}
}
