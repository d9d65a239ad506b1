package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jitaccess/jit/internal/api"
)

// TestGatewayEventsLookLikeAPIGateways: the local gateway's events carry what
// API Gateway would send, and a payload over its limit is refused as it
// refuses it, without calling the function.
func TestGatewayEventsLookLikeAPIGateways(t *testing.T) {
	var got events.APIGatewayV2HTTPRequest
	calls := 0
	h := api.Gateway(func(_ context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		calls++
		got = ev
		return events.APIGatewayV2HTTPResponse{StatusCode: 204}, nil
	}, func(*http.Request) map[string]string { return map[string]string{"email": "alice@example.com"} })

	req := httptest.NewRequest(http.MethodPost, "/approvals/a%2Fb?x=1", strings.NewReader(`{}`))
	req.RemoteAddr = "192.0.2.7:54321"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	require.Equal(t, 204, w.Code)
	assert.Equal(t, "192.0.2.7", got.RequestContext.HTTP.SourceIP, "the address without the port")
	assert.Equal(t, "/approvals/a%2Fb", got.RawPath, "the path as sent")
	assert.Equal(t, "x=1", got.RawQueryString)
	assert.Equal(t, "alice@example.com", got.RequestContext.Authorizer.JWT.Claims["email"])

	big := httptest.NewRequest(http.MethodPost, "/requests", strings.NewReader(strings.Repeat("a", api.MaxPayloadBytes+1)))
	w = httptest.NewRecorder()
	h.ServeHTTP(w, big)
	assert.Equal(t, http.StatusRequestEntityTooLarge, w.Code)
	assert.Equal(t, 1, calls, "the function was not called for it")
}

// TestUnverifiedEmailIsNoIdentity: with the email claim as identity, a token
// whose provider says the address is unverified is refused.
func TestUnverifiedEmailIsNoIdentity(t *testing.T) {
	f := newFixture(t)
	for _, tt := range []struct {
		name   string
		claims map[string]string
		want   int
	}{
		{"verified", map[string]string{"email": "alice@example.com", "email_verified": "true"}, 200},
		{"provider sends no such claim", map[string]string{"email": "alice@example.com"}, 200},
		{"unverified", map[string]string{"email": "alice@example.com", "email_verified": "false"}, 401},
		{"garbled", map[string]string{"email": "alice@example.com", "email_verified": "maybe"}, 401},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := api.Gateway(api.Lambda(api.Intake(f.Svc, api.Options{})), func(*http.Request) map[string]string { return tt.claims })
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/catalog", nil))
			assert.Equal(t, tt.want, w.Code, w.Body.String())
		})
	}
}
