package iamgrant_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jitaccess/jit/internal/access"
	"github.com/jitaccess/jit/internal/iamgrant"
)

// lagging is an IAM whose GetUserPolicy shows the policy only from the
// given read on, as an eventually consistent read would. Other methods
// are not implemented (the nil embedded interface panics).
type lagging struct {
	iamgrant.IAMAPI
	visibleFrom int // 1-based read at which the policy appears; 0 never
	err         error
	reads       int
}

func (l *lagging) GetUserPolicy(ctx context.Context, in *iam.GetUserPolicyInput, _ ...func(*iam.Options)) (*iam.GetUserPolicyOutput, error) {
	l.reads++
	if l.err != nil {
		return nil, l.err
	}
	if l.visibleFrom == 0 || l.reads < l.visibleFrom {
		return nil, &types.NoSuchEntityException{Message: aws.String("not yet")}
	}
	return &iam.GetUserPolicyOutput{PolicyName: in.PolicyName}, nil
}

type sleeps struct {
	got    []time.Duration
	cancel func() // called at the given sleep, to end the context
	at     int
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.got = append(s.got, d)
	if s.cancel != nil && len(s.got) == s.at {
		s.cancel()
	}
	return ctx.Err()
}

func checkWith(t *testing.T, l *lagging, cfg iamgrant.Config, want bool) (bool, error) {
	t.Helper()
	p := iamgrant.Providers(l, cfg)[access.ProviderIAMTimeboxedPolicy]
	return p.Check(t.Context(), access.Grant{RequestID: "r1", Principal: user}, want)
}

func TestCheckRereadsUntilSeen(t *testing.T) {
	l := &lagging{visibleFrom: 4}
	s := &sleeps{}
	ok, err := checkWith(t, l, iamgrant.Config{Sleep: s.sleep}, true)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, 4, l.reads)
	assert.Equal(t, []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond}, s.got)
}

func TestCheckStopsAtBudgetWithLastObservation(t *testing.T) {
	l := &lagging{} // never visible
	s := &sleeps{}
	ok, err := checkWith(t, l, iamgrant.Config{Sleep: s.sleep}, true)
	require.NoError(t, err)
	assert.False(t, ok)
	// 100+200+400+800+1600 = 3100 > 3s, so the last wait is trimmed to fit.
	assert.Equal(t, []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, 1500 * time.Millisecond}, s.got)
	var total time.Duration
	for _, d := range s.got {
		total += d
	}
	assert.Equal(t, iamgrant.DefaultCheckBudget, total)
	assert.Equal(t, len(s.got)+1, l.reads)
}

func TestCheckReturnsAtOnceWhenAsExpected(t *testing.T) {
	l := &lagging{}
	s := &sleeps{}
	ok, err := checkWith(t, l, iamgrant.Config{Sleep: s.sleep}, false)
	require.NoError(t, err)
	assert.False(t, ok)
	assert.Equal(t, 1, l.reads)
	assert.Empty(t, s.got)
}

func TestCheckCustomBudgetAndReadOnce(t *testing.T) {
	s := &sleeps{}
	l := &lagging{}
	_, err := checkWith(t, l, iamgrant.Config{Sleep: s.sleep, CheckBudget: 250 * time.Millisecond, CheckDelay: 50 * time.Millisecond}, true)
	require.NoError(t, err)
	assert.Equal(t, []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 100 * time.Millisecond}, s.got)

	s, l = &sleeps{}, &lagging{}
	_, err = checkWith(t, l, iamgrant.Config{Sleep: s.sleep, CheckBudget: -1}, true)
	require.NoError(t, err)
	assert.Equal(t, 1, l.reads)
	assert.Empty(t, s.got)
}

func TestCheckErrorIsNotRetried(t *testing.T) {
	boom := errors.New("access denied")
	l := &lagging{err: boom}
	s := &sleeps{}
	_, err := checkWith(t, l, iamgrant.Config{Sleep: s.sleep}, true)
	assert.ErrorIs(t, err, boom)
	assert.True(t, access.IsKind(err, access.KindInternal))
	assert.Contains(t, err.Error(), "GetUserPolicy")
	assert.Equal(t, 1, l.reads)
}

func TestCheckEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	s := &sleeps{cancel: cancel, at: 2}
	l := &lagging{}
	p := iamgrant.Providers(l, iamgrant.Config{Sleep: s.sleep})[access.ProviderIAMTimeboxedPolicy]
	ok, err := p.Check(ctx, access.Grant{RequestID: "r1", Principal: user}, true)
	require.NoError(t, err, "the last observation stands")
	assert.False(t, ok)
	assert.Equal(t, 2, l.reads)
}

func TestCheckRealSleep(t *testing.T) {
	l := &lagging{visibleFrom: 2}
	start := time.Now()
	ok, err := checkWith(t, l, iamgrant.Config{CheckDelay: 20 * time.Millisecond}, true)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.GreaterOrEqual(t, time.Since(start), 20*time.Millisecond)
}
