package api

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"
)

// EventHandler is a Lambda handler of HTTP API v2 events.
type EventHandler func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)

// Lambda wraps an http.Handler for API Gateway payload 2.0 events: the
// original event (and its JWT claims) stays reachable from the request context.
func Lambda(h http.Handler) EventHandler {
	return httpadapter.NewV2(h).ProxyWithContext
}

// Claims returns the JWT claims to put on an event; nil means unauthenticated.
type Claims func(r *http.Request) map[string]string

// Gateway serves HTTP by turning each request into an HTTP API v2 event,
// as API Gateway does, and the handler's response back into HTTP. The local
// stack and the tests use it, so they drive the very path the Lambdas run.
func Gateway(h EventHandler, claims Claims) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ev, err := EventFromHTTP(r, claims)
		if errors.Is(err, ErrPayloadTooLarge) {
			http.Error(w, `{"message":"Request Entity Too Large"}`, http.StatusRequestEntityTooLarge)
			return
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		resp, err := h(r.Context(), ev)
		if err != nil {
			http.Error(w, "internal error", http.StatusBadGateway)
			return
		}
		WriteEventResponse(w, resp)
	})
}

// MaxPayloadBytes is API Gateway's limit on a request's payload (10 MB).
const MaxPayloadBytes = 10 << 20

// ErrPayloadTooLarge is a body over MaxPayloadBytes: API Gateway answers 413
// without calling the function.
var ErrPayloadTooLarge = errors.New("request payload over 10 MB")

// EventFromHTTP builds the v2 event API Gateway would send for r.
func EventFromHTTP(r *http.Request, claims Claims) (events.APIGatewayV2HTTPRequest, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxPayloadBytes+1))
	if err != nil {
		return events.APIGatewayV2HTTPRequest{}, err
	}
	if len(body) > MaxPayloadBytes {
		return events.APIGatewayV2HTTPRequest{}, ErrPayloadTooLarge
	}
	sourceIP := r.RemoteAddr // API Gateway sends the address without the port
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		sourceIP = host
	}
	headers := map[string]string{}
	for k, v := range r.Header {
		headers[strings.ToLower(k)] = strings.Join(v, ",")
	}
	var cookies []string
	for _, c := range r.Cookies() {
		cookies = append(cookies, c.String())
	}
	now := time.Now()
	ev := events.APIGatewayV2HTTPRequest{
		Version:        "2.0",
		RouteKey:       "$default",
		RawPath:        r.URL.EscapedPath(), // as sent, percent-encoding kept
		RawQueryString: r.URL.RawQuery,
		Cookies:        cookies,
		Headers:        headers,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			AccountID: "123456789012", Stage: "$default", RequestID: now.Format("150405.000000000"),
			DomainName: r.Host, TimeEpoch: now.UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method: r.Method, Path: r.URL.Path, Protocol: r.Proto, SourceIP: sourceIP, UserAgent: r.UserAgent(),
			},
		},
	}
	if len(r.URL.Query()) > 0 {
		ev.QueryStringParameters = map[string]string{}
		for k, v := range r.URL.Query() {
			ev.QueryStringParameters[k] = strings.Join(v, ",")
		}
	}
	if c := claims(r); c != nil {
		ev.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
			JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: c},
		}
	}
	if utf8.Valid(body) {
		ev.Body = string(body)
	} else {
		ev.Body, ev.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
	}
	return ev, nil
}

// WriteEventResponse writes a v2 response to w.
func WriteEventResponse(w http.ResponseWriter, resp events.APIGatewayV2HTTPResponse) {
	for k, v := range resp.Headers {
		w.Header().Set(k, v)
	}
	for k, vs := range resp.MultiValueHeaders {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	for _, c := range resp.Cookies {
		w.Header().Add("Set-Cookie", c)
	}
	status := resp.StatusCode
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	body := []byte(resp.Body)
	if resp.IsBase64Encoded {
		if b, err := base64.StdEncoding.DecodeString(resp.Body); err == nil {
			body = b
		}
	}
	_, _ = w.Write(body)
}
