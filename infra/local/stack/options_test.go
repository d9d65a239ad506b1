package stack_test

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jitaccess/jit/infra/local/dispatch"
	"github.com/jitaccess/jit/infra/local/stack"
	"github.com/jitaccess/jit/internal/access"
	"github.com/jitaccess/jit/internal/faults"
)

type countingMetrics struct {
	mu     sync.Mutex
	counts map[string]float64
}

func (m *countingMetrics) Count(_ context.Context, name string, n float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.counts[name] += n
}

func (m *countingMetrics) Duration(context.Context, string, time.Duration) {}

func (m *countingMetrics) get(name string) float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.counts[name]
}

// TestOptionsForSoak: ConfigureAWS reaches the functions' clients only,
// Metrics receives the functions' metrics, WrapTarget wraps the handlers
// the dispatcher invokes.
func TestOptionsForSoak(t *testing.T) {
	const cat = `
version: 1
principals:
  alice@example.com: user/alice
roles:
  - id: group-auto
    description: membership of an IAM group, approved by policy
    provider: iam-group
    target: {group: jit-options}
    requesters: [alice@example.com]
    duration: {default: 10m, max: 1h}
    autoApprove: true
`
	inj := faults.New()
	m := &countingMetrics{counts: map[string]float64{}}
	var mu sync.Mutex
	wrapped := map[string]int{}
	clk := &clock{}
	s := start(t, stack.Options{
		Catalog: mustParse(t, cat), Clock: clk.Now, Precision: time.Second, Poll: time.Hour,
		ConfigureAWS: inj.Install,
		Metrics:      m,
		WrapTarget: func(arn string, h dispatch.Handler) dispatch.Handler {
			return func(ctx context.Context, in json.RawMessage) error {
				mu.Lock()
				wrapped[arn]++
				mu.Unlock()
				return h(ctx, in)
			}
		},
	})
	alice := newClient(t, s, "alice@example.com")
	var req stack.Request
	require.Equal(t, http.StatusCreated, alice.json(http.MethodPost, "/requests", map[string]string{
		"roleId": "group-auto", "justification": "testing the stack options",
	}, &req))
	require.Equal(t, access.StatusActive, req.Status)

	assert.NotZero(t, inj.Calls("TransactWriteItems"), "the functions' DynamoDB calls went through ConfigureAWS")
	assert.NotZero(t, inj.Calls("AddUserToGroup"), "and their IAM calls")
	assert.Equal(t, 1.0, m.get("Requests"))
	assert.Equal(t, 1.0, m.get("Grants"))

	before := inj.Calls("ListGroupsForUser")
	_, err := iam.NewFromConfig(s.AWSConfig()).ListGroupsForUser(context.Background(), &iam.ListGroupsForUserInput{UserName: aws.String("alice")})
	require.NoError(t, err)
	assert.Equal(t, before, inj.Calls("ListGroupsForUser"), "AWSConfig stays free of the functions' middleware")

	clk.Advance(req.EndAt.Sub(clk.Now()) + time.Second)
	fired, err := s.DispatchNow(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 1, fired)
	assert.Equal(t, access.StatusExpired, alice.request(req.ID).Status)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, map[string]int{stack.RevokeARN: 1}, wrapped)
}
