package api_test

// Handler benchmarks over the in-memory fakes (apptest), run by `make bench`
// (go test -run '^$' -bench . -benchmem ./internal/api), never by make test.
// Every benchmark drives the handler the way the Lambda runtime does: the raw
// event JSON into lambda.NewHandler(...).Invoke, so event decoding and
// response encoding are included. BenchmarkFloorJSON is the floor: a
// handler that only decodes the body JSON and encodes it back.

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/stretchr/testify/require"

	"github.com/jitaccess/jit/internal/access"
	"github.com/jitaccess/jit/internal/api"
	"github.com/jitaccess/jit/internal/app"
)

func benchEvent(b *testing.B, name string) string {
	b.Helper()
	raw, err := os.ReadFile("../../events/" + name)
	require.NoError(b, err)
	return string(raw)
}

var benchQuiet = slog.New(slog.DiscardHandler)

func benchIntake(svc *app.Service) lambda.Handler {
	return lambda.NewHandler(api.Lambda(api.Intake(svc, api.Options{Log: benchQuiet})))
}

func benchApprove(svc *app.Service) lambda.Handler {
	return lambda.NewHandler(api.Lambda(api.Approvals(svc, api.Options{Log: benchQuiet})))
}

// benchInvoke runs one event and checks the status, outside the hot loop's
// assertions: a benchmark of an error path would measure the wrong thing.
func benchInvoke(b *testing.B, h lambda.Handler, raw []byte, want int) {
	out, err := h.Invoke(context.Background(), raw)
	if err != nil {
		b.Fatal(err)
	}
	var resp struct {
		StatusCode int `json:"statusCode"`
	}
	if err := json.Unmarshal(out, &resp); err != nil || resp.StatusCode != want {
		b.Fatalf("status %d, want %d: %s", resp.StatusCode, want, out)
	}
}

func benchLoop(b *testing.B, h lambda.Handler, raws [][]byte) {
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := h.Invoke(context.Background(), raws[i%len(raws)]); err != nil {
			b.Fatal(err)
		}
	}
}

// benchSequentialIDs makes request ids unique for as many requests as a
// benchmark creates.
func benchSequentialIDs(svc *app.Service) {
	n := 0
	svc.NewID = func() string { n++; return fmt.Sprintf("01JBENCH%018d", n) }
}

func BenchmarkFloorJSON(b *testing.B) {
	floor := func(_ context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		var body map[string]any
		if err := json.Unmarshal([]byte(ev.Body), &body); err != nil {
			return events.APIGatewayV2HTTPResponse{StatusCode: 400}, nil
		}
		out, err := json.Marshal(body)
		if err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		return events.APIGatewayV2HTTPResponse{StatusCode: 200, Headers: map[string]string{"Content-Type": "application/json"}, Body: string(out)}, nil
	}
	h := lambda.NewHandler(floor)
	raw := []byte(benchEvent(b, "intake-create-request.json"))
	benchInvoke(b, h, raw, 200)
	benchLoop(b, h, [][]byte{raw})
}

func BenchmarkIntakeGetCatalog(b *testing.B) {
	f := newFixture(b)
	h := benchIntake(f.Svc)
	raw := []byte(benchEvent(b, "intake-get-catalog.json"))
	benchInvoke(b, h, raw, 200)
	benchLoop(b, h, [][]byte{raw})
}

func BenchmarkIntakeCreateRequest(b *testing.B) {
	f := newFixture(b)
	benchSequentialIDs(f.Svc)
	h := benchIntake(f.Svc)
	raw := []byte(benchEvent(b, "intake-create-request.json"))
	benchInvoke(b, h, raw, 201)
	benchLoop(b, h, [][]byte{raw})
}

func BenchmarkIntakeListRequests(b *testing.B) {
	f := newFixture(b)
	benchSequentialIDs(f.Svc)
	// carol lists her own (none) and the ones awaiting her: 20 pending.
	alice := app.Caller{Identity: "alice@example.com"}
	for range 20 {
		_, err := f.Svc.Submit(context.Background(), alice, app.SubmitInput{RoleID: "admin", Duration: time.Hour, Justification: "Rotate the production database credentials"})
		require.NoError(b, err)
	}
	h := benchIntake(f.Svc)
	raw := []byte(benchEvent(b, "intake-list-requests.json"))
	benchInvoke(b, h, raw, 200)
	benchLoop(b, h, [][]byte{raw})
}

// benchPending creates n pending requests of alice's that carol may approve and
// returns their ids and carol's approval tokens (as the email would carry).
func benchPending(b *testing.B, f *fixture, n int) (ids, tokens []string) {
	b.Helper()
	ctx := context.Background()
	alice := app.Caller{Identity: "alice@example.com"}
	for range n {
		r, err := f.Svc.Submit(ctx, alice, app.SubmitInput{RoleID: "admin", Duration: time.Hour, Justification: "Rotate the production database credentials"})
		require.NoError(b, err)
		tok, err := f.Svc.Tokens.Issue(ctx, access.ApprovalClaims{RequestID: r.ID, Approver: "carol@example.com", ExpiresAt: r.ApprovalDeadline})
		require.NoError(b, err)
		ids, tokens = append(ids, r.ID), append(tokens, tok)
	}
	return ids, tokens
}

// benchApproveLoop approves b.N requests, made (untimed) in chunks of ten and
// revoked (untimed) after each chunk, so that the grant ledger of alice's
// access holds a realistic handful of requests, not b.N of them.
func benchApproveLoop(b *testing.B, f *fixture, h lambda.Handler, event func(id, token string) []byte) {
	const chunk = 10
	ctx := context.Background()
	benchSequentialIDs(f.Svc)
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		b.StopTimer()
		ids, tokens := benchPending(b, f, min(chunk, b.N-done))
		raws := make([][]byte, len(ids))
		for i := range ids {
			raws[i] = event(ids[i], tokens[i])
		}
		b.StartTimer()
		for i, raw := range raws {
			if done == 0 && i == 0 {
				benchInvoke(b, h, raw, 200)
			} else if _, err := h.Invoke(ctx, raw); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		for _, id := range ids {
			r, err := f.Svc.Revoke(ctx, app.RevokeInput{RequestID: id, Actor: "admin@example.com", Privileged: true, Reason: "benchmark"})
			require.NoError(b, err)
			require.Equal(b, access.StatusRevoked, r.Status)
		}
		done += len(ids)
		b.StartTimer()
	}
}

func BenchmarkIntakeApprove(b *testing.B) {
	f := newFixture(b)
	tmpl := benchEvent(b, "intake-approve.json")
	benchApproveLoop(b, f, benchIntake(f.Svc), func(id, _ string) []byte {
		return []byte(strings.ReplaceAll(tmpl, pendingID, id))
	})
}

func BenchmarkApproveGetPage(b *testing.B) {
	f := newFixture(b)
	h := benchApprove(f.Svc)
	raw := []byte(strings.ReplaceAll(benchEvent(b, "approve-get-page.json"), "{{TOKEN}}", f.token))
	benchInvoke(b, h, raw, 200)
	benchLoop(b, h, [][]byte{raw})
}

func BenchmarkApprovePostApprove(b *testing.B) {
	f := newFixture(b)
	tmpl := benchEvent(b, "approve-post-approve.json")
	benchApproveLoop(b, f, benchApprove(f.Svc), func(_, token string) []byte {
		return []byte(strings.ReplaceAll(tmpl, "{{TOKEN}}", token))
	})
}
